from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from llmlab.core.errors import ConfigError, DataError
from llmlab.tasks.test_of_time import (
    QUESTION_TYPES,
    ToTArithmetic,
    ToTSemantic,
    canonical_answer,
    generate_semantic,
    normalize_value,
    parse_answer,
    parse_label,
)

# -- parsing and normalisation -------------------------------------------------------------------------


def test_parse_answer_takes_last_block_with_the_keys() -> None:
    text = 'First {"answer": "wrong"} then JSON = {"explanation": "a {nested} brace", "answer": "352 BC"}'
    assert parse_answer(text, ["answer"]) == {"answer": "352 BC"}
    assert parse_answer('{"explanation": "x"}', ["answer"]) is None
    assert parse_answer(None, ["answer"]) is None


def test_parse_answer_accepts_python_literals_and_unquoted_values() -> None:
    assert parse_answer("{'hours': 5, 'minutes': 0}", ["hours", "minutes"]) == {"hours": 5, "minutes": 0}
    # The question asks for `"answer": <year> <era>` unquoted: invalid JSON, read leniently.
    assert parse_answer('JSON = {"explanation": "it\'s 8 years", "answer": 352 BC}', ["answer"]) == {
        "answer": "352 BC"
    }
    # The compare category's own example misspells the key.
    assert parse_answer('{"unorered_list": ["Bob"]}', ["unordered_list"]) == {"unordered_list": ["Bob"]}


def test_normalize_value_rules() -> None:
    assert normalize_value("1307") == normalize_value(1307) == 1307.0
    assert normalize_value("  Same_Day ") == "same_day"
    assert normalize_value("4:31") == "04:31"
    unordered = normalize_value(["Kyle", "bob", "kyle"], "unordered_list")
    assert unordered == normalize_value(["BOB", "Kyle"], "unordered_list")
    assert normalize_value(["a", "b"], "ordered_list") != normalize_value(["b", "a"], "ordered_list")
    # idempotent: the canonical form survives another round
    once = canonical_answer('{"unordered_list": ["Joe", "Kyle"]}', ["unordered_list"])
    assert canonical_answer(once, ["unordered_list"]) == once


def test_parse_label_is_safe_and_names_the_row() -> None:
    assert parse_label("{'answer': '352 BC'}", "f.json: row 3") == {"answer": "352 BC"}
    with pytest.raises(DataError, match=r"f\.json: row 3: label is not a Python literal"):
        parse_label("__import__('os').system('true')", "f.json: row 3")
    with pytest.raises(DataError, match="row 4: label must be a non-empty dict"):
        parse_label("['a']", "f.json: row 4")


# -- ToT-Arithmetic scoring ----------------------------------------------------------------------------


def _arith_item(label: str, qtype: str = "duration"):
    task = ToTArithmetic()
    item, _ = task.item_from_record({"question": "q", "question_type": qtype, "label": label, "prediction": ""}, "x:1")
    return task, item


@pytest.mark.parametrize(
    ("label", "qtype", "prediction", "correct"),
    [
        ("{'answer': '1307'}", "duration", '{"answer": 1307}', True),
        ("{'answer': '1307'}", "duration", '{"answer": 1306}', False),
        ("{'hours': 17, 'minutes': 48, 'seconds': 51}", "duration", '{"hours": 17, "minutes": 48, "seconds": 51}',
         True),
        ("{'hours': 17, 'minutes': 48, 'seconds': 51}", "duration", '{"hours": 17, "minutes": 48, "seconds": 50}',
         False),
        ("{'hours': 17, 'minutes': 48, 'seconds': 51}", "duration", '{"hours": 17, "minutes": 48}', False),
        ("{'unordered_list': ['Thursday', 'Friday']}", "trick", '{"unordered_list": ["friday", "Thursday"]}', True),
        ("{'unordered_list': ['Thursday', 'Friday']}", "trick", '{"unordered_list": ["Friday"]}', False),
        ("{'ordered_list': ['Joe', 'Jenny']}", "compare", '{"ordered_list": ["Jenny", "Joe"]}', False),
        ('{"H": 2.0, "M": 13.0, "S": 30.0}', "multi_op", '{"H": 2, "M": 13, "S": 30}', True),
        ("{'day': 'same_day', 'time': '04:31'}", "timezone", '{"day": "same_day", "time": "4:31"}', True),
        ("{'day': '+2', 'time': '21:44:10'}", "multi_op", '{"day": "-2", "time": "21:44:10"}', False),
        ("{'answer': '352 BC'}", "add_subtract", "no json here", False),
    ],
)
def test_arithmetic_scoring(label: str, qtype: str, prediction: str, correct: bool) -> None:
    task, item = _arith_item(label, qtype)
    assert task.score(item, prediction).correct is correct


