"""GPQA from a file the user points at (the dataset is gated): 4-option multiple choice, "Answer: X".

Paper: "GPQA: A Graduate-Level Google-Proof Q&A Benchmark", Rein et al., 2023, arXiv 2311.12022. Used by
TextGrad's solution optimization (arXiv 2406.07496 §3.2, GPQA-Diamond). Input: a CSV (or JSON lines) in
the released format, with the columns ``Question``, ``Correct Answer``, ``Incorrect Answer 1..3`` (and
optionally ``Record ID``), e.g. ``gpqa_diamond.csv`` (198 rows), passed as ``--data FILE``.

The prompt has the structure of simple-evals' multiple-choice template (the one TextGrad uses): the
instruction to end with ``Answer: $LETTER``, the question, then ``A) ...`` to ``D) ...``.

Deviation, on purpose: textgrad's loader calls ``random.seed(42)`` before shuffling each question's
options, so every question gets the same permutation and the correct answer is **always C**. Here each
question's options are shuffled with a seed derived from its record id (``shuffle=per_item``, default);
``shuffle=official`` reproduces textgrad's order, ``shuffle=none`` keeps the correct answer at D.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from pathlib import Path
from typing import Literal

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import ConfigError, DataError
from llmlab.tasks.base import Task, TaskConfig

LETTERS = "ABCD"
QUERY_TEMPLATE = (
    "Answer this multiple-choice question. The last line of your reply must have the form 'Answer: $LETTER' "
    "(no quotes), where LETTER is one of ABCD. Think step by step before you answer.\n\n"
    "{question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"
)
COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
_ANSWER_RE = re.compile(r"(?i)Answer\s*:\s*\$?\(?([A-D])\b")


def extract_letter(text: str | None) -> str | None:
    r"""The letter of the last ``Answer: X`` in ``text``.

    Example:
        >>> extract_letter("Hmm, B? No.\nAnswer: c")
        'C'
    """
    if text is None:
        return None
    found = _ANSWER_RE.findall(text)
    return found[-1].upper() if found else None


class GPQAConfig(TaskConfig):
    """Options of :class:`GPQA`.

    Attributes:
        data_file: The GPQA CSV / JSON-lines file (required; the dataset is gated).
        shuffle: ``per_item`` (seeded per record), ``official`` (textgrad's seed-42 order: always C), ``none``.
        seed: Mixed into the per-item seeds.
    """

    data_file: str | None = None
    shuffle: Literal["per_item", "official", "none"] = "per_item"
    seed: int = 0


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        if path.suffix in (".jsonl", ".json"):
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, ValueError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read it as a GPQA file ({exc})") from None


class GPQA(Task):
    """GPQA multiple choice from a user's file.

    Example:
        >>> item = Item("q", {"question": "?", "choices": ["w", "x", "y", "z"]}, "B")
        >>> GPQA({"data_file": "unused.csv"}).score(item, "Answer: B").correct
        True
    """

    name = "gpqa"
    Config = GPQAConfig

    @property
    def cfg(self) -> GPQAConfig:
        assert isinstance(self.config, GPQAConfig)
        return self.config

    def _order(self, record_id: str) -> list[int]:
        order = [0, 1, 2, 3]  # incorrect 1..3, then the correct answer (textgrad's list)
        if self.cfg.shuffle == "official":
            rng = random.Random(42)
        elif self.cfg.shuffle == "per_item":
            digest = hashlib.sha256(f"{self.cfg.seed}:{record_id}".encode()).hexdigest()
            rng = random.Random(int(digest[:16], 16))
        else:
            return order
        rng.shuffle(order)
        return order

    def items(self) -> list[Item]:
        if self.cfg.data_file is None:
            raise ConfigError("gpqa needs its data file: --data gpqa_diamond.csv (the dataset is gated on the hub)")
        path = Path(self.cfg.data_file)
        out = []
        for i, row in enumerate(_rows(path)):
            missing = [c for c in COLUMNS if not isinstance(row.get(c), str)]
            if missing:
                raise DataError(f"{path}: row {i + 1} lacks {', '.join(map(repr, missing))}")
            rid = str(row.get("Record ID") or i)
            options = [row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"],
                       row["Correct Answer"]]
            order = self._order(rid)
            choices = [options[j].strip() for j in order]
            out.append(Item(id=rid, input={"question": row["Question"].strip(), "choices": choices},
                            target=LETTERS[order.index(3)], metadata={"index": i}))
        return out

    def prompt(self, item: Item) -> Query:
        c = item.input["choices"]
        text = QUERY_TEMPLATE.format(question=item.input["question"], A=c[0], B=c[1], C=c[2], D=c[3])
        return Query((Message("user", text),), extract=extract_letter, metadata={"id": item.id, "choices": c})

    def score(self, item: Item, answer: str | None) -> Score:
        letter = extract_letter(answer)
        ok = letter == item.target
        return Score(float(ok), correct=ok, extracted=letter)
