"""Husky's search expert backends: a pluggable :class:`Retriever`, local BM25 by default, web search behind an adapter.

- :class:`BM25Retriever` ranks passages of a user's own documents (a folder of ``.txt``/``.md`` files or a
  JSON-lines file) with ``rank_bm25``'s BM25+ (the ``husky`` extra). It is the default because it needs
  no network and no key.
- :class:`WebSearch` is the adapter interface for a web search API: a subclass implements
  :meth:`WebSearch.fetch` (one query → the API's JSON), and :func:`serp_result_text` turns a SerpAPI-shaped
  result into the one snippet the official code uses: for ``match_info`` the game-spotlight scoreboard,
  else the answer box's snippet (or answer), else the first organic ``title: snippet``.
  :class:`SerpAPISearch` is the SerpAPI adapter (``SERPAPI_API_KEY``); tests use a fake subclass, never the
  network.
- :class:`CachedRetriever` memoises ``(kind, query)`` so a repeated query costs one lookup.

A retriever returns ``None`` when it found nothing; the method turns that into a failed step the action
generator sees.
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmlab.core.errors import ConfigError, DataError, MissingExtraError

_TOKEN_RE = re.compile(r"\w+", re.UNICODE)

# Very common English words carry no signal for BM25 over small collections.
_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it", "its", "of",
    "on", "or", "that", "the", "this", "to", "was", "were", "what", "when", "where", "which", "who", "whom",
    "whose", "why", "how", "did", "does", "do"))


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without stop words.

    Example:
        >>> tokenize("Who founded the Citibank?")
        ['founded', 'citibank']
    """
    return [t for t in _TOKEN_RE.findall(text.lower()) if t not in _STOPWORDS]


@dataclass(frozen=True)
class Document:
    """One passage of a user's collection: its title (file stem or ``title`` field) and text."""

    title: str
    text: str


class Retriever(ABC):
    """What the search expert calls: ``await search(query, kind=...)`` → one result text, or ``None``."""

    @abstractmethod
    async def search(self, query: str, *, kind: str = "search") -> str | None:
        """The result for ``query``; ``kind`` is ``"search"`` or ``"match_info"`` (an NFL game lookup)."""


class NoSearch(Retriever):
    """No search backend configured: every search fails, with the reason in :attr:`reason`."""

    def __init__(self, reason: str = "no search backend is configured") -> None:
        self.reason = reason

    async def search(self, query: str, *, kind: str = "search") -> str | None:
        return None


