"""Process-supervision data layouts: Math-APS flat and tree, Math-Shepherd, PRM800K, all into :class:`StepExample`.

Part of :mod:`llmlab.methods.prm` (OmegaPRM, arXiv 2406.06592); the layouts and deviations are described there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmlab.core.errors import DataError

STEP_DELIMITER = "\n\n"
SHEPHERD_TAG = "ки"

# -- training-data layouts -----------------------------------------------------------------------------


@dataclass
class StepExample:
    """One solution with per-step soft labels (``None``: the step is not labelled)."""

    question: str
    steps: list[str]
    labels: list[float | None]
    answer: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.labels):
            raise DataError(f"{len(self.steps)} steps but {len(self.labels)} labels")


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(STEP_DELIMITER) if p.strip()]


def flat_to_tree(question: str, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Math-APS flat records → the nested tree (each node's parent: the longest other prefix of it).

    Records are ``{solution_prefix, mc_value}`` whose prefixes start with the question.
    """
    paths = []
    for rec in records:
        prefix = str(rec["solution_prefix"])
        if not prefix.startswith(question):
            raise DataError("a solution_prefix does not start with the question")
        paths.append((tuple(_split(prefix[len(question):])), rec["mc_value"]))
    roots = [i for i, (steps, _) in enumerate(paths) if not steps]
    if not roots:
        raise DataError("no record is the question itself (the root)")
    nodes = [{"text": question, "mc_value": mc, "children": []} for _, mc in paths]
    for i, (steps, _) in enumerate(paths):
        if i == roots[0]:
            continue
        # The parent: the longest proper prefix among all records (the earliest of equals), else the root.
        parent = roots[0]
        for j, (other, _) in enumerate(paths):
            if len(other) < len(steps) and steps[: len(other)] == other and len(other) > len(paths[parent][0]):
                parent = j
        nodes[i]["text"] = STEP_DELIMITER.join(steps[len(paths[parent][0]):]) if steps else ""
        nodes[parent]["children"].append(nodes[i])
    root = nodes[roots[0]]
    return root


