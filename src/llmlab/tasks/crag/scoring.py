"""CRAG automatic evaluation (the official ``local_evaluation.py``, its shipped bugs fixed).

Per prediction, in the official order:

1. trim to 75 tokens of the Llama-2 tokenizer (encode with BOS, keep tokens 1..75, decode), then strip;
2. "i don't know" anywhere in the lower-cased prediction → **missing** (0);
3. for each gold answer: exact lower-case match → correct; "invalid" in both → correct (false premise
   recognised); "invalid" in only one → not correct, try the next answer; otherwise ask the judge and parse
   its reply (:func:`parse_judge_response`); a 1 is correct and stops;
4. correct → 1, anything else → **hallucination** (−1).

Truthfulness score = (2·n_correct + n_miss)/n − 1 = accuracy − hallucination rate.

Bugs of the shipped script not copied (CRAG#1, PR#3, open PRs #12/#13): ``prediction_lowercase`` is read
before it is assigned (the script stops on its first prediction); the gold answer string is iterated
character by character (``ground_truths_list[idx].strip()``); ``evaluate_predictions`` is called with five
arguments (defined with four); and the judge branch runs only for model names containing "chat" while the
default is ``gpt-4-0125-preview``. We take the evident intent: a list of gold answers (the answer plus, by
default, the dataset's alternative answers), the lower-cased prediction computed before the check, and any
judge model.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llmlab.core.errors import MissingExtraError

Label = Literal["correct", "missing", "hallucination"]
VALUES: dict[str, float] = {"correct": 1.0, "missing": 0.0, "hallucination": -1.0}
MAX_PREDICTION_TOKENS = 75

_BLOCK = re.compile(r"{([^}]*)}")
_SCORE = re.compile(r'"score"\s*:\s*(\d+)')


@functools.lru_cache(maxsize=4)
def load_tokenizer(path: str) -> Any:
    """The Llama tokenizer the official evaluation trims with (``LlamaTokenizerFast``, offline from ``path``)."""
    try:
        from transformers import LlamaTokenizerFast
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingExtraError("transformers", "hf", "the CRAG 75-token prediction trim") from None
    return LlamaTokenizerFast.from_pretrained(path, local_files_only=True)


def trim_prediction(prediction: str, tokenizer: Any, max_tokens: int = MAX_PREDICTION_TOKENS) -> str:
    """Keep the first ``max_tokens`` tokens: encode (BOS added), drop the BOS, decode — as officially."""
    ids = tokenizer.encode(prediction)
    return str(tokenizer.decode(ids[1:max_tokens + 1]))


def parse_judge_response(response: str) -> int:
    """The judge's 0/1 from its reply, official rules: the LAST ``{...}`` block, ``"score": <digits>``.

    Returns -1 (a parse error, never correct) when there is no block, no score, or a score other than 0/1.

    Example:
        >>> parse_judge_response('{"explanation": "x"} wait, no: {"score": 1, "explanation": "ok"}')
        1
        >>> parse_judge_response('{"score": 2}')
        -1
    """
    blocks = _BLOCK.findall(response)
    text = "{" + blocks[-1] + "}" if blocks else ""
    m = _SCORE.search(text)
    if not m:
        return -1
    score = int(m.group(1))
    return score if score in (0, 1) else -1


JudgeFn = Callable[[str, str, str], Awaitable[str | None]]  # (query, ground_truth, prediction) -> reply


@dataclass
class Verdict:
    """One prediction's evaluation: its label, the trimmed text and each judge exchange."""

    label: Label
    prediction: str
    judged: list[dict[str, Any]] = field(default_factory=list)
    judge_errors: int = 0

    @property
    def value(self) -> float:
        return VALUES[self.label]


async def evaluate_prediction(query: str, ground_truths: Sequence[str], prediction: str, judge: JudgeFn) -> Verdict:
    """Classify one (already trimmed) prediction as correct / missing / hallucination (module docstring).

    ``judge`` returns the judge model's reply text, or ``None`` when the call failed (officially: no
    change to the outcome, i.e. not correct); failures are counted in ``judge_errors``.
    """
    prediction = prediction.strip()
    pred_lc = prediction.lower()
    if "i don't know" in pred_lc:
        return Verdict("missing", prediction)
    verdict = Verdict("hallucination", prediction)
    for gt in ground_truths:
        gt_lc = gt.lower()
        if pred_lc == gt_lc or ("invalid" in pred_lc and "invalid" in gt_lc):
            verdict.label = "correct"
            return verdict
        if ("invalid" in pred_lc) != ("invalid" in gt_lc):
            continue  # a false-premise answer against a real answer, or the reverse
        reply = await judge(query, gt, prediction)
        if reply is None:
            verdict.judge_errors += 1
            continue
        score = parse_judge_response(reply)
        verdict.judged.append({"ground_truth": gt, "reply": reply, "score": score})
        if score == 1:
            verdict.label = "correct"
            return verdict
    return verdict


def _stats(labels: list[str]) -> dict[str, Any]:
    n = len(labels)
    c, m = labels.count("correct"), labels.count("missing")
    h = n - c - m
    return {"n": n, "score": (2 * c + m) / n - 1 if n else 0.0, "accuracy": c / n if n else 0.0,
            "hallucination": h / n if n else 0.0, "missing": m / n if n else 0.0,
            "n_correct": c, "n_miss": m, "n_hallucination": h}


def crag_report(rows: Iterable[tuple[str, str, str]]) -> dict[str, Any]:
    """The official result keys over ``(label, question_type, domain)`` rows, plus the per-type/domain breakdown.

    Example:
        >>> r = crag_report([("correct", "simple", "music"), ("missing", "set", "music"),
        ...                  ("hallucination", "set", "open")])
        >>> round(r["score"], 4), r["per_domain"]["music"]["score"]
        (0.0, 0.5)
    """
    labels: list[str] = []
    by_type: dict[str, list[str]] = defaultdict(list)
    by_domain: dict[str, list[str]] = defaultdict(list)
    for label, qtype, domain in rows:
        labels.append(label)
        by_type[qtype].append(label)
        by_domain[domain].append(label)
    out = _stats(labels)
    out["total"] = out["n"]
    out["per_question_type"] = {k: _stats(v) for k, v in sorted(by_type.items())}
    out["per_domain"] = {k: _stats(v) for k, v in sorted(by_domain.items())}
    return out


def tokenizer_dir(path: str | Path) -> str:
    """Validate a tokenizer folder (``tokenizer.json`` or ``tokenizer.model`` inside)."""
    from llmlab.core.errors import DataError

    p = Path(path)
    if not ((p / "tokenizer.json").is_file() or (p / "tokenizer.model").is_file()):
        raise DataError(f"CRAG tokenizer folder {p} has no tokenizer.json/tokenizer.model; pass -t tokenizer=DIR "
                        "(the repository's tokenizer/ folder)")
    return str(p)
