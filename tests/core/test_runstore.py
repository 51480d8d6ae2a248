"""The run store keeps each item's transcript (calls, images once) with its row; old stores still open."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from llmlab.core.errors import ConfigError, DataError
from llmlab.core.runstore import ItemRow, RunStore
from tests.helpers.runs import make_run, png


def test_transcript_round_trip_with_tool_call_and_image(tmp_path: Path) -> None:
    make_run(tmp_path, "r", {"q0": True, "q1": False, "q2": True}, errors=("q2",))
    store = RunStore(tmp_path / "r", readonly=True)
    calls = store.calls("q1")
    assert [c.seq for c in calls] == [0, 1]
    first, second = calls
    assert first.response is not None and first.response["tool_calls"][0][0]["name"] == "calculator"
    assert first.request["tools"][0]["name"] == "calculator"
    assert first.request["params"] == {"temperature": 0.0, "n": 1, "sample_index": 0}
    part = first.request["messages"][1]["content"][1]
    assert part["type"] == "image_ref" and part["mime"] == "image/png"
    mime, data = store.blob(part["sha256"])  # type: ignore[misc]
    assert mime == "image/png" and data == png()
    assert second.request["messages"][3] == {"role": "tool", "content": "2", "tool_call_id": "call_1"}
    assert second.request["messages"][2]["tool_calls"] == [
        {"id": "call_1", "name": "calculator", "arguments": '{"a": 1, "b": 1}'}]
    failed = store.calls("q2")
    assert failed[0].response is None and failed[0].error is not None and "429" in failed[0].error
    row = store.row("q2")
    assert row is not None and row.traceback is not None and "Traceback" in row.traceback
    assert store.row("q0").query[0]["content"].startswith("What is 0")  # type: ignore[union-attr]
    store.close()


def test_same_image_is_stored_once(tmp_path: Path) -> None:
    make_run(tmp_path, "r", {"q1": True})
    make_run(tmp_path, "r2", {"q1": True, "q3": True})
    db = sqlite3.connect(tmp_path / "r" / "run.sqlite")
    assert db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 1  # the question and 2 calls share it
    sizes = [len(r[0]) for r in db.execute("SELECT request FROM calls")]
    assert max(sizes) < 2000  # the request rows hold a reference, not the base64 image


def test_rewriting_an_item_replaces_its_calls(tmp_path: Path) -> None:
    make_run(tmp_path, "r", {"q1": True})
    store = RunStore(tmp_path / "r")
    row = store.row("q1")
    assert row is not None
    store.write(row, [])
    assert store.calls("q1") == []
    store.write(row)  # calls=None keeps whatever is stored
    assert store.n_transcribed() == 0
    store.close()


def test_store_from_before_transcripts_is_upgraded_or_read_as_is(tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir()
    db = sqlite3.connect(root / "run.sqlite")
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE items (item_id TEXT PRIMARY KEY, idx INTEGER, prompt_hash TEXT, answer TEXT, text TEXT,
          score REAL, correct INTEGER, extracted TEXT, details TEXT, calls INTEGER, prompt_tokens INTEGER,
          completion_tokens INTEGER, cost REAL, latency_s REAL, cache_hits INTEGER, retries INTEGER, error TEXT,
          trace TEXT, finished_at REAL);
        INSERT INTO items VALUES ('a', 0, 'h', '1', '1', 1.0, 1, '1', '{}', 1, 1, 1, 0, 0.1, 0, 0, NULL, '{}', 0);
    """)
    db.commit()
    db.close()
    ro = RunStore(root, readonly=True)
    (row,) = list(ro.rows())
    assert row.correct is True and row.cluster is None and ro.calls("a") == [] and ro.blob("0" * 64) is None
    ro.close()
    rw = RunStore(root)
    rw.write(ItemRow("b", 1, "h", "2", "2", 0.0, False, "2", {}, 0, 0, 0, 0.0, 0.0, 0, 0, None, {}, cluster="c"))
    assert [r.cluster for r in rw.rows()] == [None, "c"]
    rw.close()
    with pytest.raises(ConfigError):
        RunStore(tmp_path / "missing", readonly=True)


def _row(i: int, *, error: str | None = None) -> ItemRow:
    return ItemRow(item_id=f"q{i}", idx=i, prompt_hash="h", answer="1", text="1", score=1.0, correct=True,
                   extracted="1", details={"n": i}, calls=1, prompt_tokens=3, completion_tokens=2, cost=0.0,
                   latency_s=0.1, cache_hits=0, retries=0, error=error, trace={})


def test_write_behind_rows_are_committed_by_the_writer_and_seen_by_reads(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "r")
    store.start_writer(interval=3600)  # never on its own: only flush/reads/close make it commit
    for i in range(50):
        store.write(_row(i))
    other = sqlite3.connect(tmp_path / "r" / "run.sqlite")
    assert other.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0  # queued, not committed yet
    assert len(store.done_ids()) == 50  # a read waits for the queue
    assert other.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 50
    store.write(_row(50, error="Boom: x"))
    store.write(_row(50))  # the retry of a failed item accumulates its spend in the writer too
    store.close()
    db = sqlite3.connect(tmp_path / "r" / "run.sqlite")
    assert db.execute("SELECT calls, error FROM items WHERE item_id = 'q50'").fetchone() == (2, None)
    assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 51


def test_write_behind_commits_on_its_interval_without_a_flush(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "r")
    store.start_writer(interval=0.01)
    store.write(_row(0))
    other = sqlite3.connect(tmp_path / "r" / "run.sqlite")
    deadline = time.monotonic() + 30
    while other.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0:
        assert time.monotonic() < deadline, "the writer never committed"
        time.sleep(0.01)
    store.close()


def test_write_behind_failure_is_raised_not_lost(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "r")
    store.start_writer(interval=3600)
    sqlite3.connect(tmp_path / "r" / "run.sqlite").execute("DROP TABLE items")  # the writer's insert fails
    store.write(_row(0))
    with pytest.raises(DataError, match="could not write the run store"):
        store.flush()
    store.stop_writer()
    store._db.close()
