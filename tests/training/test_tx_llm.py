"""Tx-LLM's recipe end to end on a tiny random LM: ``llmlab lab finetune --recipe tx_llm``.

A tiny random model: the test checks the recipe's plumbing (mixture, LoRA, per-task metrics, saved adapter),
never model quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("peft")
pytest.importorskip("rdkit")
torch = pytest.importorskip("torch")

from llmlab.cli import main  # noqa: E402
from llmlab.core.registry import RECIPES, System, add_system  # noqa: E402
from tests.helpers.tdc import make_tdc  # noqa: E402
from tests.helpers.tiny_hf import make_tiny_tokenizer  # noqa: E402
from tests.training.test_lora_sft import _one_thread, tiny_lm  # noqa: E402, F401


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tiny-tx") / "model"
    tok = make_tiny_tokenizer()
    tiny_lm(tok).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_finetune_recipe_end_to_end(tmp_path: Path, model_dir: Path, capsys) -> None:
    from peft import PeftModel
    from sklearn.metrics import mean_absolute_error, roc_auc_score
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmlab.tasks import tx_llm as tx
    from llmlab.training.tx_llm import TxFinetuneConfig, _continuation_logp

    data = make_tdc(tmp_path / "data", n=30)
    out = tmp_path / "out"
    code = main(["lab", "finetune", "--recipe", "tx_llm", "--model", f"hf:{model_dir}", "--data-dir", str(data),
                 "-p", "tasks=[BBB_Martins,Caco2_Wang,miRTarBase]", "-p", "sft.steps=25", "-p", "sft.lr=2e-2",
                 "-p", "sft.target_modules=[q_proj,v_proj,lm_head]",
                 "-p", "sft.batch_size=4", "-p", "sft.max_len=1024", "-p", "max_eval_per_task=6",
                 "-p", "mixture=uniform", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    res = json.loads((out / "result.json").read_text())
    assert printed["tasks"].keys() == res["tasks"].keys() == {"BBB_Martins", "Caco2_Wang", "miRTarBase"}
    assert res["mixture_sizes"] == {n: len(tx.load_tdc(n, str(data)).splits["train"]) for n in res["tasks"]}
    hist = [loss for _, loss in res["history"]]
    assert len(hist) == 25 and sum(hist[-5:]) < sum(hist[:5])  # the answer loss falls on the mixture
    bbb, caco = res["tasks"]["BBB_Martins"], res["tasks"]["Caco2_Wang"]
    p = bbb["predictions"]
    assert bbb["after"] == pytest.approx(roc_auc_score(p["y"], p["after"]), abs=1e-12)
    assert bbb["before"] == pytest.approx(roc_auc_score(p["y"], p["before"]), abs=1e-12)
    assert p["after"] != p["before"]  # the adapter changed the model's scores
    q = caco["predictions"]
    assert caco["after"] == pytest.approx(mean_absolute_error(q["y"], q["after"]), abs=1e-9)
    assert bbb["vs_sota"]["sota"] == tx.SOTA["BBB_Martins"].value
    # the saved adapter is the trained one: reloading it reproduces the stored p(B) of the first test item
    tok = AutoTokenizer.from_pretrained(model_dir)
    lm = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), out / "adapter").eval()
    d = tx.load_tdc("BBB_Martins", str(data))
    prompt = tx.format_prompt(d.task, d.splits["test"][0])
    la, lb = _continuation_logp(lm, tok, prompt, [" (A)", " (B)"], TxFinetuneConfig().sft.max_len)
    assert 1 / (1 + torch.exp(torch.tensor(la - lb)).item()) == pytest.approx(p["after"][0], abs=1e-5)


def test_recipes_come_from_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    got: dict[str, object] = {}

    def toy(model: str, data_dir: str | None, params: dict, out: Path, on_log) -> dict:  # type: ignore[no-untyped-def,type-arg]
        got.update(model=model, params=params, out=out)
        return {"recipe": "toy", "seconds": 0.0}

    RECIPES.names()  # populate the built-ins first
    monkeypatch.setattr(RECIPES, "_entries", dict(RECIPES._entries))
    monkeypatch.setattr(RECIPES, "_loaded", dict(RECIPES._loaded))
    add_system(System("Toy", "0000.00000", "model", "", "", "planned", "", (
        __import__("llmlab.core.registry", fromlist=["Provide"]).Provide("recipe", "toy", toy),)))
    assert main(["lab", "finetune", "--recipe", "toy", "--model", "hf:x", "-p", "a=1", "--out",
                 str(tmp_path / "o")]) == 0
    assert got["params"] == {"a": 1} and json.loads(capsys.readouterr().out)["recipe"] == "toy"


@pytest.mark.parametrize("args,want,needle", [
    (("--recipe", "tx_lm", "--model", "hf:x"), 2, "Did you mean 'tx_llm'?"),
    (("--recipe", "tx_llm", "--model", "hf:x", "-p", "sft.rank=0"), 2, "sft.rank"),
    (("--recipe", "tx_llm", "--model", "hf:x", "-p", "nope=1"), 2, "unknown key 'nope'"),
    (("--recipe", "tx_llm", "--model", "hf:x", "-p", "tasks=[BBB_Martins]"), 1, "TDC data for BBB_Martins not found"),
])
def test_bad_finetune_input_is_one_line(tmp_path: Path, capsys, args: tuple[str, ...], want: int,
                                        needle: str) -> None:
    code = main(["lab", "finetune", *args, "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == want and needle in err and "\n" not in err, err


def test_a_model_that_cannot_be_loaded_is_one_line(tmp_path: Path, capsys) -> None:
    data = make_tdc(tmp_path / "data", n=12)
    code = main(["lab", "finetune", "--recipe", "tx_llm", "--model", f"hf:{tmp_path / 'nothing'}", "--data-dir",
                 str(data), "-p", "tasks=[Caco2_Wang]", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot load a transformers causal LM" in err and "\n" not in err, err


@pytest.mark.slow
def test_lora_sft_learns_a_learnable_fixture_task(tmp_path: Path, capsys) -> None:
    """Claim (docs/tx_llm.md): on the generated BBB_Martins (label = logP > median), LoRA SFT on the
    BBB + Caco2 mixture raises the tiny LM's AUROC above its pre-training value and above 0.85.

    Morgan-fingerprint logistic regression is reported next to it (a report, not asserted). ~2 min on 1 core.
    """
    import numpy as np
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from llmlab.tasks import tx_llm as tx
    from llmlab.training.tx_llm import finetune_tx_llm

    data = make_tdc(tmp_path / "data", n=300, invalid=False)
    tok = make_tiny_tokenizer()
    tiny_lm(tok).save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    res = finetune_tx_llm(f"hf:{tmp_path / 'model'}", str(data), {
        "tasks": ["BBB_Martins", "Caco2_Wang"], "max_eval_per_task": 100,
        "sft": {"steps": 150, "lr": 1e-2, "batch_size": 16, "rank": 16,
                "target_modules": ["q_proj", "v_proj", "lm_head"]}}, tmp_path / "out")
    bbb = res["tasks"]["BBB_Martins"]
    d = tx.load_tdc("BBB_Martins", str(data))
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)

    def fps(rows):  # type: ignore[no-untyped-def]
        return np.array([gen.GetFingerprintAsNumPy(Chem.MolFromSmiles(r["Drug"])) for r in rows])

    lr = LogisticRegression(max_iter=2000).fit(fps(d.splits["train"]), [int(r["Y"]) for r in d.splits["train"]])
    test = d.splits["test"][:100]
    lr_auc = roc_auc_score([int(r["Y"]) for r in test], lr.predict_proba(fps(test))[:, 1])
    report = {"bbb_auroc_before": bbb["before"], "bbb_auroc_after": bbb["after"], "bbb_auroc_morgan_lr": lr_auc,
              "caco2_mae_before": res["tasks"]["Caco2_Wang"]["before"],
              "caco2_mae_after": res["tasks"]["Caco2_Wang"]["after"],
              "loss_first": res["history"][0][1], "loss_last": res["history"][-1][1], "seconds": res["seconds"]}
    with capsys.disabled():
        print(json.dumps(report, indent=2))
    assert bbb["after"] > bbb["before"] and bbb["after"] > 0.85
