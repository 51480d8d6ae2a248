from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.contracts import Roles
from llmlab.core.errors import ConfigError, DataError, UnsupportedFeatureError
from llmlab.tasks.crag import CRAG, parse_alternatives


def test_real_example_items(shared_data: Path) -> None:
    t = CRAG()
    items = list(t.items())
    assert len(items) == 10
    assert {i.metadata["domain"] for i in items} == {"open", "finance", "movie", "sports"}
    assert items[0].target == ["yes"]
    q = t.prompt(items[0])
    assert len(q.metadata["pages"]) == 5 and all(p["text"] for p in q.metadata["pages"][:3])
    assert "Question: is microsoft office 2019" in q.text and "02/28/2024" in q.text
    with pytest.raises(ConfigError):
        list(CRAG({"task": 2}).items())


def test_alternative_answers_parsing() -> None:
    assert parse_alternatives("[]") == []
    assert parse_alternatives("['a', 'b']") == ["a", "b"]
    assert parse_alternatives(["x"]) == ["x"]
    t = CRAG({"use_alternative_answers": False})
    item, _ = t.item_from_record({"query": "q", "answer": "a", "alt_ans": ["b"], "prediction": "p"}, "f:1")
    assert item.target == ["a"]
    with pytest.raises(DataError):
        t.item_from_record({"query": "q"}, "f:2")


@pytest.mark.anyio
async def test_ascore_sends_the_official_judge_layout(shared_data: Path) -> None:
    t = CRAG()
    judge = MockBackend(['{"score": 1, "explanation": "same"}'])
    roles = Roles(Model("mock:echo"), judge=Model(judge))
    item, pred = t.item_from_record({"query": "who?", "answer": "tom", "question_type": "simple",
                                     "domain": "movie", "prediction": "Tom Holland"}, "f:1")
    s = await t.ascore(item, pred, roles)
    assert s.value == 1.0 and s.details["label"] == "correct"
    req = judge.requests[0]
    assert req.temperature == 0.0 and req.response_format == {"type": "json_object"}
    assert req.messages is not None and req.messages[0].role == "system"
    assert "Ground Truth" in req.messages[0].text and "Examples:" in req.messages[0].text
    assert req.messages[1].text == "Question: who?\n Ground truth: tom\n Prediction: Tom Holland\n"
    with pytest.raises(UnsupportedFeatureError):
        t.score(item, pred)
    scores: list[Any] = [s]
    for p in ("I don't know", "invalid question"):
        it, pp = t.item_from_record({"query": "q", "answer": "x", "question_type": "set", "domain": "open",
                                     "prediction": p}, "f")
        scores.append(await t.ascore(it, pp, roles))
    agg = t.aggregate(scores)
    assert agg["n_correct"] == 1 and agg["n_miss"] == 1 and agg["n_hallucination"] == 1
    assert agg["score"] == pytest.approx(0.0) and agg["per_domain"]["movie"]["score"] == 1.0
    assert len(judge.requests) == 1  # the miss and the false-premise mismatch needed no judge
