"""Opt-in SQLite response cache with complete keys.

The key is :func:`~llmlab.backends.base.request_hash`: backend kind, model, messages or prompt, every
sampling parameter and the sample index. Keying on the prompt alone silently collapses samples
(zou-group/textgrad #107; inspect_ai #2580), so there is no way to ask for a shorter key.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from llmlab.backends.base import GenerateResponse


def default_cache_path() -> Path:
    """``$LLMLAB_CACHE_DIR/cache.sqlite`` or ``~/.cache/llmlab/cache.sqlite``."""
    root = os.environ.get("LLMLAB_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "llmlab"
    return base / "cache.sqlite"


class ResponseCache:
    """A key → response table in one SQLite file (WAL; safe across threads and processes).

    Example:
        >>> import tempfile, pathlib
        >>> c = ResponseCache(pathlib.Path(tempfile.mkdtemp()) / "c.sqlite")
        >>> c.get("k") is None
        True
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, identity TEXT, response TEXT, created REAL)"
        )
        self._db.commit()

    def get(self, key: str) -> GenerateResponse | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return GenerateResponse.from_json(row[0]) if row else None

    def put(self, key: str, identity: str, response: GenerateResponse) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                (key, identity, response.to_json(), time.time()),
            )
            self._db.commit()

    def stats(self) -> dict[str, object]:
        with self._lock:
            n = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            by = self._db.execute(
                "SELECT identity, COUNT(*) FROM responses GROUP BY identity ORDER BY 2 DESC"
            ).fetchall()
        size = self.path.stat().st_size if self.path.exists() else 0
        return {"path": str(self.path), "entries": n, "bytes": size, "by_model": dict(by)}

    def clear(self) -> int:
        with self._lock:
            n = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            self._db.execute("DELETE FROM responses")
            self._db.commit()
            self._db.execute("VACUUM")
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()
