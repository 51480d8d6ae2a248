"""CRAG's RAG baselines (Yang et al., arXiv:2406.04744, §5; official starter kit ``models/``).

- ``crag_rag`` — LLM + task-1 pages ("straightforward RAG", the official ``rag_llama_baseline.py``): the
  pages' text (prepared by the task: ``Query.metadata["pages"]``) is split into sentences of at most 1000
  characters, the 20 most relevant to the question are kept, listed under ``# References`` and cut at 4000
  characters; the model answers "using only the references", with the question time, briefly, or "I don't
  know".
- ``crag_rag_api`` — the same plus the mock API (tasks 2/3): the task's tool set
  (``Query.metadata["tools"]``) is offered to the model; its tool calls are POSTed to the mock API
  (``metadata["api_url"]``, paths and body keys from ``metadata["tool_endpoints"]``) and the results fed
  back as tool messages, for at most ``max_tool_rounds`` rounds, then the model answers.
- The LLM-only baseline is the CRAG task's own prompt with ``--method direct``.

Deviations (with the reason)
- Sentence ranking is BM25 over the question's words, not cosine similarity of all-MiniLM-L6-v2 sentence
  embeddings: nothing may be downloaded at run time. (Same sentence budget and length caps.)
- The official knowledge-graph baseline asks the model for the query's domain and entities as JSON, then
  makes fixed API calls per domain; ours lets the model call the API functions as tools (the mock API is an
  OpenAI-style tool set), which covers every endpoint rather than the few the starter kit hard-codes.
- Prompt wording is ours (same layout: system instruction; references, a ``------`` rule, the question time
  and question).

This module imports core only (tasks and methods never import each other).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

from llmlab.backends.base import GenerateRequest, Message, Tool
from llmlab.core.config import LabConfig
from llmlab.core.contracts import Query, Roles, Solution
from llmlab.core.errors import BackendConnectionError, ConfigError, LabError
from llmlab.methods.base import Method

SYSTEM_RAG = (
    "You get a question and some references. Answer the question as briefly as you can, in the fewest "
    "words possible. If the references do not hold what you need to answer, reply 'I don't know'. Do not "
    "explain your reasoning."
)
SYSTEM_API = (
    SYSTEM_RAG + " You may first call the knowledge-graph functions you are given to look facts up; then "
    "answer."
)
USER_RAG = ("{references}\n------\n\nAnswer the following question using only the references above: \n"
            "Current Time: {query_time}\nQuestion: {query}\n")

_SENT = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w+")


def split_sentences(text: str, max_chars: int = 1000) -> list[str]:
    r"""Sentences of a page (split at ., !, ? and line breaks), each cut to ``max_chars``.

    Example:
        >>> split_sentences("One. Two!\nThree")
        ['One.', 'Two!', 'Three']
    """
    return [s.strip()[:max_chars] for s in _SENT.split(text) if s.strip()]


def bm25_rank(query: str, docs: list[str], k1: float = 1.5, b: float = 0.75) -> list[int]:
    """Indices of ``docs`` by decreasing BM25 score for ``query`` (stable for ties)."""
    toks = [_WORD.findall(d.lower()) for d in docs]
    n = len(docs)
    if n == 0:
        return []
    avgdl = sum(map(len, toks)) / n or 1.0
    df: Counter[str] = Counter()
    for t in toks:
        df.update(set(t))
    q = _WORD.findall(query.lower())
    scores = []
    for t in toks:
        tf, dl, s = Counter(t), len(t), 0.0
        for w in q:
            if tf[w]:
                idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                s += idf * tf[w] * (k1 + 1) / (tf[w] + k1 * (1 - b + b * dl / avgdl))
        scores.append(s)
    return sorted(range(n), key=lambda i: -scores[i])


class CragRAGConfig(LabConfig):
    """Options of the CRAG RAG baselines (official starter-kit defaults).

    Attributes:
        num_sentences: Sentences kept as references (official 20).
        max_sentence_chars: Cap per sentence (official 1000).
        max_references_chars: Cap of the whole reference block (official 4000).
        temperature: Sampling temperature (official vLLM call: 0.1).
        max_tokens: Answer budget (official 50 new tokens; the scorer keeps 75 Llama tokens anyway).
        max_tool_rounds: ``crag_rag_api`` only: rounds of tool calls before the model must answer.
    """

    num_sentences: int = 20
    max_sentence_chars: int = 1000
    max_references_chars: int = 4000
    temperature: float | None = 0.1
    max_tokens: int | None = 50
    max_tool_rounds: int = 3


def _metadata(query: Query, key: str) -> Any:
    if key not in query.metadata:
        raise ConfigError(f"this method needs the CRAG task's query metadata '{key}' (use it with -t/--task crag)")
    return query.metadata[key]


class CragRAG(Method):
    """LLM + retrieved page sentences (CRAG task 1 baseline)."""

    name = "crag_rag"
    Config = CragRAGConfig

    @property
    def cfg(self) -> CragRAGConfig:
        assert isinstance(self.config, CragRAGConfig)
        return self.config

    def references(self, query: Query) -> tuple[str, list[str]]:
        """The ``# References`` block and the sentences chosen for it."""
        cfg = self.cfg
        sentences: list[str] = []
        for page in _metadata(query, "pages"):
            sentences.extend(split_sentences(str(page.get("text", "")), cfg.max_sentence_chars))
        question = str(_metadata(query, "query"))
        top = [sentences[i] for i in bm25_rank(question, sentences)[: cfg.num_sentences]]
        block = ""
        if top:
            block = "# References \n" + "".join(f"- {s.strip()}\n" for s in top)
        return block[: cfg.max_references_chars], top

    def messages(self, query: Query, system: str) -> tuple[tuple[Message, ...], list[str]]:
        block, top = self.references(query)
        user = USER_RAG.format(references=block, query_time=query.metadata.get("query_time", ""),
                               query=_metadata(query, "query"))
        return (Message("system", system), Message("user", user)), top

    async def solve(self, query: Query, roles: Roles) -> Solution:
        cfg = self.cfg
        msgs, top = self.messages(query, SYSTEM_RAG)
        resp = await roles.default.generate(GenerateRequest(messages=msgs, temperature=cfg.temperature,
                                                            max_tokens=cfg.max_tokens))
        return Solution(text=resp.text, answer=resp.text, trace={"references": top, "calls": 1})


