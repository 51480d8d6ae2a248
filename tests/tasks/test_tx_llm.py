"""Tx-LLM harness: TxT prompts, answer codecs, TDC data loading, TDC metrics, the task end to end."""

from __future__ import annotations

import json
import random
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rdkit")

from llmlab.cli import main
from llmlab.core.errors import ConfigError, DataError
from llmlab.runner import EvalSpec, run_eval
from llmlab.tasks import tx_llm as tx
from tests.helpers.tdc import INVALID, logp, make_tdc


@pytest.fixture(scope="module")
def tdc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tdc(tmp_path_factory.mktemp("tdc-data"))


# -- metrics equal sklearn / scipy -------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_sklearn_and_scipy_with_ties(seed: int) -> None:
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        mean_absolute_error,
        mean_squared_error,
        roc_auc_score,
    )

    rng = random.Random(seed)
    y = [rng.randint(0, 1) for _ in range(60)]
    s = [round(rng.random(), 1) for _ in range(60)]  # rounded: many ties
    assert tx.auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert tx.auprc(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    a = [rng.gauss(0, 1) for _ in range(50)]
    b = [round(x + rng.gauss(0, 1), 0) for x in a]
    assert tx.spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert tx.pearson(a, b) == pytest.approx(pearsonr(a, b).statistic, abs=1e-12)
    assert tx.mae(a, b) == pytest.approx(mean_absolute_error(a, b), abs=1e-12)
    assert tx.mse(a, b) == pytest.approx(mean_squared_error(a, b), abs=1e-12)
    p = [rng.random() for _ in range(60)]
    assert tx.accuracy(y, p) == pytest.approx(accuracy_score(y, [int(v > 0.5) for v in p]), abs=1e-12)


def test_accuracy_gives_half_credit_to_no_answer_and_is_the_hit_rate_for_generation() -> None:
    assert tx.accuracy([1, 0, 1, 0], [0.9, 0.2, 0.5, 0.5]) == 0.75  # two right, two unanswered
    assert tx.task_metric("accuracy", [1.0] * 4, [1.0, 0.0, 1.0, 1.0]) == 0.75
    assert tx.task_metric("mse", [0.0, 2.0], [1.0, 0.0]) == 2.5


def test_undefined_metrics_are_none_not_a_number() -> None:
    assert tx.auroc([1, 1, 1], [0.1, 0.2, 0.3]) is None
    assert tx.auprc([0, 0], [0.1, 0.2]) is None
    assert tx.spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None


# -- answer codecs ------------------------------------------------------------------------------------------

def test_binning_round_trips_within_half_a_bin_and_clips() -> None:
    b = tx.Binning.fit([-3.0, 1.5, 7.0])
    rng = random.Random(0)
    for _ in range(200):
        y = rng.uniform(-3, 7)
        assert abs(b.from_bin(b.to_bin(y)) - y) <= (10.0 / tx.N_BINS) / 2 + 1e-12
    assert (b.to_bin(-100.0), b.to_bin(100.0)) == (0, 1000)
    lb = tx.Binning.fit([1.0, 1000.0], log10=True)
    assert lb.to_bin(1000.0) == 1000 and lb.from_bin(lb.to_bin(31.6227766)) == pytest.approx(1.5, abs=0.002)
    with pytest.raises(DataError):
        lb.to_bin(0.0)


@pytest.mark.parametrize("text,want", [("Answer: 042", 42), ("007", 7), ("1000", 1000), ("1200 or 5", 5),
                                       ("3.5", None), ("none", None), ("Answer: (B) 12", 12)])
def test_parse_bin(text: str, want: int | None) -> None:
    assert tx.parse_bin(text) == want


@pytest.mark.parametrize("text,want", [("(B)", "B"), ("Answer: (A)", "A"), ("B", "B"), ("I think (B) fits", "B"),
                                       ("A drug like this...", None), ("maybe", None)])
def test_parse_binary(text: str, want: str | None) -> None:
    assert tx.parse_binary(text) == want


def test_smiles_are_canonical_and_reactant_order_does_not_matter() -> None:
    assert tx.canonical_smiles("OCC") == tx.canonical_smiles("C(O)C") == "CCO"
    assert tx.canonical_smiles("C1CC") is None
    assert tx.same_molecules("OCC.c1ccccc1", "c1ccccc1.CCO")
    assert not tx.same_molecules("CCO", "CCN")
    assert tx.parse_smiles("Answer: `C(O)C.O`") == "CCO.O"
    assert tx.parse_smiles("no molecule here") is None
    assert tx.parse_smiles("Answer: I think C(O)C") == "CCO"  # "I" is iodine to RDKit, but a word here
    assert tx.parse_smiles("Answer: Cl") == "Cl"


# -- prompts ------------------------------------------------------------------------------------------------

def test_prompt_has_the_four_parts_in_order_with_entities_inline(tdc_dir: Path) -> None:
    for name, needles in {"BBB_Martins": ["Drug SMILES: ", "(A) ", "(B) "],
                          "DAVIS": ["Drug SMILES: ", "Target amino acid sequence: ", "000 to 1000"],
                          "GDSC1": ["Cell line: "], "Phase1_Trial": ["Disease: "],
                          "miRTarBase": ["microRNA nucleotide sequence: "], "USPTO-50K": ["Product SMILES: "]}.items():
        d = tx.load_tdc(name, str(tdc_dir))
        row = d.splits["test"][0]
        p = tx.format_prompt(d.task, row, binning=d.binning())
        pos = [p.index(k) for k in ("Instructions: ", "Context: ", "Question: ")]
        assert pos == sorted(pos) and p.endswith("\nAnswer:"), name
        for e in d.task.entities:
            assert f"{e.label}: {row[e.column]}\n" in p
        for n in needles:
            assert n in p, (name, n)
    gdsc = tx.load_tdc("GDSC1", str(tdc_dir)).splits["test"][0]
    assert gdsc["Cell Line_ID"] in tx.format_prompt(tx.TASKS["GDSC1"], gdsc)  # the name, not the expression vector
    assert "[0.1" not in tx.format_prompt(tx.TASKS["GDSC1"], gdsc)


def test_exemplars_precede_the_question_and_tanimoto_picks_the_nearest() -> None:
    task = tx.TASKS["BBB_Martins"]
    row = {"Drug": "CCCCCCO", "Y": "1"}
    pool = [{"Drug": "c1ccccc1", "Y": "0"}, {"Drug": "CCCCCCCO", "Y": "1"}, {"Drug": "N#N", "Y": "0"}, row]
    (near,) = tx.select_exemplars(task, row, pool, 1, "tanimoto")
    assert near["Drug"] == "CCCCCCCO"
    shots = tx.select_exemplars(task, row, pool, 3, "random", seed=0)
    assert len(shots) == 3 and row not in shots
    assert shots == tx.select_exemplars(task, row, pool, 3, "random", seed=0)  # seeded per row
    p = tx.format_prompt(task, row, shots)
    assert p.count("Answer:") == 4 and p.index("Examples:") < p.rindex("Question: ")
    assert p.rindex("Drug SMILES: CCCCCCO\n") > p.index("Examples:")


# -- data ---------------------------------------------------------------------------------------------------

def test_invalid_smiles_are_dropped_and_reported_with_file_and_line(tdc_dir: Path, capsys) -> None:
    d = tx.load_tdc("BBB_Martins", str(tdc_dir))
    assert sorted(s for _, s in d.invalid) == sorted(INVALID)
    assert all(re.search(r"train\.csv:\d+$", w) for w, _ in d.invalid)
    all_rows = [r for rows in d.splits.values() for r in rows]
    assert all(tx.canonical_smiles(r["Drug"]) == r["Drug"] for r in all_rows)
    assert main(["txllm", "check", "--data-dir", str(tdc_dir), "--task", "BBB_Martins"]) == 0
    rep = json.loads(capsys.readouterr().out)["BBB_Martins"]
    assert rep["invalid_smiles"] == 2 and rep["rows"]["train"] == len(d.splits["train"])


def test_single_file_is_split_70_10_20_and_bad_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "tdc").mkdir()
    lines = ["Drug_ID,Drug,Y"] + [f"d{i},{'C' * (i % 7 + 1)}O,{i % 2}" for i in range(50)]
    (tmp_path / "tdc" / "AMES.csv").write_text("\n".join(lines) + "\n")
    d = tx.load_tdc("AMES", str(tmp_path))
    assert {k: len(v) for k, v in d.splits.items()} == {"train": 35, "valid": 5, "test": 10}
    # TDC's protocol, by hand: test = sample(20%, seed 42); valid = sample of the rest (seed 1); train = the rest
    import pandas as pd

    df = pd.read_csv(tmp_path / "tdc" / "AMES.csv")
    test = df.sample(frac=0.2, replace=False, random_state=42)
    rest = df[~df.index.isin(test.index)]
    valid = rest.sample(frac=0.125, replace=False, random_state=1)
    for name, part in (("test", test), ("valid", valid), ("train", rest[~rest.index.isin(valid.index)])):
        assert [r["Drug_ID"] for r in d.splits[name]] == part["Drug_ID"].tolist()
    (tmp_path / "tdc" / "HIA_Hou.csv").write_text("Drug_ID,SMILES,Y\nd0,CCO,1\n")
    with pytest.raises(DataError, match="lacks column"):
        tx.load_tdc("HIA_Hou", str(tmp_path))
    (tmp_path / "tdc" / "HIA_Hou.csv").write_text("Drug_ID,Drug,Y\nd0,CCO,yes\n")
    with pytest.raises(DataError, match=r"HIA_Hou\.csv:2"):
        tx.load_tdc("HIA_Hou", str(tmp_path))
    with pytest.raises(DataError, match="--data-dir"):
        tx.load_tdc("Solubility_AqSolDB", str(tmp_path))
    with pytest.raises(ConfigError, match="unknown Tx-LLM task"):
        tx.load_tdc("NotATask", str(tmp_path))