def tree_to_flat(question: str, tree: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The nested tree → Math-APS flat records (pre-order), prefixes starting with the question."""
    out: list[dict[str, Any]] = []

    def walk(node: Mapping[str, Any], steps: tuple[str, ...]) -> None:
        prefix = question if not steps else question + STEP_DELIMITER + STEP_DELIMITER.join(steps)
        out.append({"solution_prefix": prefix, "mc_value": node["mc_value"]})
        for child in node.get("children", []):
            walk(child, (*steps, *_split(child["text"])))

    walk(tree, ())
    return out


def tree_to_examples(question: str, tree: Mapping[str, Any], answer: str | None = None) -> list[StepExample]:
    """One :class:`StepExample` per root-to-leaf path; each node's label sits on its last step."""
    out: list[StepExample] = []

    def walk(node: Mapping[str, Any], steps: list[str], labels: list[float | None]) -> None:
        children = node.get("children", [])
        if not children and steps:
            out.append(StepExample(question, list(steps), list(labels), answer, "math-aps"))
        for child in children:
            new = _split(child["text"])
            if not new:
                continue
            mc = child["mc_value"]
            walk(child, [*steps, *new], [*labels, *([None] * (len(new) - 1)), None if mc is None else float(mc)])

    walk(tree, [], [])
    return out


def sibling_pairs(question: str, tree: Mapping[str, Any]) -> list[tuple[list[str], list[str]]]:
    """``(better, worse)`` step lists of sibling nodes whose MC differ (for the pairwise objective)."""
    out: list[tuple[list[str], list[str]]] = []

    def walk(node: Mapping[str, Any], steps: list[str]) -> None:
        kids = [(c, [*steps, *_split(c["text"])]) for c in node.get("children", []) if _split(c["text"])]
        for i, (a, sa) in enumerate(kids):
            for b, sb in kids[i + 1 :]:
                if a["mc_value"] is None or b["mc_value"] is None or a["mc_value"] == b["mc_value"]:
                    continue
                out.append((sa, sb) if a["mc_value"] > b["mc_value"] else (sb, sa))
        for c, sc in kids:
            walk(c, sc)

    walk(tree, [])
    return out


def read_math_aps(path: str | Path) -> list[StepExample]:
    """Examples from a Math-APS file (flat or tree ``reasoning_steps``), one per root-to-leaf path."""
    out: list[StepExample] = []
    for rec in _jsonl(path):
        question, steps = rec["question"], rec["reasoning_steps"]
        tree = steps if isinstance(steps, dict) else flat_to_tree(question, steps)
        out.extend(tree_to_examples(question, tree, rec.get("final_answer")))
    return out


def read_math_shepherd(path: str | Path) -> list[StepExample]:
    """Examples from a Math-Shepherd file (``input`` with ``ки`` step ends, ``label`` with ``+``/``-``)."""
    out: list[StepExample] = []
    for rec in _jsonl(path):
        text, label = rec["input"], rec["label"]
        pieces = text.split(SHEPHERD_TAG)
        first = re.search(r"Step 1\s*:", pieces[0])
        question = pieces[0][: first.start()].strip() if first else ""
        steps, labels = [], []
        pos = 0
        for i, piece in enumerate(pieces[:-1]):
            body = piece[first.start():] if (i == 0 and first) else piece
            pos += len(piece)
            # The label text is the input with each tag replaced by one mark: shift by the tags before.
            mark = label[pos - i * (len(SHEPHERD_TAG) - 1)] if pos - i * (len(SHEPHERD_TAG) - 1) < len(label) else ""
            pos += len(SHEPHERD_TAG)
            steps.append(re.sub(r"^Step\s*\d+\s*:\s*", "", body.strip()))
            labels.append(1.0 if mark == "+" else 0.0 if mark == "-" else None)
        out.append(StepExample(question, steps, labels, None, "math-shepherd"))
    return out


def read_prm800k(path: str | Path) -> list[StepExample]:
    """Examples from PRM800K lines: the chosen (or human) completion of each step with its rating."""
    rating_label = {1: 1.0, 0: 1.0, -1: 0.0}
    out: list[StepExample] = []
    for rec in _jsonl(path):
        steps, labels = [], []
        for step in rec["label"]["steps"]:
            chosen = step.get("chosen_completion")
            comp = step["completions"][chosen] if chosen is not None else step.get("human_completion")
            if comp is None:
                break
            steps.append(comp["text"])
            rating = comp.get("rating")
            labels.append(rating_label.get(rating) if rating is not None else None)
        q = rec["question"]
        out.append(StepExample(q["problem"], steps, labels, q.get("ground_truth_answer"), "prm800k"))
    return out


def to_math_shepherd(ex: StepExample, task: str = "MATH") -> dict[str, str]:
    """A Math-Shepherd line (hard labels: ``+`` iff the soft label > 0); unlabelled steps are refused."""
    if any(lab is None for lab in ex.labels):
        raise DataError("Math-Shepherd needs a label on every step")
    body = "\n".join(f"Step {i + 1}: {s} {SHEPHERD_TAG}" for i, s in enumerate(ex.steps))
    marks = "\n".join(f"Step {i + 1}: {s} {'+' if (lab or 0) > 0 else '-'}"
                      for i, (s, lab) in enumerate(zip(ex.steps, ex.labels, strict=True)))
    return {"input": f"{ex.question} {body}", "label": f"{ex.question} {marks}", "task": task}


def to_prm800k(ex: StepExample) -> dict[str, Any]:
    """A PRM800K-style line: one completion per step, rated 1 (label > 0), −1 (label 0) or ``None``."""
    steps = []
    for s, lab in zip(ex.steps, ex.labels, strict=True):
        rating = None if lab is None else (1 if lab > 0 else -1)
        steps.append({"completions": [{"text": s, "rating": rating, "flagged": None}],
                      "human_completion": None, "chosen_completion": 0})
    return {"question": {"problem": ex.question, "ground_truth_answer": ex.answer},
            "label": {"steps": steps, "total_time": 0, "finish_reason": "solution"}}


def _jsonl(path: str | Path) -> Iterable[dict[str, Any]]:
    from llmlab.core.jsonl import read_jsonl

    for _, rec in read_jsonl(Path(path), what="PRM data file"):
        yield rec
