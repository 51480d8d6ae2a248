"""The PRM interface and its kinds: :class:`FunctionPRM`, :class:`LLMPRM`, the trainable :class:`HFPRMHead`.

Part of :mod:`llmlab.methods.prm` (OmegaPRM, arXiv 2406.06592); see there for the objectives and deviations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from llmlab.backends.base import GenerateRequest, Message
from llmlab.backends.model import Model
from llmlab.core.errors import DataError, MissingExtraError
from llmlab.methods.prm.data import STEP_DELIMITER, StepExample
from llmlab.methods.prm.prompts import LLM_PRM_PROMPT

# -- the PRM interface ---------------------------------------------------------------------------------


class PRM(Protocol):
    """Scores each step of a solution: ``await prm.score_steps(question, steps) -> [p_1, ..., p_M]``."""

    async def score_steps(self, question: str, steps: Sequence[str]) -> list[float]: ...


class FunctionPRM:
    """A PRM from a callable ``(question, steps) -> scores`` (sync or async).

    Example:
        >>> from llmlab.core.concurrency import run_sync
        >>> run_sync(FunctionPRM(lambda q, s: [0.5] * len(s)).score_steps("q", ["a", "b"]))
        [0.5, 0.5]
    """

    def __init__(self, fn: Callable[[str, Sequence[str]], Sequence[float] | Awaitable[Sequence[float]]]) -> None:
        self.fn = fn

    async def score_steps(self, question: str, steps: Sequence[str]) -> list[float]:
        out = self.fn(question, steps)
        if isinstance(out, Awaitable):
            out = await out
        return [float(x) for x in out]


_STEP_SCORE_RE = re.compile(r"Step\s*(\d+)\s*[:=\-]\s*(\*\*)?\s*(correct|incorrect|[01](?:\.\d+)?|\.\d+)", re.I)


def parse_step_scores(text: str, n_steps: int) -> list[float | None]:
    r"""Per-step scores from an LLM-as-PRM reply (``Step i: p``, or ``correct``/``incorrect``); ``None``: missing.

    Example:
        >>> parse_step_scores("Step 1: 0.9\nStep 2: incorrect", 3)
        [0.9, 0.0, None]
    """
    out: list[float | None] = [None] * n_steps
    for m in _STEP_SCORE_RE.finditer(text):
        i = int(m.group(1)) - 1
        word = m.group(3).lower()
        value = 1.0 if word == "correct" else 0.0 if word == "incorrect" else float(word)
        if 0 <= i < n_steps and out[i] is None:
            out[i] = min(1.0, max(0.0, value))
    return out


class LLMPRM:
    """LLM-as-PRM: one call per solution asks the model to rate every step.

    Args:
        model: The grading model.
        prompt: Template with ``{question}`` and ``{steps}`` ("Step i: ..." blocks).
        default_score: Score of a step the reply does not rate.
        temperature: Grading temperature.
    """

    def __init__(self, model: Model, *, prompt: str = LLM_PRM_PROMPT, default_score: float = 0.5,
                 temperature: float = 0.0, max_tokens: int | None = 512) -> None:
        self.model, self.prompt, self.default_score = model, prompt, default_score
        self.temperature, self.max_tokens = temperature, max_tokens
        self.unrated = 0

    def render(self, question: str, steps: Sequence[str]) -> str:
        body = STEP_DELIMITER.join(f"Step {i + 1}: {s}" for i, s in enumerate(steps))
        return self.prompt.format(question=question, steps=body)

    async def score_steps(self, question: str, steps: Sequence[str]) -> list[float]:
        if not steps:
            return []
        req = GenerateRequest(messages=(Message("user", self.render(question, steps)),),
                              temperature=self.temperature, max_tokens=self.max_tokens)
        parsed = parse_step_scores((await self.model.generate(req)).text, len(steps))
        self.unrated += sum(p is None for p in parsed)
        return [p if p is not None else self.default_score for p in parsed]


# -- the trainable PRM head on a transformers model ----------------------------------------------------


@dataclass
class PRMHeadTrainConfig:
    """Training options of :class:`HFPRMHead`.

    ``objective``: ``soft`` (BCE against MC(s), the paper's best) or ``hard`` (BCE against 1[MC(s) > 0]).
    """

    objective: Literal["soft", "hard"] = "soft"
    epochs: int = 20
    lr: float = 5e-3
    batch_size: int = 8
    max_length: int = 512
    train_base: bool = False
    seed: int = 0


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingExtraError("torch", "torch", "the hf PRM head") from None
    return torch


class HFPRMHead:
    """A PRM: a transformers causal LM and a linear head on the hidden state at each step's last token.

    Input layout: the question's tokens, then each step's tokens followed by the delimiter's, each piece
    tokenised on its own so that a prefix's ids are a prefix of the full ids (the reference path relies
    on it). Score of step i: ``sigmoid(w · h_{end_i} + b)``.

    Args:
        path: A local model folder (``save_pretrained`` layout), e.g. the tiny model of the tests.
        device: Torch device.
    """

    def __init__(self, path: str | Path, *, device: str = "cpu", head_state: Mapping[str, Any] | None = None) -> None:
        torch = _torch()
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise MissingExtraError("transformers", "hf", "the hf PRM head") from None
        self.path = str(path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModelForCausalLM.from_pretrained(self.path).to(device).eval()  # type: ignore[arg-type]
        hidden = int(self.model.config.hidden_size)
        self.head = torch.nn.Linear(hidden, 1).to(device)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        if head_state is not None:
            self.head.load_state_dict({k: torch.as_tensor(v) for k, v in head_state.items()})
        self.device = device

    # layout
    def encode(self, question: str, steps: Sequence[str], max_length: int = 512) -> tuple[list[int], list[int]]:
        """Token ids and the index of each step's last token (steps past ``max_length`` are cut)."""
        tok = self.tokenizer
        ids = list(tok(question + STEP_DELIMITER, add_special_tokens=False)["input_ids"])
        ends = []
        for s in steps:
            piece = tok(s + STEP_DELIMITER, add_special_tokens=False)["input_ids"]
            if len(ids) + len(piece) > max_length:
                break
            ids.extend(piece)
            ends.append(len(ids) - 1)
        return ids, ends

    def _hidden(self, ids: Any, mask: Any) -> Any:
        out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        return out.hidden_states[-1]  # (B, T, D)

    def logits(self, batch: Sequence[tuple[list[int], list[int]]]) -> list[Any]:
        """Fast path: one padded forward per batch; per example, the head's logits at its step ends."""
        torch = _torch()
        width = max(len(ids) for ids, _ in batch)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for b, (x, _) in enumerate(batch):  # right padding: causal positions < len(x) are unaffected
            ids[b, : len(x)] = torch.tensor(x)
            mask[b, : len(x)] = 1
        h = self._hidden(ids.to(self.device), mask.to(self.device))  # (B, T, D)
        out = []
        for b, (_, ends) in enumerate(batch):
            out.append(self.head(h[b, torch.tensor(ends, dtype=torch.long, device=self.device)]).squeeze(-1))
        return out

    def reference_logits(self, ids: list[int], ends: list[int]) -> Any:
        """Slow obvious path: each step's prefix run alone, its last hidden state through the head."""
        torch = _torch()
        vals = []
        for e in ends:
            x = torch.tensor([ids[: e + 1]], device=self.device)
            h = self._hidden(x, torch.ones_like(x))  # (1, e+1, D)
            vals.append(self.head(h[0, -1]).squeeze(-1))
        return torch.stack(vals) if vals else torch.zeros(0)

    async def score_steps(self, question: str, steps: Sequence[str]) -> list[float]:
        torch = _torch()
        ids, ends = self.encode(question, steps)
        if not ends:
            return [0.5] * len(steps)
        with torch.no_grad():
            scores = torch.sigmoid(self.logits([(ids, ends)])[0]).tolist()
        return scores + [scores[-1]] * (len(steps) - len(scores))  # truncated steps inherit the last score

    def train(self, examples: Sequence[StepExample], config: PRMHeadTrainConfig | None = None) -> list[float]:
        """Fit the head (and the base when ``train_base``) by BCE against the soft labels; per-epoch losses."""
        torch = _torch()
        cfg = config if config is not None else PRMHeadTrainConfig()
        torch.manual_seed(cfg.seed)
        data = []
        for ex in examples:
            ids, ends = self.encode(ex.question, ex.steps, cfg.max_length)
            labs = ex.labels[: len(ends)]
            keep = [i for i, lab in enumerate(labs) if lab is not None]
            if keep:
                targets = [float(labs[i]) for i in keep]  # type: ignore[arg-type]
                if cfg.objective == "hard":
                    targets = [1.0 if t > 0 else 0.0 for t in targets]
                data.append((ids, [ends[i] for i in keep], targets))
        if not data:
            raise DataError("no labelled steps to train the PRM head on")
        params = list(self.head.parameters()) + (list(self.model.parameters()) if cfg.train_base else [])
        for p in self.model.parameters():
            p.requires_grad_(cfg.train_base)
        opt = torch.optim.Adam(params, lr=cfg.lr)
        gen = torch.Generator().manual_seed(cfg.seed)
        losses = []
        for _ in range(cfg.epochs):
            order = torch.randperm(len(data), generator=gen).tolist()
            total, count = 0.0, 0
            for start in range(0, len(order), cfg.batch_size):
                chunk = [data[i] for i in order[start : start + cfg.batch_size]]
                logits = torch.cat(self.logits([(x, e) for x, e, _ in chunk]))
                target = torch.tensor([v for _, _, labs in chunk for v in labs], device=self.device)
                # Pointwise objective: BCE against MC(s) (soft, the paper's best) or against MC(s) > 0 (hard).
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(target)
                count += len(target)
            losses.append(total / count)
        self.model.eval()
        return losses

    def train_pairwise(self, question_pairs: Sequence[tuple[str, list[str], list[str]]],
                       config: PRMHeadTrainConfig | None = None) -> list[float]:
        """Fit by the pairwise (Bradley–Terry) objective: ``−log σ(r(better) − r(worse))`` on last steps.

        Args:
            question_pairs: ``(question, better steps, worse steps)``, e.g. from :func:`sibling_pairs`.
            config: Epochs, learning rate, batch size, ``train_base`` (``objective`` is ignored).
        """
        torch = _torch()
        cfg = config if config is not None else PRMHeadTrainConfig()
        torch.manual_seed(cfg.seed)
        data = []
        for q, good, bad in question_pairs:
            a, b = self.encode(q, good, cfg.max_length), self.encode(q, bad, cfg.max_length)
            if a[1] and b[1]:
                data.append(((a[0], a[1][-1:]), (b[0], b[1][-1:])))
        if not data:
            raise DataError("no pairs to train the PRM head on")
        params = list(self.head.parameters()) + (list(self.model.parameters()) if cfg.train_base else [])
        for p in self.model.parameters():
            p.requires_grad_(cfg.train_base)
        opt = torch.optim.Adam(params, lr=cfg.lr)
        gen = torch.Generator().manual_seed(cfg.seed)
        losses = []
        for _ in range(cfg.epochs):
            order = torch.randperm(len(data), generator=gen).tolist()
            total = 0.0
            for start in range(0, len(order), cfg.batch_size):
                chunk = [data[i] for i in order[start : start + cfg.batch_size]]
                r = torch.cat(self.logits([x for pair in chunk for x in pair]))  # (2B,): better, worse, ...
                loss = torch.nn.functional.softplus(-(r[0::2] - r[1::2])).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(chunk)
            losses.append(total / len(data))
        self.model.eval()
        return losses

    def save_head(self, path: str | Path) -> None:
        """Write the head's weights (JSON) and the base model path."""
        state = {k: v.tolist() for k, v in self.head.state_dict().items()}
        Path(path).write_text(json.dumps({"base": self.path, "head": state}))

    @classmethod
    def load_head(cls, path: str | Path, *, device: str = "cpu") -> HFPRMHead:
        data = json.loads(Path(path).read_text())
        return cls(data["base"], device=device, head_state=data["head"])