class CragRAGAPI(CragRAG):
    """LLM + page sentences + the CRAG mock API as tools (CRAG task 2/3 baseline)."""

    name = "crag_rag_api"

    async def call_tool(self, query: Query, name: str, arguments: dict[str, Any]) -> str:
        """Run one tool call against the mock API; errors come back to the model as text."""
        import httpx

        endpoints = _metadata(query, "tool_endpoints")
        if name not in endpoints:
            return json.dumps({"error": f"unknown function {name}"})
        ep = endpoints[name]
        body = {key: arguments.get(param) for param, key in ep["body"].items()}
        url = str(_metadata(query, "api_url")).rstrip("/") + ep["path"]
        try:
            async with httpx.AsyncClient(timeout=30.0) as client:
                r = await client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise BackendConnectionError(f"CRAG mock API at {url} not reachable ({exc.__class__.__name__})") from None
        if r.status_code != 200:
            return json.dumps({"error": f"HTTP {r.status_code}", "detail": r.text[:500]})
        return json.dumps(r.json().get("result"), ensure_ascii=False, default=str)[:4000]

    async def solve(self, query: Query, roles: Roles) -> Solution:
        cfg = self.cfg
        tools: tuple[Tool, ...] = tuple(_metadata(query, "tools"))
        msgs, top = self.messages(query, SYSTEM_API)
        conv = list(msgs)
        calls: list[dict[str, Any]] = []
        for round_ in range(cfg.max_tool_rounds + 1):
            last = round_ == cfg.max_tool_rounds
            resp = await roles.default.generate(GenerateRequest(
                messages=tuple(conv), temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                tools=tools, tool_choice="none" if last else "auto"))
            if not resp.calls or last:
                return Solution(text=resp.text, answer=resp.text,
                                trace={"references": top, "tool_calls": calls, "calls": round_ + 1})
            conv.append(resp.message())
            for call in resp.calls:
                try:
                    result = await self.call_tool(query, call.name, call.parsed_arguments())
                except BackendConnectionError:
                    raise
                except LabError as exc:  # bad arguments: tell the model, as a tool result
                    result = json.dumps({"error": str(exc)})
                calls.append({"name": call.name, "arguments": call.arguments, "result": result[:500]})
                conv.append(Message("tool", result, tool_call_id=call.id, name=call.name))
        raise AssertionError("unreachable")  # pragma: no cover
