r"""The evaluation sets bundled with Husky (arXiv 2406.06469), with the official answer normalisation.

Data: agent-husky/Husky-v1 ``husky/dataset/<name>/test.jsonl`` (commit ``1d5dca1``), rows
``{index, question, answer}``, found by :func:`llmlab.core.data.find_data` as ``husky-eval/<name>/test.jsonl``.

| task | set | rows | score (official ``eval_husky.py``) |
|---|---|---|---|
| ``bamboogle`` | Bamboogle (Press et al. 2022) | 125 | EM and F1, SQuAD normalisation |
| ``hotpotqa`` | HotpotQA dev sample | 1000 | EM and F1, SQuAD normalisation |
| ``strategyqa`` | StrategyQA | 300 | yes/no against the boolean label |
| ``tabmwp`` | TabMWP (table flattened into the question) | 1000 | numbers as numbers, else EM/F1 |
| ``husky_math`` | MATH test, all 5000 | 5000 | MATH answer equivalence |

(GSM8K, Husky's other math set, is the existing ``gsm8k`` task.)

The prediction is first reduced to its final answer (:func:`final_answer`: the text after the last "the
answer is", a ``\boxed{}``'s content, a trailing period dropped), so the same scorer takes a Husky ``[finish]``
answer or a direct model's full reply. Each query carries ``metadata["question"]`` (the raw question) and
``metadata["max_steps"]``, the official Husky step cap for the set (10 for MATH, 5 for the QA sets).

SQuAD normalisation (:func:`normalize_answer`): lower case, punctuation and the articles a/an/the removed,
whitespace collapsed. F1 is the token-overlap F1; as in the official code, F1 is 0 when either side
normalises to yes/no/noanswer and they differ.

Deliberate deviations from ``eval_husky.py`` (the official verdict is kept in ``details["official"]``):

- TabMWP: the official scorer reads the *first* number of each side (``float`` of the first match of
  ``-?\d+\.?\d*``), so the fraction ``3/10`` counts as ``3.0`` (and ``3/11`` matches it) and ``2:35 P.M.`` as
  ``2.0``; here a side that is entirely one number (integer, decimal, fraction, thousands commas, ``$``/``%``)
  is compared by exact value, anything else by normalised EM/F1.
- StrategyQA: the official test is ``startswith("yes")`` / ``startswith("no")`` on the normalised answer, so
  "not sure", "nothing" and "none" count as "no"; here the first word must be yes/no (also true/false).
- MATH: the official scorer strips a ``<number> <unit>`` suffix then uses its own ``eval_math``; here the
  answer is compared by :func:`llmlab.grading.math_answers.math_equal` as it is, and only if that fails after
  the same unit strip (the official strip alone turns the reference answer ``2b`` of item 410 into ``2``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any, ClassVar, Literal

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import DataError
from llmlab.core.jsonl import read_jsonl
from llmlab.grading.math_answers import extract_math_answer, math_equal
from llmlab.grading.text import normalize_answer
from llmlab.tasks.base import Task, TaskConfig

DATASET = "husky-eval"

INSTRUCTION = ("Answer the following question. Think step by step, then end with a last line of the form "
               "\"The answer is <answer>.\", where <answer> is {form}.")
PROMPT_TEMPLATE = "{instruction}\n\nQuestion: {question}"

_ANSWER_IS_RE = re.compile(r"answer is:?", re.I)
_NUMBER_ONLY_RE = re.compile(r"^[-−]?\$?\s*(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:\s*/\s*\d+)?\s*%?$")


def final_answer(text: str | None) -> str:
    r"""The final answer in a reply: after the last "the answer is", else a ``\boxed{}``, else the text.

    Example:
        >>> final_answer("It was founded in 1812. The answer is James Madison.")
        'James Madison'
        >>> final_answer("so $\\boxed{\\frac{1}{2}}$")
        '\\frac{1}{2}'
    """
    if text is None:
        return ""
    s = text.strip()
    parts = _ANSWER_IS_RE.split(s)
    if len(parts) > 1:
        s = parts[-1].strip()
    boxed = extract_math_answer(s) if "\\boxed" in s or "\\fbox" in s else None
    if boxed is not None:
        s = boxed
    s = s.strip().strip("*").strip()
    s = s[:-1].strip() if s.endswith(".") else s
    if s.startswith("$") and s.endswith("$") and len(s) > 1:
        s = s[1:-1].strip()
    return s[:-1].strip() if s.endswith(".") else s




def exact_match(prediction: str, truth: str) -> bool:
    """Normalised exact match."""
    return normalize_answer(prediction) == normalize_answer(truth)


def f1_score(prediction: str, truth: str) -> float:
    """Token-overlap F1 of the normalised strings (0 when a yes/no/noanswer side differs).

    Example:
        >>> round(f1_score("president James Madison", "james madison"), 3)
        0.8
    """
    p, t = normalize_answer(prediction), normalize_answer(truth)
    if (p in ("yes", "no", "noanswer") or t in ("yes", "no", "noanswer")) and p != t:
        return 0.0
    pt, tt = p.split(), t.split()
    common = sum((Counter(pt) & Counter(tt)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pt), common / len(tt)
    return 2 * precision * recall / (precision + recall)


def whole_number(text: str) -> Fraction | None:
    """The value of ``text`` when it is one number and nothing else (``$``, ``%``, commas allowed).

    Example:
        >>> whole_number("$1,250.50"), whole_number("3/10"), whole_number("2:35 P.M.")
        (Fraction(2501, 2), Fraction(3, 10), None)
    """
    s = text.strip().rstrip(".")
    if not s or not _NUMBER_ONLY_RE.match(s) or not re.search(r"\d", s):
        return None
    s = s.replace("−", "-").replace("$", "").replace(",", "").replace("%", "").replace(" ", "")
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def _official_first_number(text: str) -> str:
    m = re.search(r"-?\d+\.?\d*", re.sub(r"(\d),(\d)", r"\1\2", text))
    return m.group() if m else ""


def official_tabmwp_em(prediction: str, label: str) -> bool:
    """The official TabMWP verdict: the first numbers as floats, else the lower-cased strings, then EM."""
    try:
        pred, lab = str(float(_official_first_number(prediction))), str(float(_official_first_number(label)))
    except ValueError:
        pred, lab = prediction.lower().strip(), label.lower().strip()
    return exact_match(pred, lab)


def yes_no(text: str) -> bool | None:
    """``True`` for yes/true, ``False`` for no/false as the first word, else ``None``.

    Example:
        >>> yes_no("Yes, it was."), yes_no("not sure"), yes_no("No.")
        (True, None, False)
    """
    words = normalize_answer(text).split()
    if not words:
        return None
    return {"yes": True, "true": True, "no": False, "false": False}.get(words[0])


class HuskyEvalConfig(TaskConfig):
    """Options of the Husky evaluation sets.

    Args:
        data_dir: A folder holding ``husky-eval/<set>/test.jsonl`` (default: the usual search order).
        split: Only ``test``.
        system: An optional system message (for direct methods; Husky does not send it).
    """

    split: Literal["test"] = "test"
    system: str | None = None


class HuskyEvalTask(Task):
    """Base of the Husky sets: loading, the prompt with the raw question, and ``llmlab score`` records."""

    folder: ClassVar[str] = ""
    max_steps: ClassVar[int] = 5  # the official Husky cap for the set (run_husky_action.sh)
    answer_form: ClassVar[str] = "a short answer (a few words)"
    Config = HuskyEvalConfig

    @property
    def cfg(self) -> HuskyEvalConfig:
        assert isinstance(self.config, HuskyEvalConfig)
        return self.config

    def items(self) -> Iterable[Item]:
        path = self.data_path(DATASET, self.folder, f"{self.cfg.split}.jsonl")
        for where, rec in read_jsonl(path, what=f"{self.name} file"):
            q, a = rec.get("question"), rec.get("answer")
            if not isinstance(q, str) or a is None or isinstance(a, (dict, list)):
                raise DataError(f"{where}: each line needs a 'question' string and an 'answer'")
            idx = rec.get("index", where.rsplit(":", 1)[-1])
            yield Item(f"{self.name}-{idx}", q, a)

    def prompt(self, item: Item) -> Query:
        text = PROMPT_TEMPLATE.format(instruction=INSTRUCTION.format(form=self.answer_form), question=item.input)
        msgs = (Message("system", self.cfg.system),) if self.cfg.system is not None else ()
        return Query((*msgs, Message("user", text)), extract=final_answer,
                     metadata={"id": item.id, "question": item.input, "max_steps": self.max_steps})

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """``{id?, question?, answer|reference, prediction}`` → item and prediction."""
        ref = record.get("answer", record.get("reference"))
        pred = record.get("prediction")
        if ref is None or not isinstance(pred, str):
            raise DataError(f"{where}: a {self.name} prediction line needs 'answer' (or 'reference') and a "
                            "'prediction' string")
        return Item(str(record.get("id", where)), str(record.get("question", "")), ref), pred


class _EMF1Task(HuskyEvalTask):
    def score(self, item: Item, answer: str | None) -> Score:
        pred = final_answer(answer)
        em = exact_match(pred, str(item.target))
        return Score(float(em), em, pred, details={"f1": f1_score(pred, str(item.target))})

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        out = super().aggregate(scores)
        n = len(scores)
        out["em"] = out["accuracy"]
        out["f1"] = sum(float(s.details.get("f1", 0.0)) for s in scores) / n if n else None
        return out


class Bamboogle(_EMF1Task):
    """Bamboogle (125 two-hop questions Google answers wrongly), scored by EM (value) and F1 (details).

    Example:
        >>> t = Bamboogle()
        >>> t.score(Item("b", "Who?", "james madison"), "The answer is James Madison.").correct
        True
    """

    name = "bamboogle"
    folder = "bamboogle"


class HotpotQA(_EMF1Task):
    """HotpotQA dev (Husky's 1000-question sample), EM and F1."""

    name = "hotpotqa"
    folder = "hotpotqa"


class StrategyQA(HuskyEvalTask):
    """StrategyQA: a yes/no answer against the boolean label.

    Example:
        >>> StrategyQA().score(Item("s", "Q?", True), "Yes. The answer is yes.").correct
        True
    """

    name = "strategyqa"
    folder = "strategyqa"
    answer_form = "yes or no"

    def score(self, item: Item, answer: str | None) -> Score:
        pred = final_answer(answer)
        label = item.target if isinstance(item.target, bool) else str(item.target).strip().lower() in ("true", "yes")
        said = yes_no(pred)
        ok = said is not None and said == label
        norm = normalize_answer(pred)
        official = (norm.startswith("yes") and label is True) or (norm.startswith("no") and label is False)
        return Score(float(ok), ok, pred, details={"official": official})


class TabMWP(HuskyEvalTask):
    """TabMWP: numbers compared by value, other answers by normalised EM (F1 in details).

    Example:
        >>> t = TabMWP()
        >>> t.score(Item("t", "Q?", "3/10"), "The answer is 0.3").correct
        True
        >>> t.score(Item("t", "Q", "3/10"), "3/11").correct
        False
    """

    name = "tabmwp"
    folder = "tabmwp"
    answer_form = "a number or a short answer"

    def score(self, item: Item, answer: str | None) -> Score:
        pred, label = final_answer(answer), str(item.target)
        pv, lv = whole_number(pred), whole_number(label)
        if pv is not None and lv is not None:
            ok, f1 = pv == lv, float(pv == lv)
        else:
            ok, f1 = exact_match(pred, label), f1_score(pred, label)
        return Score(float(ok), ok, pred, details={"f1": f1, "official": official_tabmwp_em(pred, label)})

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        out = super().aggregate(scores)
        n = len(scores)
        out["f1"] = sum(float(s.details.get("f1", 0.0)) for s in scores) / n if n else None
        out["official_em"] = sum(bool(s.details.get("official")) for s in scores) / n if n else None
        return out


_UNIT_SUFFIX_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*[a-zA-Z]+$")


class HuskyMATH(HuskyEvalTask):
    r"""MATH test (all 5000, Husky's copy: final answers only), MATH answer equivalence.

    Example:
        >>> HuskyMATH().score(Item("m", "Q?", "\\frac{1}{2}"), "The answer is \\boxed{0.5}.").correct
        True
    """

    name = "husky_math"
    folder = "MATH"
    max_steps = 10
    answer_form = "the final answer in LaTeX, without units"

    def score(self, item: Item, answer: str | None) -> Score:
        pred = final_answer(answer)
        ref = str(item.target)
        ok = bool(pred) and math_equal(pred, ref)
        m = _UNIT_SUFFIX_RE.match(pred)
        if not ok and m:  # the official "<number> <unit>" strip, tried second: it would turn "2b" into "2"
            ok = math_equal(m.group(1), ref)
        return Score(float(ok), ok, pred or None, details={"reference": item.target})

