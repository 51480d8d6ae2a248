"""Test of Time: A Benchmark for Evaluating LLMs on Temporal Reasoning (Fatemi et al., arXiv:2406.09170).

Implements
- **ToT-Arithmetic** (§3.2 of the paper; spec ``evaluation.md`` §7.3): the 1850-question test split, seven
  categories (``add_subtract``, ``compare``, ``multi_op``, ``schedule``, ``trick``, ``duration``,
  ``timezone``). Labels are Python-dict literals parsed with :func:`ast.literal_eval` (never ``eval``).
  A prediction is correct iff EVERY label key matches after normalisation: numbers compare as floats
  (``'1307'`` == ``1307`` == ``1307.0``), strings case- and whitespace-insensitively, ``unordered_list`` as
  a set, ``ordered_list`` as a list. Reports overall, per-category and per-answer-format accuracy.
- **ToT-Semantic** (§3.1): a seeded generator (:func:`generate_semantic`) of anonymised temporal
  knowledge graphs — a random graph from one of seven families, each edge turned into one or more facts
  ``"E{i} was the R{j} of E{k} from YYYY to YYYY."`` — and the eight question types of the paper with
  exactly computed answers; :class:`ToTSemantic` evaluates a generated (or the official HF) file.

Deviations and choices (each deliberate)
- No official code exists (the paper points to the HF dataset only). The ToT-Semantic generator is a
  re-implementation from the paper's description: the graph-family names (ER, SBM, BA, SFN, star,
  complete, AWE), the relation semantics (at most one holder of relation R of entity E at any year — the
  paper's "consistent" facts) and the sorting-type names (``shuffle``, ``start_time``,
  ``target_and_start_time``, ``relation_and_start_time``) are our reading of it, not verified against
  the authors' generator. AWE is realised as the edge set of a random anonymous walk.
- Questions whose answer is not unique (time ties, an entity holding the same role twice where the
  question assumes once) are rejected and redrawn, as the paper requires.
- Answer parsing (no official parser): the last ``{...}`` block of the reply that contains the label's
  keys, read as JSON, then as a Python literal, then key-by-key with a lenient regex (models often
  write ``"answer": 352 BC`` unquoted, as some ToT prompts literally ask). Times ``H:MM[:SS]`` are
  compared with a zero-padded hour; ``compare`` questions that misspell the key as ``unorered_list`` in
  their format example (50 rows) accept that key as an alias.
- Prompt wording for ToT-Semantic is ours (the official prompt text is not public outside the HF rows).

Predictions file for ``llmlab score tot_arithmetic --predictions F`` (JSONL, one object per line):
``{"question": str, "question_type": str, "label": str (the dataset's literal), "prediction": str}``;
``id`` is optional. For ``tot_semantic`` the same plus ``prompt``. ``prediction`` is the model's raw text
(its JSON answer is parsed) or a bare label dict.
"""

from __future__ import annotations

import ast
import json
import math
import random
import re
from abc import abstractmethod
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_args

from llmlab.core.config import LabConfig, build_config
from llmlab.core.errors import ConfigError, DataError
from llmlab.methods.base import Query
from llmlab.tasks.base import Item, Score, Task, TaskConfig

ARITHMETIC_CATEGORIES = ("add_subtract", "compare", "multi_op", "schedule", "trick", "duration", "timezone")
# The `compare` category's own format example misspells the key (50 rows); accept it.
KEY_ALIASES: dict[str, tuple[str, ...]] = {"unordered_list": ("unorered_list",)}

# ---------------------------------------------------------------------------------------------------
# Parsing and normalisation (shared by both tasks)
# ---------------------------------------------------------------------------------------------------

_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def _brace_blocks(text: str) -> list[str]:
    """Top-level ``{...}`` blocks of ``text`` (quote-aware, so braces inside strings do not count)."""
    blocks: list[str] = []
    depth = 0
    start = -1
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(text):
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in "\"'" and depth > 0:
            # An apostrophe inside prose (e.g. "it's") must not open a string: only treat ' as a quote
            # when it follows a structural character.
            prev = text[:i].rstrip()[-1:] if i else ""
            if ch == '"' or prev in "{[,:":
                quote = ch
            continue
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                blocks.append(text[start : i + 1])
    return blocks


