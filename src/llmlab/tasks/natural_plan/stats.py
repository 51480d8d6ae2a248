"""Shape statistics of NATURAL PLAN records, to compare generated data with the official files.

Used by the generator test (against numbers measured on the official files, see ``docs/natural_plan.md``)
and by ``tests/parity/test_natural_plan_official.py`` (against an official checkout).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from llmlab.tasks.natural_plan.common import problem_text

_TASK = re.compile(r"TASK:")
_CITIES = re.compile(r"visit (\d+) European cities")


def trip_flight_pieces(problem: str) -> list[str]:
    """The listed flights of a trip problem: ``"A and B"`` / ``"from A to B"`` pieces, in order."""
    _, sep, rest = problem.partition("direct flights:")
    if not sep:
        return []
    listing = re.split(r"\n\s*\n|Find a trip", rest.strip())[0].strip().rstrip(".")
    return [p.strip() for p in listing.replace("\n", " ").split(",") if p.strip()]


def trip_flight_stats(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Flight density of trip records.

    Returns:
        ``flights_per_city``: the mean over records of (listed flights / cities), a two-way
        ``"A and B"`` counting once; ``one_way_share``: one-way pieces over all listed pieces.
    """
    ratios, pieces_all, one_way = [], 0, 0
    for rec in records:
        pieces = trip_flight_pieces(problem_text(str(rec["prompt_0shot"])))
        k = int(rec["num_cities"])
        ratios.append(len(pieces) / k)
        pieces_all += len(pieces)
        one_way += sum(p.startswith("from ") for p in pieces)
    return {"flights_per_city": sum(ratios) / len(ratios), "one_way_share": one_way / max(pieces_all, 1)}


def fewshot_examples(prompt_5shot: str) -> list[str]:
    """The example problems of a few-shot prompt (every ``TASK:`` block but the last, the query)."""
    blocks = prompt_5shot.split("TASK:")[1:-1]
    return [b.split("SOLUTION:")[0].strip() for b in blocks]


def prompt_shape(records: Sequence[Mapping[str, Any]], bucket: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """How the prompts of ``records`` are laid out.

    Args:
        records: Official or generated records.
        bucket: The size field(s) (``num_cities``; calendar: ``("num_people", "num_days")``) whose value
            the examples should share with the query;
            for trip records the examples' city count is read from their ``visit N European cities``.

    Returns:
        ``zero_shot_bare`` (share of 0-shot prompts with no ``TASK:``/``SOLUTION:`` wrapper and equal
        to the query of the 5-shot prompt), ``shots`` (the set of example counts), ``fixed_per_bucket``
        (every query of one bucket value gets the same examples), ``same_size`` (share of examples
        whose city count equals the query's; trip only, else ``None``), ``field_types``
        (field → sorted type names).
    """
    fields = (bucket,) if isinstance(bucket, str) else bucket
    bare, same, total_ex = 0, 0, 0
    shots: set[int] = set()
    by_bucket: dict[Any, set[tuple[str, ...]]] = defaultdict(set)
    types: dict[str, set[str]] = defaultdict(set)
    for rec in records:
        zero, five = str(rec["prompt_0shot"]), str(rec["prompt_5shot"])
        bare += not _TASK.search(zero) and "SOLUTION:" not in zero and zero.strip() == problem_text(five)
        examples = fewshot_examples(five)
        shots.add(len(examples))
        if fields is not None:
            by_bucket[tuple(str(rec[f]) for f in fields)].add(tuple(examples))
        if bucket == "num_cities":
            for ex in examples:
                m = _CITIES.search(ex)
                total_ex += 1
                same += m is not None and int(m.group(1)) == int(rec["num_cities"])
        for key, value in rec.items():
            if not key.startswith(("prompt_", "pred_")) and key != "id":
                types[key].add(type(value).__name__)
    return {
        "zero_shot_bare": bare / len(records),
        "shots": sorted(shots),
        "fixed_per_bucket": all(len(v) == 1 for v in by_bucket.values()) if bucket is not None else None,
        "same_size": same / total_ex if total_ex else None,
        "field_types": {k: sorted(v) for k, v in sorted(types.items())},
    }
