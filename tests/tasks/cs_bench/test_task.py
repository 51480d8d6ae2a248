from __future__ import annotations

from pathlib import Path

import pytest

from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.contracts import Roles
from llmlab.core.errors import DataError, UnsupportedFeatureError
from llmlab.tasks.cs_bench import CSBench, show_result


def test_real_data_counts_per_language(shared_data: Path) -> None:
    for lang in ("EN", "CN", "DE", "FR"):
        items = list(CSBench({"languages": [lang]}).items())
        assert len(items) == 2183
        fmts = [i.metadata["format"] for i in items]
        assert (fmts.count("Multiple-choice"), fmts.count("Assertion"), fmts.count("Fill-in-the-blank"),
                fmts.count("Open-ended")) == (1336, 442, 235, 170)
    de = list(CSBench({"languages": ["DE"]}).items())
    assert sum(i.metadata["gold_invalid"] for i in de) == 2
    valid = list(CSBench({"languages": ["EN"], "split": "valid"}).items())
    assert len(valid) == 236


def test_prompts_keep_official_structure(shared_data: Path) -> None:
    t = CSBench({"formats": ["Multiple-choice"]})
    item = next(iter(t.items()))
    q = t.prompt(item)
    for letter in "ABCD":
        assert f"\n({letter}){item.input[letter]}" in q.text
    assert q.text.index(item.input["Question"]) < q.text.index("(A)")
    assert q.extract is None  # both scorers need the raw text
    cn = CSBench({"languages": ["CN"], "formats": ["Assertion"]})
    assert "判断题" in cn.prompt(next(iter(cn.items()))).text


def _rec(fmt: str, answer: object, output: str, **extra: object) -> dict[str, object]:
    return {"ID": 1, "Format": fmt, "Tag": "Knowledge", "Domain": "Operating System", "Language": "English",
            "Question": "Q?", "Answer": answer, "output": output, **extra}


def test_score_reports_fixed_and_official() -> None:
    t = CSBench()
    opts = {"A": "stack", "B": "queue", "C": "heap", "D": "tree"}
    item, pred = t.item_from_record(_rec("Multiple-choice", "C", "It is a heap: C", **opts), "f:1")
    s = t.score(item, pred)
    assert s.value == 1.0 and s.details["score_official"] == 0.0  # official read the article "a"
    item, pred = t.item_from_record(_rec("Assertion", True, "True."), "f:2")
    s = t.score(item, pred)
    assert s.value == 1.0 and s.details["score_official_literal"] == 0.0
    item, pred = t.item_from_record(_rec("Open-ended", "ref", "mine"), "f:3")
    with pytest.raises(UnsupportedFeatureError):
        t.score(item, pred)
    with pytest.raises(DataError):
        t.item_from_record({"ID": 1}, "f:4")


@pytest.mark.anyio
async def test_judged_formats_use_the_judge_role() -> None:
    t = CSBench()
    judge = MockBackend(["Tier 3. Score (1-10): 7", "Score (0 or 1): 1"])
    roles = Roles(Model("mock:echo"), judge=Model(judge))
    item, pred = t.item_from_record(_rec("Open-ended", "paging splits memory", "pages"), "f:1")
    s = await t.ascore(item, pred, roles)
    assert s.value == pytest.approx(0.7)
    assert "Reference Answer: paging splits memory" in judge.requests[0].messages[0].text  # type: ignore[index]
    assert judge.requests[0].temperature == 0.0
    item, pred = t.item_from_record(_rec("Fill-in-the-blank", "LIFO", "lifo"), "f:2")
    s = await t.ascore(item, pred, roles)
    assert s.value == 1.0 and s.correct is True


def test_aggregate_like_show_result() -> None:
    t = CSBench()
    opts = {"A": "x", "B": "y", "C": "z", "D": "w"}
    scores = []
    for out, tag, dom in (("C", "Knowledge", "Operating System"), ("a lot; C", "Reasoning", "Computer Network"),
                          ("B", "Reasoning", "Operating System")):
        item, pred = t.item_from_record(_rec("Multiple-choice", "C", out, **opts) | {"Tag": tag, "Domain": dom}, "f")
        scores.append(t.score(item, pred))
    agg = t.aggregate(scores)
    assert agg["score"] == pytest.approx(2 / 3)
    assert agg["score_official"] == pytest.approx(1 / 3)
    assert agg["fixed"]["by_format_and_tag"]["Reasoning"]["Multiple-choice"] == pytest.approx(0.5)
    assert agg["fixed"]["by_domain_and_tag"]["Overall"]["Operating System"] == pytest.approx(0.5)
    assert agg["mc_disagreements"] == 1
    table = show_result([("Assertion", "Other", "Operating System", 1.0)])
    assert table["by_format_and_tag"]["Overall"]["All"] == 0.0  # unknown tag left out, empty cell 0
