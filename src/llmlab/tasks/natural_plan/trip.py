"""NATURAL PLAN trip planning: official EM scorer (quirks kept), strict validator, exact solver, generator."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Hashable
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
    pick_int,
)

# Single-word names on purpose: the official parser's ``(\w+)`` cannot read "San Sebastian".
CITIES = (
    "Amsterdam", "Athens", "Barcelona", "Berlin", "Brussels", "Bucharest", "Budapest", "Copenhagen",
    "Dublin", "Dubrovnik", "Edinburgh", "Florence", "Frankfurt", "Geneva", "Hamburg", "Helsinki",
    "Istanbul", "Krakow", "Lisbon", "London", "Lyon", "Madrid", "Manchester", "Milan", "Munich", "Mykonos",
    "Naples", "Nice", "Oslo", "Paris", "Porto", "Prague", "Reykjavik", "Riga", "Rome", "Salzburg",
    "Santorini", "Seville", "Split", "Stockholm", "Stuttgart", "Tallinn", "Valencia", "Venice", "Vienna",
    "Vilnius", "Warsaw", "Zurich",
)

Plan = list[tuple[str, int]]


# -- the official parser and EM score (google-deepmind/natural-plan evaluate_trip_planning.py) ---------

_VISIT = re.compile(r"\d+-\d+")
_FLIGHT = re.compile(r".*Day (\d+).*from (\w+) to (\w+)")
_TOTAL = re.compile(r"European cities for (\d+) days")


def parse_trip_response(response: str) -> Plan:
    r"""Read ``[(city, stay_days), ...]`` from a response exactly as the official script does.

    Quirks kept: the first ``\d+-\d+`` of a line is a day range wherever it appears; a range ending on
    the day count announced by ``European cities for N days`` stops the parse; cities come from the
    flight lines (``(\w+)``: one word); stays come from flight days, not from the written ranges.

    Example:
        >>> parse_trip_response("**Day 1-3:** Oslo\n**Day 3:** Fly from Oslo to Riga.\n**Day 3-5:** Riga")
        [('Oslo', 3), ('Riga', 3)]
    """
    days: list[str] = []
    flights: list[tuple[str, str, str]] = []
    total_days: int | None = None
    for piece in response.split("\n"):
        total = _TOTAL.findall(piece)
        if total:
            total_days = int(total[0])
        visit = _VISIT.findall(piece)
        if visit:
            days.append(visit[0])
            if int(visit[0].split("-")[1]) == total_days:
                break
        flight = _FLIGHT.findall(piece)
        if flight:
            flights.append(flight[0])
    cities: list[str] = []
    flight_days: list[int] = []
    for day, begin, end in flights:
        flight_days.append(int(day))
        if not cities:
            cities.append(begin)
        cities.append(end)
    if not days or not flights or not cities:
        return []
    bounds = [1, *flight_days, int(days[-1].split("-")[1])]
    return [(city, bounds[i + 1] - bounds[i] + 1) for i, city in enumerate(cities)]


def official_trip_score(cities: str, durations: str, plan: Plan) -> float:
    """The official example-level EM: 1.0 iff every golden (city, days) matches in order.

    Extra cities after the golden itinerary are ignored (prefix match), as in the official script.
    """
    stays = [x for x in cities.split("**") if x]
    days = [int(x) for x in durations.split("**") if x]
    if not stays:
        return 0.0
    matched = 0
    for i in range(min(len(stays), len(plan))):
        if stays[i] == plan[i][0] and days[i] == plan[i][1]:
            matched += 1
        else:
            break
    return 1.0 if matched == len(stays) else 0.0


def render_trip_plan(plan: Plan) -> str:
    """Render an official parse back as plan text that the official parser reads to the same plan.

    The flight days are recovered from the stays (``f[i+1] = f[i] + stay_i - 1``), so the round trip is
    exact; no ``European cities for N days`` header is written (it would stop the parser early).
    """
    bounds = [1]
    for _, stay in plan:
        bounds.append(bounds[-1] + stay - 1)
    lines = []
    for i, (city, stay) in enumerate(plan):
        if i == 0:
            lines.append(f"**Day {bounds[0]}-{bounds[1]}:** Arriving in {city} and visit {city} for {stay} days.")
        else:
            lines.append(f"**Day {bounds[i]}:** Fly from {plan[i - 1][0]} to {city}.")
            lines.append(f"**Day {bounds[i]}-{bounds[i + 1]}:** Visit {city} for {stay} days.")
    return "\n".join(lines)


def golden_trip_plan(order: list[str], stays: dict[str, int], total_days: int) -> str:
    """The golden-plan text (the official data's format) for an itinerary."""
    head = prompts.TRIP_GOLDEN_HEAD.format(k=len(order), days=total_days)
    return f"{head}\n\n{render_trip_plan([(c, stays[c]) for c in order])}"


# -- constraints, validator, solver --------------------------------------------------------------------

@dataclass
class TripConstraints:
    """One trip instance: total days, required stays (in prompt order), fixed-day events, flights."""

    total_days: int
    stays: dict[str, int]
    events: list[tuple[str, int, int]] = field(default_factory=list)
    flights: set[tuple[str, str]] = field(default_factory=set)


_STAY_PATTERNS = (
    re.compile(r"(?:visit|stay in|spend time in) ([A-Z][\w'-]*(?: [A-Z][\w'-]*)*) for (\d+) days"),
    re.compile(r"(\d+) days in ([A-Z][\w'-]*(?: [A-Z][\w'-]*)*)"),
)
_DAYNUM = re.compile(r"\bday (\d+)", re.IGNORECASE)


def parse_trip_prompt(problem: str) -> TripConstraints:
    """Read an instance's constraints from its problem text (official wording or ours).

    Raises:
        ParseError: A part of the problem is not understood (the message says which).
    """
    total = re.search(r"for (\d+) days in total", problem)
    head, sep, rest = problem.partition("direct flights:")
    if total is None or not sep:
        raise ParseError("trip prompt has no 'N days in total' sentence or no direct-flight list")
    sentences = [s for s in re.split(r"(?<=\.)\s+", head.strip()) if s]
    stays: dict[str, int] = {}
    pending: list[str] = []
    for s in sentences:
        if "days in total" in s or "direct flights" in s or "Here are the cities" in s:
            continue
        if len(_DAYNUM.findall(s)) >= 2:
            pending.append(s)
            continue
        for pat in _STAY_PATTERNS:
            m = pat.search(s)
            if m:
                city, n = (m.group(1), m.group(2)) if pat is _STAY_PATTERNS[0] else (m.group(2), m.group(1))
                stays[city] = int(n)
                break
    events = []
    for s in pending:
        named = [c for c in stays if re.search(rf"\b{re.escape(c)}\b", s)]
        if len(named) != 1:
            raise ParseError(f"trip prompt: event sentence names {len(named)} known cities: {s[:60]!r}")
        a, b = (int(x) for x in _DAYNUM.findall(s)[:2])
        events.append((named[0], min(a, b), max(a, b)))
    listing = re.split(r"\n\s*\n|Find a trip", rest.strip())[0].strip().rstrip(".")
    flights: set[tuple[str, str]] = set()
    for piece in (p.strip() for p in listing.replace("\n", " ").split(",")):
        one_way = re.fullmatch(r"from (.+?) to (.+)", piece)
        both = re.fullmatch(r"(.+?) and (.+)", piece)
        if one_way:
            flights.add((one_way.group(1), one_way.group(2)))
        elif both:
            flights |= {(both.group(1), both.group(2)), (both.group(2), both.group(1))}
        else:
            raise ParseError(f"trip prompt: flight not understood: {piece!r}")
    k = re.search(r"visit (\d+) European cities", problem)
    if not stays or (k is not None and int(k.group(1)) != len(stays)):
        raise ParseError(f"trip prompt: read {len(stays)} stays, the prompt announces {k.group(1) if k else '?'}")
    return TripConstraints(int(total.group(1)), stays, events, flights)


def validate_trip(cons: TripConstraints, plan: Plan) -> list[Violation]:
    """Every broken constraint of ``plan`` (an official parse); empty iff the plan is valid.

    A plan is valid iff it visits each required city exactly once for its required days, starts on day 1
    and ends on the last day (flight days count for both cities), flies only along listed direct flights
    in the listed direction, and each fixed-day event window lies inside its city's stay.

    Example:
        >>> c = TripConstraints(5, {"Oslo": 3, "Riga": 3}, [], {("Oslo", "Riga")})
        >>> validate_trip(c, [("Oslo", 3), ("Riga", 3)])
        []
        >>> [v.constraint for v in validate_trip(c, [("Riga", 3), ("Oslo", 3)])]
        ['flight']
    """
    if not plan:
        return [Violation("format", "no itinerary found (expected '**Day a-b:**' stays and "
                                    "'**Day d:** Fly from X to Y.' lines)")]
    out: list[Violation] = []
    seen: dict[str, tuple[int, int]] = {}
    start = 1
    for city, stay in plan:
        end = start + stay - 1
        if city not in cons.stays:
            out.append(Violation("cities", f"{city} is not one of the cities to visit"))
        elif city in seen:
            out.append(Violation("cities", f"{city} is visited twice"))
        if stay < 1:
            out.append(Violation("days", f"the stay in {city} has {stay} days (flight days out of order)"))
        seen.setdefault(city, (start, end))
        start = end
    for city, need in cons.stays.items():
        if city not in seen:
            out.append(Violation("cities", f"{city} is never visited"))
        elif (got := next(s for c, s in plan if c == city)) != need:
            out.append(Violation("stay", f"{city} gets {got} days, the trip needs {need}"))
    last = start
    if last != cons.total_days:
        out.append(Violation("days", f"the plan covers {last} days, the trip is {cons.total_days} days"))
    for (x, _), (y, _) in itertools.pairwise(plan):
        if (x, y) not in cons.flights:
            out.append(Violation("flight", f"no direct flight from {x} to {y}"))
    for city, a, b in cons.events:
        if city in seen:
            s0, e0 = seen[city]
            if not (s0 <= a and b <= e0):
                out.append(Violation("event", f"the event in {city} between day {a} and day {b} falls "
                                              f"outside the stay there (days {s0}-{e0})"))
    return out


def solve_trip(cons: TripConstraints, limit: int | None = None) -> list[list[str]]:
    """All valid itineraries (city orders), by depth-first search; stop after ``limit`` of them.

    Pruned by the flight graph, by each placed city's events, and by unplaced event cities whose window
    starts before the current day (they could no longer contain it).
    """
    cities = list(cons.stays)
    by_city: dict[str, list[tuple[int, int]]] = {}
    for c, a, b in cons.events:
        by_city.setdefault(c, []).append((a, b))
    out: list[list[str]] = []

    def dfs(path: list[str], day: int) -> None:
        if limit is not None and len(out) >= limit:
            return
        if len(path) == len(cities):
            if day == cons.total_days:
                out.append(list(path))
            return
        for c, wins in by_city.items():
            if c not in path and any(a < day for a, _ in wins):
                return
        for c in cities:
            if c in path or (path and (path[-1], c) not in cons.flights):
                continue
            end = day + cons.stays[c] - 1
            if all(day <= a and b <= end for a, b in by_city.get(c, ())):
                path.append(c)
                dfs(path, end)
                path.pop()

    dfs([], 1)
    return out


# -- generator -----------------------------------------------------------------------------------------

class TripKnobs(LabConfig):
    """Difficulty knobs of :func:`generate_trip`.

    Attributes:
        cities: Cities per instance, an int or ``[lo, hi]`` (the paper: 3 to 10).
        max_stay: Longest stay in days (stays are 2..max_stay).
        event_rate: Chance that a city gets a fixed-day event (its window is the golden stay).
        extra_flights: Chance that a pair of cities off the golden route gets a flight too (0.53 gives
            1.83 listed flights per city over 3..10 cities, the official files' density).
        one_way_rate: Chance that a flight is one-way (the official files: 4% of listed flights).
        unique: Add events until the exact solver finds exactly one valid itinerary, so that the
            official EM (which accepts only the golden plan) and strict validity agree.
        shots: Examples in ``prompt_5shot`` (the same ones for every query with the same city count).
    """

    cities: IntRange = [3, 10]
    max_stay: int = 7
    event_rate: float = 0.3
    extra_flights: float = 0.53
    one_way_rate: float = 0.04
    unique: bool = True
    shots: int = 5


def _trip_instance(rng: random.Random, kn: TripKnobs) -> Record:
    k = pick_int(rng, kn.cities, "cities")
    order = rng.sample(CITIES, k)
    stays = {c: rng.randint(2, kn.max_stay) for c in order}
    total = sum(stays.values()) - (k - 1)
    ranges: dict[str, tuple[int, int]] = {}
    day = 1
    for c in order:
        ranges[c] = (day, day + stays[c] - 1)
        day += stays[c] - 1
    one_way: set[tuple[str, str]] = set()
    both: set[frozenset[str]] = set()

    def link(a: str, b: str) -> None:
        if rng.random() < kn.one_way_rate:
            one_way.add((a, b))
        else:
            both.add(frozenset((a, b)))

    for a, b in itertools.pairwise(order):
        link(a, b)
    for i, a in enumerate(order):
        for b in order[i + 2:]:
            if rng.random() < kn.extra_flights:
                link(*((a, b) if rng.random() < 0.5 else (b, a)))
    events = {c for c in order if rng.random() < kn.event_rate}
    flights = one_way | {(a, b) for pair in both for a in pair for b in pair if a != b}
    while True:
        cons = TripConstraints(total, stays, [(c, *ranges[c]) for c in order if c in events], flights)
        sols = solve_trip(cons, limit=2)
        if order not in sols:  # pragma: no cover - the route is valid by construction
            raise AssertionError("generated trip route is not valid")
        if len(sols) == 1 or not kn.unique:
            break
        other = sols[0] if sols[0] != order else sols[1]
        events.add(next(c for c, o in zip(order, other, strict=True) if c != o))
    golden = sols[0] if kn.unique else order
    sentences = []
    for c in rng.sample(order, k):
        sentences.append(rng.choice(prompts.TRIP_STAY_SENTENCES).format(city=c, n=stays[c]))
        if c in events:
            first, last = ranges[c]
            sentences.append(rng.choice(prompts.TRIP_EVENT_SENTENCES).format(city=c, a=first, b=last))
    pieces = [f"from {a} to {b}" for a, b in sorted(one_way)]
    pieces += [" and ".join(sorted(p, key=lambda _: rng.random())) for p in sorted(both, key=sorted)]
    rng.shuffle(pieces)
    problem = (
        prompts.TRIP_HEAD.format(k=k, days=total) + " " + " ".join(sentences) + "\n\n"
        + prompts.TRIP_FLIGHTS.format(flights=", ".join(pieces)) + "\n\n" + prompts.TRIP_TAIL.format(days=total)
    )
    return {
        "cities": "**".join(golden),
        "durations": "**".join(str(stays[c]) for c in golden),
        "num_cities": k,
        "golden_plan": golden_trip_plan(golden, stays, total),
        "_problem": problem,
    }


def generate_trip(n: int, seed: int, **knobs: Any) -> list[dict[str, Any]]:
    """Generate ``n`` trip-planning instances in the official schema (plus ``id``).

    Args:
        n: Number of instances.
        seed: Same seed and knobs → same instances.
        **knobs: See :class:`TripKnobs` (``cities``, ``max_stay``, ``event_rate``, ...).

    Returns:
        Records with ``id``, ``cities``, ``durations``, ``num_cities``, ``prompt_0shot``, ``prompt_5shot``,
        ``golden_plan``; few-shot examples are other generated instances.

    Raises:
        ConfigError: An unknown knob or a bad value.

    Example:
        >>> recs = generate_trip(2, seed=1, cities=3)
        >>> recs[0]["num_cities"], recs[0]["id"]
        (3, 'trip_planning_example_0')
    """
    kn = build_config(TripKnobs, knobs)
    lo = kn.cities if isinstance(kn.cities, int) else min(kn.cities)
    hi = kn.cities if isinstance(kn.cities, int) else max(kn.cities)
    if lo < 2 or hi > len(CITIES) or kn.max_stay < 2:
        raise ConfigError(f"trip knobs: cities must lie in 2..{len(CITIES)} and max_stay >= 2")
    recs = [_trip_instance(random.Random(f"trip:{seed}:{i}"), kn) for i in range(n)]

    def shot(k: Hashable, j: int) -> Record:
        return _trip_instance(random.Random(f"trip-shots:{seed}:{k}:{j}"), kn.model_copy(update={"cities": k}))

    attach_fewshot(recs, shots=kn.shots, bucket=lambda r: r["num_cities"], make_shot=shot,
                   problem=lambda r: r["_problem"], solution=lambda r: r["golden_plan"],
                   preamble=prompts.TRIP_PREAMBLE)
    keys = ("cities", "durations", "num_cities", "prompt_0shot", "prompt_5shot", "golden_plan")
    return [{"id": f"trip_planning_example_{i}", **{k: r[k] for k in keys}} for i, r in enumerate(recs)]


# -- the task ------------------------------------------------------------------------------------------

class TripPlanning(NaturalPlanTask):
    """NATURAL PLAN trip planning: official EM (``score``) and strict constraint validity (``valid``)."""

    name = "natural_plan.trip"
    FILE = "trip_planning.json"
    KEYS = ("cities", "durations", "golden_plan")
    SCORE_KEYS = ("cities", "durations", "golden_plan")
    BUCKET = ("num_cities",)

    generator = staticmethod(generate_trip)

    def check_record(self, rec: Record, where: str) -> None:
        if not isinstance(rec["cities"], str) or not isinstance(rec["durations"], str):
            raise DataError(f"{where}: 'cities' and 'durations' must be '**'-joined strings")
        parts = [x for x in rec["durations"].split("**") if x]
        if not all(x.strip().isdigit() for x in parts) or len(parts) != len(
                [x for x in rec["cities"].split("**") if x]):
            raise DataError(f"{where}: 'durations' must hold one integer per city ('3**4**2')")

    def extra_meta(self, rec: Record) -> dict[str, Any]:
        return {"num_cities": rec.get("num_cities", len([x for x in rec["cities"].split("**") if x]))}

    def extract(self, text: str) -> str | None:
        plan = parse_trip_response(text)
        return render_trip_plan(plan) if plan else None

    def constraints(self, item: Item) -> TripConstraints:
        """The item's constraints, read from its problem text.

        Raises:
            ParseError: The problem text is not understood.
        """
        return parse_trip_prompt(str(item.metadata["problem"]))

    def score(self, item: Item, answer: str | None) -> Score:
        plan = parse_trip_response(answer if answer is not None else "")
        meta = item.metadata
        official = official_trip_score(meta["cities"], meta["durations"], plan)
        try:
            violations = [str(v) for v in validate_trip(self.constraints(item), plan)]
            valid: bool | None = not violations
        except ParseError as exc:
            violations, valid = [f"constraints not understood: {exc}"], None
        return Score(
            value=official, correct=official == 1.0, extracted=render_trip_plan(plan) if plan else None,
            details={"official": official, "valid": valid, "violations": violations, "bucket": self._bucket(item)},
        )
