"""The run store: one SQLite file per run, one row per item, committed as each item finishes.

Layout: ``<runs_dir>/<run_id>/run.sqlite`` (tables ``meta``, ``items``, ``calls`` and ``blobs``) and
``manifest.json``. A crash loses at most the items in flight; re-opening the same run id resumes with the
items that have no row or an error row (lm-evaluation-harness ``evaluation_tracker.py`` keeps records the
same way).

Write-behind (:meth:`RunStore.start_writer`, what an eval uses): rows are handed to one writer thread with
its own connection, which commits whatever has queued up in one transaction as soon as it gets it. The
event loop then spends microseconds per item instead of a commit, and a busy run commits many rows at
once. A SIGKILL loses, besides the items in flight, only rows handed over in the last moment and not yet
committed (a resume redoes them); every read, :meth:`RunStore.flush` and :meth:`RunStore.close` wait for
the queue first, and a failed write is raised by the next call instead of being lost.

Transcripts: ``calls`` holds every model call an item made (request and response as JSON, see
:mod:`llmlab.core.transcripts`), written in the same transaction as the item's row, so a row never
exists without its transcript. Inline images live once per run in ``blobs`` (SHA-256 → bytes). Stores
written before a column or table existed are upgraded in place when opened for writing, and read as they
are when opened read-only (the viewer).
"""

from __future__ import annotations

import collections
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmlab.core.errors import ConfigError, DataError

try:  # orjson (the `fast` extra) serialises traces and transcripts ~5x faster; the stdlib is the fallback
    import orjson

    _ORJSON_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
except ImportError:  # pragma: no cover - exercised only without orjson
    orjson = None  # type: ignore[assignment]


