"""The raw path end to end: a tiny hf model behind `llmlab serve`, Magpie over /v1/completions.

The model is random (outputs are gibberish): this proves plumbing — template derived from the served
model's own tokenizer, raw completions for instructions, chat completions for responses, multi-turn —
never quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from llmlab.cli import main
from tests.helpers.servers import serve_thread, server_stats
from tests.helpers.tiny_hf import tiny_model_dir  # noqa: F401 - session fixture
from tests.helpers.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture


def test_magpie_over_llmlab_serve_uses_raw_completions(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:  # noqa: F811
    out = tmp_path / "run"
    from llmlab.backends.hf import HFBackend

    backend = HFBackend.from_spec(f"{tiny_model_dir}?device=cpu&dtype=float32")
    with serve_thread(backend, name="tiny") as url:
        code = main(["magpie", "generate", "--model", f"openai:tiny@{url}", "--tokenizer", str(tiny_model_dir),
                     "--n", "4", "--batch", "2", "--turns", "2", "--out", str(out), "--no-progress",
                     "-p", "max_tokens=6", "-p", "response_max_tokens=6", "-p", "early_stopping=false",
                     "-p", "seed=3"])
        assert code == 0, capsys.readouterr().err
        stats = server_stats(url)
    keys = [json.loads(line)["key"] for line in (out / "calls.jsonl").read_text().splitlines()]
    raw_calls = [k for k in keys if k.startswith("i")]
    chat_calls = [k for k in keys if k.startswith("r")]
    assert stats["by_endpoint"]["completions"] == len(raw_calls) >= 2  # the 2 instruction calls + follow-ups
    assert stats["by_endpoint"]["chat.completions"] == len(chat_calls)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["template_source"] == "tokenizer" and manifest["pre_query_template"] == "<|user|>\n"
    recs = [json.loads(line) for line in (out / "magpie.jsonl").read_text().splitlines()]
    assert len(recs) == 4 and all("<|end|>" not in r["instruction"] for r in recs)
    answered = [r for r in recs if r["instruction"]]
    assert all(isinstance(r["response"], str) for r in answered)
