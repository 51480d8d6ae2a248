r"""NATURAL PLAN: A Benchmark for LLMs on Natural Language Planning (Zheng et al., arXiv 2406.04520).

Implements the three tasks of the paper (§2: Trip Planning, Meeting Planning, Calendar Scheduling) on
the official data files (google-deepmind/natural-plan ``data/*.json``, CC-BY-4.0, supplied by the user),
the official metrics re-implemented with their quirks (from ``evaluate_{trip_planning,
meeting_planning,calendar_scheduling}.py`` at ca76db3), a strict constraint validator, exact solvers and
a seeded instance generator that writes the official schema (``llmlab generate natural_plan.<task>``).

Official scorer quirks, kept in the official-equivalent ``score`` (comparable to the paper):

- Trip: the parser reads cities only from flight lines (``from (\w+) to (\w+)``: one-word cities),
  stays from the flight days (not from the written ranges), the first ``\d+-\d+`` of a line as a day
  range wherever it is, and stops at a range ending on the day count of ``European cities for N days``.
  EM is a prefix match: extra cities after the golden itinerary are ignored. Only the golden itinerary
  is accepted although others may satisfy every constraint (natural-plan#1).
- Meeting: correct iff the plan makes as many valid meetings as the golden plan (the same NUMBER, not the
  same people); meeting lengths come from the constraints, not the text; the walk stops at the first bad
  step. An empty plan is "correct" when the golden plan meets nobody.
- Calendar: the first ``Day, H:MM - H:MM`` is compared with the golden one; minutes other than ``30``
  read as ``:00`` (``9:15`` equals ``9:00``); the day is case-sensitive.

What we add (ours, not official), reported beside the official number, never mixed into it
(``aggregate`` returns ``official`` and ``strict``):

- Strict validators that accept ANY plan satisfying the instance's constraints and name the broken
  constraint otherwise (trip: spec §2.4 — the official parse checked for cities, stays, total days,
  direct flights and their direction, fixed-day events; meeting: travel times and arrival times as
  stated, no overlap, wanted minutes inside each window, and as many friends as the exact optimum;
  calendar: exact minutes, allowed day, work hours, length, busy times, preferences, earliest when asked).
  The constraints are read from the prompt text, so the validators run on official files too; an
  instance whose prompt is not understood gets ``valid = None`` and is left out of ``strict``.
- Exact solvers (trip: depth-first search; meeting: dynamic programming over subsets; calendar:
  enumeration on the instance's time grid) that compute every generated golden plan.

Deviations from the official code, with reasons:

- An unknown place or person in a meeting plan (``KeyError``) and a malformed travel/wait step
  (``IndexError``) crash the official script; here they end the walk like any invalid step.
- Meeting accuracy is a plain mean over items; the official per-people breakdown divides by the
  constant 100 (the official data has 100 items per bucket).
- Calendar preferences: "not ... before T" means the meeting may not start before T, "not ... after T"
  that it may not end after T (the official data states no rule; its golden plans agree with this).
- Generated instances reuse the official sentence shapes (the scorers and the validators read them) but
  our own preamble wording. Their layout follows the official files (issue 19): ``prompt_0shot`` is the
  bare task; ``prompt_5shot`` holds 5 examples fixed per size and of the query's size; trip flights
  average 1.83 listed flights per city, 4% one-way; calendar ``num_people``/``num_days``/``duration`` are
  strings, ``duration`` in hours ("0.5"/"1"; the official README calls it "number of meetings").
  Trip generation defaults to unique solutions (``unique``), by adding events, so that official EM and
  strict validity agree on generated data.
- The answer extractor (for voting methods) returns a canonical text that the official parser reads to
  the same result as the raw response, so extraction never changes the official score.

Prediction files for ``llmlab score natural_plan.<task> --predictions F`` (JSONL): one official record
per line (the keys of ``data/<task>.json`` plus ``id``) and ``prediction`` (a string; for meeting also a
list of steps). Without ``prediction`` the official ``pred_5shot_pro`` is scored. See docs/natural_plan.md.
"""

from __future__ import annotations

from llmlab.tasks.natural_plan.calendar import (
    CalendarConstraints,
    CalendarScheduling,
    generate_calendar,
    official_calendar_score,
    parse_calendar_prompt,
    parse_calendar_response,
    solve_calendar,
    validate_calendar,
)
from llmlab.tasks.natural_plan.common import NaturalPlanConfig, Violation, load_official
from llmlab.tasks.natural_plan.meeting import (
    MeetingInstance,
    MeetingPlanning,
    generate_meeting,
    official_meeting_count,
    parse_text_plan,
    solve_meeting,
    validate_meeting,
)
from llmlab.tasks.natural_plan.trip import (
    TripConstraints,
    TripPlanning,
    generate_trip,
    official_trip_score,
    parse_trip_prompt,
    parse_trip_response,
    solve_trip,
    validate_trip,
)

__all__ = [
    "CalendarConstraints",
    "CalendarScheduling",
    "MeetingInstance",
    "MeetingPlanning",
    "NaturalPlanConfig",
    "TripConstraints",
    "TripPlanning",
    "Violation",
    "generate_calendar",
    "generate_meeting",
    "generate_trip",
    "load_official",
    "official_calendar_score",
    "official_meeting_count",
    "official_trip_score",
    "parse_calendar_prompt",
    "parse_calendar_response",
    "parse_text_plan",
    "parse_trip_prompt",
    "parse_trip_response",
    "solve_calendar",
    "solve_meeting",
    "solve_trip",
    "validate_calendar",
    "validate_meeting",
    "validate_trip",
]
