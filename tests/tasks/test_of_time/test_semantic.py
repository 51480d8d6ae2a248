from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from llmlab.core.errors import ConfigError, DataError
from llmlab.tasks.test_of_time.semantic import QUESTION_TYPES, ToTSemantic, generate_semantic

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
