"""NATURAL PLAN meeting planning: official count-equality scorer, strict validator, exact solver, generator."""

from __future__ import annotations

import datetime
import math
import random
import re
from dataclasses import dataclass
from typing import Any

from llmlab.core.config import LabConfig, build_config
from llmlab.core.contracts import Item, Score
from llmlab.core.errors import ConfigError, DataError
from llmlab.tasks.natural_plan import prompts
from llmlab.tasks.natural_plan.common import (
    IntRange,
    NaturalPlanTask,
    Record,
    Violation,
    ampm_to_min,
    attach_fewshot,
    join_steps,
    min_to_ampm,
    pick_int,
)

LOCATIONS = (
    "Alamo Square", "Bayview", "Chinatown", "Embarcadero", "Financial District", "Fisherman's Wharf",
    "Golden Gate Park", "Haight-Ashbury", "Marina District", "Mission District", "Nob Hill", "North Beach",
    "Pacific Heights", "Presidio", "Richmond District", "Russian Hill", "Sunset District", "The Castro",
    "Union Square",
)
NAMES = (
    "Anthony", "Ashley", "Barbara", "Betty", "Brian", "Carol", "Daniel", "David", "Deborah", "Donna",
    "Emily", "George", "James", "Jason", "Jessica", "Joseph", "Karen", "Kenneth", "Kevin", "Laura",
    "Linda", "Margaret", "Mark", "Mary", "Matthew", "Melissa", "Michelle", "Nancy", "Paul", "Rebecca",
    "Richard", "Robert", "Ronald", "Sandra", "Sarah", "Stephanie", "Steven", "Thomas", "Timothy", "William",
)


# -- the official scorer (google-deepmind/natural-plan evaluate_meeting_planning.py) -------------------

def parse_text_plan(plan: str) -> list[str]:
    """The official step splitter: text after the first ``SOLUTION:``, split on ``.``, stripped, non-empty."""
    prefix = "SOLUTION:"
    if prefix in plan:
        plan = plan[plan.find(prefix) + len(prefix):].strip()
    return [s.strip() for s in plan.split(".") if s.strip()]


def _official_time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%I:%M%p")


def official_meeting_count(steps: list[str], constraints: list[Any], dist_matrix: dict[str, Any]) -> int:
    """Meetings the official ``validator_from_text`` counts before the first invalid step.

    Quirks kept: the meeting length comes from the constraints, not the text; a wait must move time
    strictly forward; the walk stops at the first bad step and keeps the count so far. Deviation: an
    unknown place or person (``KeyError``) or a malformed travel/wait step (``IndexError``) crashes the
    official script; here it is an invalid step like any other.
    """
    start_location, initial_time = constraints[0][0], constraints[0][1]
    people: dict[str, tuple[str, datetime.datetime, datetime.datetime, int]] = {}
    for name, location, times, minutes in constraints[1:]:
        people[name] = (location, _official_time(times.split("to")[0].strip()),
                        _official_time(times.split("to")[1].strip()), minutes)
    met: set[str] = set()
    score = 0
    cur_location = start_location
    cur_time = _official_time(initial_time)
    for step in steps:
        try:
            if step.startswith("You start"):
                continue
            if step.startswith("You travel"):
                destination = step.split("travel to ")[1].split(" in")[0].strip()
                cur_time += datetime.timedelta(minutes=dist_matrix[cur_location][destination])
                cur_location = destination
            elif step.startswith("You wait"):
                end_time = _official_time(step.split("wait until ")[1].split(".")[0].strip())
                if end_time <= cur_time:
                    break
                cur_time = end_time
            elif step.startswith("You meet"):
                person = step.split("meet ")[1].split(" for")[0].strip()
                if person in met:
                    break
                met.add(person)
                location, start, end, minutes = people[person]
                new_time = cur_time + datetime.timedelta(minutes=minutes)
                if cur_location == location and cur_time >= start and new_time <= end:
                    score += 1
                    cur_time = new_time
                else:
                    break
            else:
                break
        except (ValueError, KeyError, IndexError, TypeError):
            break
    return score


