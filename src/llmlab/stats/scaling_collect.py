"""Per-choice log-likelihoods for the downstream-scaling analysis, from any backend that can score text.

``ℓ_k = Σ log p(continuation_k tokens | context)``, the quantity lm-evaluation-harness's ``loglikelihood``
requests return and the chain of :mod:`llmlab.stats.scaling` starts from. Two backends can give it:

- ``hf:`` — one forward pass over context + continuation, log-softmax at the continuation's positions;
- ``openai:`` — the completions API with ``echo=True, logprobs=1, max_tokens=1`` (vLLM and other
  OpenAI-compatible servers): the prompt tokens' log-probabilities come back; we sum those whose text offset
  is at or past the end of the context (the last, generated token is left out), as lm-eval does.

Items: any task whose items carry ``input["question"]``, ``input["choices"]`` and the correct option index
(``input["answer"]``), e.g. ``mmlu_redux``. Prompt formats: ``letters`` (lm-eval's MMLU: the question, the
options as ``A. ...``, ``Answer:``; continuations `` A``.. `` D``) or ``cloze`` (the question and ``Answer:``;
continuations are the option texts).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from llmlab.core.errors import DataError, UnsupportedFeatureError

LETTERS = "ABCDEFGHIJ"
Format = Literal["letters", "cloze"]


@dataclass(frozen=True)
class MCItem:
    """One multiple-choice item as context + continuations."""

    id: str
    context: str
    continuations: tuple[str, ...]
    correct: int


def mc_item(item_id: str, question: str, choices: Sequence[str], correct: int, fmt: Format = "letters") -> MCItem:
    """Build the context and continuations of one item in ``fmt``.

    Example:
        >>> mc_item("q1", "2+2?", ["3", "4"], 1).continuations
        (' A', ' B')
    """
    if not 0 <= correct < len(choices):
        raise DataError(f"item {item_id}: correct index {correct} outside {len(choices)} choices")
    if fmt == "letters":
        opts = "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(choices))
        return MCItem(item_id, f"{question.strip()}{opts}\nAnswer:", tuple(f" {LETTERS[i]}" for i in
                                                                          range(len(choices))), correct)
    return MCItem(item_id, f"Question: {question.strip()}\nAnswer:", tuple(f" {c}" for c in choices), correct)


def task_mc_items(task: Any, fmt: Format = "letters", limit: int | None = None) -> list[MCItem]:
    """The multiple-choice items of a task (items with ``question``, ``choices`` and ``answer`` inputs)."""
    out: list[MCItem] = []
    for item in task.items():
        inp = item.input
        if not isinstance(inp, dict) or not {"question", "choices", "answer"} <= set(inp):
            raise DataError(f"task '{task.name}' items are not multiple choice (need input question/choices/answer)")
        out.append(mc_item(item.id, str(inp["question"]), [str(c) for c in inp["choices"]], int(inp["answer"]), fmt))
        if limit is not None and len(out) >= limit:
            break
    return out


def hf_logliks(backend: Any, context: str, continuations: Sequence[str]) -> list[float]:
    """Summed continuation log-likelihoods from an :class:`~llmlab.backends.hf.HFBackend` (sync)."""
    import torch

    tok = backend.tokenizer
    ctx = list(tok(context, add_special_tokens=True)["input_ids"])
    if not ctx:
        raise DataError("empty context: the first continuation token would have nothing to condition on")
    out = []
    for cont in continuations:
        full = list(tok(context + cont, add_special_tokens=True)["input_ids"])
        if full[: len(ctx)] == ctx and len(full) > len(ctx):
            cont_ids = full[len(ctx):]
        else:  # the join re-tokenised across the boundary: score the continuation's own tokens
            cont_ids = list(tok(cont, add_special_tokens=False)["input_ids"])
            full = ctx + cont_ids
        ids = torch.tensor([full], device=backend.device)
        with torch.no_grad():
            logits = backend.hf_model(input_ids=ids).logits[0].float()  # (L, V)
        logp = torch.log_softmax(logits[:-1], dim=-1)  # position t predicts token t+1
        targets = torch.tensor(cont_ids, device=logp.device)
        rows = torch.arange(len(ctx) - 1, len(full) - 1, device=logp.device)
        out.append(float(logp[rows, targets].sum()))
    return out


def echo_loglik(token_logprobs: Sequence[float | None], text_offset: Sequence[int], context_chars: int) -> float:
    """Sum the echoed prompt tokens at or after ``context_chars``, leaving out the one generated token.

    Example:
        >>> echo_loglik([None, -1.0, -0.5, -0.25, -9.0], [0, 3, 8, 10, 12], 8)
        -0.75
    """
    prompt = list(zip(token_logprobs, text_offset, strict=True))[:-1]
    vals = [lp for lp, off in prompt if off >= context_chars]
    if not vals or any(v is None for v in vals):
        raise DataError("the server's echoed logprobs do not cover the continuation")
    return float(sum(v for v in vals if v is not None))


async def openai_logliks(backend: Any, context: str, continuations: Sequence[str]) -> list[float]:
    """Summed continuation log-likelihoods from an OpenAI-compatible completions endpoint with echo."""
    client = backend._pick().client
    out = []
    for cont in continuations:
        resp = await client.completions.create(model=backend.model, prompt=context + cont, max_tokens=1,
                                               echo=True, logprobs=1, temperature=0.0)
        lp = resp.choices[0].logprobs
        if lp is None or lp.token_logprobs is None or lp.text_offset is None:
            raise UnsupportedFeatureError(f"server for '{backend.model}' returned no echoed logprobs "
                                          "(it needs completions with echo=True, e.g. vLLM)")
        out.append(echo_loglik(lp.token_logprobs, lp.text_offset, len(context)))
    return out


async def choice_logliks(model: Any, item: MCItem) -> list[float]:
    """``ℓ_k`` for every continuation of ``item`` from a :class:`~llmlab.backends.model.Model`.

    Raises:
        UnsupportedFeatureError: The backend cannot score text (only hf and openai completions can).
    """
    import anyio

    from llmlab.backends.hf import HFBackend
    from llmlab.backends.openai_compat import OpenAIBackend

    backend = model.backend
    if isinstance(backend, HFBackend):
        return await anyio.to_thread.run_sync(hf_logliks, backend, item.context, item.continuations)
    if isinstance(backend, OpenAIBackend):
        return await openai_logliks(backend, item.context, item.continuations)
    raise UnsupportedFeatureError(f"backend '{backend.name}' cannot score continuations; use hf:<model> or an "
                                  "openai:<model>@<url> server whose completions support echo (vLLM)")


def rows_for(model_name: str, log10_compute: float, item: MCItem, logliks: Sequence[float]) -> list[dict[str, Any]]:
    """The table rows of one model × item."""
    return [{"model": model_name, "log10_compute": log10_compute, "item": item.id, "choice": k,
             "loglik": float(ll), "correct": k == item.correct,
             "n_bytes": len(item.continuations[k].encode("utf-8"))} for k, ll in enumerate(logliks)]


def parse_compute(values: Iterable[str]) -> dict[str, float]:
    """``SPEC=FLOPS`` pairs (FLOPS as a number, e.g. ``6e20``) → log10 compute per spec."""
    out: dict[str, float] = {}
    for v in values:
        spec, sep, flops = v.rpartition("=")
        if not sep or not spec:
            raise DataError(f"--compute expects SPEC=FLOPS, got {v!r}")
        try:
            f = float(flops)
        except ValueError:
            raise DataError(f"--compute {v!r}: FLOPS must be a number") from None
        out[spec] = math.log10(f) if f > 0 else -math.inf
    return out