def test_arithmetic_aggregate_per_category() -> None:
    task = ToTArithmetic()
    recs = [
        {"question": "a", "question_type": "trick", "label": "{'answer': 'x'}", "prediction": '{"answer": "x"}'},
        {"question": "b", "question_type": "trick", "label": "{'answer': 'y'}", "prediction": '{"answer": "n"}'},
        {"question": "c", "question_type": "schedule", "label": "{'answer': 2}", "prediction": '{"answer": 2}'},
        {"question": "d", "question_type": "schedule", "label": "{'answer': 2}", "prediction": "?"},
    ]
    scores = [task.score(*task.item_from_record(r, f"p:{i}")) for i, r in enumerate(recs)]
    agg = task.aggregate(scores)
    assert agg["accuracy"] == 0.5
    assert agg["per_category"]["trick"]["accuracy"] == 0.5
    assert agg["per_category"]["schedule"] == {"n": 2, "accuracy": 0.5, "unparsed": 1}


def test_item_from_record_requires_keys() -> None:
    with pytest.raises(DataError, match=r"p\.jsonl:7: missing key 'label'"):
        ToTArithmetic().item_from_record({"question": "q", "question_type": "t", "prediction": "x"}, "p.jsonl:7")


def test_malformed_files_name_file_and_row(tmp_path: Path) -> None:
    good = {"question": "q", "question_type": "trick", "label": "{'answer': 'x'}"}
    f = tmp_path / "bad.json"
    f.write_text(json.dumps([good, {"question": "q", "label": "{'answer': 'x'}"}]))
    with pytest.raises(DataError, match=r"bad\.json: row 1: missing key 'question_type'"):
        ToTArithmetic({"data_file": str(f)}).items()
    f.write_text(json.dumps([good, good, {**good, "label": "{'answer': 'x'"}]))
    with pytest.raises(DataError, match=r"bad\.json: row 2: label is not a Python literal"):
        ToTArithmetic({"data_file": str(f)}).items()
    with pytest.raises(DataError, match="data file not found"):
        ToTArithmetic({"data_file": str(tmp_path / "nope.json")}).items()


def test_real_data_counts_and_golden_scores_one(shared_data: Path) -> None:
    task = ToTArithmetic({"data_dir": str(shared_data)})
    items = task.items()
    assert len(items) == 1850
    counts = Counter(it.metadata["category"] for it in items)
    assert counts == {"add_subtract": 350, "compare": 350, "multi_op": 350, "schedule": 250, "trick": 250,
                      "duration": 200, "timezone": 100}
    fmt = Counter((it.metadata["category"], ",".join(it.metadata["keys"])) for it in items)
    assert fmt[("timezone", "day,time")] == 73 and fmt[("multi_op", "H,M,S")] == 100
    # golden answers through the method-side extractor score 1.0 everywhere
    scores = []
    for it in items:
        reply = "JSON = " + json.dumps({"explanation": "...", **it.target})
        scores.append(task.score(it, task.prompt(it).extract(reply)))  # type: ignore[misc]
    agg = task.aggregate(scores)
    assert agg["accuracy"] == 1.0 and agg["unparsed"] == 0
    assert set(agg["per_category"]) == set(counts)


# -- ToT-Semantic generator: answers recomputed from the prompt text by an independent solver ----------

FACT_RE = re.compile(r"^(E\d+) was the (R\d+) of (E\d+) from (\d+) to (\d+)\.$", re.M)


