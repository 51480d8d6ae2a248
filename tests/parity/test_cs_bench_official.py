"""CS-Bench scorer vs the official ``gen_judgment.py`` on >= 500 crafted predictions.

Runs only when pointed at an official checkout (csbench/csbench, a folder holding ``gen_judgment.py``):

    LLMLAB_CSBENCH_OFFICIAL=/path/to/csbench python -m pytest tests/parity/test_cs_bench_official.py -q

The official module is imported from that folder with two stubs: ``test_call_llm`` (it imports the
pre-1.0 ``openai`` API) and ``call_gpt4`` (the undefined name the official judging branch calls), both
answering with a scripted judge reply. Nothing official is copied into this repository.

Expected: multiple choice — our ``score_official`` equals the official score on every item; our fixed
``score`` differs only where the official regex took an article/word letter (checked per item);
assertions — the shipped code gives 0 everywhere (the "true" vs "TRUE" bug), ours equals the official
code with only that comparison patched; fill-in-the-blank and open-ended — equal on every item.
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from llmlab.tasks.cs_bench import CSBench, mc_choice, mc_choice_official

OFFICIAL = os.environ.get("LLMLAB_CSBENCH_OFFICIAL")
pytestmark = pytest.mark.skipif(
    OFFICIAL is None or not (Path(OFFICIAL) / "gen_judgment.py").is_file(),
    reason="set LLMLAB_CSBENCH_OFFICIAL to a csbench/csbench checkout (folder with gen_judgment.py)",
)

MC_OUTPUTS = [
    "{L}", "{l}", "({L})", "The answer is {L}.", "Answer: {L}", "answer is ({l})", "{L}. {opt}", "{L}) {opt}",
    "The correct option is {L} because a queue is FIFO.", "A stack would fail here, so {L}.",
    "I think it is a tricky one: {L}", "Option {L}", "**{L}**", "{L}\n\nExplanation: a tree is a graph.",
    "It must be ({L}), not (A).", "Neither B nor C; {L}", "", "I do not know.", "a", "The answer is a {opt}",
    "选项{L}", "答案：{L}", "Die Antwort ist {L}", "La réponse est {L}", "D is wrong and {L} is right",
    "{opt}", "Based on the analysis, the answer should be {L}.",
]
TF_OUTPUTS = ["true", "False", "TRUE.", "false, because a stack is LIFO", "It is true.", "The statement is false.",
              "Not sure", "", "True or false? False.", "untrue", "Wahr", "Faux", "正确", "true/false: true"]
FILL_JUDGE = ["1", "0", "Score: 1", "Score (0 or 1): 0", "The student is right. 1", "0 points; 1 mistake",
              "The answer matches the standard answer. Score: 1.", "no score given", "10", "1 out of 1", "0.5"]
OPEN_JUDGE = ["7", "Score (1-10): 9", "10", "I would give 3 points.", "8/10", "Tier 2: 5 points", "0",
              "score 11", "The answer deserves a 6 out of 10", "none", "1-3 points: 2", "10 points, 7"]


def _rows() -> list[dict[str, Any]]:
    data = os.environ.get("LLMLAB_DATA_DIR")
    task = CSBench({"languages": ["EN", "CN"]} | ({"data_dir": data} if data else {}))
    try:
        rows = [r for _, r in task.rows()]
    except Exception:  # no data: synthetic rows in the dataset's format
        rows = []
    if rows:
        return rows
    out: list[dict[str, Any]] = []
    for i in range(400):
        fmt = ("Multiple-choice", "Assertion", "Fill-in-the-blank", "Open-ended")[i % 4]
        r: dict[str, Any] = {"ID": i, "Format": fmt, "Tag": ("Knowledge", "Reasoning")[i % 2],
                             "Domain": "Operating System", "Language": "English", "Question": f"q{i}"}
        if fmt == "Multiple-choice":
            r |= {"A": "a stack", "B": "a queue", "C": "a heap", "D": "a tree", "Answer": "ABCD"[i % 4]}
        else:
            r["Answer"] = bool(i % 3) if fmt == "Assertion" else f"answer {i}"
        out.append(r)
    return out


def _official(patch_assertion: bool) -> types.ModuleType:
    assert OFFICIAL is not None
    stub = types.ModuleType("test_call_llm")
    stub.call_gpt = lambda *a, **k: None  # type: ignore[attr-defined]
    sys.modules["test_call_llm"] = stub
    src = (Path(OFFICIAL) / "gen_judgment.py").read_text(encoding="utf-8")
    if patch_assertion:
        src, n = re.subn(r"(match\.group\(0\)\n\s*json_obj\[\"score\"\] = 1 if final_choice_str)( == answer)",
                         r"\1.upper()\2", src)
        assert n == 1, "the official assertion comparison was not found"
    spec = importlib.util.spec_from_loader(f"gen_judgment_{int(patch_assertion)}", loader=None)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    exec(compile(src, str(Path(OFFICIAL) / "gen_judgment.py"), "exec"), mod.__dict__)
    return mod


def _crafted(rows: list[dict[str, Any]], n: int = 1200, seed: int = 0) -> list[tuple[dict[str, Any], str, str]]:
    rng = random.Random(seed)
    out = []
    by_fmt: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_fmt.setdefault(r["Format"], []).append(r)
    fmts = sorted(by_fmt)
    for i in range(n):
        r = rng.choice(by_fmt[fmts[i % len(fmts)]])
        judge = ""
        if r["Format"] == "Multiple-choice":
            letter = rng.choice("ABCD") if rng.random() < 0.5 else str(r["Answer"])
            opt = str(r.get(letter, ""))
            out_text = rng.choice(MC_OUTPUTS).format(L=letter, l=letter.lower(), opt=opt)
        elif r["Format"] == "Assertion":
            out_text = rng.choice(TF_OUTPUTS)
        else:
            out_text = f"student answer {i}"
            judge = rng.choice(FILL_JUDGE if r["Format"] == "Fill-in-the-blank" else OPEN_JUDGE)
        out.append((r, out_text, judge))
    return out


def _article_letter(text: str) -> bool:
    """The official regex's first hit is a word letter: lower-case, or "A" opening a noun phrase."""
    m = re.search(r"\b[ABCD]\b", text, re.IGNORECASE)
    return m is not None and (m.group(0).islower() or bool(re.match(r"\s+[a-z]", text[m.end():])))