def golden_steps(golden: Any) -> list[str]:
    """Official steps of a ``golden_plan``: a list is used as is (as the official script does)."""
    return [str(s) for s in golden] if isinstance(golden, list) else parse_text_plan(str(golden))


# -- instance, validator, solver -----------------------------------------------------------------------

@dataclass(frozen=True)
class Friend:
    """A friend's place, availability window (minutes after midnight) and wanted meeting length."""

    location: str
    start: int
    end: int
    minutes: int


@dataclass
class MeetingInstance:
    """Start place and time, the friends, and travel minutes ``dist[from][to]``."""

    start: str
    start_time: int
    friends: dict[str, Friend]
    dist: dict[str, dict[str, int]]

    @classmethod
    def from_record(cls, constraints: list[Any], dist_matrix: dict[str, Any]) -> MeetingInstance:
        friends = {}
        for name, loc, times, minutes in constraints[1:]:
            a, _, b = times.partition(" to ")
            friends[name] = Friend(loc, ampm_to_min(a), ampm_to_min(b), int(minutes))
        dist = {a: {b: int(m) for b, m in row.items()} for a, row in dist_matrix.items()}
        return cls(constraints[0][0], ampm_to_min(constraints[0][1]), friends, dist)

    def travel(self, a: str, b: str) -> int | None:
        return 0 if a == b else self.dist.get(a, {}).get(b)


_T = r"(\d{1,2}:\d{2}\s*[AaPp][Mm])"
_START = re.compile(rf"You start at (.+?) at {_T}$")
_TRAVEL = re.compile(rf"You travel to (.+?) in (\d+) minutes and arrive at {_T}$")
_WAIT = re.compile(rf"You wait until {_T}$")
_MEET = re.compile(rf"You meet (.+?) for (\d+) minutes from {_T} to {_T}$")


def validate_meeting(inst: MeetingInstance, steps: list[str], optimum: int) -> list[Violation]:
    """The first broken constraint of a step plan (empty iff valid and it meets ``optimum`` friends).

    Unlike the official walk, the text is held to what it says: stated travel minutes and arrival times
    must be right, a meeting may not start before you are free (overlap) and must last the stated and at
    least the wanted minutes inside the friend's window; a later start than "now" is an implicit wait.
    Sentences that are none of the four step forms are ignored.

    Example:
        >>> inst = MeetingInstance("A", 540, {"Bo": Friend("B", 540, 600, 30)}, {"A": {"B": 10}})
        >>> validate_meeting(inst, ["You travel to B in 10 minutes and arrive at 9:10AM",
        ...                         "You meet Bo for 30 minutes from 9:10AM to 9:40AM"], 1)
        []
    """
    try:
        return _validate_steps(inst, steps, optimum)
    except ValueError as exc:  # e.g. "13:00PM": a malformed time makes the plan invalid, never a crash
        return [Violation("format", str(exc))]


