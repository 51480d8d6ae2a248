r"""PH-LLM professional exams: sleep-medicine and fitness multiple-choice questions (paper §2.1, Methods).

Data: a CSV with columns ``question, choices, domain, difficulty, answer`` (the official
``phllm/data/synthetic_mcq_data.csv`` layout): ``choices`` is a dict literal ``{'(A)': text, ...}`` (Python
or JSON), ``answer`` a label such as ``(C)``, ``domain`` ``Sleep`` or ``Fitness``, ``difficulty``
``Easy``/``Moderate``/``Hard`` for sleep and ``None`` for fitness. Only the 6 synthetic public questions are
released (dataset ``ph-llm``); the real banks (629 BoardVitals sleep, 99 NSCA-style fitness questions) are
licensed — point ``data_file`` at your own copy in the same layout.

Prompts (``prompt``): ``direct`` — an instruction line naming the domain and the option labels, then the
question (official: scored by option likelihood); ``cot`` — two worked exemplars ending in
``<answer>(X)</answer>``, then the question and an explanation opener (the paper's setting, with
self-consistency: ``--method self_consistency -p k=5``); ``step_back`` — one exemplar that first states
principles, then reasons. Parsing (``parse``): ``official`` reads the first ``<answer>(X)</answer>`` tag
(``direct`` replies, which have no tags, are read with :func:`~llmlab.grading.choices.extract_letter`);
``lenient`` falls back to :func:`~llmlab.grading.choices.extract_letter` for tagged prompts too.

Deviations: prompt wording and exemplars are ours (structure as official); tags up to ``(F)`` are read
(official regex stops at ``(E)``); an unparsed reply is wrong and counted in ``unparsed`` (official: a dict
compared to the label); options missing from the question text are appended (official shows none).
"""

from __future__ import annotations

import ast
import csv
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import DataError
from llmlab.grading.choices import extract_letter
from llmlab.tasks.base import Task, TaskConfig

DOMAINS = ("Sleep", "Fitness")
LABELS = tuple(f"({c})" for c in "ABCDEF")

DIRECT_TEMPLATE = (
    "Instruction: This is a multiple-choice question testing {domain} knowledge. Give exactly one option from "
    "{options} as your final answer.\n{question}"
)

# Our own exemplars, in the official layout ("##Question", options, "Explanation:", "Answer: <answer>").
_COT_EXEMPLARS = {
    "Sleep": (
        ("A 40-year-old man drinks two cups of coffee at 6 pm and reports taking over an hour to fall asleep. "
         "Which change is most likely to shorten his sleep-onset latency?\n(A) A nightcap of alcohol\n"
         "(B) Moving his last coffee to before early afternoon\n(C) A longer afternoon nap\n"
         "(D) Exercising vigorously just before bed",
         "Caffeine blocks adenosine receptors and has a half-life of roughly five to six hours, so an evening "
         "dose still antagonises sleep pressure at bedtime. Alcohol fragments later sleep, long naps reduce "
         "homeostatic drive and late vigorous exercise raises arousal.", "(B)"),
        ("Which sleep stage dominates the first third of a healthy young adult's night?\n(A) N1\n(B) N3\n"
         "(C) REM\n(D) Wake after sleep onset",
         "Slow-wave sleep (N3) is driven by accumulated homeostatic pressure and is concentrated in the first "
         "sleep cycles; REM lengthens towards the morning.", "(B)"),
    ),
    "Fitness": (
        ("A novice lifter has squatted the same load for 3 sets of 10 for six weeks and stopped improving. "
         "Which principle should guide the next block?\n(A) Specificity\n(B) Progressive overload\n"
         "(C) Reversibility\n(D) Detraining",
         "Adaptation stalls when the stimulus stays constant; gradually increasing load, volume or intensity "
         "(progressive overload) restores the training stimulus.", "(B)"),
        ("Which energy system supplies most of the ATP during a 10-second maximal sprint?\n"
         "(A) Oxidative phosphorylation\n(B) Fast glycolysis\n(C) The phosphagen system\n(D) Beta-oxidation",
         "Efforts of about ten seconds at maximal intensity rely mainly on stored ATP and creatine phosphate, "
         "the phosphagen system; glycolysis takes over in longer bouts.", "(C)"),
    ),
}

_COT_HEAD = (
    "Instructions: The following are multiple-choice questions about {domain} knowledge. Work through each one "
    "step by step, beginning with a summary of the information given. Give exactly one option from {options} "
    "as the final answer, wrapped in the xml tags <answer></answer>.\n\nTwo worked examples:\n"
)
_COT_EXEMPLAR = ("##Question: {question}\nExplanation: Let us reason step by step. {explanation}\n"
                 "Answer: <answer>{label}</answer>\n\n")
_COT_TAIL = "##Question: {question}\nExplanation: Let us reason step by step. "

