"""NATURAL PLAN generator vs the official data files: flight density, prompt layout, field types.

Runs only when pointed at an official checkout (google-deepmind/natural-plan with its ``data/*.json``;
the JSON files are large, fetch them with the checkout, never commit them):

    LLMLAB_NATURAL_PLAN_OFFICIAL=/path/to/natural-plan python -m pytest tests/parity/test_natural_plan_official.py -q -s

For each task it reads the official records, generates as many with our generator (default knobs,
seed 0; trip with the official city counts), and compares :mod:`llmlab.tasks.natural_plan.stats` of both:
the 0-shot prompt is the bare task, 5 examples, fixed per size, of the query's size (trip), the same
field types, and (trip) flights per city within 0.15 and the one-way share within 0.03. Each check
prints its two numbers (``-s``).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llmlab.tasks.natural_plan import generate_calendar, generate_meeting, generate_trip
from llmlab.tasks.natural_plan.common import load_official
from llmlab.tasks.natural_plan.stats import prompt_shape, trip_flight_stats

OFFICIAL = os.environ.get("LLMLAB_NATURAL_PLAN_OFFICIAL")
DATA = Path(OFFICIAL) / "data" if OFFICIAL is not None else Path("-")
pytestmark = pytest.mark.skipif(
    OFFICIAL is None or not (DATA / "trip_planning.json").is_file(),
    reason="set LLMLAB_NATURAL_PLAN_OFFICIAL to a google-deepmind/natural-plan checkout with data/*.json",
)

BUCKETS: dict[str, Any] = {
    "trip_planning": "num_cities",
    "meeting_planning": "num_people",
    "calendar_scheduling": ("num_people", "num_days"),
}


def _official(name: str) -> list[dict[str, Any]]:
    return [rec for _, rec in load_official(DATA / f"{name}.json")]


def _ours(name: str, official: list[dict[str, Any]]) -> list[dict[str, Any]]:
    n = len(official)
    if name == "trip_planning":  # same city counts as the official file, in the same proportions
        counts = Counter(int(r["num_cities"]) for r in official)
        out: list[dict[str, Any]] = []
        for k, m in sorted(counts.items()):
            out += generate_trip(m, seed=k, cities=k)
        return out
    return generate_meeting(n, 0) if name == "meeting_planning" else generate_calendar(n, 0)


def _report(name: str, key: str, theirs: Any, ours: Any) -> None:
    print(f"{name:20s} {key:18s} official={theirs!s:40s} ours={ours!s}")


@pytest.mark.parametrize("name", list(BUCKETS))
def test_prompt_layout_and_field_types_match(name: str) -> None:
    official = _official(name)
    ours = _ours(name, official)
    theirs_shape, ours_shape = prompt_shape(official, BUCKETS[name]), prompt_shape(ours, BUCKETS[name])
    for key in ("zero_shot_bare", "shots", "fixed_per_bucket", "same_size", "field_types"):
        _report(name, key, theirs_shape[key], ours_shape[key])
    mismatched = [k for k in ("zero_shot_bare", "shots", "fixed_per_bucket", "same_size")
                  if theirs_shape[k] != ours_shape[k]]
    assert not mismatched, {k: (theirs_shape[k], ours_shape[k]) for k in mismatched}
    shared = set(theirs_shape["field_types"]) & set(ours_shape["field_types"])
    assert {k: theirs_shape["field_types"][k] for k in shared} == {k: ours_shape["field_types"][k] for k in shared}


def test_trip_flight_density_matches() -> None:
    official = _official("trip_planning")
    theirs, ours = trip_flight_stats(official), trip_flight_stats(_ours("trip_planning", official))
    for key in theirs:
        _report("trip_planning", key, round(theirs[key], 3), round(ours[key], 3))
    assert abs(theirs["flights_per_city"] - ours["flights_per_city"]) < 0.15
    assert abs(theirs["one_way_share"] - ours["one_way_share"]) < 0.03