def _validate_steps(inst: MeetingInstance, steps: list[str], optimum: int) -> list[Violation]:
    loc, now = inst.start, inst.start_time
    met: list[str] = []
    recognised = 0

    def bad(kind: str, msg: str) -> list[Violation]:
        return [Violation(kind, msg)]

    for raw in steps:
        step = raw.strip().rstrip(".").strip()
        if m := _START.match(step):
            recognised += 1
            if m.group(1) != inst.start or ampm_to_min(m.group(2)) != inst.start_time:
                return bad("start", f"you start at {inst.start} at {min_to_ampm(inst.start_time)}, "
                                    f"not at {m.group(1)} at {m.group(2)}")
        elif m := _TRAVEL.match(step):
            recognised += 1
            dest, said, arrive = m.group(1), int(m.group(2)), ampm_to_min(m.group(3))
            d = inst.travel(loc, dest)
            if d is None:
                return bad("travel", f"no travel time from {loc} to {dest}")
            if said != d:
                return bad("travel time", f"{loc} to {dest} takes {d} minutes, the plan says {said}")
            if arrive != now + d:
                return bad("travel time", f"leaving {loc} at {min_to_ampm(now)} you arrive at "
                                          f"{min_to_ampm(now + d)}, not {m.group(3)}")
            loc, now = dest, now + d
        elif m := _WAIT.match(step):
            recognised += 1
            until = ampm_to_min(m.group(1))
            if until < now:
                return bad("wait", f"cannot wait until {m.group(1)}: it is already {min_to_ampm(now)}")
            now = until
        elif m := _MEET.match(step):
            recognised += 1
            name, said = m.group(1), int(m.group(2))
            t1, t2 = ampm_to_min(m.group(3)), ampm_to_min(m.group(4))
            f = inst.friends.get(name)
            if f is None:
                return bad("meeting", f"{name} is not one of the friends")
            if name in met:
                return bad("meeting", f"{name} is met twice")
            if f.location != loc:
                return bad("location", f"{name} is at {f.location}, you are at {loc}")
            if t1 < now:
                return bad("overlap", f"the meeting with {name} starts at {m.group(3)} but you are busy "
                                      f"until {min_to_ampm(now)}")
            if t2 - t1 != said:
                return bad("meeting", f"{m.group(3)} to {m.group(4)} is not {said} minutes")
            if said < f.minutes:
                return bad("duration", f"you meet {name} for {said} minutes, at least {f.minutes} are wanted")
            if t1 < f.start or t2 > f.end:
                return bad("availability", f"{name} is at {f.location} from {min_to_ampm(f.start)} to "
                                           f"{min_to_ampm(f.end)}, the meeting is {m.group(3)} to {m.group(4)}")
            met.append(name)
            now = t2
    if recognised == 0 and optimum > 0:
        return bad("format", "no step of the forms 'You travel to ...', 'You wait until ...', 'You meet ...'")
    if len(met) < optimum:
        return bad("optimality", f"the plan meets {len(met)} friends, {optimum} can be met")
    return []


def solve_meeting(inst: MeetingInstance) -> list[str]:
    """The order of friends of a plan meeting the most friends (exact: dynamic programming on subsets).

    State (met set, last friend) → earliest finish; meeting each friend as early as possible for exactly
    the wanted minutes dominates any other timing. Ties: earliest finish, then the smallest state.
    """
    names = sorted(inst.friends)
    fr = [inst.friends[n] for n in names]
    best: dict[tuple[int, int], tuple[int, tuple[int, int] | None]] = {(0, -1): (inst.start_time, None)}
    for mask in range(1 << len(names)):
        for last in range(-1, len(names)):
            cur = best.get((mask, last))
            if cur is None:
                continue
            loc = inst.start if last < 0 else fr[last].location
            for j, f in enumerate(fr):
                if mask >> j & 1:
                    continue
                d = inst.travel(loc, f.location)
                if d is None:
                    continue
                finish = max(cur[0] + d, f.start) + f.minutes
                key = (mask | 1 << j, j)
                if finish <= f.end and (key not in best or finish < best[key][0]):
                    best[key] = (finish, (mask, last))
    top = min(best, key=lambda k: (-bin(k[0]).count("1"), best[k][0], k))
    order: list[str] = []
    node: tuple[int, int] | None = top
    while node is not None and node[1] >= 0:
        order.append(names[node[1]])
        node = best[node][1]
    return order[::-1]


def meeting_plan_steps(inst: MeetingInstance, order: list[str]) -> list[str]:
    """The golden-plan step list (official wording) for meeting ``order`` as early as possible."""
    loc, now = inst.start, inst.start_time
    steps = [f"You start at {loc} at {min_to_ampm(now)}."]
    for name in order:
        f = inst.friends[name]
        if f.location != loc:
            d = inst.travel(loc, f.location)
            assert d is not None
            now += d
            loc = f.location
            steps.append(f"You travel to {loc} in {d} minutes and arrive at {min_to_ampm(now)}.")
        if now < f.start:
            now = f.start
            steps.append(f"You wait until {min_to_ampm(now)}.")
        steps.append(f"You meet {name} for {f.minutes} minutes from {min_to_ampm(now)} to "
                     f"{min_to_ampm(now + f.minutes)}.")
        now += f.minutes
    return steps


