"""Foundation acceptance: evals through a real `llmlab serve` survive injected failures and SIGKILL.

- 200 GSM8K items, the server's mock injecting 10% HTTP 500, 5% 429 with Retry-After and 5% timeouts
  (the server hangs longer than the client's timeout): every item scored exactly once.
- An eval process killed with SIGKILL mid-way and re-run with the same run id calls the server only for
  the missing items (the server's own call counter proves it).
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from llmlab.runner import EvalSpec, run_eval
from tests.helpers.servers import serve_subprocess, server_stats

FAILING = "mock:text=The answer is 18.?fail_500=0.1&fail_429=0.05&timeout_rate=0.05&retry_after=0.2&hang=3&seed=7"


def test_200_items_through_failing_server_all_scored_once(tmp_path, shared_data):
    with serve_subprocess(FAILING, name="flaky") as url:
        summary = run_eval(EvalSpec(
            task="gsm8k", method="direct", model_spec=f"openai:flaky@{url}", data_dir=str(shared_data),
            limit=200, concurrency=16, run_id="rel", runs_dir=str(tmp_path), timeout=0.5, max_retries=8,
        ))
        stats = server_stats(url)
    assert summary.n_items == 200 and summary.n_scored == 200 and summary.n_errors == 0
    db = sqlite3.connect(tmp_path / "rel" / "run.sqlite")
    ids = [r[0] for r in db.execute("SELECT item_id FROM items")]
    assert len(ids) == len(set(ids)) == 200
    assert {r[0] for r in db.execute("SELECT calls FROM items")} == {1}  # one successful call per item
    retries = db.execute("SELECT SUM(retries) FROM items").fetchone()[0]
    # ~20% of calls fail, so about 50 retries; all of them went to the real server
    assert 20 <= retries <= 120
    assert stats["requests"] >= 200 + retries - 5 and stats["errors"] >= retries - 5
    # item 0's reference is 18 and every reply says 18: that item, and only items whose answer is 18, score
    correct = db.execute("SELECT item_id FROM items WHERE correct = 1").fetchall()
    assert ("test-0",) in correct


def _rows(path):
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_mid_run_then_resume_calls_only_missing(tmp_path, shared_data):
    with serve_subprocess("mock:text=#### 18?latency=0.05", name="slow") as url:
        cmd = [sys.executable, "-m", "llmlab.cli", "eval", "gsm8k", "--method", "direct", "-m", f"openai:slow@{url}",
               "--data-dir", str(shared_data), "--limit", "200", "-c", "4", "--run-id", "killme",
               "--runs-dir", str(tmp_path), "--no-progress"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        store = tmp_path / "killme" / "run.sqlite"
        deadline = time.monotonic() + 120
        while _rows(store) < 40:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "eval made no progress"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)  # let requests that were in flight reach the server's counter
        done = _rows(store)
        assert 40 <= done < 200
        before = server_stats(url)["requests"]
        summary = run_eval(EvalSpec(
            task="gsm8k", method="direct", model_spec=f"openai:slow@{url}", data_dir=str(shared_data), limit=200,
            concurrency=4, run_id="killme", runs_dir=str(tmp_path),
        ))
        after = server_stats(url)["requests"]
    assert summary.n_items == 200 and summary.n_errors == 0
    assert summary.new_items == 200 - done
    assert after - before == 200 - done


@pytest.mark.parametrize("bad", ["openai:m@http://127.0.0.1:9/v1"])
def test_unreachable_server_eval_is_one_line(tmp_path, shared_data, bad):
    r = subprocess.run(
        [sys.executable, "-m", "llmlab.cli", "eval", "gsm8k", "-m", bad, "--data-dir", str(shared_data), "--limit",
         "2", "--runs-dir", str(tmp_path), "--max-retries", "0", "--no-progress"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "127.0.0.1:9" in r.stderr
