"""SQLite storage for the arena: battles the server issued and the one vote each may receive.

Every request opens its own connection (sqlite3 connections are not shared across threads); the database
runs in WAL mode with a busy timeout, and a vote is one ``INSERT`` whose primary key is the battle id, so
concurrent votes are serialised by SQLite, none is lost, and a second vote for the same battle fails
atomically (no check-then-write race).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS battles (
    id TEXT PRIMARY KEY,
    prompt_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    model_a TEXT NOT NULL,
    model_b TEXT NOT NULL,
    output_a TEXT NOT NULL,
    output_b TEXT NOT NULL,
    client TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS votes (
    battle_id TEXT PRIMARY KEY REFERENCES battles(id),
    model_a TEXT NOT NULL,
    model_b TEXT NOT NULL,
    winner TEXT NOT NULL CHECK (winner IN ('model_a', 'model_b', 'tie', 'tie (bothbad)')),
    client TEXT NOT NULL,
    created REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Battle:
    """One issued battle (model ids stay on the server)."""

    id: str
    prompt_id: str
    prompt: str
    model_a: str
    model_b: str
    output_a: str
    output_b: str
    client: str
    created: float


class VoteRejected(Exception):
    """A vote that cannot be recorded; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ArenaStore:
    """The arena database.

    Args:
        path: SQLite file (created with its schema if absent).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        with self.connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            con.execute("PRAGMA busy_timeout=30000")
            yield con
        finally:
            con.close()

    def secret(self) -> bytes:
        """The signing key stored in the database (made once), so tokens survive a restart."""
        with self.connect() as con:
            con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('secret', ?)", (secrets.token_hex(32),))
            row = con.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
        return bytes.fromhex(row[0])

    def add_battle(self, battle: Battle) -> None:
        with self.connect() as con:
            con.execute(
                "INSERT INTO battles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (battle.id, battle.prompt_id, battle.prompt, battle.model_a, battle.model_b, battle.output_a,
                 battle.output_b, battle.client, battle.created),
            )

    def get_battle(self, battle_id: str) -> Battle | None:
        with self.connect() as con:
            row = con.execute("SELECT * FROM battles WHERE id = ?", (battle_id,)).fetchone()
        return Battle(*row) if row is not None else None

    def add_vote(self, battle: Battle, winner: str, client: str) -> None:
        """Record the one vote of ``battle`` (model ids copied from the stored battle).

        Raises:
            VoteRejected: The battle already has a vote (409).
        """
        try:
            with self.connect() as con:
                con.execute(
                    "INSERT INTO votes VALUES (?, ?, ?, ?, ?, ?)",
                    (battle.id, battle.model_a, battle.model_b, winner, client, time.time()),
                )
        except sqlite3.IntegrityError:
            raise VoteRejected("this battle has already been voted on", 409) from None

    def voted_prompt_ids(self, client: str) -> set[str]:
        """Prompts on whose battles ``client`` has voted (it has seen their models revealed)."""
        with self.connect() as con:
            rows = con.execute("SELECT DISTINCT b.prompt_id FROM votes v JOIN battles b ON b.id = v.battle_id "
                               "WHERE v.client = ?", (client,)).fetchall()
        return {r[0] for r in rows}

    def votes(self) -> list[dict[str, Any]]:
        """All votes in time order, as FastChat-style battle records."""
        with self.connect() as con:
            rows = con.execute("SELECT model_a, model_b, winner, created FROM votes ORDER BY created, rowid").fetchall()
        return [{"model_a": a, "model_b": b, "winner": w, "tstamp": t} for a, b, w, t in rows]

    def n_votes(self) -> int:
        with self.connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM votes").fetchone()[0])