def _passages(title: str, text: str, words: int) -> list[Document]:
    tokens = text.split()
    if not tokens:
        return []
    if words <= 0 or len(tokens) <= words:
        return [Document(title, " ".join(tokens))]
    step = max(1, words // 2)  # half-overlapping windows, so an answer is never cut between two passages only
    return [Document(title, " ".join(tokens[i:i + words])) for i in range(0, max(1, len(tokens) - step), step)]


def load_documents(path: str | os.PathLike[str], *, passage_words: int = 100) -> list[Document]:
    """Read a user's documents: a folder of ``.txt``/``.md`` files, or a ``.jsonl`` file of ``{title?, text}``.

    Long texts are split into half-overlapping passages of ``passage_words`` words (0: no split).

    Raises:
        DataError: The path does not exist, holds no text, or a JSON line lacks a ``text`` string.
    """
    p = Path(path)
    raw: list[tuple[str, str]] = []
    if p.is_dir():
        for f in sorted(p.rglob("*")):
            if f.is_file() and f.suffix.lower() in (".txt", ".md"):
                raw.append((f.stem, f.read_text(errors="replace")))
    elif p.is_file():
        from llmlab.core.jsonl import read_jsonl

        for where, rec in read_jsonl(p, what="documents file"):
            text = rec.get("text", rec.get("contents", rec.get("content")))
            if not isinstance(text, str):
                raise DataError(f"{where}: each document line needs a 'text' string (and optionally 'title')")
            raw.append((str(rec.get("title", rec.get("id", ""))), text))
    else:
        raise DataError(f"documents={path}: no such file or folder; pass a folder of .txt/.md files or a .jsonl "
                        "file of {\"title\", \"text\"} lines")
    docs = [d for title, text in raw for d in _passages(title, text, passage_words)]
    if not docs:
        raise DataError(f"documents={path}: no text found (a folder needs .txt or .md files)")
    return docs


class BM25Retriever(Retriever):
    """BM25 (the BM25+ variant) over a user's passages (``rank_bm25``); the top ``top_k`` as ``title: text``.

    Example:
        >>> from llmlab.core.concurrency import run_sync
        >>> r = BM25Retriever([Document("Nile", "The Nile flows through Cairo."),
        ...                    Document("Seine", "The Seine flows through Paris."),
        ...                    Document("Thames", "The Thames flows through London.")])
        >>> run_sync(r.search("river through Cairo"))
        'Nile: The Nile flows through Cairo.'
    """

    def __init__(self, documents: Sequence[Document], *, top_k: int = 1) -> None:
        try:
            from rank_bm25 import BM25Plus
        except ImportError:
            raise MissingExtraError("rank_bm25", "husky", "the BM25 search expert") from None
        if not documents:
            raise DataError("BM25 search needs at least one document")
        if top_k < 1:
            raise ConfigError(f"search_top_k must be >= 1, got {top_k}")
        self.documents = list(documents)
        self.top_k = top_k
        corpus = [tokenize(f"{d.title} {d.text}") or ["\x00"] for d in self.documents]
        self._vocab = {t for doc in corpus for t in doc}
        # BM25+ (Lv & Zhai 2011): its idf log((N+1)/n) stays positive, where Okapi's is 0 or negative for a word
        # in half the passages or more, which leaves a small collection with all-zero scores.
        self._bm25 = BM25Plus(corpus)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, top_k: int = 1, passage_words: int = 100) -> BM25Retriever:
        """Index the documents at ``path`` (see :func:`load_documents`)."""
        return cls(load_documents(path, passage_words=passage_words), top_k=top_k)

    def rank(self, query: str) -> list[tuple[float, Document]]:
        """``(score, passage)`` best first, only passages sharing a word with the query."""
        q = [t for t in tokenize(query) if t in self._vocab]
        if not q:
            return []
        scores = self._bm25.get_scores(q)
        qs = set(q)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [(float(scores[i]), self.documents[i]) for i in order
                if qs & set(tokenize(f"{self.documents[i].title} {self.documents[i].text}"))]

    async def search(self, query: str, *, kind: str = "search") -> str | None:
        hits = self.rank(query)[: self.top_k]
        if not hits:
            return None
        texts = [f"{d.title}: {d.text}" if d.title else d.text for _, d in hits]
        if len(texts) == 1:
            return texts[0]
        return "\n".join(f"{i}. {t}" for i, t in enumerate(texts, 1))


def _scoreboard(sports: Mapping[str, Any]) -> str | None:
    teams = (sports.get("game_spotlight") or {}).get("teams") or []
    out = []
    for team in teams:
        if "name" not in team or "score" not in team:
            return None
        score = team["score"]
        if isinstance(score, str):
            out.append(score)
        else:
            quarters = ", ".join(f"{q}: {s}" for q, s in dict(score).items())
            out.append(f"{team['name']}: {{{quarters}}}")
    return ", ".join(out) or None