def _dumps(obj: Any) -> str:
    """JSON text of a row's column; anything JSON cannot hold becomes its ``str()``."""
    if orjson is not None:
        try:
            return orjson.dumps(obj, default=str, option=_ORJSON_OPTS).decode()
        except (TypeError, orjson.JSONEncodeError):  # e.g. an int beyond 64 bits: the stdlib handles it
            pass
    return json.dumps(obj, default=str)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    idx INTEGER,
    prompt_hash TEXT,
    answer TEXT,
    text TEXT,
    score REAL,
    correct INTEGER,
    extracted TEXT,
    details TEXT,
    calls INTEGER,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost REAL,
    latency_s REAL,
    cache_hits INTEGER,
    retries INTEGER,
    error TEXT,
    trace TEXT,
    finished_at REAL,
    cluster TEXT,
    traceback TEXT,
    query TEXT,
    target TEXT
);
CREATE TABLE IF NOT EXISTS calls (
    item_id TEXT,
    seq INTEGER,
    model TEXT,
    request TEXT,
    response TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_s REAL,
    cached INTEGER,
    retries INTEGER,
    error TEXT,
    PRIMARY KEY (item_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY, mime TEXT, data BLOB);
"""
# Columns added after the first stores were written: (name, SQL type) → ALTER TABLE on open.
_ADDED_COLUMNS = (("cluster", "TEXT"), ("traceback", "TEXT"), ("query", "TEXT"), ("target", "TEXT"))
_JSON_COLUMNS = ("details", "trace", "query", "target")


@dataclass
class ItemRow:
    """One item's record."""

    item_id: str
    idx: int
    prompt_hash: str
    answer: str | None
    text: str | None
    score: float | None
    correct: bool | None
    extracted: str | None
    details: dict[str, Any]
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    latency_s: float
    cache_hits: int
    retries: int
    error: str | None
    trace: dict[str, Any]
    finished_at: float = 0.0
    cluster: str | None = None
    traceback: str | None = None
    query: list[dict[str, Any]] | None = None  # the item's messages (transcript dicts), when transcripts are on
    target: Any = None  # the item's reference, JSON-able


@dataclass
class CallRow:
    """One model call of an item, as stored (request/response are transcript dicts)."""

    item_id: str
    seq: int
    model: str
    request: dict[str, Any]
    response: dict[str, Any] | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    retries: int = 0
    error: str | None = None


_COLUMNS = tuple(ItemRow.__dataclass_fields__)
_INSERT = f"INSERT OR REPLACE INTO items ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
_CALL_COLUMNS = tuple(CallRow.__dataclass_fields__)
_INSERT_CALL = f"INSERT INTO calls ({', '.join(_CALL_COLUMNS)}) VALUES ({', '.join('?' for _ in _CALL_COLUMNS)})"


class RunStore:
    """A run's SQLite store.

    Args:
        root: The run's folder (created if missing).
        readonly: Open an existing store without writing anything (no schema upgrade): the viewer.

    Example:
        >>> import tempfile
        >>> s = RunStore(Path(tempfile.mkdtemp()) / "r1")
        >>> s.done_ids()
        set()
    """

    def __init__(self, root: Path, *, readonly: bool = False) -> None:
        self.root = root
        self.path = root / "run.sqlite"
        self.readonly = readonly
        self._queue: collections.deque[tuple[Any, ...]] | None = None
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        self._writer_error: BaseException | None = None
        try:
            self._open(readonly)
        except sqlite3.DatabaseError as exc:  # not a database, truncated, locked beyond the timeout
            raise DataError(f"{self.path}: not a readable run store ({exc}); move it away or use a new --run-id")\
                from None

    def _open(self, readonly: bool) -> None:
        root = self.root
        if readonly:
            if not self.path.exists():
                raise ConfigError(f"no run store at {self.path}")
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30,
                                       check_same_thread=False)
        else:
            root.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            have = {r[1] for r in self._db.execute("PRAGMA table_info(items)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in have:
                    self._db.execute(f"ALTER TABLE items ADD COLUMN {name} {kind}")
            self._db.commit()
        self._item_columns = tuple(
            c for c in _COLUMNS if c in {r[1] for r in self._db.execute("PRAGMA table_info(items)")})
        self._has_calls = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='calls'").fetchone() is not None

    # -- manifest ----------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any] | None:
        """The run's manifest (None before the run started).

        Raises:
            DataError: The stored manifest is not a JSON object (a damaged store).
        """
        row = self._db.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()
        if not row:
            return None
        try:
            value = json.loads(row[0])
        except (json.JSONDecodeError, TypeError):
            value = None
        if not isinstance(value, dict):
            raise DataError(f"{self.path}: the stored manifest is damaged; move the run away or use a new --run-id")
        return value

    def open_manifest(self, manifest: dict[str, Any], identity_keys: tuple[str, ...]) -> dict[str, Any]:
        """Write ``manifest`` for a new run, or check it matches an existing run's on resume.

        Raises:
            ConfigError: The run id exists with a different task, method, model or config.
        """
        old = self.manifest()
        if old is None:
            self._db.execute("INSERT INTO meta VALUES ('manifest', ?)", (json.dumps(manifest),))
            self._db.commit()
            (self.root / "manifest.json").write_text(json.dumps(manifest, indent=2))
            return manifest
        for key in identity_keys:
            if old.get(key) != manifest.get(key):
                raise ConfigError(
                    f"run '{self.root.name}' exists with {key}={old.get(key)!r}, not {manifest.get(key)!r}; "
                    "use a new --run-id to start a different run"
                )
        return old

    # -- items -------------------------------------------------------------------------------------

    def done_ids(self) -> set[str]:
        """Items finished without error (the ones a resume skips)."""
        self.flush()
        return {r[0] for r in self._db.execute("SELECT item_id FROM items WHERE error IS NULL")}

    def write(self, row: ItemRow, calls: Sequence[CallRow] | None = None) -> None:
        """Insert or replace one item's row (and, when given, its calls) and commit it.

        ``calls=None`` leaves the item's stored calls alone; a list (even empty) replaces them, in the
        same transaction as the row. Without a writer thread the commit happens here; with one
        (:meth:`start_writer`) the row is queued and committed by the writer at once.
        """
        if self._queue is not None:
            self._check_writer()
            self._queue.append(("row", row, calls, time.time()))
            return
        with self._db:
            _write_row(self._db, row, calls, time.time())

    # -- write-behind ------------------------------------------------------------------------------

    def start_writer(self, interval: float = 0.05) -> None:
        """Hand every later write to a writer thread (see the module docstring); idempotent.

        Args:
            interval: How often the writer commits what has queued up, in seconds (also the most a
                SIGKILL can lose of finished items). The event loop only appends to a deque: waking the
                thread for every row would cost a GIL hand-off per item.
        """
        if self._writer is not None or self.readonly:
            return
        self._queue = collections.deque()
        self._wake = threading.Event()
        self._writer = threading.Thread(target=self._writer_loop, args=(self._queue, self._wake, interval),
                                        name="llmlab-runstore", daemon=True)
        self._writer.start()

    def flush(self) -> None:
        """Wait until every queued write is committed.

        Raises:
            DataError: A queued write failed (disk full, the file removed): those rows are not stored.
        """
        if self._queue is not None and self._writer is not None and self._writer.is_alive():
            done = threading.Event()
            self._queue.append(("flush", done))
            self._wake.set()
            done.wait()
        self._check_writer()

    def _check_writer(self) -> None:
        if self._writer_error is not None:
            exc, self._writer_error = self._writer_error, None
            raise DataError(f"{self.path}: could not write the run store ({exc}); the items finished since the "
                            "last commit are not stored, resume with the same --run-id") from None

    def _writer_loop(self, q: collections.deque[tuple[Any, ...]], wake: threading.Event, interval: float) -> None:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            stop = False
            while not stop:
                wake.wait(interval)
                wake.clear()
                batch = []
                while q:
                    batch.append(q.popleft())
                if not batch:
                    continue
                try:
                    with db:  # everything queued since the last commit, in one transaction
                        for op in batch:
                            if op[0] == "row":
                                _write_row(db, op[1], op[2], op[3])
                            elif op[0] == "blob":
                                db.execute("INSERT OR IGNORE INTO blobs VALUES (?, ?, ?)", op[1:])
                except Exception as exc:  # reported by the next write/flush/close, never lost silently
                    self._writer_error = exc
                for op in batch:
                    if op[0] in ("flush", "stop"):
                        op[1].set()
                        stop = stop or op[0] == "stop"
        finally:
            db.close()

    def stop_writer(self) -> None:
        """Commit what is queued and stop the writer thread; later writes commit directly."""
        if self._writer is None or self._queue is None:
            return
        if self._writer.is_alive():
            done = threading.Event()
            self._queue.append(("stop", done))
            self._wake.set()
            done.wait()
            self._writer.join()
        self._writer = None
        self._queue = None

    def _row(self, r: tuple[Any, ...]) -> ItemRow:
        d = dict(zip(self._item_columns, r, strict=True))
        d["details"] = json.loads(d["details"]) if d["details"] else {}
        d["trace"] = json.loads(d["trace"]) if d["trace"] else {}
        for name in ("query", "target"):
            if d.get(name) is not None:
                d[name] = json.loads(d[name])
        d["correct"] = None if d["correct"] is None else bool(d["correct"])
        return ItemRow(**d)

    def rows(self) -> Iterator[ItemRow]:
        self.flush()
        cur = self._db.execute(f"SELECT {', '.join(self._item_columns)} FROM items ORDER BY idx")
        for r in cur.fetchall():
            yield self._row(r)

    def row(self, item_id: str) -> ItemRow | None:
        """One item's row, or ``None``."""
        self.flush()
        r = self._db.execute(f"SELECT {', '.join(self._item_columns)} FROM items WHERE item_id = ?",
                             (item_id,)).fetchone()
        return None if r is None else self._row(r)

    # -- transcripts -------------------------------------------------------------------------------

    def put_blob(self, data: bytes, mime: str) -> str:
        """Store a blob once (content-addressed); returns its SHA-256. Committed with the next row."""
        digest = hashlib.sha256(data).hexdigest()
        if self._queue is not None:
            self._queue.append(("blob", digest, mime, data))
        else:
            self._db.execute("INSERT OR IGNORE INTO blobs VALUES (?, ?, ?)", (digest, mime, data))
        return digest

    def blob(self, sha256: str) -> tuple[str, bytes] | None:
        """``(mime, bytes)`` of a stored blob, or ``None``."""
        if not self._has_calls:
            return None
        self.flush()
        r = self._db.execute("SELECT mime, data FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
        return None if r is None else (str(r[0]), bytes(r[1]))

    def calls(self, item_id: str) -> list[CallRow]:
        """The item's stored model calls, in the order they finished."""
        if not self._has_calls:
            return []
        self.flush()
        cur = self._db.execute(f"SELECT {', '.join(_CALL_COLUMNS)} FROM calls WHERE item_id = ? ORDER BY seq",
                               (item_id,))
        out = []
        for r in cur.fetchall():
            d = dict(zip(_CALL_COLUMNS, r, strict=True))
            d["request"] = json.loads(d["request"]) if d["request"] else {}
            d["response"] = json.loads(d["response"]) if d["response"] else None
            d["cached"] = bool(d["cached"])
            out.append(CallRow(**d))
        return out

    def n_transcribed(self) -> int:
        """Calls with a stored transcript."""
        if not self._has_calls:
            return 0
        self.flush()
        return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def count(self) -> int:
        self.flush()
        return int(self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def close(self) -> None:
        """Commit what is queued, stop the writer and close; a failed queued write is raised here."""
        try:
            self.stop_writer()
            self._check_writer()
        finally:
            self._db.close()


def _write_row(db: sqlite3.Connection, row: ItemRow, calls: Sequence[CallRow] | None, finished_at: float) -> None:
    """One item's row (and calls) inside the caller's transaction."""
    values = [getattr(row, name) for name in _COLUMNS]  # not asdict(): it deep-copies every trace
    for name in _JSON_COLUMNS:
        values[_COLUMNS.index(name)] = _dumps(getattr(row, name))
    values[_COLUMNS.index("correct")] = None if row.correct is None else int(row.correct)
    values[_COLUMNS.index("finished_at")] = finished_at
    # a retried item keeps the spend of its failed attempts: calls, tokens and cost accumulate
    prev = db.execute(
        "SELECT calls, prompt_tokens, completion_tokens, cost, retries FROM items "
        "WHERE item_id = ? AND error IS NOT NULL", (row.item_id,)).fetchone()
    if prev is not None:
        for name, old in zip(("calls", "prompt_tokens", "completion_tokens", "cost", "retries"), prev, strict=True):
            i = _COLUMNS.index(name)
            values[i] = (values[i] or 0) + (old or 0)
    db.execute(_INSERT, values)
    if calls is not None:
        db.execute("DELETE FROM calls WHERE item_id = ?", (row.item_id,))
        db.executemany(_INSERT_CALL, [
            (c.item_id, c.seq, c.model, _dumps(c.request),
             None if c.response is None else _dumps(c.response), c.prompt_tokens,
             c.completion_tokens, c.latency_s, int(c.cached), c.retries, c.error)
            for c in calls
        ])


def call_rows(item_id: str, records: Sequence[Any], blobs: Any | None,
              traces: Sequence[Any] | None = None) -> list[CallRow]:
    """The :class:`CallRow` transcripts of an item's recorded calls (:class:`~llmlab.backends.model.CallRecord`).

    Args:
        item_id: The item.
        records: Its recorder's calls, in order.
        blobs: Where inline images go (the store itself); ``None`` drops them to placeholders.
        traces: The records' :class:`~llmlab.core.contracts.CallTrace` when already built (the runner
            builds them once for ``Solution.calls``); built here otherwise.
    """
    from llmlab.core.transcripts import call_trace

    if traces is None:
        traces = [call_trace(r, blobs) for r in records]
    return [
        CallRow(item_id=item_id, seq=i, model=t.model, request=t.request, response=t.response,
                prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens, latency_s=r.latency_s,
                cached=r.cached, retries=r.retries, error=r.error)
        for i, (t, r) in enumerate(zip(traces, records, strict=True))
    ]
