from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from llmlab.backends.model import Model
from llmlab.backends.openai_compat import OpenAIBackend
from llmlab.core.errors import DataError, UnsupportedFeatureError
from llmlab.stats.scaling_collect import choice_logliks, echo_loglik, mc_item, parse_compute, task_mc_items
from tests.helpers.tiny_hf import tiny_model_dir  # noqa: F401 - session fixture


@pytest.fixture
def tiny_dir(tiny_model_dir: Path) -> Path:  # noqa: F811
    return tiny_model_dir


def test_items_and_compute_parsing(shared_data: Path) -> None:
    from llmlab.tasks.mmlu_redux import MMLURedux

    items = task_mc_items(MMLURedux({"subjects": ["virology"]}), "letters", limit=3)
    assert len(items) == 3 and items[0].context.endswith("\nAnswer:") and items[0].continuations[0] == " A"
    cloze = mc_item("x", "Sky colour?", ["blue", "red"], 0, "cloze")
    assert cloze.continuations == (" blue", " red")
    assert parse_compute(["hf:a=1e20"])["hf:a"] == pytest.approx(20.0)
    with pytest.raises(DataError):
        parse_compute(["nope"])


@pytest.mark.anyio
async def test_hf_logliks_equal_a_manual_forward(tiny_dir: Path) -> None:
    import torch

    model = Model(f"hf:{tiny_dir}")
    item = mc_item("q", "Two plus two is", ["four", "nine"], 0, "cloze")
    lls = await choice_logliks(model, item)
    backend: Any = model.backend
    tok, hf = backend.tokenizer, backend.hf_model
    for ll, cont in zip(lls, item.continuations, strict=True):
        ctx = tok(item.context)["input_ids"]
        full = tok(item.context + cont)["input_ids"]
        with torch.no_grad():
            logits = hf(input_ids=torch.tensor([full])).logits[0]
        manual = sum(float(torch.log_softmax(logits[t - 1], -1)[full[t]]) for t in range(len(ctx), len(full)))
        assert ll == pytest.approx(manual, abs=1e-4)
    assert all(ll < 0 for ll in lls)


@pytest.mark.anyio
async def test_openai_echo_path_parses_vllm_logprobs() -> None:
    backend = OpenAIBackend("m", ["http://127.0.0.1:9/v1"])
    context = "Q: 2+2?\nAnswer:"

    async def create(**kw: Any) -> Any:
        assert kw["echo"] is True and kw["logprobs"] == 1 and kw["max_tokens"] == 1
        text = kw["prompt"]
        toks = [text[: len(context)], text[len(context):], "<gen>"]
        offs = [0, len(context), len(text)]
        lp = SimpleNamespace(token_logprobs=[None, -0.5 if "four" in text else -3.0, -7.0], text_offset=offs,
                             tokens=toks)
        return SimpleNamespace(choices=[SimpleNamespace(logprobs=lp)])

    backend.endpoints[0].client = SimpleNamespace(completions=SimpleNamespace(create=create))
    item = mc_item("q", "2+2?", ["four", "five"], 0, "cloze")
    object.__setattr__(item, "context", context)
    assert await choice_logliks(Model(backend), item) == [-0.5, -3.0]
    assert echo_loglik([None, -1.0, -2.0], [0, 4, 9], 4) == -1.0
    with pytest.raises(UnsupportedFeatureError):
        await choice_logliks(Model("mock:echo"), item)


def test_cli_collect_then_analyze(tiny_dir: Path, tmp_path: Path, shared_data: Path) -> None:
    from llmlab.cli import cli as main

    table = tmp_path / "t.jsonl"
    spec_a, spec_b = f"hf:{tiny_dir}", f"hf:{tiny_dir}?device=cpu"
    r = CliRunner().invoke(main, ["scaling", "collect", "--task", "mmlu_redux", "-t", "subjects=[virology]",
                                  "-m", spec_a, "-m", spec_b, "-c", f"{spec_a}=1e12", "-c", f"{spec_b}=1e13",
                                  "--limit", "4", "--out", str(table)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in table.read_text().splitlines()]
    assert len(rows) == 2 * 4 * 4 and sum(r["correct"] for r in rows) == 8
    assert {r["log10_compute"] for r in rows} == {12.0, 13.0}
    r = CliRunner().invoke(main, ["scaling", "analyze", str(table), "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "a" / "analysis.json").read_text())
    # the same weights twice: every per-sample score is constant across "models" -> all correlations NaN
    assert res["correlations"]["acc"]["spearman"]["frac_nan"] == 1.0
    assert math.isnan(res["correlations"]["log_prob_vocab_correct"]["pearson"]["mean"])
    assert (tmp_path / "a" / "correlation_survival.png").is_file()