def _literal(block: str) -> Any:
    try:
        return json.loads(block)
    except (json.JSONDecodeError, ValueError):
        pass
    try:
        return ast.literal_eval(block)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _lenient_value(block: str, key: str) -> Any:
    """Read ``"key": value`` from a block that is not valid JSON (value up to the next key or brace)."""
    m = re.search(
        r"[\"']" + re.escape(key) + r"[\"']\s*:\s*(.+?)\s*(?:,\s*[\"'][A-Za-z_]+[\"']\s*:|\}\s*$)", block, re.S
    )
    if m is None:
        return None
    raw = m.group(1).strip()
    val = _literal(raw)
    if val is not None:
        return val
    return raw.strip("\"' ")


def parse_answer(text: str | None, keys: Sequence[str]) -> dict[str, Any] | None:
    """Find the answer dict with ``keys`` in a model reply.

    Args:
        text: The model's reply (or a bare JSON / Python dict literal).
        keys: The label's keys (``["answer"]``, ``["hours", "minutes"]`` ...).

    Returns:
        ``{key: value}`` for every key, or ``None`` if some key could not be found.

    Example:
        >>> parse_answer('JSON = {"explanation": "8 years later", "answer": "352 BC"}', ["answer"])
        {'answer': '352 BC'}
    """
    if text is None:
        return None
    blocks = _brace_blocks(text)
    for block in reversed(blocks):
        obj = _literal(block)
        if isinstance(obj, dict):
            found = _pick(obj, keys)
            if found is not None:
                return found
    for block in reversed(blocks):
        lenient: dict[str, Any] = {}
        for key in keys:
            val = None
            for k in (key, *KEY_ALIASES.get(key, ())):
                val = _lenient_value(block, k)
                if val is not None:
                    break
            if val is None:
                break
            lenient[key] = val
        if len(lenient) == len(keys):
            return lenient
    return None


def _pick(obj: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    lower = {str(k).strip().lower(): v for k, v in obj.items()}
    for key in keys:
        for k in (key, *KEY_ALIASES.get(key, ())):
            if k in obj:
                out[key] = obj[k]
                break
            if k.lower() in lower:
                out[key] = lower[k.lower()]
                break
        else:
            return None
    return out


def normalize_value(value: Any, key: str = "answer") -> Any:
    """Canonical form of one answer value (idempotent).

    Numbers (and numeric strings) become floats, ``H:MM[:SS]`` times get a zero-padded hour, other strings
    are lower-cased with whitespace collapsed; ``unordered_list`` becomes a sorted list of the JSON-encoded
    elements (set semantics, duplicates dropped), ``ordered_list`` a list of them in order.

    Example:
        >>> normalize_value("1307"), normalize_value(" 352  BC "), normalize_value(["B", "a"], "unordered_list")
        (1307.0, '352 bc', ['"a"', '"b"'])
    """
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple | set):
        items = [normalize_value(v) for v in value]
        if key == "unordered_list":
            return sorted({json.dumps(v) for v in items})
        return [json.dumps(v) for v in items] if key == "ordered_list" else items
    if value is None:
        return None
    s = " ".join(str(value).split()).strip().lower()
    s = s.strip("\"'").rstrip(".").strip()
    if key in ("unordered_list", "ordered_list") and "," in s:
        return normalize_value([p for p in s.split(",") if p.strip()], key)
    if _NUM_RE.match(s):
        return float(s)
    m = _TIME_RE.match(s)
    if m is not None:
        return f"{int(m.group(1)):02d}:{m.group(2)}" + (f":{m.group(3)}" if m.group(3) is not None else "")
    return s


def _values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-9)
    return bool(a == b)