_STEP_BACK_EXEMPLAR = {
    "Sleep": (_COT_EXEMPLARS["Sleep"][0][0],
              "Adenosine and sleep pressure: adenosine accumulates with time awake and promotes sleep.\n"
              "Caffeine pharmacology: caffeine is an adenosine antagonist with a half-life of about five hours.",
              "Caffeine taken at 6 pm is still largely active at bedtime and blunts sleep pressure, so moving the "
              "last cup earlier addresses the cause; the other options worsen sleep continuity or arousal.", "(B)"),
    "Fitness": (_COT_EXEMPLARS["Fitness"][0][0],
                "Progressive overload: adaptation requires a stimulus that grows over time.\n"
                "Accommodation: the response to a constant stimulus declines.",
                "Six weeks at a fixed load is a constant stimulus, so the lifter has accommodated; increasing the "
                "demand gradually follows progressive overload.", "(B)"),
}
_STEP_BACK_HEAD = (
    "You are a {domain_lower} expert. Solve the multiple-choice question below with abstraction reasoning: "
    "first recall the principles relevant to the question, then apply them step by step to reach the answer. "
    "Give exactly one option from {options} as the final answer, wrapped in the xml tags "
    "<answer></answer>.\n\nAn example:\n##Question:\n{ex_question}\n\n## Principles:\n{ex_principles}\n\n"
    "## Answer:\n{ex_answer} The answer is <answer>{ex_label}</answer>.\n\n"
)
_STEP_BACK_TAIL = "## Question:\n{question}\n\n## Principles:\n"

PROMPTS = ("direct", "cot", "step_back")


def parse_tagged_answer(text: str | None, letters: str = "ABCDEF") -> str | None:
    """The letter of the first ``<answer>(X)</answer>`` tag (case-insensitive), or ``None``.

    Example:
        >>> parse_tagged_answer("so B is wrong. Answer: <answer>(c)</answer>", "ABCD")
        'C'
        >>> parse_tagged_answer("Answer: (C)", "ABCD") is None
        True
    """
    if text is None:
        return None
    m = re.search(rf"<answer>\s*\(([{re.escape(letters)}])\)\s*</answer>", text, flags=re.I)
    return m.group(1).upper() if m else None


def parse_choices(raw: str, where: str) -> dict[str, str]:
    """Parse ``"{'(A)': 'x', ...}"`` (a Python or JSON literal) into ``{"A": "x", ...}``.

    The labels must be ``(A)``, ``(B)``, … in sequence.

    Raises:
        DataError: Not a dict literal, or the labels are not consecutive from ``(A)``.
    """
    try:
        obj = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        try:
            obj = json.loads(raw)
        except ValueError:
            obj = None
    if not isinstance(obj, dict) or not obj:
        raise DataError(f"{where}: 'choices' must be a dict literal like {{'(A)': 'text', '(B)': 'text'}}")
    labels = [str(k) for k in obj]
    if sorted(labels) != list(LABELS[: len(labels)]):
        raise DataError(f"{where}: choice labels {labels} must be (A), (B), ... in sequence (at most (F))")
    return {k[1]: str(obj[k]) for k in sorted(obj)}


def load_mcq_csv(path: Path) -> list[dict[str, Any]]:
    """Read and check a PH-LLM MCQ CSV (fields may span lines; parsed as CSV, not by line).

    Raises:
        DataError: A missing column, an unknown domain, bad choices, or an answer that is not a choice label.
    """
    rows: list[dict[str, Any]] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"question", "choices", "domain", "answer"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: PH-LLM MCQ CSV lacks column(s) {sorted(missing)}")
        for i, rec in enumerate(reader, start=2):
            where = f"{path}:row {i - 1}"
            domain = (rec.get("domain") or "").strip()
            if domain not in DOMAINS:
                raise DataError(f"{where}: domain {domain!r} is not one of {list(DOMAINS)}")
            options = parse_choices(rec["choices"] or "", where)
            answer = (rec.get("answer") or "").strip()
            m = re.fullmatch(r"\(?([A-F])\)?", answer)
            if not m or m.group(1) not in options:
                raise DataError(f"{where}: answer {answer!r} is not one of the choice labels "
                                f"{[f'({k})' for k in options]}")
            diff = (rec.get("difficulty") or "").strip()
            rows.append({"question": (rec["question"] or "").strip(), "options": options, "domain": domain,
                         "difficulty": None if diff in ("", "None", "nan") else diff, "answer": m.group(1)})
    return rows


def question_with_options(question: str, options: Mapping[str, str]) -> str:
    r"""The question text, with ``(A) text`` lines appended when the text does not already list them.

    Example:
        >>> question_with_options("Q?", {"A": "x", "B": "y"})
        'Q?\n(A) x\n(B) y'
    """
    if all(f"({k})" in question for k in options):
        return question
    return question + "\n" + "\n".join(f"({k}) {options[k]}" for k in sorted(options))


