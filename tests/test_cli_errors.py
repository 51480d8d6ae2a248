"""Every value a user can get wrong: input → exit code → the one line (never a traceback)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from llmlab.cli import main
from llmlab.core.errors import DataError


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data" / "gsm8k"
    d.mkdir(parents=True)
    (d / "test.jsonl").write_text('{"question": "1+1?", "answer": "x\\n#### 2"}\n')
    return tmp_path / "data"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    return code, err


EVAL = ("eval", "gsm8k", "--model", "mock:echo", "--no-progress")

CASES = [
    # (extra args, exit code, text the one line must contain)
    (("--limit", "-1"), 2, "--limit must be >= 1, got -1"),
    (("--limit", "0"), 2, "--limit must be >= 1"),
    (("--concurrency", "0"), 2, "--concurrency must be >= 1"),
    (("--timeout", "-1"), 2, "--timeout must be > 0 seconds"),
    (("--timeout", "0"), 2, "--timeout must be > 0 seconds"),
    (("--max-retries", "-1"), 2, "--max-retries must be between 0 and 100"),
    (("--budget", "-1"), 2, "--budget must be > 0 USD"),
    (("--budget", "0"), 2, "--budget must be > 0 USD"),
    (("--run-id", "../../escaped-run"), 2, "is not a valid run name"),
    (("--run-id", ""), 2, "is not a valid run name"),
    (("--run-id", "a/b"), 2, "is not a valid run name"),
    (("-p", "k=100000000", "--method", "self_consistency"), 2, "k must be between 0 and 100000"),
    (("-p", "temperature=9"), 2, "temperature must be between 0 and 5"),
    (("-p", "max_tokens=0"), 2, "max_tokens"),
    (("-p", "nope=1"), 2, "unknown key 'nope'"),
    (("--method", "self_consistncy"), 2, "Did you mean 'self_consistency'?"),
    (("-t", "n_shot=-1"), 2, "n_shot"),
    (("--method", "husky", "-p", "search=bm25"), 2, "search=bm25 needs documents: pass -p documents=PATH"),
    (("--method", "husky", "-p", "documents=/no/such/docs"), 2, "documents=/no/such/docs: no such file or folder"),
    (("--method", "husky", "-p", "search=google"), 2, "search"),
    (("--method", "husky", "--role", "planner=mock:echo"), 2, "husky has no role 'planner'"),
]


@pytest.mark.parametrize("extra,code,needle", CASES, ids=[" ".join(c[0]) or "(empty)" for c in CASES])
def test_bad_eval_input_is_one_line(capsys, tmp_path, data, extra, code, needle):
    got, err = _run(capsys, *EVAL, "--data-dir", str(data), "--runs-dir", str(tmp_path / "runs"), *extra)
    assert got == code, err
    assert needle in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path.parent / "escaped-run").exists()


@pytest.mark.parametrize("spec,needle", [
    ("mock:echo?fail_500=1.5", "fail_500 is a probability per call"),
    ("mock:echo?fail_500=0.7&fail_429=0.6", "add up to 1.3 > 1"),
    ("mock:echo?latency=-1", "latency is seconds per call"),
    ("mock:echo?bogus=1", "bogus"),
    ("nokind", "needs a backend prefix"),
    ("nosuch:thing", "Unknown backend 'nosuch'"),
])
def test_bad_model_specs_are_one_line(capsys, tmp_path, data, spec, needle):
    got, err = _run(capsys, "eval", "gsm8k", "--model", spec, "--no-progress", "--data-dir", str(data),
                    "--runs-dir", str(tmp_path / "runs"))
    assert got == 2 and needle in err and "\n" not in err, err


@pytest.mark.parametrize("cmd", [("serve", "--model", "mock:echo"), ("view",), ("arena", "serve", "--outputs", "x"),
                                 ("crag", "serve", "--kg", "x")])
@pytest.mark.parametrize("port", ["99999", "-1"])
def test_port_out_of_range_is_one_line(capsys, cmd, port):
    got, err = _run(capsys, *cmd, "--port", port)
    assert got == 2 and "--port" in err and "\n" not in err


def test_openai_sdk_spec_leaves_the_url_out_of_the_identity():
    from llmlab.runner import model_identity

    assert model_identity("openai-sdk:m@http://a:1/v1") == model_identity("openai-sdk:m@http://b:2/v1")


def test_data_file_for_a_folder_task_says_use_data_dir(capsys, tmp_path, data):
    got, err = _run(capsys, *EVAL, "--data", str(data / "gsm8k" / "test.jsonl"), "--runs-dir", str(tmp_path))
    assert got == 2 and "pass --data-dir DIR" in err and "data_file" not in err


def test_an_empty_data_file_is_refused_not_a_zero_item_success(capsys, tmp_path):
    (tmp_path / "d" / "gsm8k").mkdir(parents=True)
    (tmp_path / "d" / "gsm8k" / "test.jsonl").write_text("")
    got, err = _run(capsys, *EVAL, "--data-dir", str(tmp_path / "d"), "--runs-dir", str(tmp_path / "r"))
    assert got != 0 and "has no items" in err and "\n" not in err


def test_a_utf8_bom_in_jsonl_is_accepted(capsys, tmp_path, data):
    f = data / "gsm8k" / "test.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    got, err = _run(capsys, *EVAL, "--data-dir", str(data), "--runs-dir", str(tmp_path / "r"))
    assert got == 0, err


def test_runs_dir_that_is_a_file_is_one_line(capsys, tmp_path, data):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    got, err = _run(capsys, *EVAL, "--data-dir", str(data), "--runs-dir", str(blocker))
    assert got == 2 and "--runs-dir" in err and "\n" not in err


def _make_run(tmp_path: Path, data: Path) -> Path:
    assert main([*EVAL, "--data-dir", str(data), "--runs-dir", str(tmp_path / "runs"), "--run-id", "r1"]) == 0
    return tmp_path / "runs" / "r1"


def test_corrupted_store_on_report_and_on_resume(capsys, tmp_path, data):
    root = _make_run(tmp_path, data)
    capsys.readouterr()
    for f in root.glob("run.sqlite*"):
        f.unlink()
    (root / "run.sqlite").write_bytes(b"this is not a database" * 100)
    got, err = _run(capsys, "report", "r1", "--runs-dir", str(tmp_path / "runs"))
    assert got != 0 and "not a readable run store" in err and "\n" not in err
    got, err = _run(capsys, *EVAL, "--data-dir", str(data), "--runs-dir", str(tmp_path / "runs"), "--run-id", "r1")
    assert got != 0 and "not a readable run store" in err and "\n" not in err


def test_damaged_manifest_on_report(capsys, tmp_path, data):
    root = _make_run(tmp_path, data)
    capsys.readouterr()
    with sqlite3.connect(root / "run.sqlite") as db:
        db.execute("UPDATE meta SET value = '{not json' WHERE key = 'manifest'")
    got, err = _run(capsys, "report", "r1", "--runs-dir", str(tmp_path / "runs"))
    assert got != 0 and "manifest is damaged" in err and "\n" not in err


def test_report_shows_the_real_wall_time(capsys, tmp_path, data):
    args = ["eval", "gsm8k", "--model", "mock:echo?latency=0.05", "--no-progress", "--data-dir", str(data),
            "--runs-dir", str(tmp_path / "runs"), "--run-id", "r1"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["report", "r1", "--runs-dir", str(tmp_path / "runs"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["wall_s"] >= 0.05  # the item's own 50 ms call, not 0.0


def test_cache_stats_on_a_missing_folder_reports_nothing_cached(capsys, tmp_path):
    missing = tmp_path / "no" / "such" / "cache.sqlite"
    assert main(["cache", "stats", "--path", str(missing)]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 0
    assert not missing.parent.exists()  # no folders created just to report


@pytest.mark.parametrize("args,code,needle", [
    (("phllm", "agreement", "--n-boot", "-1"), 2, "--n-boot must be >= 0"),
    (("phllm", "agreement", "--data-dir", "/nonexistent-phllm"), DataError("").exit_code, "pass --data-dir"),
    (("phllm", "pro-results", "--data-dir", "/nonexistent-phllm"), DataError("").exit_code, "pass --data-dir"),
    (("eval", "ph_llm.mcq", "--model", "mock:echo", "--no-progress", "-t", "prompt=fancy"), 2, "prompt"),
    (("eval", "ph_llm.mcq", "--model", "mock:echo", "--no-progress", "--data", "/nonexistent.csv"),
     DataError("").exit_code, "pass -t data_file=PATH"),
])
def test_bad_phllm_input_is_one_line(capsys, tmp_path, args, code, needle):
    got, err = _run(capsys, *args, *(("--runs-dir", str(tmp_path)) if args[0] == "eval" else ()))
    assert got == code and needle in err and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize("args,needle", [
    (("lab", "train", "--steps", "0"), "--steps"),
    (("lab", "train", "--seq-len", "-1"), "--seq-len"),
    (("lab", "train", "--checkpoint-every", "-1"), "--checkpoint-every"),
    (("lab", "finetune", "--recipe", "nope", "--model", "hf:x"), "Unknown recipe 'nope'"),
    (("lab", "finetune", "--recipe", "tx_llm", "--model", "hf:x", "--out", ""), "--out needs a folder name"),
    (("lab", "finetune", "--recipe", "tx_llm", "--model", "hf:x", "-p", "mixture=random"), "mixture"),
    (("txllm", "check", "--show", "-1"), "--show must be >= 0"),
    (("eval", "tx_llm", "--model", "mock:echo", "-t", "near_sota_tolerance=-1"), "near_sota_tolerance"),
])
def test_bad_lab_input_is_one_line(capsys, args, needle):
    got, err = _run(capsys, *args)
    assert got == 2 and needle in err and "\n" not in err


def test_eco_experiment_refuses_an_empty_out_before_training(capsys):
    got, err = _run(capsys, "eco", "experiment", "--out", "")
    assert got == 2 and "--out needs a folder name" in err and "\n" not in err


@pytest.mark.parametrize("extra,needle", [
    (("-p", "max_turns=0"), "'max_turns'"),
    (("-p", "prompt=vision"), "'prompt'"),
    (("-p", "prompts_file=/no/such/prompts.yaml"), "prompts_file=/no/such/prompts.yaml: cannot read it"),
    (("--role", "planer=mock:echo"), "sketchpad has no role 'planer'; its roles: planner"),
])
def test_bad_sketchpad_input_is_one_line(capsys, tmp_path, shared_data, extra, needle):
    got, err = _run(capsys, "eval", "sketchpad.graph_maxflow", "--method", "sketchpad", "--model", "mock:echo",
                    "--no-progress", "--limit", "1", "--runs-dir", str(tmp_path / "runs"), *extra)
    assert got == 2 and needle in err and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize("args,needle", [
    (("moscar", "filter", "no/such/input", "out"), "IN no/such/input does not exist"),
    (("moscar", "filter", ".", "out", "--workers", "0"), "--workers must be >= 1"),
    (("moscar", "filter", ".", "out", "--tasks", "0"), "--tasks must be >= 1"),
    (("moscar", "filter", ".", "out", "--workers", "99999999"), "--workers must be >= 1 and <= 1024, got 99999999"),
    (("moscar", "filter", ".", "out", "--tasks", "99999999"), "--tasks must be >= 1 and <= 10000, got 99999999"),
    (("moscar", "filter", ".", "out", "-p", "nope=1"), "unknown key 'nope'"),
    (("moscar", "filter", ".", "out", "-p", "min_images=-1"), "min_images"),
    (("moscar", "audit", "."), "has no audit/ folder"),
    (("moscar", "audit", ".", "--sample", "-1"), "--sample must be >= 0"),
    (("moscar", "corpus", "out", "--docs", "1"), "--docs must be >= 10"),
    (("moscar", "corpus", "out", "--noise-rate", "0.5"), "--noise-rate must be in"),
    (("moscar", "evaluate", ".", "."), "has no planted.json"),
])
def test_bad_moscar_input_is_one_line(capsys, tmp_path, monkeypatch, args, needle):
    pytest.importorskip("datatrove")
    monkeypatch.chdir(tmp_path)
    got, err = _run(capsys, *args)
    assert got == 2 and needle in err and "\n" not in err, err
    assert not (tmp_path / "out").exists()


def test_moscar_filter_on_a_folder_without_jsonl_is_one_line(capsys, tmp_path):
    pytest.importorskip("datatrove")
    (tmp_path / "in").mkdir()
    got, err = _run(capsys, "moscar", "filter", str(tmp_path / "in"), str(tmp_path / "out"))
    assert got != 0 and "no .jsonl or .jsonl.gz input" in err and "\n" not in err


@pytest.mark.parametrize("args,needle", [
    (("magpie", "generate", "--model", "mock:echo", "--out", "X", "--n", "0"), "--n must be >= 1 and <= 100000, got 0"),
    (("magpie", "generate", "--model", "mock:echo", "--out", "X", "--batch", "-2"), "--batch must be >= 1"),
    (("magpie", "generate", "--model", "mock:echo", "--out", "X", "--turns", "0"), "--turns must be >= 1"),
    (("magpie", "generate", "--model", "mock:echo", "--out", ""), "--out needs a folder name"),
    (("magpie", "generate", "--model", "mock:echo", "--out", "X"), "no Magpie template for model 'mock-echo'"),
    (("magpie", "generate", "--model", "mock:echo", "--out", "X", "--template", "no/such"),
     "is not in model_configs.json"),
    (("magpie", "generate", "--model", "mock:echo", "--out", "X", "-p", "temperature=-1"), "temperature"),
    (("magpie", "generate", "--model", "mock:echo", "--out", "X", "--tokenizer", "/no/such/dir"),
     "--tokenizer /no/such/dir: cannot load a tokenizer"),
    (("magpie", "filter", "/no/such/run"), "/no/such/run not found"),
    (("magpie", "filter", ".", "--workers", "0"), "--workers must be >= 1"),
    (("magpie", "filter", ".", "--workers", "5000"), "--workers must be >= 1 and <= 1024"),
    (("magpie", "generate", "--model", "mock:echo", "--out", "X", "--concurrency", "100000000"),
     "--concurrency must be >= 1 and <= 100000"),
    (("magpie", "filter", ".", "-p", "min_quality=great"), "min_quality"),
    (("magpie", "tag", "/no/such/run", "--mission", "quality"), "magpie.jsonl not found"),
])
def test_bad_magpie_input_is_one_line(capsys, tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    got, err = _run(capsys, *args)
    assert got == 2 and needle in err and "\n" not in err and "Traceback" not in err, err