def test_pytdc_is_used_when_installed_and_online(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    calls: list[str] = []

    class ADME:
        def __init__(self, name: str, path: str) -> None:
            calls.append(name)

        def get_split(self) -> dict[str, Any]:
            df = pd.DataFrame({"Drug_ID": ["a", "b"], "Drug": ["OCC", "CCN"], "Y": [0.5, 1.5]})
            return {"train": df, "valid": df.iloc[:1], "test": df.iloc[1:]}

    fake = types.ModuleType("tdc.single_pred")
    fake.ADME = ADME  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tdc", types.ModuleType("tdc"))
    monkeypatch.setitem(sys.modules, "tdc.single_pred", fake)
    monkeypatch.delenv("LLMLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("LLMLAB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    d = tx.load_tdc("Caco2_Wang")
    assert calls == ["Caco2_Wang"] and d.splits["train"][0]["Drug"] == "CCO"
    assert tx.load_tdc("Caco2_Wang").splits["test"][0]["Drug"] == "CCN" and calls == ["Caco2_Wang"]  # cached
    monkeypatch.setenv("LLMLAB_OFFLINE", "1")
    with pytest.raises(DataError, match="--data-dir"):
        tx.load_tdc("Lipophilicity_AstraZeneca")


# -- SOTA comparison inside a run (the table itself: tests/tasks/tx_llm/test_sota.py) ------------------------

def test_catalogue_metrics_are_the_papers_so_every_comparison_is_like_for_like() -> None:
    for name, task in tx.TASKS.items():
        ref = tx.sota_entry(name)
        if ref is not None:
            assert (task.metric, task.kind) == (ref.metric, ref.kind), name
    assert tx.sota_entry("Phase1_Trial") is tx.SOTA["phase1"]  # our layout of TDC's phase1
    assert tx.sota_entry("USPTO-50K") is None  # the paper's USPTO row is the full USPTO set
    admet = {k for k in tx.TDC_LEADERBOARD_METRICS if not k.startswith(("drugcomb", "bindingdb"))}
    assert len(admet) == 22 and admet <= {n.lower() for n in tx.TASKS}  # TDC's whole ADMET group


def test_every_single_molecule_task_prompts_from_tdcs_drug_column() -> None:
    for task in tx.TASKS.values():
        if task.entities != (tx.Entity("Drug", "Drug SMILES", "smiles"),):
            continue
        p = tx.format_prompt(task, {"Drug": "CCO", "Y": "1"})
        assert "\nDrug SMILES: CCO\n" in p and p.endswith("Answer:"), task.name
        assert (f"(A) {task.choices[0]} (B) {task.choices[1]}" in p) == (task.kind == "binary"), task.name
        assert ("000 to 1000" in p) == (task.kind == "regression"), task.name


# -- the task end to end through the runner (scripted models: plumbing, not model quality) -------------------

ORACLE: dict[str, str] = {}


def _question(text: str) -> str:
    return text.rsplit("Question: ", 1)[1]


def oracle(request: Any, index: int) -> str:
    return ORACLE[_question(request.messages[-1].text)]


def inverted(request: Any, index: int) -> str:
    ans = oracle(request, index)
    return ans.replace("(A)", "(X)").replace("(B)", "(A)").replace("(X)", "(B)")


def test_eval_with_an_oracle_scores_perfectly_and_inverted_scores_zero(tdc_dir: Path, tmp_path: Path) -> None:
    task = tx.TxLLM({"data_dir": str(tdc_dir), "tasks": ["BBB_Martins", "Caco2_Wang", "USPTO-50K"]})
    for item in task.items():
        d = task.loaded[item.metadata["task"]]
        kind = item.metadata["kind"]
        ans = f"({item.target})" if kind == "binary" else tx.format_bin(item.target) if kind == "regression" \
            else str(item.target)
        ORACLE[_question(item.input)] = f"Answer: {ans}"
        assert d.task.name == item.metadata["task"]
    tp = ["tasks=[BBB_Martins,Caco2_Wang,USPTO-50K]"]
    good = run_eval(EvalSpec(task="tx_llm", model_spec="mock:py=tests.tasks.test_tx_llm:oracle", task_params=tp,
                             data_dir=str(tdc_dir), runs_dir=str(tmp_path), run_id="good"), progress=False)
    t = good.aggregate["tasks"]
    assert t["BBB_Martins"]["value"] == 1.0 and t["USPTO-50K"]["value"] == 1.0
    b = task.loaded["Caco2_Wang"].binning()
    assert b is not None and t["Caco2_Wang"]["value"] <= (b.hi - b.lo) / tx.N_BINS / 2 + 1e-9  # bin rounding only
    assert all(v["unparsed"] == 0 for v in t.values())
    assert t["BBB_Martins"]["vs_sota"]["status"] == "above" and t["USPTO-50K"]["vs_sota"] is None
    assert good.aggregate["vs_sota"]["compared"] == good.aggregate["vs_sota"]["sota_verified"] == 2
    assert good.aggregate["invalid_smiles_dropped"] == 2
    bad = run_eval(EvalSpec(task="tx_llm", model_spec="mock:py=tests.tasks.test_tx_llm:inverted", task_params=tp,
                            data_dir=str(tdc_dir), runs_dir=str(tmp_path), run_id="inv"), progress=False)
    assert bad.aggregate["tasks"]["BBB_Martins"]["value"] == 0.0


def test_unparsable_replies_are_counted_and_uninformative(tdc_dir: Path, tmp_path: Path) -> None:
    from sklearn.metrics import mean_absolute_error

    tp = ["tasks=[BBB_Martins,Caco2_Wang]"]
    s = run_eval(EvalSpec(task="tx_llm", model_spec="mock:text=I cannot tell", task_params=tp,
                          data_dir=str(tdc_dir), runs_dir=str(tmp_path), run_id="junk"), progress=False)
    t = s.aggregate["tasks"]
    d = tx.load_tdc("BBB_Martins", str(tdc_dir))
    assert t["BBB_Martins"]["unparsed"] == t["BBB_Martins"]["n"] == len(d.splits["test"])
    assert t["BBB_Martins"]["value"] == 0.5  # every item 0.5: chance AUROC, not dropped
    c = tx.load_tdc("Caco2_Wang", str(tdc_dir))
    med = tx.median([float(r["Y"]) for r in c.splits["train"]])
    ys = [float(r["Y"]) for r in c.splits["test"]]
    assert t["Caco2_Wang"]["value"] == pytest.approx(mean_absolute_error(ys, [med] * len(ys)))


def test_scoring_a_predictions_file_with_probabilities(tdc_dir: Path, tmp_path: Path, capsys) -> None:
    from sklearn.metrics import roc_auc_score

    rows = tx.load_tdc("BBB_Martins", str(tdc_dir)).splits["test"]
    probs = [1 / (1 + 2.718281828 ** -(logp(r["Drug"]) - 1)) for r in rows]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": f"BBB_Martins-{i}", "score": p}) + "\n" for i, p in enumerate(probs)))
    code = main(["score", "tx_llm", "--predictions", str(preds), "--json",
                 "-t", f"data_dir={tdc_dir}", "-t", "tasks=[BBB_Martins]"])
    assert code == 0
    rep = json.loads(capsys.readouterr().out)
    y = [int(r["Y"]) for r in rows]
    assert rep["tasks"]["BBB_Martins"]["value"] == pytest.approx(roc_auc_score(y, probs), abs=1e-12)
    cmp = rep["tasks"]["BBB_Martins"]["vs_sota"]
    assert cmp["verified"] is True and cmp["sota"] == tx.SOTA["BBB_Martins"].value
    assert cmp["status"] == tx.classify("auroc", rep["tasks"]["BBB_Martins"]["value"], cmp["sota"])


def test_bad_task_options_are_one_line(tdc_dir: Path, capsys) -> None:
    code = main(["eval", "tx_llm", "--model", "mock:echo", "--data-dir", str(tdc_dir), "--no-progress",
                 "-t", "tasks=[Nope]"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "unknown Tx-LLM task" in err and "\n" not in err
