"""The CLI edge: one-line errors with non-zero exits, `llmlab list` without torch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmlab.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(capsys, *args):
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["eval", "toy_missing", "-m", "mock:echo"], "Unknown task 'toy_missing'"),
        (["eval", "gsm8k", "--method", "nope", "-m", "mock:echo"], "Unknown method 'nope'"),
        (["eval", "gsm8k", "-m", "zzz:model"], "Unknown backend 'zzz'"),
        (["eval", "gsm8k", "-m", "mock:echo", "-p", "bad"], "-p expects key=value"),
        (["eval", "gsm8k", "-m", "mock:echo", "-p", "bogus=1"], "unknown key 'bogus'"),
        (["run", "direct", "-m", "mock:echo", "-p", "temperature=hot", "q"], "bad value for 'temperature'"),
        (["run", "direct", "-m", "nocolon", "q"], "needs a backend prefix"),
        (["report", "missing-run", "--runs-dir", "/nonexistent-dir-xyz"], "no run 'missing-run'"),
        (["score", "gsm8k", "--predictions", "/nonexistent/p.jsonl"], "predictions file not found"),
    ],
)
def test_bad_input_is_one_line_nonzero_no_traceback(capsys, args, needle):
    code, out, err = run_cli(capsys, *args)
    assert code != 0
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unreachable_server_is_one_line(capsys, tmp_path):
    code, out, err = run_cli(
        capsys, "run", "direct", "-m", "openai:m@http://127.0.0.1:9/v1", "--max-retries", "0", "--timeout", "2", "hi"
    )
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "127.0.0.1:9" in err


def test_run_prints_answer_and_usage(capsys):
    code, out, err = run_cli(capsys, "run", "direct", "-m", "mock:text=forty two", "what?")
    assert code == 0 and out.splitlines()[0] == "forty two" and "1 calls" in out


def test_list_shows_all_31_systems(capsys):
    code, out, _ = run_cli(capsys, "list", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["systems"]) == 31 and "self_consistency" in data["methods"]


def test_list_imports_neither_torch_nor_transformers():
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from llmlab.cli import main\n"
        "code = main(['list'])\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "sys.exit(code)\n"
    )
    r = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "Mixture-of-Agents" in r.stdout and "Samba" in r.stdout


def test_help_lists_lazy_commands(capsys):
    code, out, _ = run_cli(capsys, "--help")
    for name in ("eval", "serve", "doctor", "score", "report", "cache", "lab"):
        assert name in out


def test_cache_stats_and_clear(capsys, tmp_path):
    from llmlab.backends.base import GenerateResponse
    from llmlab.backends.cache import ResponseCache

    path = tmp_path / "c.sqlite"
    ResponseCache(path).put("k", "mock:m", GenerateResponse(["x"], ["stop"]))
    code, out, _ = run_cli(capsys, "cache", "stats", "--path", str(path))
    assert json.loads(out)["entries"] == 1
    code, out, _ = run_cli(capsys, "cache", "clear", "--path", str(path))
    assert "removed 1" in out and ResponseCache(path).stats()["entries"] == 0


def test_malformed_data_file_names_file_and_line(capsys, tmp_path):
    d = tmp_path / "gsm8k"
    d.mkdir()
    (d / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n{"question": "q2"\n')
    code, out, err = run_cli(capsys, "eval", "gsm8k", "-m", "mock:echo", "--data-dir", str(tmp_path),
                             "--runs-dir", str(tmp_path / "runs"), "--no-progress")
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "test.jsonl:2" in err
