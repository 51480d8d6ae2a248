from __future__ import annotations

from collections import Counter
from pathlib import Path

from llmlab.tasks.mmlu_redux.data import load_redux
from llmlab.tasks.mmlu_redux.scoring import corrected_label, extract_choice, extract_verdict


def test_corrected_protocol_counts(folder: Path) -> None:
    _, rows = load_redux(folder)
    status = Counter(corrected_label(r)[1] for r in rows)
    assert status == {"ok": 2, "rekeyed": 2, "dropped: wrong groundtruth with empty correct_answer": 1,
                      "dropped: multiple correct answers": 1, "dropped: no correct answer": 1,
                      "dropped: expert": 1, "dropped: bad question clarity": 1}
    multi = next(r for r in rows if r.error_type == "multiple correct answers")
    assert corrected_label(multi, accept_multiple=True) == ((0, 1), "multiple")


def test_extract_choice() -> None:
    assert extract_choice("B") == "B"
    assert extract_choice("(c)") == "C"
    assert extract_choice("B. Paris") == "B"
    assert extract_choice("I think... Answer: D") == "D"
    assert extract_choice("The answer is (A), not B. Final answer: C") == "C"
    assert extract_choice("**B**") == "B"
    assert extract_choice("A good question without a verdict") is None
    assert extract_choice("Answer: E") is None  # only 4 options
    assert extract_choice("Answer: E", 5) == "E"


def test_extract_verdict_follows_official_normalisation() -> None:
    assert extract_verdict("ok") == "ok"
    assert extract_verdict("Not OK.") == "not ok"
    assert extract_verdict("not_ok") == "not ok"
    assert extract_verdict('{"Classification": "not ok", "Reason": "x"}') == "not ok"
    assert extract_verdict("The item looks ok to me") == "ok"
    assert extract_verdict("unsure") is None
