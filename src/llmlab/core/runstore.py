"""The run store: one SQLite file per run, one row per item, committed as each item finishes.

Layout: ``<runs_dir>/<run_id>/run.sqlite`` (tables ``meta`` and ``items``) and ``manifest.json``. A crash
loses at most the items in flight; re-opening the same run id resumes with the items that have no row or
an error row (lm-evaluation-harness ``evaluation_tracker.py`` keeps records the same way).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmlab.core.errors import ConfigError

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
    finished_at REAL
);
"""


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


_COLUMNS = tuple(ItemRow.__dataclass_fields__)
_INSERT = f"INSERT OR REPLACE INTO items ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"


class RunStore:
    """A run's SQLite store.

    Args:
        root: The run's folder (created if missing).

    Example:
        >>> import tempfile
        >>> s = RunStore(Path(tempfile.mkdtemp()) / "r1")
        >>> s.done_ids()
        set()
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / "run.sqlite"
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._db.commit()

    # -- manifest ----------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()
        return json.loads(row[0]) if row else None

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
        return {r[0] for r in self._db.execute("SELECT item_id FROM items WHERE error IS NULL")}

    def write(self, row: ItemRow) -> None:
        """Insert or replace one item's row and commit at once (nothing lost on a crash)."""
        values = [getattr(row, name) for name in _COLUMNS]  # not asdict(): it deep-copies every trace
        values[_COLUMNS.index("details")] = json.dumps(row.details, default=str)
        values[_COLUMNS.index("trace")] = json.dumps(row.trace, default=str)
        values[_COLUMNS.index("correct")] = None if row.correct is None else int(row.correct)
        values[_COLUMNS.index("finished_at")] = time.time()
        self._db.execute(_INSERT, values)
        self._db.commit()

    def rows(self) -> Iterator[ItemRow]:
        cur = self._db.execute(f"SELECT {', '.join(ItemRow.__dataclass_fields__)} FROM items ORDER BY idx")
        for r in cur:
            d = dict(zip(ItemRow.__dataclass_fields__, r, strict=True))
            d["details"] = json.loads(d["details"]) if d["details"] else {}
            d["trace"] = json.loads(d["trace"]) if d["trace"] else {}
            d["correct"] = None if d["correct"] is None else bool(d["correct"])
            yield ItemRow(**d)

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def close(self) -> None:
        self._db.close()
