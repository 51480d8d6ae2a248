"""BIG-Bench Hard object counting and word sorting, with TextGrad's splits and answer parsing.

Paper: "Challenging BIG-Bench Tasks and Whether Chain-of-Thought Can Solve Them", Suzgun et al., 2022,
arXiv 2210.09261. Data: suzgunmirac/BIG-Bench-Hard ``bbh/<task>.json`` (MIT), 250 examples each, found by
:func:`llmlab.core.data.find_data` under ``bbh/bbh/``. Used by TextGrad's prompt optimization (arXiv 2406.07496
§3.3), which splits each task 50/100/100 in file order: train = examples[:50], val = [50:150], test = [150:]
(official ``textgrad/tasks/big_bench_hard.py``). ``split=all`` gives the 250.

Prompting: the item's question is the user message; the system message is ``system_prompt`` (default: the
official starting prompt, "You will answer a reasoning question. Think step by step. The last line of your
response should be of the following format: 'Answer: $VALUE' ..."). Optimised prompts plug in here.

Scoring:

- object counting: the official ``parse_integer_answer`` (from DSPy): the last whitespace token with a
  digit, cut at the first ``.``, its digits as an integer, compared to the target integer.
- word sorting: the official protocol has no string scorer, it asks an LLM judge (``<ACCURACY> 0/1``).
  ``judge=false`` (default) scores exact match instead: the text after the last ``Answer:`` (else the last
  non-empty line), split into words (commas and brackets dropped, lower-cased), equal to the target's words.
  ``judge=true`` calls the ``judge`` role with the official instruction's structure.

Deviations, each on purpose:

- A reply with no number scores wrong; the official parser returns 0 for it, which would count as right
  for a target of 0 (none occur in the 250, so the accuracy is the same).
- Word sorting's default starting prompt asks for the sorted words; the official task reuses the
  object-counting prompt ("where VALUE is a numerical value") for every BBH task. Pass that text as
  ``system_prompt`` to reproduce it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Roles, Score
from llmlab.core.errors import DataError
from llmlab.tasks.base import Task, TaskConfig

DATASET = "bbh"
COUNTING_PROMPT = (
    "You will answer a reasoning question. Think step by step. The last line of your response should be of "
    "the following format: 'Answer: $VALUE' where VALUE is a numerical value."
)
SORTING_PROMPT = (
    "You will answer a reasoning question. Think step by step. The last line of your response should be of "
    "the following format: 'Answer: $VALUE' where VALUE is the sorted words separated by spaces."
)
JUDGE_INSTRUCTION = (
    "Below are a question from a question-answering task, the ground truth answer, and reasoning ending in a "
    "final prediction. Is the final prediction correct, i.e. the same as the ground truth answer? Say only 1 "
    "(yes) or 0 (no), within <ACCURACY> </ACCURACY> tags, e.g. <ACCURACY> 0 </ACCURACY> or <ACCURACY> 1 </ACCURACY>"
)
SPLITS = {"train": (0, 50), "val": (50, 150), "test": (150, 250), "all": (0, 250)}


def parse_integer_answer(answer: str | None, only_first_line: bool = False) -> int | None:
    r"""The official (DSPy) integer parser; ``None`` where it would fall back to 0.

    Example:
        >>> parse_integer_answer("So I have 3 + 4 = 7 things.\nAnswer: 7."), parse_integer_answer("none")
        (7, None)
    """
    if answer is None:
        return None
    text = answer.strip().split("\n")[0] if only_first_line else answer
    tokens = [t for t in text.strip().split() if any(c.isdigit() for c in t)]
    if not tokens:
        return None
    digits = "".join(c for c in tokens[-1].split(".")[0] if c.isdigit())
    return int(digits) if digits else None


_WORD_RE = re.compile(r"[^\W\d_][\w'-]*|\d+", re.UNICODE)


def sorted_words(answer: str | None) -> list[str] | None:
    r"""The words of a word-sorting answer: after the last ``Answer:``, else the last non-empty line.

    Example:
        >>> sorted_words("Thinking...\nAnswer: apple, Banana")
        ['apple', 'banana']
    """
    if answer is None:
        return None
    parts = re.split(r"(?i)answer\s*:", answer)
    if len(parts) > 1:
        text = parts[-1]
    else:
        lines = [ln for ln in answer.splitlines() if ln.strip()]
        if not lines:
            return None
        text = lines[-1]
    words = [w.lower() for w in _WORD_RE.findall(text)]
    return words if words else None


class BBHConfig(TaskConfig):
    """Options of the BBH tasks.

    Attributes:
        split: ``train`` (50), ``val`` (100), ``test`` (100) or ``all`` (250).
        system_prompt: The system message (the prompt TextGrad optimises); ``None`` = the task default.
        judge: Word sorting only: score with the ``judge`` role (the official protocol) instead of exact match.
    """

    split: Literal["train", "val", "test", "all"] = "test"
    system_prompt: str | None = None
    judge: bool = False


class _BBH(Task):
    task_file: ClassVar[str] = ""
    default_prompt: ClassVar[str] = ""
    Config = BBHConfig

    @property
    def cfg(self) -> BBHConfig:
        assert isinstance(self.config, BBHConfig)
        return self.config

    def load(self) -> list[dict[str, str]]:
        """All 250 examples of the task, checked."""
        path = self.data_path(DATASET, "bbh", f"{self.task_file}.json")
        try:
            data = json.loads(path.read_text())
            examples = data["examples"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: not a BBH task file with 'examples' ({exc})") from None
        for i, ex in enumerate(examples):
            if not (isinstance(ex, dict) and isinstance(ex.get("input"), str) and isinstance(ex.get("target"), str)):
                raise DataError(f"{path}: example {i} needs string 'input' and 'target'")
        return list(examples)

    def items(self) -> list[Item]:
        start, end = SPLITS[self.cfg.split]
        rows = self.load()
        return [Item(id=f"{self.task_file}-{i}", input=rows[i]["input"], target=rows[i]["target"],
                     metadata={"index": i}) for i in range(start, min(end, len(rows)))]

    @property
    def system_prompt(self) -> str:
        return self.cfg.system_prompt if self.cfg.system_prompt is not None else self.default_prompt

    def prompt(self, item: Item) -> Query:
        return Query((Message("system", self.system_prompt), Message("user", str(item.input))),
                     metadata={"item_id": item.id})

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """``{"input", "target", "prediction"}`` lines (``id`` optional)."""
        missing = [k for k in ("input", "target", "prediction") if k not in record]
        if missing:
            raise DataError(f"{where}: missing {', '.join(map(repr, missing))}; each line needs 'input', "
                            "'target' and 'prediction'")
        item = Item(id=str(record.get("id", where)), input=str(record["input"]), target=str(record["target"]))
        return item, str(record["prediction"])


class BBHObjectCounting(_BBH):
    r"""BBH object counting, integer answers parsed as the official code does.

    Example:
        >>> BBHObjectCounting().score(Item("x", "How many?", "8"), "I count eight.\nAnswer: 8").correct
        True
    """

    name = "bbh_object_counting"
    task_file = "object_counting"
    default_prompt = COUNTING_PROMPT

    def score(self, item: Item, answer: str | None) -> Score:
        pred = parse_integer_answer(answer)
        ok = pred is not None and pred == parse_integer_answer(str(item.target))
        return Score(float(ok), correct=ok, extracted=None if pred is None else str(pred))


class BBHWordSorting(_BBH):
    """BBH word sorting: exact match of the word list (or the official LLM judge with ``judge=true``).

    Example:
        >>> BBHWordSorting().score(Item("x", "Sort: b a", "a b"), "Answer: a b").correct
        True
    """

    name = "bbh_word_sorting"
    task_file = "word_sorting"
    default_prompt = SORTING_PROMPT

    def score(self, item: Item, answer: str | None) -> Score:
        words = sorted_words(answer)
        ok = words is not None and words == str(item.target).lower().split()
        return Score(float(ok), correct=ok, extracted=None if words is None else " ".join(words))

    async def ascore(self, item: Item, answer: str | None, roles: Roles) -> Score:
        if not self.cfg.judge:
            return self.score(item, answer)
        user = (f"{JUDGE_INSTRUCTION}\n**Question for the task**: {item.input}\n**Ground truth answer**: "
                f"{item.target}\n**Reasoning and prediction from the language model**: {answer}")
        reply = await roles["judge"].complete(user, system="You are an evaluation system that compares variables.",
                                              temperature=0.0)
        m = re.search(r"<ACCURACY>\s*([01])\s*</ACCURACY>", reply)
        exact = self.score(item, answer)
        if m is None:
            return Score(0.0, correct=False, extracted=exact.extracted,
                         details={"judge_unparsed": True, "exact_match": exact.correct})
        ok = m.group(1) == "1"
        return Score(float(ok), correct=ok, extracted=exact.extracted, details={"exact_match": exact.correct})
