"""The ECO prompt classifier: real synthetic-WMDP forget prompts vs real NQ-open retain prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.core.errors import ConfigError, DataError
from llmlab.methods.eco.classifier import PromptClassifier, classifier_report, load_synthetic_wmdp

pytest.importorskip("sklearn")


def test_loads_the_synthetic_wmdp_csvs(shared_data: Path) -> None:
    rows = load_synthetic_wmdp(shared_data / "eco")
    assert len(rows) == 300 and {r["subject"] for r in rows} == {"bio", "chem", "cyber"}
    assert all(len(r["choices"]) == 4 and 0 <= r["answer"] < 4 for r in rows)


def test_bad_csv(tmp_path: Path) -> None:
    d = tmp_path / "local_data" / "synthetic_wmdp_questions"
    d.mkdir(parents=True)
    (d / "synthetic_questions_bio.csv").write_text('question,answer,choices\nq,7,"[\'a\', \'b\']"\n')
    with pytest.raises(DataError, match="csv:2"):
        load_synthetic_wmdp(tmp_path, ["bio"])


def test_held_out_flag_rates_and_thresholds(shared_data: Path) -> None:
    forget = [r["question"] for r in load_synthetic_wmdp(shared_data / "eco")]
    lines = (shared_data / "nq-open" / "NQ-open.dev.jsonl").read_text().splitlines()[:1200]
    retain = [json.loads(x)["question"] for x in lines]
    med = (shared_data / "medqa" / "medqa" / "test.jsonl").read_text().splitlines()[:300]
    related = [json.loads(x)["question"] for x in med]
    rep = classifier_report(forget, retain, related=related, test_frac=0.3, seed=0)
    at05, at999 = rep["threshold=0.5"], rep["threshold=0.999"]
    assert rep["test"] == {"forget": 90, "retain": 360, "related": 300}
    # numbers recorded in docs/eco.md
    assert at05["tpr_forget"] == 1.0 and at05["fpr_retain"] == pytest.approx(14 / 360)
    assert at05["fpr_related"] == pytest.approx(226 / 300) and at999["tpr_forget"] == pytest.approx(1 / 90)
    # the synthetic WMDP questions are general science: a related domain (MedQA) is over-flagged at 0.5
    assert at05["fpr_related"] > 0.3
    # the stricter official threshold flags fewer prompts, never more
    for k in ("tpr_forget", "fpr_retain", "fpr_related"):
        assert at999[k] <= at05[k]


def test_threshold_rule() -> None:
    clf = PromptClassifier().fit(["toxin synthesis route", "nerve agent precursor"] * 4,
                                 ["capital of France", "height of Everest"] * 4)
    p = clf.proba(["toxin synthesis route"])[0]
    assert clf.flag(["toxin synthesis route"], threshold=p - 1e-9) == [True]
    assert clf.flag(["toxin synthesis route"], threshold=p) == [False]  # strictly greater
    with pytest.raises(ConfigError):
        PromptClassifier(threshold=1.0)
    with pytest.raises(ConfigError, match="fit"):
        PromptClassifier().proba(["x"])
