from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from llmlab.backends.base import Backend, Capabilities, GenerateRequest, GenerateResponse, ToolCall
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.contracts import Query, Roles
from llmlab.core.errors import ConfigError
from llmlab.methods.crag_rag import CragRAG, CragRAGAPI, bm25_rank, split_sentences
from llmlab.tasks.crag import CRAG
from tests.helpers.crag import make_kg, serve_crag


class ToolScript(Backend):
    """A tool-capable scripted backend: first asks for a KG lookup, then answers from the tool result."""

    name: ClassVar[str] = "toolscript"
    capabilities = Capabilities(tools=True)

    def __init__(self) -> None:
        self.model = "toolscript"
        self.requests: list[GenerateRequest] = []

    @classmethod
    def from_spec(cls, spec: str) -> ToolScript:
        return cls()

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        self.requests.append(request)
        assert request.messages is not None
        tool_msgs = [m for m in request.messages if m.role == "tool"]
        if not tool_msgs:
            call = ToolCall("c1", "movie_get_movie_info", json.dumps({"movie_name": "the matrix"}))
            return GenerateResponse(texts=[""], finish_reasons=["tool_calls"], tool_calls=[[call]])
        movies = json.loads(tool_msgs[-1].text)
        return GenerateResponse(texts=[movies[0]["release_date"]], finish_reasons=["stop"])


def test_sentences_and_ranking() -> None:
    assert split_sentences("A b. C d?\nE", max_chars=2) == ["A ", "C ", "E"]
    docs = ["the weather is nice", "microsoft office 2019 supports many languages", "office chairs"]
    assert bm25_rank("office 2019 languages", docs)[0] == 1


@pytest.mark.anyio
async def test_rag_prompt_has_ranked_references(shared_data: Path) -> None:
    task = CRAG()
    item = next(iter(task.items()))
    query = task.prompt(item)
    backend = MockBackend(["yes"])
    sol = await CragRAG({"num_sentences": 5}).solve(query, Roles(Model(backend)))
    assert sol.answer == "yes" and len(sol.trace["references"]) == 5
    user = backend.requests[0].messages[1].text  # type: ignore[index]
    assert user.startswith("# References \n- ") and "Question: is microsoft office 2019" in user
    assert len(user.split("------")[0]) <= 4000 + 1
    assert any("language" in s.lower() for s in sol.trace["references"])
    with pytest.raises(ConfigError):
        await CragRAG().solve(Query.from_text("no metadata"), Roles(Model(backend)))


@pytest.mark.anyio
async def test_rag_api_runs_tool_calls_against_the_mock_api(tmp_path: Path) -> None:
    kg = make_kg(tmp_path / "kg")
    with serve_crag(kg) as url:
        task = CRAG({"task": 2, "api_url": url, "api_domains": ["movie", "open"]})
        item, _ = task.item_from_record({"query": "when was the matrix released?", "answer": "1999-03-30",
                                         "prediction": ""}, "f:1")
        query = task.prompt(item)
        backend = ToolScript()
        sol = await CragRAGAPI().solve(query, Roles(Model(backend)))
    assert sol.answer == "1999-03-30"
    assert [c["name"] for c in sol.trace["tool_calls"]] == ["movie_get_movie_info"]
    first: Any = backend.requests[0]
    assert {t.name for t in first.tools} >= {"movie_get_movie_info", "open_get_entity"}
    second = backend.requests[1].messages
    assert second is not None and second[-1].role == "tool" and second[-1].tool_call_id == "c1"