# -- generator -----------------------------------------------------------------------------------------

class MeetingKnobs(LabConfig):
    """Difficulty knobs of :func:`generate_meeting`.

    Attributes:
        people: Friends per instance, an int or ``[lo, hi]`` (the paper: 1 to 10).
        min_minutes: Shortest wanted meeting (a multiple of 15).
        max_minutes: Longest wanted meeting (a multiple of 15).
        max_slack: Longest extra availability beyond the meeting length, in minutes.
        shots: Examples in ``prompt_5shot``.
    """

    people: IntRange = [1, 10]
    min_minutes: int = 15
    max_minutes: int = 120
    max_slack: int = 360
    shots: int = 5


def _meeting_instance(rng: random.Random, kn: MeetingKnobs) -> Record:
    k = pick_int(rng, kn.people, "people")
    places = rng.sample(LOCATIONS, k + 1)
    xy = {p: (rng.uniform(0, 10), rng.uniform(0, 10)) for p in places}
    dist = {a: {b: max(3, round((3 + 2.6 * math.dist(xy[a], xy[b])) * rng.uniform(0.9, 1.1)))
                for b in places if b != a} for a in places}
    for mid in places:  # metric closure: the direct route is always the fastest
        for a in places:
            for b in places:
                if a != b and mid not in (a, b) and dist[a][mid] + dist[mid][b] < dist[a][b]:
                    dist[a][b] = dist[a][mid] + dist[mid][b]
    constraints: list[Any] = [[places[0], "9:00AM"]]
    for name, loc in zip(rng.sample(NAMES, k), places[1:], strict=True):
        minutes = 15 * rng.randint(kn.min_minutes // 15, kn.max_minutes // 15)
        length = minutes + 15 * rng.randint(0, kn.max_slack // 15)
        start = 7 * 60 + 15 * rng.randint(0, 48)
        start = min(start, 22 * 60 - length)
        constraints.append([name, loc, f"{min_to_ampm(start)} to {min_to_ampm(start + length)}", minutes])
    inst = MeetingInstance.from_record(constraints, dist)
    rows = "\n".join(f"{a} to {b}: {d}." for a, row in dist.items() for b, d in row.items())
    friends = " ".join(prompts.MEETING_FRIEND.format(name=c[0], location=c[1], start=c[2].split(" to ")[0],
                                                     end=c[2].split(" to ")[1], minutes=c[3])
                       for c in constraints[1:])
    problem = (f"{prompts.MEETING_HEAD}\n\n{prompts.MEETING_DISTANCES.format(rows=rows)}\n\n"
               f"{prompts.MEETING_ARRIVE.format(location=places[0], time='9:00AM')} {friends}")
    return {
        "num_people": k, "constraints": constraints, "dist_matrix": dist,
        "golden_plan": meeting_plan_steps(inst, solve_meeting(inst)), "_problem": problem,
    }


def generate_meeting(n: int, seed: int, **knobs: Any) -> list[dict[str, Any]]:
    """Generate ``n`` meeting-planning instances in the official schema (plus ``id``).

    Args:
        n: Number of instances.
        seed: Same seed and knobs → same instances.
        **knobs: See :class:`MeetingKnobs` (``people``, ``min_minutes``, ...).

    Returns:
        Records with ``id``, ``num_people``, ``constraints``, ``dist_matrix``, ``prompt_0shot``,
        ``prompt_5shot`` and ``golden_plan`` (a list of steps meeting the most friends possible).

    Raises:
        ConfigError: An unknown knob or a bad value.

    Example:
        >>> generate_meeting(1, seed=0, people=2)[0]["num_people"]
        2
    """
    kn = build_config(MeetingKnobs, knobs)
    hi = kn.people if isinstance(kn.people, int) else max(kn.people)
    lo = kn.people if isinstance(kn.people, int) else min(kn.people)
    if lo < 1 or hi > len(LOCATIONS) - 1 or not 15 <= kn.min_minutes <= kn.max_minutes:
        raise ConfigError(f"meeting knobs: people must lie in 1..{len(LOCATIONS) - 1} and "
                          "15 <= min_minutes <= max_minutes")
    recs = [_meeting_instance(random.Random(f"meeting:{seed}:{i}"), kn) for i in range(n)]

    def shot(k: Any, j: int) -> Record:
        rng = random.Random(f"meeting-shots:{seed}:{k}:{j}")
        return _meeting_instance(rng, kn.model_copy(update={"people": int(k)}))

    attach_fewshot(recs, shots=kn.shots, bucket=lambda r: r["num_people"], make_shot=shot,
                   problem=lambda r: r["_problem"], solution=lambda r: join_steps(r["golden_plan"]),
                   preamble=prompts.MEETING_PREAMBLE)
    keys = ("num_people", "constraints", "dist_matrix", "prompt_0shot", "prompt_5shot", "golden_plan")
    return [{"id": f"meeting_planning_example_{i}", **{k: r[k] for k in keys}} for i, r in enumerate(recs)]


# -- the task ------------------------------------------------------------------------------------------

class MeetingPlanning(NaturalPlanTask):
    """NATURAL PLAN meeting planning: official count equality (``score``) and strict validity (``valid``)."""

    name = "natural_plan.meeting"
    FILE = "meeting_planning.json"
    KEYS = ("num_people", "constraints", "dist_matrix", "golden_plan")
    SCORE_KEYS = KEYS
    BUCKET = ("num_people",)

    generator = staticmethod(generate_meeting)

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._optimum: dict[str, int] = {}

    def check_record(self, rec: Record, where: str) -> None:
        cons, dist = rec["constraints"], rec["dist_matrix"]
        try:
            if not isinstance(cons, list) or not cons or len(cons[0]) != 2:
                raise ValueError("constraints[0] must be [start_location, 'H:MMAM']")
            for c in cons[1:]:
                if len(c) != 4 or not isinstance(c[3], int):
                    raise ValueError(f"constraint {c!r} is not [name, location, 'T1 to T2', minutes]")
            if not isinstance(dist, dict) or not all(isinstance(r, dict) for r in dist.values()):
                raise ValueError("dist_matrix must map place -> place -> minutes")
            MeetingInstance.from_record(cons, dist)
        except (ValueError, TypeError, AttributeError) as exc:
            raise DataError(f"{where}: {exc}") from None

    def extract(self, text: str) -> str | None:
        steps = parse_text_plan(text)
        return "SOLUTION: " + " ".join(f"{s}." for s in steps) if steps else None

    def optimum(self, item: Item) -> int:
        """Most friends any valid plan meets (exact solver; cached per item)."""
        if item.id not in self._optimum:
            inst = MeetingInstance.from_record(item.metadata["constraints"], item.metadata["dist_matrix"])
            self._optimum[item.id] = len(solve_meeting(inst))
        return self._optimum[item.id]

    def score(self, item: Item, answer: str | None) -> Score:
        meta = item.metadata
        steps = parse_text_plan(answer if answer is not None else "")
        pred = official_meeting_count(steps, meta["constraints"], meta["dist_matrix"])
        gold = official_meeting_count(golden_steps(meta["golden_plan"]), meta["constraints"], meta["dist_matrix"])
        official = 1.0 if pred == gold else 0.0
        inst = MeetingInstance.from_record(meta["constraints"], meta["dist_matrix"])
        violations = [str(v) for v in validate_meeting(inst, steps, self.optimum(item))]
        return Score(
            value=official, correct=official == 1.0,
            extracted="SOLUTION: " + " ".join(f"{s}." for s in steps) if steps else None,
            details={"official": official, "valid": not violations, "violations": violations,
                     "met_official": pred, "golden_count": gold, "bucket": self._bucket(item)},
        )