def serp_result_text(result: Mapping[str, Any] | None, *, kind: str = "search", top_k: int = 1,
                     answer_only: bool = False) -> str | None:
    """The text the official search tool takes from one SerpAPI-shaped result (``None``: nothing usable).

    Order as in the official ``GoogleSearchAPI.process_result``: a game spotlight's scoreboard (used here only
    for ``kind="match_info"``), the answer box (``snippet``, or ``answer`` when ``answer_only``) when
    ``top_k == 1``, else the first ``top_k`` organic results as ``title: snippet``.

    Example:
        >>> serp_result_text({"organic_results": [{"title": "Nile", "snippet": "A river."}]})
        'Nile: A river.'
    """
    if not result:
        return None
    output: Any = None
    sports = result.get("sports_results")
    if kind == "match_info" and isinstance(sports, Mapping) and "game_spotlight" in sports:
        output = _scoreboard(sports)
    elif top_k == 1 and isinstance(result.get("answer_box"), Mapping):
        box = result["answer_box"]
        output = box.get("answer") if answer_only else box.get("snippet", box.get("answer"))
    if (not output or not isinstance(output, str)) and result.get("organic_results"):
        found = [f"{r['title']}: {r['snippet']}" for r in result["organic_results"]
                 if isinstance(r, Mapping) and "snippet" in r and "title" in r][:top_k]
        if found:
            output = found[0] if top_k == 1 else "\n".join(f"{i}. {t}" for i, t in enumerate(found, 1))
    return output.strip() if isinstance(output, str) and output.strip() else None


class WebSearch(Retriever):
    """Adapter interface for a web search API: subclasses implement :meth:`fetch` (no network in tests)."""

    def __init__(self, *, top_k: int = 1, answer_only: bool = False) -> None:
        self.top_k = top_k
        self.answer_only = answer_only

    @abstractmethod
    async def fetch(self, query: str, *, kind: str = "search") -> Mapping[str, Any] | None:
        """The API's JSON result for ``query`` (SerpAPI's shape: ``answer_box``, ``organic_results`` ...)."""

    async def search(self, query: str, *, kind: str = "search") -> str | None:
        return serp_result_text(await self.fetch(query, kind=kind), kind=kind, top_k=self.top_k,
                                answer_only=self.answer_only)


class SerpAPISearch(WebSearch):
    """Google results through SerpAPI (``https://serpapi.com/search.json``), key from ``SERPAPI_API_KEY``.

    Raises:
        ConfigError: No key is set (at construction, before any question).
    """

    URL = "https://serpapi.com/search.json"

    def __init__(self, *, top_k: int = 1, answer_only: bool = False, api_key: str | None = None,
                 location: str | None = None, timeout: float = 30.0) -> None:
        super().__init__(top_k=top_k, answer_only=answer_only)
        key = api_key if api_key is not None else os.environ.get("SERPAPI_API_KEY")
        if not key:
            raise ConfigError("search=serpapi needs an API key: set SERPAPI_API_KEY (or use search=bm25 with "
                              "-p documents=PATH for a local index)")
        self.api_key = key
        self.location = location if location is not None else os.environ.get("SERPAPI_LOCATION")
        self.timeout = timeout

    async def fetch(self, query: str, *, kind: str = "search") -> Mapping[str, Any] | None:
        import httpx

        params = {"q": query, "api_key": self.api_key, "engine": "google"}
        if self.location:
            params["location"] = self.location
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                resp = await client.get(self.URL, params=params)
            resp.raise_for_status()
            data = resp.json()
        except (httpx.HTTPError, json.JSONDecodeError, ValueError):
            return None  # the official tool also reports "Search failed." on any API error
        return data if isinstance(data, dict) else None


class CachedRetriever(Retriever):
    """Memoises another retriever's results per ``(kind, query)``; :attr:`hits` counts reuses."""

    def __init__(self, inner: Retriever) -> None:
        self.inner = inner
        self.cache: dict[tuple[str, str], str | None] = {}
        self.hits = 0

    async def search(self, query: str, *, kind: str = "search") -> str | None:
        key = (kind, " ".join(query.split()).lower())
        if key in self.cache:
            self.hits += 1
            return self.cache[key]
        result = await self.inner.search(query, kind=kind)
        self.cache[key] = result
        return result
