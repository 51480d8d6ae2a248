"""NATURAL PLAN calendar scheduling: official slot match (minute quirk kept), strict validator, solver, generator."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from llmlab.core.config import LabConfig, build_config
from llmlab.core.contracts import Item, Score
from llmlab.core.errors import ConfigError, DataError, ParseError
from llmlab.tasks.natural_plan import prompts
from llmlab.tasks.natural_plan.common import (
    IntRange,
    NaturalPlanTask,
    Record,
    Violation,
    attach_fewshot,
    hm_to_min,
    min_to_hm,
    pick_int,
)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NAMES = (
    "Adam", "Albert", "Alice", "Amanda", "Amy", "Andrea", "Arthur", "Austin", "Bobby", "Bradley", "Bruce",
    "Carl", "Charlotte", "Christine", "Cynthia", "Danielle", "Debra", "Denise", "Diana", "Dylan", "Eric",
    "Ethan", "Evelyn", "Gerald", "Gloria", "Harold", "Heather", "Jacob", "Janet", "Jerry", "Joan", "Joyce",
    "Judith", "Julie", "Kathryn", "Kyle", "Larry", "Lauren", "Madison", "Marilyn", "Megan", "Natalie",
    "Nathan", "Olivia", "Pamela", "Patrick", "Ralph", "Roger", "Ruth", "Samuel", "Scott", "Shirley",
    "Teresa", "Theresa", "Tyler", "Victoria", "Walter", "Wayne", "Zachary",
)


# -- the official scorer (google-deepmind/natural-plan evaluate_calendar_scheduling.py) ----------------

_SLOT = re.compile(r"[A-Za-z]+, [0-9]+:[0-9]+ - [0-9]+:[0-9]+")


def _hour_to_num(text: str) -> float:
    hour, minute = text.split(":")[0], text.split(":")[1]
    return float(hour) + (0.5 if minute == "30" else 0.0)


def parse_calendar_response(response: str) -> tuple[str, float, float]:
    """The official parse: the FIRST ``Day, H:MM - H:MM`` → (day, start, end) in hours.

    Quirk kept: minutes other than ``30`` read as ``:00`` (``9:15`` → 9.0); the day is case-sensitive.
    No match → ``("", -1, -1)``.
    """
    found = _SLOT.findall(response)
    if not found:
        return "", -1.0, -1.0
    day, span = found[0].split(",")[0].strip(), found[0].split(",")[1].strip()
    return day, _hour_to_num(span.split("-")[0].strip()), _hour_to_num(span.split("-")[1].strip())


def official_calendar_score(response: str, golden: str) -> float:
    """1.0 iff the official parses of the response and of the golden plan are equal."""
    return 1.0 if parse_calendar_response(response) == parse_calendar_response(golden) else 0.0


# -- constraints, validator, solver --------------------------------------------------------------------

@dataclass
class CalendarConstraints:
    """One calendar instance. Times in minutes after midnight.

    ``avoid`` holds ``(person, day, kind, time)`` with kind ``"day"`` (not that day), ``"before"`` (the
    meeting must not start before ``time``) or ``"after"`` (it must not end after ``time``).
    """

    people: list[str]
    days: list[str]
    minutes: int
    work: tuple[int, int]
    busy: list[tuple[str, str, int, int]] = field(default_factory=list)
    avoid: list[tuple[str, str, str, int | None]] = field(default_factory=list)
    earliest: bool = False


_LENGTHS = {"half an hour": 30, "one hour": 60, "an hour": 60, "one and a half hours": 90, "two hours": 120}
_TIME = r"\d{1,2}:\d{2}"
_DAY = "|".join(WEEKDAYS)


def parse_calendar_prompt(problem: str) -> CalendarConstraints:
    """Read an instance's constraints from its problem text (official wording or ours).

    Raises:
        ParseError: A part of the problem is not understood (the message says which).
    """
    head = re.search(rf"schedule a meeting for (.+?) for (.+?) between the work hours of ({_TIME}) to "
                     rf"({_TIME}) on (.+?)\.(?:\s|$)", problem)
    if head is None:
        raise ParseError("calendar prompt: no 'schedule a meeting for ... between the work hours' sentence")
    people = [p for p in re.split(r",\s*|\s+and\s+", head.group(1)) if p]
    length = head.group(2).strip()
    minutes = _LENGTHS.get(length)
    if minutes is None:
        m = re.fullmatch(r"(\d+) minutes", length)
        if m is None:
            raise ParseError(f"calendar prompt: meeting length {length!r} not understood")
        minutes = int(m.group(1))
    days = re.findall(_DAY, head.group(5))
    body = problem[head.end():]
    _, sep, after = body.partition("existing schedules")
    if not sep or not days:
        raise ParseError("calendar prompt: no days or no 'existing schedules' paragraph")
    parts = after.split("\n", 1)
    sched, _, prefs = (parts[1] if len(parts) > 1 else "").partition("\n\n")
    busy = []
    by_length = sorted(people, key=len, reverse=True)
    for line in (x.strip() for x in sched.split("\n")):
        if not line:
            continue
        who = next((p for p in by_length if line.startswith(p)), None)
        if who is None:
            raise ParseError(f"calendar prompt: a schedule line for nobody: {line[:50]!r}")
        for day, spans in re.findall(rf"({_DAY}) during ((?:{_TIME} to {_TIME}(?:, )?)+)", line):
            for a, b in re.findall(rf"({_TIME}) to ({_TIME})", spans):
                busy.append((who, day, hm_to_min(a), hm_to_min(b)))
    avoid: list[tuple[str, str, str, int | None]] = []
    current: str | None = None
    for sent in re.split(r"(?<=\.)\s+", prefs.strip()):
        m = re.match(rf"(\w+) [^.]*?(?:not|avoid)[^.]*? on ({_DAY})(?: (before|after) ({_TIME}))?", sent)
        cont = re.match(rf"({_DAY})(?: (before|after) ({_TIME}))?\.?$", sent.strip())
        if m and m.group(1) in people:
            current, day, kind, t = m.group(1), m.group(2), m.group(3), m.group(4)
        elif cont and current is not None:
            day, kind, t = cont.group(1), cont.group(2), cont.group(3)
        else:
            current = None
            continue
        avoid.append((current, day, kind if kind is not None else "day", hm_to_min(t) if t else None))
    earliest = re.search(r"earl\w* availability", prefs) is not None
    return CalendarConstraints(people, days, minutes, (hm_to_min(head.group(3)), hm_to_min(head.group(4))),
                               busy, avoid, earliest)


def _slot_violations(c: CalendarConstraints, day: str, start: int, end: int) -> list[Violation]:
    out = []
    if day not in c.days:
        out.append(Violation("day", f"{day} is not one of the days ({', '.join(c.days)})"))
    if start < c.work[0] or end > c.work[1]:
        out.append(Violation("work hours", f"{min_to_hm(start)} - {min_to_hm(end)} is outside "
                                           f"{min_to_hm(c.work[0])} to {min_to_hm(c.work[1])}"))
    if end - start != c.minutes:
        out.append(Violation("duration", f"the meeting lasts {end - start} minutes, not {c.minutes}"))
    for who, d, a, b in c.busy:
        if d == day and a < end and start < b:
            out.append(Violation("busy", f"{who} is busy on {d} during {min_to_hm(a)} to {min_to_hm(b)}"))
    for who, d, kind, t in c.avoid:
        if d != day:
            continue
        if kind == "day":
            out.append(Violation("preference", f"{who} does not want to meet on {d}"))
        elif kind == "before" and t is not None and start < t:
            out.append(Violation("preference", f"{who} does not want to meet on {d} before {min_to_hm(t)}"))
        elif kind == "after" and t is not None and end > t:
            out.append(Violation("preference", f"{who} does not want to meet on {d} after {min_to_hm(t)}"))
    return out


def solve_calendar(c: CalendarConstraints) -> list[tuple[str, int]]:
    """Every feasible ``(day, start)`` in day order then time order (exact).

    Starts are enumerated on the grid of the gcd of all the instance's times, on which every boundary of
    the feasible set lies, so the first element is the earliest availability.
    """
    step = math.gcd(c.minutes, 60, *c.work, *(x for _, _, a, b in c.busy for x in (a, b)),
                    *(t for *_, t in c.avoid if t is not None))
    step = max(step, 1)
    out = []
    for day in c.days:
        for start in range(c.work[0], c.work[1] - c.minutes + 1, step):
            if not _slot_violations(c, day, start, start + c.minutes):
                out.append((day, start))
    return out


def parse_slot(text: str) -> tuple[str, int, int] | None:
    """The first ``Day, H:MM - H:MM`` with exact minutes (the strict reading); ``None`` if absent."""
    found = _SLOT.search(text)
    if found is None:
        return None
    day, _, span = found.group(0).partition(",")
    a, _, b = span.partition("-")
    return day.strip().capitalize(), hm_to_min(a), hm_to_min(b)


def validate_calendar(c: CalendarConstraints, answer: str) -> list[Violation]:
    """Every broken constraint of the proposed slot in ``answer``; empty iff valid.

    Valid iff the slot is on an allowed day, inside work hours, of the right length, overlaps no one's
    busy time, keeps every stated preference, and — when the prompt asks for the earliest availability —
    no feasible slot starts earlier.

    Example:
        >>> c = CalendarConstraints(["A"], ["Monday"], 30, (540, 1020), [("A", "Monday", 540, 600)])
        >>> [v.constraint for v in validate_calendar(c, "Monday, 9:30 - 10:00")]
        ['busy']
    """
    slot = parse_slot(answer)
    if slot is None:
        return [Violation("format", "no time of the form 'Monday, 14:30 - 15:30' found")]
    day, start, end = slot
    out = _slot_violations(c, day, start, end)
    if not out and c.earliest:
        found = solve_calendar(c)
        if found and (c.days.index(found[0][0]), found[0][1]) < (c.days.index(day), start):
            first = found[0]
            out.append(Violation("earliest", f"{first[0]}, {min_to_hm(first[1])} is available earlier"))
    return out


def golden_slot(c: CalendarConstraints) -> tuple[str, int]:
    """The solver's answer: the earliest feasible slot (the only one on a unique instance).

    Raises:
        ParseError: No slot is feasible.
    """
    found = solve_calendar(c)
    if not found:
        raise ParseError("calendar instance has no feasible slot")
    return found[0]


# -- generator -----------------------------------------------------------------------------------------

class CalendarKnobs(LabConfig):
    """Difficulty knobs of :func:`generate_calendar`.

    Attributes:
        people: Participants, an int or ``[lo, hi]`` (the paper: 2 to 7 on one day).
        days: Candidate weekdays, an int or ``[lo, hi]`` (the paper: 1 to 5 with 2 people).
        minutes: Meeting lengths to draw from (30 or 60 in the paper).
        busy_rate: Chance that a half-hour of a person's day is busy.
        free_rate: Chance that a person's calendar is wide open.
        preference_rate: Chance of a preference ("X would rather not meet on D before T").
        earliest_rate: When several slots fit, the chance to ask for the earliest one; otherwise
            meetings are added until one slot fits.
        shots: Examples in ``prompt_5shot``.
    """

    people: IntRange = [2, 7]
    days: IntRange = 1
    minutes: list[int] = [30, 60]
    busy_rate: float = 0.4
    free_rate: float = 0.15
    preference_rate: float = 0.4
    earliest_rate: float = 0.5
    shots: int = 5


def _spans(slots: set[int]) -> list[tuple[int, int]]:
    """Half-hour slot indices (0 = 9:00) → merged (start, end) minutes."""
    out: list[tuple[int, int]] = []
    for s in sorted(slots):
        a = 540 + 30 * s
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], a + 30)
        else:
            out.append((a, a + 30))
    return out


_LENGTH_WORDS = {30: "half an hour", 60: "one hour"}


def _join(names: list[str], last: str = "and") -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def _calendar_instance(rng: random.Random, kn: CalendarKnobs) -> Record:
    k = pick_int(rng, kn.people, "people")
    nd = pick_int(rng, kn.days, "days")
    people, days = rng.sample(NAMES, k), list(WEEKDAYS[:nd])
    minutes = rng.choice(kn.minutes)
    width = minutes // 30
    gday, gslot = rng.choice(days), rng.randint(0, 16 - width)
    reserved = set(range(gslot, gslot + width))
    busy: dict[tuple[str, str], set[int]] = {}
    for p in people:
        wide_open = rng.random() < kn.free_rate
        for d in days:
            busy[p, d] = set() if wide_open else {
                s for s in range(16) if rng.random() < kn.busy_rate and not (d == gday and s in reserved)}
    avoid: list[tuple[str, str, str, int | None]] = []
    if rng.random() < kn.preference_rate:
        who = rng.choice(people)
        options: list[tuple[str, str, str, int | None]] = []
        others = [d for d in days if d != gday]
        if others:
            options.append((who, rng.choice(others), "day", None))
        if gslot > 0:
            options.append((who, gday, "before", 540 + 30 * rng.randint(1, gslot)))
        if gslot + width < 16:
            options.append((who, gday, "after", 540 + 30 * rng.randint(gslot + width, 15)))
        if options:
            avoid.append(rng.choice(options))
    earliest = False
    while True:
        cons = CalendarConstraints(
            people, days, minutes, (540, 1020),
            [(p, d, a, b) for (p, d), s in busy.items() for a, b in _spans(s)], avoid, earliest)
        feasible = solve_calendar(cons)
        if len(feasible) == 1 or earliest:
            break
        if rng.random() < kn.earliest_rate:
            earliest = True
            continue
        day, start = next(f for f in feasible if f != (gday, 540 + 30 * gslot))
        first = (start - 540) // 30
        free = [s for s in range(first, first + width) if not (day == gday and s in reserved)]
        busy[rng.choice(people), day].add(rng.choice(free))
    day, start = golden_slot(cons)
    lines = []
    for p in people:
        per_day = [(d, _spans(busy[p, d])) for d in days if busy[p, d]]
        if not per_day:
            lines.append(rng.choice(prompts.CALENDAR_FREE_SENTENCES).format(name=p))
            continue
        spans = ", ".join(f"{d} during " + ", ".join(f"{min_to_hm(a)} to {min_to_hm(b)}" for a, b in s)
                          for d, s in per_day)
        lines.append(rng.choice(prompts.CALENDAR_BUSY_SENTENCES).format(name=p, spans=spans))
    prefs = ""
    for who, d, kind, t in avoid:
        template = {"day": prompts.CALENDAR_AVOID_DAY, "before": prompts.CALENDAR_AVOID_BEFORE,
                    "after": prompts.CALENDAR_AVOID_AFTER}[kind]
        prefs += template.format(name=who, day=d, time=min_to_hm(t) if t is not None else "")
    if earliest:
        prefs += prompts.CALENDAR_EARLIEST
    problem = (
        prompts.CALENDAR_HEAD.format(people=_join(people), length=_LENGTH_WORDS.get(minutes, f"{minutes} minutes"),
                                     start="9:00", end="17:00",
                                     days=days[0] if nd == 1 else "either " + _join(days, "or"))
        + "\n\n" + prompts.CALENDAR_SCHEDULES.format(period="day" if nd == 1 else "days") + "\n"
        + "\n".join(lines) + "\n\n" + prefs + prompts.CALENDAR_TAIL
    )
    golden = prompts.CALENDAR_GOLDEN.format(day=day, start=min_to_hm(start), end=min_to_hm(start + minutes))
    return {"num_days": nd, "num_people": k, "duration": minutes / 60, "golden_plan": golden,
            "_problem": problem}


def generate_calendar(n: int, seed: int, **knobs: Any) -> list[dict[str, Any]]:
    """Generate ``n`` calendar-scheduling instances in the official schema (plus ``id``).

    Args:
        n: Number of instances.
        seed: Same seed and knobs → same instances.
        **knobs: See :class:`CalendarKnobs` (``people``, ``days``, ``minutes``, ...).

    Returns:
        Records with ``id``, ``num_days``, ``num_people``, ``duration`` (hours; these three are strings,
        as in the official file), ``prompt_0shot``,
        ``prompt_5shot`` and ``golden_plan`` (the one feasible slot, or the earliest when asked for).

    Raises:
        ConfigError: An unknown knob or a bad value.

    Example:
        >>> generate_calendar(1, seed=0, people=2, days=3)[0]["num_days"]
        '3'
    """
    kn = build_config(CalendarKnobs, knobs)
    plo, phi = (kn.people, kn.people) if isinstance(kn.people, int) else (min(kn.people), max(kn.people))
    dlo, dhi = (kn.days, kn.days) if isinstance(kn.days, int) else (min(kn.days), max(kn.days))
    if plo < 1 or phi > len(NAMES) or dlo < 1 or dhi > 5 or not kn.minutes or any(
            m % 30 or not 30 <= m <= 240 for m in kn.minutes):
        raise ConfigError("calendar knobs: people >= 1, days in 1..5, minutes multiples of 30 in 30..240")
    recs = [_calendar_instance(random.Random(f"calendar:{seed}:{i}"), kn) for i in range(n)]

    def shot(k: Any, j: int) -> Record:
        rng = random.Random(f"calendar-shots:{seed}:{k[0]}:{k[1]}:{j}")
        return _calendar_instance(rng, kn.model_copy(update={"people": int(k[0]), "days": int(k[1])}))

    attach_fewshot(recs, shots=kn.shots, bucket=lambda r: (r["num_people"], r["num_days"]), make_shot=shot,
                   problem=lambda r: r["_problem"], solution=lambda r: r["golden_plan"],
                   preamble=prompts.CALENDAR_PREAMBLE)
    keys = ("prompt_0shot", "prompt_5shot", "golden_plan")
    # The official file writes the sizes as strings ("2", "1", "0.5"); so do we.
    return [{"id": f"calendar_scheduling_example_{i}", "num_days": str(r["num_days"]),
             "num_people": str(r["num_people"]), "duration": f"{r['duration']:g}", **{k: r[k] for k in keys}}
            for i, r in enumerate(recs)]


# -- the task ------------------------------------------------------------------------------------------

class CalendarScheduling(NaturalPlanTask):
    """NATURAL PLAN calendar scheduling: official slot match (``score``) and strict validity (``valid``)."""

    name = "natural_plan.calendar"
    FILE = "calendar_scheduling.json"
    KEYS = ("num_days", "num_people", "golden_plan")
    SCORE_KEYS = ("golden_plan",)
    BUCKET = ("num_people", "num_days")

    generator = staticmethod(generate_calendar)

    def check_record(self, rec: Record, where: str) -> None:
        if not isinstance(rec["golden_plan"], str):
            raise DataError(f"{where}: 'golden_plan' must be a string like 'Here is the proposed time: ...'")

    def extract(self, text: str) -> str | None:
        found = _SLOT.search(text)
        if found is None:
            return None
        day, _, span = found.group(0).partition(", ")
        (ah, am), (bh, bm) = (x.split(":") for x in span.split(" - "))
        return f"{day}, {int(ah)}:{am} - {int(bh)}:{bm}"

    def score(self, item: Item, answer: str | None) -> Score:
        text = answer if answer is not None else ""
        official = official_calendar_score(text, str(item.metadata["golden_plan"]))
        try:
            violations = [str(v) for v in validate_calendar(parse_calendar_prompt(item.metadata["problem"]), text)]
            valid: bool | None = not violations
        except ParseError as exc:
            violations, valid = [f"constraints not understood: {exc}"], None
        return Score(
            value=official, correct=official == 1.0, extracted=self.extract(text),
            details={"official": official, "valid": valid, "violations": violations, "bucket": self._bucket(item)},
        )