def _solve(row: dict) -> str:
    facts = [(s, r, o, int(a), int(b)) for s, r, o, a, b in FACT_RE.findall(row["prompt"])]
    q = row["question"]

    def chain(rel: str, obj: str) -> list[tuple]:
        return sorted((f for f in facts if f[1] == rel and f[2] == obj), key=lambda f: f[3])

    if m := re.match(r"Which entity was the (R\d+) of (E\d+) in (\d+)\?", q):
        (ans,) = {f[0] for f in chain(m[1], m[2]) if f[3] <= int(m[3]) <= f[4]}
        return ans
    if m := re.match(r"At what time did (E\d+) (start|stop) being the (R\d+) of (E\d+)\?", q):
        (f,) = [f for f in chain(m[3], m[4]) if f[0] == m[1]]
        return str(f[3] if m[2] == "start" else f[4])
    if m := re.match(r"Find the number of unique entities that were the (R\d+) of (E\d+) between (\d+) and (\d+)", q):
        a, b = int(m[3]), int(m[4])
        return str(len({f[0] for f in chain(m[1], m[2]) if not (f[4] < a or f[3] > b)}))
    if m := re.match(r"Find the entity that was the (R\d+) of (E\d+) immediately (after|before) (E\d+) was", q):
        c = chain(m[1], m[2])
        (i,) = [k for k, f in enumerate(c) if f[0] == m[4]]
        return c[i + 1][0] if m[3] == "after" else c[i - 1][0]
    if m := re.match(r"At the start time of (E\d+) being the (R\d+) of (E\d+), (E\d+) was the (R\d+) of", q):
        (f1,) = [f for f in chain(m[2], m[3]) if f[0] == m[1]]
        (ans,) = {f[2] for f in facts if f[0] == m[4] and f[1] == m[5] and f[3] <= f1[3] <= f[4]}
        return ans
    if m := re.match(r"Identify the entity that was the (first|last) (R\d+) of entity (E\d+)", q):
        c = chain(m[2], m[3])
        return c[0][0] if m[1] == "first" else c[-1][0]
    if m := re.search(r"(?:The (\d+)\w\w time it happened, f|F)or how many years was (E\d+) the (R\d+) of (E\d+)", q):
        occ = [f for f in chain(m[3], m[4]) if f[0] == m[2]]
        k = int(m[1]) if m[1] else 1
        if not m[1]:
            assert len(occ) == 1
        return str(occ[k - 1][4] - occ[k - 1][3])
    if m := re.match(r"Give me a comma-separated list of all entities that were the (R\d+) of (E\d+)", q):
        return ",".join(f[0] for f in chain(m[1], m[2]))
    raise AssertionError(f"unrecognised question: {q}")


def test_generator_answers_are_exact_and_balanced() -> None:
    rows = generate_semantic(112, seed=3)
    assert Counter(r["question_type"] for r in rows) == dict.fromkeys(QUESTION_TYPES, 14)
    assert Counter(r["graph_gen_algorithm"] for r in rows) == {
        g: 16 for g in ("er", "sbm", "ba", "sfn", "star", "complete", "awe")
    }
    for r in rows:
        assert _solve(r) == r["label"], r["question"]
        assert r["question"] in r["prompt"]
        # anonymised: only E/R ids, and no two holders of one role overlap in time
        facts = FACT_RE.findall(r["prompt"])
        assert facts
        roles: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for _s, rel, o, a, b in facts:
            assert int(a) < int(b)
            roles.setdefault((rel, o), []).append((int(a), int(b)))
        for spans in roles.values():
            spans.sort()
            assert all(prev[1] < nxt[0] for prev, nxt in itertools.pairwise(spans))


def test_generator_is_seeded_and_checks_knobs() -> None:
    assert generate_semantic(10, seed=5) == generate_semantic(10, seed=5)
    assert generate_semantic(10, seed=5) != generate_semantic(10, seed=6)
    rows = generate_semantic(6, seed=0, graph_generators=["star"], question_types=["timeline"],
                             sorting_types=["start_time"], min_entities=5, max_entities=5)
    for r in rows:
        starts = [int(a) for *_, a, _b in FACT_RE.findall(r["prompt"])]
        assert starts == sorted(starts)
        assert len(r["label"].split(",")) >= 2
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        generate_semantic(1, seed=0, colour="red")


def test_semantic_task_on_generated_file(tmp_path: Path) -> None:
    rows = generate_semantic(56, seed=2)
    f = tmp_path / "sem.json"
    f.write_text(json.dumps(rows))
    task = ToTSemantic({"data_file": str(f)})
    items = task.items()
    assert len(items) == 56
    golden = [task.score(it, task.prompt(it).extract(json.dumps({"answer": it.target}))) for it in items]  # type: ignore[misc]
    assert task.aggregate(golden)["accuracy"] == 1.0
    wrong = [task.score(it, '{"answer": "E0"}') for it in items]
    assert task.aggregate(wrong)["accuracy"] == 0.0
    # number answers compare numerically, timelines element-wise
    t_item = next(it for it in items if it.metadata["category"] == "timeline")
    assert task.score(t_item, json.dumps({"answer": t_item.target.lower().replace(",", ", ")})).correct
    assert not task.score(t_item, json.dumps({"answer": ",".join(reversed(t_item.target.split(",")))})).correct


def test_semantic_missing_file_hints_generate(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="llmlab generate tot_semantic"):
        ToTSemantic({"data_dir": str(tmp_path)}).items()
