"""Husky's search backends: BM25 over a user's documents, the web-search adapter (no network), caching."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from llmlab.core.concurrency import run_sync
from llmlab.core.errors import ConfigError, DataError
from llmlab.methods.husky.search import (
    BM25Retriever,
    CachedRetriever,
    Document,
    Retriever,
    SerpAPISearch,
    WebSearch,
    load_documents,
    serp_result_text,
)


def test_bm25_ranks_the_matching_passage_first_and_finds_nothing_for_unknown_words(tmp_path: Path) -> None:
    (tmp_path / "citibank.txt").write_text("Citibank was founded in 1812 as the City Bank of New York.")
    (tmp_path / "madison.md").write_text("James Madison was president of the United States from 1809 to 1817.")
    (tmp_path / "skip.csv").write_text("Citibank Citibank Citibank")  # not a text document
    r = BM25Retriever.from_path(tmp_path)
    assert run_sync(r.search("When was Citibank founded?")) == \
        "citibank: Citibank was founded in 1812 as the City Bank of New York."
    assert run_sync(r.search("Who was president, Madison?")).startswith("madison: ")  # type: ignore[union-attr]
    assert run_sync(r.search("zebra quantum")) is None
    top2 = BM25Retriever.from_path(tmp_path, top_k=2)
    text = run_sync(top2.search("Citibank president"))
    assert text is not None and text.startswith("1. ") and "\n2. " in text


def test_jsonl_documents_and_passage_split(tmp_path: Path) -> None:
    f = tmp_path / "docs.jsonl"
    long_text = " ".join(f"w{i}" for i in range(250)) + " needle"
    f.write_text(json.dumps({"title": "Long", "text": long_text}) + "\n" + json.dumps({"text": "short one"}) + "\n")
    docs = load_documents(f, passage_words=100)
    assert [d.title for d in docs].count("Long") == 5  # 251 words: windows of 100 starting every 50
    assert all(len(d.text.split()) <= 100 for d in docs)
    hit = run_sync(BM25Retriever(docs).search("needle"))
    assert hit is not None and hit.endswith("needle")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "no text"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: each document line needs a 'text' string"):
        load_documents(bad)
    with pytest.raises(DataError, match="no such file or folder"):
        load_documents(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no text found"):
        load_documents(tmp_path / "empty")


SERP = {
    "answer_box": {"snippet": "Citibank was founded on June 16, 1812.", "answer": "June 16, 1812"},
    "organic_results": [{"title": "Citi - Wikipedia", "snippet": "Citigroup Inc. is an American bank."},
                        {"title": "History", "snippet": "Founded in 1812."}],
    "sports_results": {"game_spotlight": {"teams": [
        {"name": "Seahawks", "score": {"Q1": 3, "Q2": 7}}, {"name": "Redskins", "score": {"Q1": 0, "Q2": 7}}]}},
}


def test_serp_result_text_follows_the_official_order() -> None:
    assert serp_result_text(SERP) == "Citibank was founded on June 16, 1812."
    assert serp_result_text(SERP, answer_only=True) == "June 16, 1812"
    assert serp_result_text(SERP, kind="match_info") == "Seahawks: {Q1: 3, Q2: 7}, Redskins: {Q1: 0, Q2: 7}"
    no_box = {"organic_results": SERP["organic_results"]}
    assert serp_result_text(no_box) == "Citi - Wikipedia: Citigroup Inc. is an American bank."
    assert serp_result_text(no_box, top_k=2) == "1. Citi - Wikipedia: Citigroup Inc. is an American bank.\n" \
                                                "2. History: Founded in 1812."
    assert serp_result_text({}) is None and serp_result_text({"organic_results": []}) is None


class FakeWeb(WebSearch):
    def __init__(self) -> None:
        super().__init__()
        self.queries: list[tuple[str, str]] = []

    async def fetch(self, query: str, *, kind: str = "search") -> Mapping[str, Any] | None:
        self.queries.append((kind, query))
        return SERP if "citibank" in query.lower() else None


def test_web_adapter_and_cache() -> None:
    web = FakeWeb()
    cached = CachedRetriever(web)
    assert run_sync(cached.search("Citibank founded")) == "Citibank was founded on June 16, 1812."
    assert run_sync(cached.search("  citibank   FOUNDED ")) == "Citibank was founded on June 16, 1812."
    assert run_sync(cached.search("Citibank founded", kind="match_info")).startswith("Seahawks")  # type: ignore[union-attr]
    assert run_sync(cached.search("unknown")) is None
    assert web.queries == [("search", "Citibank founded"), ("match_info", "Citibank founded"), ("search", "unknown")]
    assert cached.hits == 1


def test_serpapi_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERPAPI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="set SERPAPI_API_KEY"):
        SerpAPISearch()
    assert isinstance(SerpAPISearch(api_key="k"), Retriever)


def test_bm25_refuses_an_empty_collection() -> None:
    with pytest.raises(DataError):
        BM25Retriever([])
    assert run_sync(BM25Retriever([Document("", "only text")]).search("text")) == "only text"