def canonical_answer(text: str | None, keys: Sequence[str]) -> str | None:
    """The normalised answer as a stable JSON string (for voting and scoring), or ``None``.

    Example:
        >>> canonical_answer('{"hours": "5", "minutes": 0}', ["hours", "minutes"])
        '{"hours": 5.0, "minutes": 0.0}'
    """
    parsed = parse_answer(text, keys)
    if parsed is None:
        return None
    return json.dumps({k: normalize_value(parsed[k], k) for k in keys}, sort_keys=True)


def _load_json_rows(path: Path) -> list[dict[str, Any]]:
    """A JSON list or a JSONL file of objects; errors name file and row."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    stripped = text.lstrip()
    rows: list[Any]
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON at line {exc.lineno} ({exc.msg})") from None
    else:
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {lineno} is not valid JSON ({exc.msg})") from None
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {i}: expected a JSON object, got {type(row).__name__}")
    return rows


def _require(row: Mapping[str, Any], keys: Iterable[str], where: str) -> None:
    for key in keys:
        if key not in row:
            raise DataError(f"{where}: missing key '{key}' (has: {', '.join(sorted(map(str, row)))})")


def parse_label(raw: Any, where: str) -> dict[str, Any]:
    """Parse a ToT label (a Python-dict literal string, or already a dict).

    Raises:
        DataError: Not a literal, or not a non-empty dict (the message names ``where``).

    Example:
        >>> parse_label("{'answer': '352 BC'}", "test.json: row 0")
        {'answer': '352 BC'}
    """
    if isinstance(raw, dict):
        value: Any = raw
    else:
        try:
            value = ast.literal_eval(str(raw))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            raise DataError(f"{where}: label is not a Python literal ({type(exc).__name__}: {raw!r:.80})") from None
    if not isinstance(value, dict) or not value:
        raise DataError(f"{where}: label must be a non-empty dict literal, got {raw!r:.80}")
    return {str(k): v for k, v in value.items()}


def _format_name(keys: Sequence[str]) -> str:
    return ",".join(keys)


def _breakdown(scores: Sequence[Score], key: str) -> dict[str, dict[str, float | int]]:
    groups: dict[str, list[Score]] = defaultdict(list)
    for s in scores:
        groups[str(s.details.get(key, "?"))].append(s)
    return {
        g: {"n": len(v), "accuracy": sum(bool(s.correct) for s in v) / len(v),
            "unparsed": sum(s.extracted is None for s in v)}
        for g, v in sorted(groups.items())
    }


# ---------------------------------------------------------------------------------------------------
# ToT-Arithmetic
# ---------------------------------------------------------------------------------------------------

class ToTConfig(TaskConfig):
    """Options of the ToT tasks.

    Attributes:
        data_file: A JSON list / JSONL file to use instead of the dataset folder.
        categories: Only these question types (``None``: all).
    """

    data_file: str | None = None
    categories: list[str] | None = None


class _ToTBase(Task):
    Config = ToTConfig
    dataset = ""
    filename = ""
    required: tuple[str, ...] = ("question", "question_type", "label")

    def _path(self) -> Path:
        cfg = self.config
        assert isinstance(cfg, ToTConfig)
        if cfg.data_file is not None:
            path = Path(cfg.data_file)
            if not path.exists():
                raise DataError(f"data file not found: {path}")
            return path
        return self.data_path(self.dataset, self.filename)

    def load(self) -> list[Item]:
        """Read and validate every row (errors name file and row)."""
        cfg = self.config
        assert isinstance(cfg, ToTConfig)
        path = self._path()
        items = [self._make_item(row, f"{path}: row {i}", i) for i, row in enumerate(_load_json_rows(path))]
        if cfg.categories is not None:
            items = [it for it in items if it.metadata["category"] in cfg.categories]
        return items

    def items(self) -> list[Item]:
        return self.load()

    @abstractmethod
    def _make_item(self, row: Mapping[str, Any], where: str, index: int) -> Item:
        """Build one item from a data row (``where`` names file and row for errors)."""

    def _keys(self, item: Item) -> list[str]:
        return list(item.metadata["keys"])

    def prompt(self, item: Item) -> Query:
        extract: Callable[[str], str | None] = partial(canonical_answer, keys=self._keys(item))
        return Query.from_text(str(item.input), extract=extract)

    def score(self, item: Item, answer: str | None) -> Score:
        keys = self._keys(item)
        got = canonical_answer(answer, keys)
        details = {"category": item.metadata["category"], "format": _format_name(keys)}
        if got is None:
            return Score(0.0, correct=False, extracted=None, details=details)
        pred = json.loads(got)
        gold = {k: normalize_value(item.target[k], k) for k in keys}
        ok = all(_values_equal(pred[k], gold[k]) for k in keys)
        return Score(1.0 if ok else 0.0, correct=ok, extracted=got, details=details)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        n = len(scores)
        acc = sum(bool(s.correct) for s in scores) / n if n else 0.0
        return {
            "n": n,
            "score": acc,
            "accuracy": acc,
            "unparsed": sum(s.extracted is None for s in scores),
            "per_category": _breakdown(scores, "category"),
            "per_format": _breakdown(scores, "format"),
        }

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        _require(record, (*self.required, "prediction"), where)
        item = self._make_item(record, where, -1)
        item_id = str(record["id"]) if record.get("id") is not None else where
        item = Item(item_id, item.input, item.target, item.metadata)
        pred = record["prediction"]
        return item, pred if isinstance(pred, str) else json.dumps(pred)


class ToTArithmetic(_ToTBase):
    """ToT-Arithmetic: 1850 questions in 7 categories, exact match on every label key.

    Example:
        >>> task = ToTArithmetic()
        >>> item = task.item_from_record({"question": "q", "question_type": "trick",
        ...     "label": "{'answer': 'unanswerable'}", "prediction": '{"answer": "Unanswerable"}'}, "x:1")[0]
        >>> task.score(item, '{"answer": "Unanswerable"}').correct
        True
    """

    name = "tot_arithmetic"
    dataset = "tot-arithmetic"
    filename = "test.json"

    def _make_item(self, row: Mapping[str, Any], where: str, index: int) -> Item:
        _require(row, self.required, where)
        label = parse_label(row["label"], where)
        category = str(row["question_type"])
        return Item(
            id=f"{category}/{index}",
            input=str(row["question"]),
            target=label,
            metadata={"category": category, "keys": tuple(label)},
        )


# ---------------------------------------------------------------------------------------------------
# ToT-Semantic: generator
# ---------------------------------------------------------------------------------------------------

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

SEMANTIC_PROMPT = (
    "Below are facts about anonymised entities (E...) and relations (R...). Each fact holds for every year "
    "from its start year to its end year, both included.\n\n{facts}\n\nQuestion: {question}\n\n"
    'Reply with JSON only, in the form {{"explanation": "<your reasoning>", "answer": "<your answer>"}}.'
)
FACT_TEMPLATE = "{subject} was the {relation} of {object} from {start} to {end}."


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


# ---------------------------------------------------------------------------------------------------
# ToT-Semantic: task
# ---------------------------------------------------------------------------------------------------

def normalize_semantic(value: Any, question_type: str) -> str:
    """Canonical string of a ToT-Semantic answer (entities case-insensitive, numbers as integers/floats).

    Example:
        >>> normalize_semantic(" e59, E57 ", "timeline"), normalize_semantic(1982.0, "event_at_what_time")
        ('e59,e57', '1982')
    """
    if isinstance(value, list | tuple):
        value = ",".join(str(v) for v in value)
    s = " ".join(str(value).split()).strip().strip("\"'").rstrip(".").strip().lower()
    if question_type == "timeline":
        return ",".join(p.strip() for p in s.strip("[]").split(",") if p.strip())
    if _NUM_RE.match(s):
        x = float(s)
        return str(int(x)) if x.is_integer() else repr(x)
    return s


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


__all__ = [
    "Fact",
    "ToTArithmetic",
    "ToTSemantic",
    "canonical_answer",
    "generate_semantic",
    "normalize_semantic",
    "normalize_value",
    "parse_answer",
    "parse_label",
]
