"""The run store keeps each item's transcript (calls, images once) with its row; old stores still open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from llmlab.core.errors import ConfigError
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