@pytest.mark.anyio
async def test_cs_bench_scorer_matches_official() -> None:
    from llmlab.backends.mock import MockBackend
    from llmlab.backends.model import Model
    from llmlab.core.contracts import Roles

    shipped, patched = _official(False), _official(True)
    task = CSBench()
    cases = _crafted(_rows())
    assert len(cases) >= 500
    counts = {"mc": 0, "mc_fixed_differs": 0, "tf": 0, "judged": 0}
    reasons: dict[str, int] = {}
    for row, output, judge in cases:
        rec = {**row, "output": output}
        item, pred = task.item_from_record(rec, "crafted")
        if row["Format"] in ("Fill-in-the-blank", "Open-ended"):
            shipped.call_gpt4 = lambda prompt, _j=judge: _j
            official = shipped.score_json_object(dict(rec), True)["score"]
            ours = await task.ascore(item, pred, Roles(Model(MockBackend([judge]))))
            assert ours.value == official, (row["Format"], judge, ours.value, official)
            counts["judged"] += 1
            continue
        ours = task.score(item, pred)
        official = shipped.score_json_object(dict(rec), False)["score"]
        if row["Format"] == "Multiple-choice":
            counts["mc"] += 1
            assert ours.details["score_official"] == official, (output, row["Answer"])
            if ours.value != official:
                counts["mc_fixed_differs"] += 1
                assert mc_choice(output) != mc_choice_official(output)
                if _article_letter(output):
                    why = "article"
                elif mc_choice_official(output) is None:
                    why = "no_word_boundary"  # e.g. "选项C": CJK characters are word characters for \b
                else:
                    assert re.search(r"answer|option|antwort|réponse|\(", output, re.I), output
                    why = "explicit_answer"
                reasons[why] = reasons.get(why, 0) + 1
        else:
            counts["tf"] += 1
            assert official == 0  # the shipped "true" == "TRUE" compare
            fixed_official = patched.score_json_object(dict(rec), False)["score"]
            if row["Language"] == "English" or str(row["Answer"]) in ("True", "False"):
                words = re.findall(r"\b(true|false)\b", output.lower())
                if words or not re.search("正确|错误|wahr|falsch|vrai|faux", output, re.I):
                    assert ours.value == fixed_official, (output, row["Answer"])
    print("cs-bench parity:", counts, "fixed-MC differences by reason:", reasons)
    assert counts["mc"] >= 200 and counts["judged"] >= 100 and counts["tf"] >= 100
    assert 0 < counts["mc_fixed_differs"] < counts["mc"] // 2
