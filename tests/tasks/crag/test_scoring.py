from __future__ import annotations

from pathlib import Path

import pytest

from llmlab.tasks.crag import crag_report, evaluate_prediction, load_tokenizer, parse_judge_response, trim_prediction


@pytest.mark.parametrize(("reply", "score"), [
    ('{"score": 1, "explanation": "ok"}', 1),
    ('{"explanation": "x"}\nWait, no. {"score": 0, "explanation": "y"}', 0),
    ('{"score": 1} then {"explanation": "no score"}', -1),  # only the LAST block counts
    ('{"score": 2}', -1),
    ('{"score": "1"}', -1),
    ("score 1", -1),
])
def test_parse_judge_response(reply: str, score: int) -> None:
    assert parse_judge_response(reply) == score


@pytest.mark.anyio
async def test_evaluate_prediction_rules() -> None:
    seen: list[tuple[str, str, str]] = []

    async def judge(q: str, gt: str, pred: str) -> str | None:
        seen.append((q, gt, pred))
        return '{"score": 1}' if gt == "second" else '{"score": 0}'

    assert (await evaluate_prediction("q", ["Paris"], "  paris ", judge)).label == "correct"
    assert not seen  # exact match needs no judge
    assert (await evaluate_prediction("q", ["x"], "Well, I don't know", judge)).label == "missing"
    assert (await evaluate_prediction("q", ["invalid question"], "Invalid question.", judge)).label == "correct"
    assert (await evaluate_prediction("q", ["paris"], "invalid question", judge)).label == "hallucination"
    assert not seen  # false-premise mismatches are decided without the judge
    v = await evaluate_prediction("q", ["first", "second"], "guess", judge)
    assert v.label == "correct" and [s[1] for s in seen] == ["first", "second"]

    async def failing(q: str, gt: str, pred: str) -> str | None:
        return None

    v = await evaluate_prediction("q", ["a"], "b", failing)
    assert v.label == "hallucination" and v.judge_errors == 1


def test_report_score_is_accuracy_minus_hallucination() -> None:
    rows = [("correct", "simple", "music")] * 3 + [("missing", "set", "open")] * 2 + [("hallucination", "set",
                                                                                       "music")] * 5
    r = crag_report(rows)
    assert r["score"] == pytest.approx(r["accuracy"] - r["hallucination"]) == pytest.approx(0.3 - 0.5)
    assert r["per_question_type"]["set"]["missing"] == pytest.approx(2 / 7)
    assert r["per_domain"]["music"]["n"] == 8


def test_trim_with_the_llama_tokenizer(shared_data: Path) -> None:
    tok = load_tokenizer(str(shared_data / "crag" / "tokenizer"))
    long = " ".join(f"word{i}" for i in range(200))
    trimmed = trim_prediction(long, tok)
    assert len(tok.encode(trimmed, add_special_tokens=False)) <= 76
    assert long.startswith(trimmed.strip()) and len(trimmed) < len(long)
    assert trim_prediction("short answer", tok) == "short answer"
