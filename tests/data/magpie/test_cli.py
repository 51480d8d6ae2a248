"""`llmlab magpie generate | filter | template` through the CLI on a scripted model (control flow only)."""

from __future__ import annotations

import json

import pytest

from llmlab.cli import main

LLAMA = "meta-llama/Meta-Llama-3-8B-Instruct"
SPEC = "mock:py=tests.data.magpie.mock_magpie:script"


def test_generate_then_filter(tmp_path, shared_data, capsys):
    pytest.importorskip("datatrove")
    out = tmp_path / "run"
    assert main(["magpie", "generate", "--model", SPEC, "--template", LLAMA, "--n", "6", "--batch", "4",
                 "--out", str(out), "--no-progress", "--data-dir", str(shared_data)]) == 0
    line = capsys.readouterr().out
    assert "6 conversations" in line and "8 calls made, 0 resumed" in line  # 2 instruction calls + 6 responses
    assert main(["magpie", "filter", str(out), "-p", "languages=[en]", "-p", "min_chars=10"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["input"] == 6 and stats["kept"] + sum(stats["removed"].values()) == 6
    kept = [json.loads(x) for x in (out / "filtered" / "messages.jsonl").read_text().splitlines()]
    assert len(kept) == stats["kept"] and all(m["messages"][0]["role"] == "user" for m in kept)


def test_template_command_prints_the_file_entry(shared_data, capsys):
    assert main(["magpie", "template", LLAMA, "--data-dir", str(shared_data)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["source"] == "config" and got["pre_query"]["default"].startswith("<|begin_of_text|>")
    assert 128009 in got["stop_token_ids"]
