"""Magpie generation control flow on a scripted model (call shapes, multi-turn, resume) — not model quality."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmlab.backends.base import Capabilities
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.core.errors import BackendError, ConfigError, UnsupportedFeatureError
from llmlab.data.magpie.generate import CALLS, MagpieConfig, generate
from llmlab.data.magpie.templates import MT_SYSTEM_PROMPT, load_model_configs
from tests.data.magpie import mock_magpie
from tests.data.magpie.chat_templates import make_tokenizer

LLAMA = "meta-llama/Meta-Llama-3-8B-Instruct"
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def llama(shared_data):
    return load_model_configs(shared_data / "magpie" / "configs" / "model_configs.json")[LLAMA]


def _records(d: Path, name: str = "magpie.jsonl") -> list[dict]:
    return [json.loads(line) for line in (d / name).read_text().splitlines()]


def test_instruction_calls_are_raw_prompts_of_the_template_then_chat_responses(tmp_path, llama):
    backend = MockBackend(mock_magpie.script, model=LLAMA)
    cfg = MagpieConfig(n=5, batch=2, seed=7)
    s = run_sync(generate(Model(backend), tmp_path, llama, cfg))
    raw = [r for r in backend.requests if r.prompt is not None]
    chat = [r for r in backend.requests if r.messages is not None]
    assert [r.n for r in raw] == [2, 2, 1]  # ceil(5/2) calls, n samples each
    assert {r.prompt for r in raw} == {llama.prompt()}
    assert sorted(r.sample_index for r in raw) == [0, 1, 2]  # calls told apart, reproducibly
    assert all(r.temperature == 1.0 and r.top_p == 1.0 and r.seed == 7 for r in raw)
    assert set(raw[0].stop) == {*llama.stop_tokens, *llama.stop_tokens_assistant, "\n"}
    assert len(chat) == 5 and all(r.temperature == 0.0 and len(r.messages) == 1 for r in chat)
    recs = _records(tmp_path)
    assert s.records == 5 and s.calls_made == 8 and [r["id"] for r in recs] == list(range(5))
    # A stop token the server let through is cut, and the response answers that instruction.
    assert all(r["instruction"].startswith("How do I solve problem") and "eot" not in r["instruction"] for r in recs)
    assert all(r["response"] == f"Here is how: {r['instruction']}" for r in recs)
    assert len({r["uuid"] for r in recs}) == 5 and len({r["instruction"] for r in recs}) == 5
    assert recs[0]["pre_query_template"] == llama.prompt() and recs[0]["gen_input_configs"]["seed"] == 7
    share = _records(tmp_path, "sharegpt.jsonl")[0]
    assert share["conversations"] == [{"from": "human", "value": recs[0]["instruction"]},
                                      {"from": "gpt", "value": recs[0]["response"]}]
    msgs = _records(tmp_path, "messages.jsonl")[0]["messages"]
    assert msgs == [{"role": "user", "content": recs[0]["instruction"]},
                    {"role": "assistant", "content": recs[0]["response"]}]


@pytest.mark.parametrize("variant", ["system", "math", "code"])
def test_variants_send_their_system_prompt_template(tmp_path, llama, variant):
    backend = MockBackend(mock_magpie.script, model=LLAMA)
    run_sync(generate(Model(backend), tmp_path, llama, MagpieConfig(n=2, batch=2, variant=variant)))
    raw = [r.prompt for r in backend.requests if r.prompt is not None]
    assert raw == [llama.prompt(variant)] and raw[0] != llama.prompt()


def test_multi_turn_renders_the_conversation_and_appends_the_next_user_header(tmp_path, llama):
    tok = make_tokenizer("llama3")
    backend = MockBackend(mock_magpie.script, model=LLAMA)
    run_sync(generate(Model(backend), tmp_path, llama, MagpieConfig(n=2, batch=2, num_turns=3), tokenizer=tok))
    follow = [r for r in backend.requests if r.prompt is not None and r.n == 1]
    assert len(follow) == 4  # 2 conversations x turns 2 and 3
    rec = _records(tmp_path)[0]
    first = next(r for r in follow if rec["instruction"] in r.prompt).prompt
    assert first.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" + MT_SYSTEM_PROMPT)
    assert first.endswith(rec["response"] + "<|eot_id|>" + llama.mt_append)
    assert rec["instruction_2"].endswith("(follow-up)?") and rec["response_3"].startswith("Here is how")
    # The response of turn 3 is asked with the whole conversation, without the MT system prompt.
    last_chat = [r for r in backend.requests if r.messages is not None and len(r.messages) == 5]
    assert len(last_chat) == 2 and all(m.role != "system" for r in last_chat for m in r.messages)
    turns = _records(tmp_path, "sharegpt.jsonl")[0]["conversations"]
    assert [t["from"] for t in turns] == ["human", "gpt"] * 3


def test_multi_turn_without_a_tokenizer_and_chat_only_backends_are_refused(tmp_path, llama):
    with pytest.raises(UnsupportedFeatureError, match="--tokenizer"):
        run_sync(generate(Model(MockBackend(mock_magpie.script)), tmp_path, llama, MagpieConfig(n=1, num_turns=2)))

    chat_only = MockBackend(["x"])
    chat_only.capabilities = Capabilities(raw_completion=False)
    with pytest.raises(UnsupportedFeatureError, match="raw completion"):
        run_sync(generate(Model(chat_only), tmp_path / "b", llama, MagpieConfig(n=1)))


def test_sanitize_keeps_the_raw_instruction(tmp_path, llama):
    backend = MockBackend(lambda r, i: "1. Task: What is 2+2? Answer: 4" if r.prompt else "4", model=LLAMA)
    run_sync(generate(Model(backend), tmp_path, llama, MagpieConfig(n=1, sanitize=True)))
    rec = _records(tmp_path)[0]
    assert rec["raw_instruction"] == "1. Task: What is 2+2? Answer: 4"
    assert rec["instruction"] == "What is 2+2?" and rec["instruction_sanitize_class_num"] == 4
    chat = next(r for r in backend.requests if r.messages is not None)
    assert chat.messages[0].text == "What is 2+2?"


def test_a_crash_then_a_rerun_makes_only_the_missing_calls(tmp_path, llama):
    fail_after = 6
    seen: list[int] = []

    def flaky(request, index):
        if request.prompt is None or request.n == 1 or index % 1000 == 0:
            seen.append(index)  # one entry per call (a call of n samples asks n replies)
        if len(seen) > fail_after:
            raise BackendError("boom", retryable=False)
        return mock_magpie.script(request, index)

    cfg = MagpieConfig(n=6, batch=2)
    with pytest.raises(BackendError):
        run_sync(generate(Model(MockBackend(flaky), concurrency=1), tmp_path, llama, cfg, concurrency=1))
    done = len((tmp_path / CALLS).read_text().splitlines())
    assert done == fail_after
    backend = MockBackend(mock_magpie.script, model=LLAMA)
    s = run_sync(generate(Model(backend), tmp_path, llama, cfg))
    total = 3 + 6  # instruction calls + responses
    assert len(backend.requests) == total - done == s.calls_made and s.calls_resumed == done
    keys = [json.loads(line)["key"] for line in (tmp_path / CALLS).read_text().splitlines()]
    assert len(keys) == len(set(keys)) == total and len(_records(tmp_path)) == 6
    # A third run has nothing left to do.
    again = MockBackend(mock_magpie.script, model=LLAMA)
    assert run_sync(generate(Model(again), tmp_path, llama, cfg)).calls_made == 0 and not again.requests


def test_a_rerun_with_other_settings_is_refused(tmp_path, llama):
    run_sync(generate(Model(MockBackend(mock_magpie.script)), tmp_path, llama, MagpieConfig(n=2, batch=2)))
    with pytest.raises(ConfigError, match=r"other settings \(temperature\)"):
        run_sync(generate(Model(MockBackend(mock_magpie.script)), tmp_path, llama,
                          MagpieConfig(n=2, batch=2, temperature=0.5)))


def test_a_line_cut_by_a_kill_is_dropped_on_resume(tmp_path, llama):
    cfg = MagpieConfig(n=2, batch=2)
    run_sync(generate(Model(MockBackend(mock_magpie.script)), tmp_path, llama, cfg))
    log = tmp_path / CALLS
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])  # the last response half-written
    backend = MockBackend(mock_magpie.script, model=LLAMA)
    s = run_sync(generate(Model(backend), tmp_path, llama, cfg))
    assert s.calls_made == 1 and len(backend.requests) == 1
    assert all(json.loads(x) for x in log.read_text().splitlines())


def test_kill_the_cli_and_rerun_makes_only_the_missing_calls(tmp_path, shared_data):
    out = tmp_path / "run"
    spec = "mock:py=tests.data.magpie.mock_magpie:script?latency=0.02"
    args = ["magpie", "generate", "--model", spec, "--template", LLAMA, "--n", "30", "--batch", "3",
            "--out", str(out), "--concurrency", "1", "--no-progress", "--data-dir", str(shared_data)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "llmlab.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = out / CALLS
    deadline = time.monotonic() + 60
    while (not log.exists() or len(log.read_text().splitlines()) < 15) and proc.poll() is None:
        assert time.monotonic() < deadline, "the generator made no progress"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    from llmlab.cli import main

    before = len(mock_magpie.CALLS)
    assert main([*args[:3], "mock:py=tests.data.magpie.mock_magpie:script", *args[4:]]) == 0
    made = len(mock_magpie.CALLS) - before
    keys = [json.loads(line)["key"] for line in log.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 10 + 30  # every call once, across the kill
    assert 0 < made < 40 and len(_records(out)) == 30
