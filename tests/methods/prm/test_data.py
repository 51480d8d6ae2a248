from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmlab.core.errors import DataError
from llmlab.methods.prm import (
    StepExample,
    flat_to_tree,
    read_math_aps,
    read_math_shepherd,
    read_prm800k,
    to_math_shepherd,
    to_prm800k,
    tree_to_flat,
)

# -- data layouts on the real sample files ---------------------------------------------------------


def test_math_shepherd_round_trip(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "omegaprm-samples" / "samples_math-shepherd.jsonl"
    examples = read_math_shepherd(path)
    assert len(examples) == 7
    first = examples[0]
    assert first.question.startswith("Janet pays $40/hour") and len(first.steps) == 5
    assert first.labels == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert examples[1].labels == [0.0, 0.0, 0.0]
    # Writing back and reading again gives the same steps and labels.
    out = tmp_path / "shepherd.jsonl"
    out.write_text("\n".join(json.dumps(to_math_shepherd(ex)) for ex in examples) + "\n")
    again = read_math_shepherd(out)
    assert [(e.steps, e.labels) for e in again] == [(e.steps, e.labels) for e in examples]
    # And our writer reproduces the file's own label line for the first record.
    original = json.loads(path.read_text().splitlines()[0])
    assert to_math_shepherd(first, task="GSM8K")["label"].split("Step 1:")[1].replace("\n", " ").split() == (
        original["label"].split("Step 1:")[1].replace("\n", " ").split()
    )


def test_prm800k_round_trip(shared_data: Path, tmp_path: Path) -> None:
    examples = read_prm800k(shared_data / "omegaprm-samples" / "samples_prm800k.jsonl")
    assert len(examples) == 6
    assert examples[0].question.startswith("Three pencils and a jumbo eraser")
    assert all(lab in (0.0, 1.0, None) for ex in examples for lab in ex.labels)
    out = tmp_path / "prm800k.jsonl"
    out.write_text("\n".join(json.dumps(to_prm800k(ex)) for ex in examples) + "\n")
    assert [(e.steps, e.labels) for e in read_prm800k(out)] == [(e.steps, e.labels) for e in examples]


def test_math_aps_flat_and_tree(shared_data: Path) -> None:
    folder = shared_data / "omegaprm-samples"
    flat_examples = read_math_aps(folder / "samples_math-aps.jsonl")
    tree_examples = read_math_aps(folder / "samples_math-aps-tree.jsonl")
    assert flat_examples and tree_examples
    for ex in [*flat_examples, *tree_examples]:
        assert ex.labels[-1] is not None and all(lab is None or 0.0 <= lab <= 1.0 for lab in ex.labels)
    # The flat file's records survive flat -> tree -> flat as a bag of (prefix-steps, MC).
    rec = json.loads((folder / "samples_math-aps.jsonl").read_text().splitlines()[0])
    q = rec["question"]

    def bag(records: list[dict[str, Any]]) -> list[tuple[str, float]]:
        return sorted(("\n\n".join(p.strip() for p in r["solution_prefix"][len(q):].split("\n\n") if p.strip()),
                       r["mc_value"]) for r in records)

    assert bag(tree_to_flat(q, flat_to_tree(q, rec["reasoning_steps"]))) == bag(rec["reasoning_steps"])


def test_bad_layouts_are_one_line_errors() -> None:
    with pytest.raises(DataError, match="2 steps but 1 labels"):
        StepExample("q", ["a", "b"], [1.0])
    with pytest.raises(DataError, match="root"):
        flat_to_tree("q", [{"solution_prefix": "q\n\na", "mc_value": 1.0}][1:] or [])
    with pytest.raises(DataError, match="every step"):
        to_math_shepherd(StepExample("q", ["a"], [None]))