def build_prompt(question: str, options: Mapping[str, str], domain: str, prompt: str) -> str:
    """The exam prompt of one question (``prompt``: ``direct``, ``cot`` or ``step_back``).

    Example:
        >>> "<answer></answer>" in build_prompt("Q?", {"A": "x", "B": "y"}, "Sleep", "cot")
        True
    """
    labels = ", ".join(f"({k})" for k in sorted(options))
    q = question_with_options(question.strip(), options)
    if prompt == "direct":
        return DIRECT_TEMPLATE.format(domain=domain, options=labels, question=q)
    if prompt == "cot":
        shots = "".join(_COT_EXEMPLAR.format(question=eq, explanation=ex, label=lab)
                        for eq, ex, lab in _COT_EXEMPLARS[domain])
        return _COT_HEAD.format(domain=domain.lower(), options=labels) + shots + _COT_TAIL.format(question=q)
    if prompt == "step_back":
        eq, principles, ans, lab = _STEP_BACK_EXEMPLAR[domain]
        head = _STEP_BACK_HEAD.format(domain_lower=domain.lower(), options=labels, ex_question=eq,
                                      ex_principles=principles, ex_answer=ans, ex_label=lab)
        return head + _STEP_BACK_TAIL.format(question=q)
    raise DataError(f"unknown PH-LLM exam prompt {prompt!r}; use one of {list(PROMPTS)}")


class PHLLMExamConfig(TaskConfig):
    """Options of the PH-LLM exam task.

    Args:
        data_file: A CSV in the official layout (default: ``ph-llm/synthetic_mcq_data.csv`` in the data folder).
        domain: ``Sleep`` or ``Fitness`` (``None``: both).
        difficulty: Keep only these sleep difficulty levels (``Easy``, ``Moderate``, ``Hard``).
        prompt: ``direct``, ``cot`` (the paper's) or ``step_back``.
        parse: ``official`` (tags only for tagged prompts) or ``lenient`` (fall back to a plain letter).
        system: An optional system message.
    """

    data_file: str | None = None
    domain: Literal["Sleep", "Fitness"] | None = None
    difficulty: list[Literal["Easy", "Moderate", "Hard"]] | None = None
    prompt: Literal["direct", "cot", "step_back"] = "cot"
    parse: Literal["official", "lenient"] = "official"
    system: str | None = None


class PHLLMExam(Task):
    r"""PH-LLM sleep/fitness multiple-choice exams, scored on the parsed option letter.

    Example:
        >>> t = PHLLMExam()
        >>> item = Item("x", "Q?", "B", {"options": {"A": "a", "B": "b"}, "domain": "Sleep", "difficulty": None})
        >>> t.score(item, "... so <answer>(B)</answer>").correct
        True
    """

    name = "ph_llm.mcq"
    Config = PHLLMExamConfig

    @property
    def cfg(self) -> PHLLMExamConfig:
        assert isinstance(self.config, PHLLMExamConfig)
        return self.config

    def _path(self) -> Path:
        if self.cfg.data_file is not None:
            p = Path(self.cfg.data_file)
            if not p.is_file():
                raise DataError(f"PH-LLM MCQ file {p} not found; pass -t data_file=PATH (a CSV in the official layout)")
            return p
        return self.data_path("ph-llm", "synthetic_mcq_data.csv")

    def items(self) -> Iterable[Item]:
        for i, row in enumerate(load_mcq_csv(self._path())):
            if self.cfg.domain is not None and row["domain"] != self.cfg.domain:
                continue
            if self.cfg.difficulty is not None and row["difficulty"] not in self.cfg.difficulty:
                continue
            yield Item(f"ph_llm-mcq-{i}", row["question"], row["answer"],
                       {"options": row["options"], "domain": row["domain"], "difficulty": row["difficulty"]})

    def extract(self, text: str | None, letters: str) -> str | None:
        """The letter a reply commits to, by ``parse`` and the prompt kind."""
        if self.cfg.prompt == "direct":
            return extract_letter(text, letters)
        tagged = parse_tagged_answer(text, letters)
        if tagged is None and self.cfg.parse == "lenient":
            return extract_letter(text, letters)
        return tagged

    def prompt(self, item: Item) -> Query:
        options = item.metadata["options"]
        text = build_prompt(str(item.input), options, item.metadata["domain"], self.cfg.prompt)
        letters = "".join(sorted(options))
        msgs = (Message("system", self.cfg.system),) if self.cfg.system is not None else ()
        return Query((*msgs, Message("user", text)), extract=lambda t: self.extract(t, letters),
                     metadata={"id": item.id, "options": dict(options)})

    def score(self, item: Item, answer: str | None) -> Score:
        letters = "".join(sorted(item.metadata["options"]))
        extracted = answer if answer is not None and len(answer) == 1 and answer in letters \
            else self.extract(answer, letters)
        ok = extracted == item.target
        return Score(float(ok), correct=ok, extracted=extracted,
                     details={"domain": item.metadata.get("domain"), "difficulty": item.metadata.get("difficulty")})

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        """Accuracy overall, per domain and per difficulty (as the official ``analyze_results``), and unparsed."""
        out = super().aggregate(scores)
        out["unparsed"] = sum(1 for s in scores if s.extracted is None)
        for key in ("domain", "difficulty"):
            groups: dict[str, list[bool]] = defaultdict(list)
            for s in scores:
                g = s.details.get(key)
                if g is not None:
                    groups[str(g)].append(bool(s.correct))
            if groups:
                out[f"accuracy_by_{key}"] = {g: sum(v) / len(v) for g, v in sorted(groups.items())}
        return out
