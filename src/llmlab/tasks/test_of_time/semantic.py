"""ToT-Semantic (paper §3.1): the seeded generator and the task.

:func:`generate_semantic` builds anonymised temporal knowledge graphs and asks the eight question types
with exactly computed answers; :class:`ToTSemantic` scores a generated (or the HF) file. The generator is
our re-implementation from the paper's description (no official code exists); the package docstring
lists what is our reading.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from llmlab.core.config import LabConfig, build_config
from llmlab.core.contracts import Item, Score
from llmlab.core.errors import ConfigError, DataError
from llmlab.tasks.test_of_time.answers import normalize_semantic, parse_answer
from llmlab.tasks.test_of_time.base import _breakdown, _require, _ToTBase
from llmlab.tasks.test_of_time.prompts import FACT_TEMPLATE, SEMANTIC_PROMPT

GraphKind = Literal["er", "sbm", "ba", "sfn", "star", "complete", "awe"]
QuestionType = Literal[
    "event_at_time_t",
    "event_at_what_time",
    "number_of_events_in_time_interval",
    "before_after",
    "event_at_the_time_of_another_event",
    "first_last",
    "relation_duration",
    "timeline",
]
SortingType = Literal["shuffle", "start_time", "target_and_start_time", "relation_and_start_time"]
GRAPH_GENERATORS: tuple[GraphKind, ...] = get_args(GraphKind)
QUESTION_TYPES: tuple[QuestionType, ...] = get_args(QuestionType)
SORTING_TYPES: tuple[SortingType, ...] = get_args(SortingType)


@dataclass(frozen=True)
class Fact:
    """One temporal fact: ``subject`` was the ``relation`` of ``object`` from ``start`` to ``end``."""

    subject: str
    relation: str
    object: str
    start: int
    end: int

    def text(self) -> str:
        return FACT_TEMPLATE.format(subject=self.subject, relation=self.relation, object=self.object,
                                    start=self.start, end=self.end)


class SemanticGenConfig(LabConfig):
    """Knobs of :func:`generate_semantic` (unknown knobs are an error).

    Attributes:
        graph_generators: Graph families to cycle through.
        question_types: Question types to cycle through.
        sorting_types: Fact orders (one drawn per instance).
        min_entities / max_entities: Graph size range.
        num_relations: Relation labels per graph.
        repeat_prob: Chance an entity holds the same role again later (needed for "the 3rd time").
        min_year / max_duration / max_gap: Time-line shape (gaps are at least 1 year, so no ties).
        max_tries: Redraws per instance before giving up (ambiguous questions are rejected).
    """

    graph_generators: list[GraphKind] = list(GRAPH_GENERATORS)
    question_types: list[QuestionType] = list(QUESTION_TYPES)
    sorting_types: list[SortingType] = list(SORTING_TYPES)
    min_entities: int = 8
    max_entities: int = 16
    num_relations: int = 3
    repeat_prob: float = 0.3
    min_year: int = 1900
    max_duration: int = 12
    max_gap: int = 6
    max_tries: int = 500


def _graph(kind: str, n: int, rng: random.Random) -> list[tuple[int, int]]:
    """Undirected edge list of a random graph of family ``kind`` on nodes ``0..n-1``."""
    edges: set[tuple[int, int]] = set()

    def add(a: int, b: int) -> None:
        if a != b:
            edges.add((min(a, b), max(a, b)))

    if kind == "er":
        p = rng.uniform(0.15, 0.35)
        for a in range(n):
            for b in range(a + 1, n):
                if rng.random() < p:
                    add(a, b)
    elif kind == "sbm":
        blocks = [rng.randrange(rng.randint(2, 3)) for _ in range(n)]
        p_in, p_out = rng.uniform(0.4, 0.7), rng.uniform(0.02, 0.1)
        for a in range(n):
            for b in range(a + 1, n):
                if rng.random() < (p_in if blocks[a] == blocks[b] else p_out):
                    add(a, b)
    elif kind == "ba":
        m = rng.randint(1, 2)
        targets = list(range(m + 1))
        for a in range(m + 1):
            for b in range(a + 1, m + 1):
                add(a, b)
        pool = [v for e in edges for v in e]
        for a in range(m + 1, n):
            chosen: set[int] = set()
            while len(chosen) < m:
                chosen.add(rng.choice(pool) if pool else rng.choice(targets))
            for b in chosen:
                add(a, b)
                pool.extend((a, b))
    elif kind == "sfn":
        # Chung-Lu with power-law expected degrees (exponent ~2.5): a scale-free degree sequence.
        w = [(i + 1) ** (-1 / 1.5) for i in range(n)]
        rng.shuffle(w)
        total = sum(w)
        scale = 2.5 * n / total
        for a in range(n):
            for b in range(a + 1, n):
                if rng.random() < min(1.0, scale * w[a] * w[b] * n / total / 2):
                    add(a, b)
    elif kind == "star":
        for b in range(1, n):
            add(0, b)
    elif kind == "complete":
        for a in range(n):
            for b in range(a + 1, n):
                add(a, b)
    elif kind == "awe":
        # An anonymous walk: each step revisits an earlier node or discovers the next new one.
        cur, seen = 0, 1
        for _ in range(3 * n):
            nxt = seen if (seen < n and rng.random() < 0.5) else rng.randrange(seen)
            if nxt == seen:
                seen += 1
            add(cur, nxt)
            cur = nxt
    else:  # pragma: no cover - guarded by the config Literal
        raise ConfigError(f"unknown graph generator '{kind}'")
    return sorted(edges)


def _timeline(subjects: list[str], rel: str, obj: str, cfg: SemanticGenConfig, rng: random.Random) -> list[Fact]:
    """Facts for one (relation, object) role: holders in sequence, never overlapping (gap >= 1 year)."""
    seq = list(subjects)
    rng.shuffle(seq)
    for s in list(seq):
        if rng.random() < cfg.repeat_prob and len(seq) > 1:
            # Re-insert s later, never adjacent to itself.
            pos = [i for i in range(1, len(seq) + 1) if seq[i - 1] != s and (i == len(seq) or seq[i] != s)]
            if pos:
                seq.insert(rng.choice(pos), s)
    year = cfg.min_year + rng.randrange(0, 80)
    facts = []
    for s in seq:
        start = year + rng.randint(1, cfg.max_gap)
        end = start + rng.randint(1, cfg.max_duration)
        facts.append(Fact(s, rel, obj, start, end))
        year = end
    return facts


def _build_facts(kind: str, cfg: SemanticGenConfig, rng: random.Random) -> list[Fact]:
    n = rng.randint(cfg.min_entities, cfg.max_entities)
    edges = _graph(kind, n, rng)
    # Anonymisation: random ids, so that ids reveal nothing about graph position.
    ent_ids = rng.sample(range(1, max(100, 2 * n)), n)
    names = [f"E{i}" for i in ent_ids]
    rels = [f"R{i}" for i in rng.sample(range(1, 100), cfg.num_relations)]
    incoming: dict[tuple[int, str], list[str]] = defaultdict(list)
    for a, b in edges:
        subj, obj = (a, b) if rng.random() < 0.5 else (b, a)
        incoming[(obj, rng.choice(rels))].append(names[subj])
    facts: list[Fact] = []
    for (obj, rel), subjects in sorted(incoming.items()):
        facts.extend(_timeline(subjects, rel, names[obj], cfg, rng))
    return facts


def _sort_facts(facts: list[Fact], how: str, rng: random.Random) -> list[Fact]:
    def num(name: str) -> int:
        return int(name[1:])

    out = list(facts)
    if how == "shuffle":
        rng.shuffle(out)
    elif how == "start_time":
        out.sort(key=lambda f: (f.start, f.end, num(f.object), num(f.subject)))
    elif how == "target_and_start_time":
        out.sort(key=lambda f: (num(f.object), f.start))
    elif how == "relation_and_start_time":
        out.sort(key=lambda f: (num(f.relation), f.start, num(f.object)))
    return out


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _roles(facts: list[Fact]) -> dict[tuple[str, str], list[Fact]]:
    out: dict[tuple[str, str], list[Fact]] = defaultdict(list)
    for f in facts:
        out[(f.relation, f.object)].append(f)
    for chain in out.values():
        chain.sort(key=lambda f: f.start)
    return dict(out)


def _question(qtype: str, facts: list[Fact], rng: random.Random) -> tuple[str, str] | None:
    """One question of ``qtype`` and its exact answer, or ``None`` when this draw would be ambiguous."""
    roles = _roles(facts)
    keys = sorted(roles)
    if not keys:
        return None
    # Roles held by several entities in turn make the harder questions: weight by timeline length.
    rel, obj = rng.choices(keys, weights=[len(roles[k]) for k in keys])[0]
    chain = roles[(rel, obj)]
    counts = Counter(f.subject for f in chain)

    if qtype == "event_at_time_t":
        f = rng.choice(chain)
        t = rng.randint(f.start, f.end)
        holders = {g.subject for g in chain if g.start <= t <= g.end}
        if len(holders) != 1:
            return None
        return f"Which entity was the {rel} of {obj} in {t}?", holders.pop()
    if qtype == "event_at_what_time":
        f = rng.choice(chain)
        if counts[f.subject] != 1:
            return None
        if rng.random() < 0.5:
            return f"At what time did {f.subject} start being the {rel} of {obj}?", str(f.start)
        return f"At what time did {f.subject} stop being the {rel} of {obj}?", str(f.end)
    if qtype == "number_of_events_in_time_interval":
        if len(chain) < 2:
            return None
        # Interval from inside (or just before) one holder's term to inside (or just after) a later one's.
        i = rng.randrange(len(chain))
        j = rng.randrange(i, len(chain))
        a = rng.randint(chain[i].start - 2, chain[i].end)
        b = rng.randint(max(a + 1, chain[j].start), chain[j].end + 2)
        n = len({g.subject for g in chain if g.start <= b and g.end >= a})
        return (
            f"Find the number of unique entities that were the {rel} of {obj} between {a} and {b}. "
            f"Relations that ended in {a} or started in {b} must be counted as well.",
            str(n),
        )
    if qtype == "before_after":
        if len(chain) < 2:
            return None
        after = rng.random() < 0.5
        i = rng.randrange(0, len(chain) - 1) if after else rng.randrange(1, len(chain))
        s = chain[i].subject
        if counts[s] != 1:
            return None
        word, j = ("after", i + 1) if after else ("before", i - 1)
        return (
            f"Find the entity that was the {rel} of {obj} immediately {word} {s} was the {rel} of {obj}.",
            chain[j].subject,
        )
    if qtype == "event_at_the_time_of_another_event":
        f1 = rng.choice(chain)
        if counts[f1.subject] != 1:
            return None
        t = f1.start
        during = [g for g in facts if g.start <= t <= g.end and g.subject != f1.subject]
        if not during:
            return None
        f2 = rng.choice(during)
        objs = {g.object for g in facts if g.subject == f2.subject and g.relation == f2.relation
                and g.start <= t <= g.end}
        if len(objs) != 1:
            return None
        return (
            f"At the start time of {f1.subject} being the {rel} of {obj}, {f2.subject} was the "
            f"{f2.relation} of which entity?",
            objs.pop(),
        )
    if qtype == "first_last":
        if rng.random() < 0.5:
            return f"Identify the entity that was the first {rel} of entity {obj}.", chain[0].subject
        return f"Identify the entity that was the last {rel} of entity {obj}.", chain[-1].subject
    if qtype == "relation_duration":
        repeated = [s for s, c in counts.items() if c > 1]
        s = rng.choice(repeated) if repeated and rng.random() < 0.7 else rng.choice(chain).subject
        occ = [g for g in chain if g.subject == s]
        tail = "The duration can be computed by subtracting the start time from the end time."
        if len(occ) == 1:
            return f"For how many years was {s} the {rel} of {obj}? {tail}", str(occ[0].end - occ[0].start)
        k = rng.randint(1, len(occ))
        g = occ[k - 1]
        return (f"The {_ordinal(k)} time it happened, for how many years was {s} the {rel} of {obj}? {tail}",
                str(g.end - g.start))
    if qtype == "timeline":
        if len(chain) < 2 or max(counts.values()) > 1:
            return None
        return (
            f"Give me a comma-separated list of all entities that were the {rel} of {obj} in the order of "
            "start time from lowest to highest.",
            ",".join(f.subject for f in chain),
        )
    raise ConfigError(f"unknown question type '{qtype}'")  # pragma: no cover


def generate_semantic(n: int, seed: int, **knobs: Any) -> list[dict[str, Any]]:
    """Generate ``n`` ToT-Semantic instances (the HF ``tot_semantic`` schema), deterministically from ``seed``.

    Instance ``i`` uses graph family ``graph_generators[i % G]`` and question type
    ``question_types[(i // G) % Q]``, so ``n = 7 * 8 * 50 = 2800`` reproduces the paper's balanced design.

    Args:
        n: Number of instances.
        seed: Random seed (same seed and knobs → identical output).
        **knobs: Fields of :class:`SemanticGenConfig` (graph size, relation count, year ranges, ...).

    Returns:
        Dicts with ``question``, ``question_type``, ``graph_gen_algorithm``, ``sorting_type``, ``prompt``
        (facts + question + answer format) and ``label`` (a string: entity, year, count or comma list).

    Raises:
        ConfigError: An unknown knob or bad value, or no unambiguous question after ``max_tries`` draws.

    Example:
        >>> rows = generate_semantic(2, seed=0, question_types=["first_last"])
        >>> rows[0]["label"].startswith("E")
        True
    """
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    cfg = build_config(SemanticGenConfig, knobs)
    if not cfg.graph_generators or not cfg.question_types or not cfg.sorting_types:
        raise ConfigError("graph_generators, question_types and sorting_types must not be empty")
    if not 2 <= cfg.min_entities <= cfg.max_entities:
        raise ConfigError("need 2 <= min_entities <= max_entities")
    if not 1 <= cfg.num_relations <= 99:
        raise ConfigError("num_relations must be in 1..99")
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = cfg.graph_generators[i % len(cfg.graph_generators)]
        qtype = cfg.question_types[(i // len(cfg.graph_generators)) % len(cfg.question_types)]
        for _ in range(cfg.max_tries):
            facts = _build_facts(kind, cfg, rng)
            qa = _question(qtype, facts, rng) if facts else None
            if qa is not None:
                break
        else:
            raise ConfigError(f"no unambiguous '{qtype}' question on '{kind}' graphs after {cfg.max_tries} tries")
        question, label = qa
        sorting = rng.choice(cfg.sorting_types)
        ordered = _sort_facts(facts, sorting, rng)
        prompt = SEMANTIC_PROMPT.format(facts="\n".join(f.text() for f in ordered), question=question)
        out.append({
            "question": question,
            "question_type": qtype,
            "graph_gen_algorithm": kind,
            "sorting_type": sorting,
            "prompt": prompt,
            "label": label,
        })
    return out


class ToTSemantic(_ToTBase):
    """ToT-Semantic on a generated file (``llmlab generate tot_semantic``) or the HF ``tot_semantic`` JSON.

    ``data_file`` names the file; without it ``<data_dir>/tot-semantic/test.json`` is looked up.
    """

    name = "tot_semantic"
    dataset = "tot-semantic"
    filename = "test.json"
    required = ("prompt", "question_type", "label")

    def _path(self) -> Path:
        try:
            return super()._path()
        except DataError as exc:
            raise DataError(
                f"{exc}; generate one with 'llmlab generate tot_semantic --n 2800 --seed 0 --out F' and pass "
                "--data F"
            ) from None

    def _make_item(self, row: Mapping[str, Any], where: str, index: int) -> Item:
        _require(row, self.required, where)
        qtype = str(row["question_type"])
        label = row["label"]
        if isinstance(label, list | dict) or label is None:
            raise DataError(f"{where}: label must be a string or number, got {type(label).__name__}")
        return Item(
            id=f"{qtype}/{index}",
            input=str(row["prompt"]),
            target=str(label),
            metadata={
                "category": qtype,
                "keys": ("answer",),
                "graph_gen_algorithm": row.get("graph_gen_algorithm"),
                "sorting_type": row.get("sorting_type"),
            },
        )

    def score(self, item: Item, answer: str | None) -> Score:
        qtype = str(item.metadata["category"])
        details = {"category": qtype, "format": "answer",
                   "graph_gen_algorithm": item.metadata.get("graph_gen_algorithm"),
                   "sorting_type": item.metadata.get("sorting_type")}
        parsed = parse_answer(answer, ["answer"])
        if parsed is None and answer is not None and "{" not in answer:
            parsed = {"answer": answer}  # a bare answer (e.g. a golden label used as prediction)
        if parsed is None:
            return Score(0.0, correct=False, extracted=None, details=details)
        got = normalize_semantic(parsed["answer"], qtype)
        ok = got == normalize_semantic(item.target, qtype)
        return Score(1.0 if ok else 0.0, correct=ok, extracted=got, details=details)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        out = super().aggregate(scores)
        out.pop("per_format", None)
        out["per_graph"] = _breakdown(scores, "graph_gen_algorithm")
        out["per_sorting"] = _breakdown(scores, "sorting_type")
        return out
