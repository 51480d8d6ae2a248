"""Supervised fine-tuning with LoRA (peft) of a transformers causal LM on ``(prompt, answer)`` pairs.

The shared loop of the fine-tuning recipes (``llmlab lab finetune --recipe NAME``; Tx-LLM's is
:mod:`llmlab.training.tx_llm`). LoRA: "LoRA: Low-Rank Adaptation of Large Language Models", Hu et al., 2021
(arXiv 2106.09685), through ``peft``. The loss is the next-token cross-entropy on the answer tokens only
(prompt tokens are masked with -100), averaged over answer tokens; the base weights stay frozen. Batches are
drawn with replacement from the examples with per-example weights, so a recipe sets its task mixture by
weighting (uniform over tasks, or proportional to their sizes). AdamW, linear warm-up then cosine decay,
gradient clipping at 1.0.

torch, transformers and peft are imported inside the functions (extras ``torch``, ``hf``, ``txllm``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field

from llmlab.core.config import LabConfig
from llmlab.core.errors import ConfigError, MissingExtraError
from llmlab.models._deps import require_torch


class LoraSFTConfig(LabConfig):
    """One LoRA SFT run.

    Args:
        rank: LoRA rank r.
        alpha: LoRA scaling α (the update is scaled by α / r).
        dropout: Dropout on the LoRA path.
        target_modules: Module names to adapt (default: every linear layer but the output head, peft's
            ``"all-linear"``).
        steps: Optimiser steps.
        batch_size: Examples per step.
        lr: Peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: Linear warm-up steps before the cosine decay.
        max_len: Longest prompt + answer in tokens (the prompt is cut from the left beyond it).
        seed: Seed of the LoRA init and of batch sampling.
    """

    rank: int = Field(default=8, ge=1, le=1024)
    alpha: float = Field(default=16.0, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    target_modules: list[str] | None = None
    steps: int = Field(default=100, ge=1)
    batch_size: int = Field(default=8, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_steps: int = Field(default=0, ge=0)
    max_len: int = Field(default=512, ge=8)
    seed: int = 0


def require_peft(feature: str = "LoRA fine-tuning") -> Any:
    """Import and return ``peft`` (a :class:`MissingExtraError` naming the extra otherwise)."""
    try:
        import peft
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("peft", "txllm", feature) from exc
    return peft


def encode_example(tokenizer: Any, prompt: str, answer: str, max_len: int) -> tuple[list[int], list[int]]:
    """Token ids and labels of ``prompt`` + ``answer`` + eos; labels are -100 on the prompt.

    The prompt and the answer are tokenised separately (what scoring a continuation does), and the prompt
    is cut from the left when the pair exceeds ``max_len``.
    """
    p = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    a = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is not None:
        a.append(int(tokenizer.eos_token_id))
    if len(a) >= max_len:
        raise ConfigError(f"an answer of {len(a)} tokens does not fit max_len={max_len}; raise max_len")
    p = p[-(max_len - len(a)):]
    return p + a, [-100] * len(p) + a


def collate(batch: Sequence[tuple[list[int], list[int]]], pad_id: int) -> tuple[Any, Any, Any]:
    """Right-padded ``(input_ids, attention_mask, labels)`` tensors, each ``(B, L)``."""
    torch = require_torch("LoRA fine-tuning")
    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for i, (x, y) in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
        labels[i, : len(y)] = torch.tensor(y)
    return ids, mask, labels


def answer_loss(model: Any, ids: Any, mask: Any, labels: Any) -> Any:
    """Mean cross-entropy over the answer tokens (labels != -100) of a causal LM."""
    torch = require_torch("LoRA fine-tuning")
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]  # (B, L-1, V)
    target = labels[:, 1:]  # (B, L-1)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                                             ignore_index=-100)


def add_lora(model: Any, cfg: LoraSFTConfig) -> Any:
    """Wrap ``model`` with LoRA adapters (only they are trainable)."""
    peft = require_peft()
    torch = require_torch("LoRA fine-tuning")
    torch.manual_seed(cfg.seed)
    targets: Any = cfg.target_modules if cfg.target_modules is not None else "all-linear"
    lcfg = peft.LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                           task_type="CAUSAL_LM", bias="none")
    return peft.get_peft_model(model, lcfg)


def lora_sft(model: Any, tokenizer: Any, examples: Sequence[tuple[str, str]], cfg: LoraSFTConfig,
             weights: Sequence[float] | None = None,
             on_log: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Fine-tune ``model`` with LoRA on ``examples``.

    Args:
        model: A transformers causal LM (its base weights are frozen; it is wrapped, not copied).
        tokenizer: Its tokenizer (needs a pad or eos token).
        examples: ``(prompt, answer)`` pairs.
        cfg: The run.
        weights: Sampling weight per example (default uniform over examples).
        on_log: Called as ``on_log(step, loss)`` every 10 steps and at the end.

    Returns:
        ``{"model": the PEFT model, "history": [(step, loss)], "trainable_params", "total_params", "seconds"}``.

    Raises:
        ConfigError: No examples, weights of the wrong length, or an answer longer than ``max_len``.

    Example:
        >>> LoraSFTConfig(steps=10).rank
        8
    """
    torch = require_torch("LoRA fine-tuning")
    if not examples:
        raise ConfigError("LoRA SFT needs at least one (prompt, answer) example")
    if weights is not None and len(weights) != len(examples):
        raise ConfigError(f"{len(weights)} weights for {len(examples)} examples")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ConfigError("the tokenizer has neither a pad nor an eos token")
    encoded = [encode_example(tokenizer, p, a, cfg.max_len) for p, a in examples]
    peft_model = add_lora(model, cfg)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    w = torch.tensor(list(weights) if weights is not None else [1.0] * len(encoded), dtype=torch.float)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    history: list[tuple[int, float]] = []
    peft_model.train()
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        idx = torch.multinomial(w, cfg.batch_size, replacement=True, generator=gen).tolist()
        ids, mask, labels = collate([encoded[i] for i in idx], int(pad))
        loss = answer_loss(peft_model, ids, mask, labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite SFT loss at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        history.append((step, float(loss.item())))
        if on_log is not None and (step % 10 == 0 or step == cfg.steps - 1):
            on_log(step, float(loss.item()))
    peft_model.eval()
    return {"model": peft_model, "history": history, "trainable_params": sum(p.numel() for p in params),
            "total_params": sum(p.numel() for p in peft_model.parameters()), "seconds": time.perf_counter() - t0}


__all__ = ["LoraSFTConfig", "add_lora", "answer_loss", "collate", "encode_example", "lora_sft", "require_peft"]
