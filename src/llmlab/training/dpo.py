"""A small offline preference trainer (DPO and any loss of :mod:`llmlab.training.discopop`) over a tiny LM.

Paper: "Discovering Preference Optimization Algorithms with and for Large Language Models"
(arXiv 2406.08414), §5.3 / Fig. 4 (IMDb positive generation: reward vs KL to the reference over β).
Our analogue: the reference is a byte-level LM pre-trained briefly on the Python standard library
(:mod:`llmlab.training.tiny_lm`); prompts are windows of held-out text; two completions per prompt are
sampled from the reference and ordered by a computable reward (the fraction of vowel bytes,
:func:`vowel_reward`); the policy starts at the reference and is trained offline on those pairs; it is
scored by the mean reward of its own samples and the sequence-level KL(π‖π_ref) estimated on them.

Deviations: gpt2-imdb + a sentiment classifier in the paper; a ~100k-parameter byte LM and a rule reward
here (no downloads). The pairs are labelled by the reward directly (no Bradley-Terry noise), as the
paper's IMDb setup ranks generations by the classifier.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from llmlab.core.errors import ConfigError
from llmlab.models._deps import require_torch

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

REWARD_BYTES = b"aeiouAEIOU"


def _torch() -> Any:
    return require_torch("the preference trainer")


@dataclass
class PrefConfig:
    """One preference-optimisation run.

    Attributes:
        loss: A name of :data:`llmlab.training.discopop.LOSSES` (dpo, discopop, hinge, ipo, ...).
        beta: β of the loss.
        steps: Optimiser steps.
        batch_size: Pairs per step.
        lr: Adam learning rate.
        prompt_len: Prompt bytes.
        completion_len: Completion bytes.
        n_pairs: Preference pairs generated from the reference.
        n_eval: Evaluation prompts (one policy sample each).
        temperature: Sampling temperature for pairs and evaluation.
        seed: Seed for data and training.
    """

    loss: str = "dpo"
    beta: float = 0.05
    steps: int = 60
    batch_size: int = 32
    lr: float = 1e-4
    prompt_len: int = 32
    completion_len: int = 24
    n_pairs: int = 512
    n_eval: int = 256
    temperature: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.beta <= 0 or self.steps < 0 or self.batch_size < 1:
            raise ConfigError("beta must be > 0, steps >= 0 and batch_size >= 1")


def vowel_reward(completions: torch.Tensor) -> torch.Tensor:
    """Fraction of bytes of each completion that are ASCII vowels.

    Args:
        completions: ``(B, T)`` byte ids.

    Returns:
        ``(B,)`` rewards in [0, 1].
    """
    torch = _torch()
    table = torch.zeros(256)
    table[list(REWARD_BYTES)] = 1.0
    return table[completions.long()].mean(-1)


def sequence_logps(model: nn.Module, prompts: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
    """Summed log-probabilities of the completions given the prompts.

    Args:
        model: Byte LM returning logits ``(B, L, 256)``.
        prompts: ``(B, P)``.
        completions: ``(B, T)``.

    Returns:
        ``(B,)``.
    """
    torch = _torch()
    P = prompts.shape[1]
    x = torch.cat([prompts, completions], dim=1).long()  # (B, P + T)
    logits = model(x[:, :-1])  # (B, P + T - 1, V)
    tok = logits.log_softmax(-1).gather(-1, x[:, 1:, None])[..., 0]  # (B, P + T - 1)
    return tok[:, P - 1 :].sum(-1)


def sample_completions(model: Any, prompts: torch.Tensor, length: int, temperature: float,
                       generator: torch.Generator) -> torch.Tensor:
    """``(B, length)`` sampled continuations of ``(B, P)`` prompts."""
    torch = _torch()
    model.eval()
    with torch.no_grad():
        out = model.generate(prompts.long(), length, temperature=temperature, generator=generator)
    return out[:, prompts.shape[1] :]


@dataclass
class PreferenceData:
    """Offline pairs sampled from the reference (with the reference's log-probs precomputed)."""

    prompts: torch.Tensor  # (N, P)
    chosen: torch.Tensor  # (N, T)
    rejected: torch.Tensor  # (N, T)
    ref_chosen_logps: torch.Tensor  # (N,)
    ref_rejected_logps: torch.Tensor  # (N,)
    eval_prompts: torch.Tensor  # (M, P)
    ref_reward: float


def make_preference_data(ref: nn.Module, text: torch.Tensor, cfg: PrefConfig,
                         reward_fn: Callable[[torch.Tensor], torch.Tensor] = vowel_reward) -> PreferenceData:
    """Sample two completions per prompt from ``ref`` and order them by reward (ties are dropped).

    Args:
        ref: Reference LM.
        text: ``(n,)`` uint8 bytes to draw prompts from.
        cfg: Sizes and seed.
        reward_fn: ``(B, T) -> (B,)``.

    Returns:
        A :class:`PreferenceData`.
    """
    torch = _torch()
    gen = torch.Generator().manual_seed(cfg.seed + 17)
    n_prompts = cfg.n_pairs * 2 + cfg.n_eval
    starts = torch.randint(0, text.numel() - cfg.prompt_len - 1, (n_prompts,), generator=gen)
    prompts = torch.stack([text[s : s + cfg.prompt_len] for s in starts.tolist()]).long()  # (n, P)
    train_p, eval_p = prompts[: cfg.n_pairs * 2], prompts[cfg.n_pairs * 2 :]
    a = sample_completions(ref, train_p, cfg.completion_len, cfg.temperature, gen)
    b = sample_completions(ref, train_p, cfg.completion_len, cfg.temperature, gen)
    ra, rb = reward_fn(a), reward_fn(b)
    keep = (ra != rb).nonzero()[:, 0][: cfg.n_pairs]
    a_wins = (ra > rb)[keep]
    chosen = torch.where(a_wins[:, None], a[keep], b[keep])
    rejected = torch.where(a_wins[:, None], b[keep], a[keep])
    p = train_p[keep]
    with torch.no_grad():
        rc = torch.cat([sequence_logps(ref, p[i : i + 64], chosen[i : i + 64]) for i in range(0, len(p), 64)])
        rr = torch.cat([sequence_logps(ref, p[i : i + 64], rejected[i : i + 64]) for i in range(0, len(p), 64)])
    return PreferenceData(p, chosen, rejected, rc, rr, eval_p, float(torch.cat([ra, rb]).mean()))


def evaluate_policy(policy: nn.Module, ref: nn.Module, data: PreferenceData, cfg: PrefConfig,
                    reward_fn: Callable[[torch.Tensor], torch.Tensor] = vowel_reward) -> dict[str, float]:
    """Mean reward of policy samples and the sequence KL(π‖π_ref) = E_{y~π}[log π(y) − log π_ref(y)]."""
    torch = _torch()
    gen = torch.Generator().manual_seed(cfg.seed + 99)
    ys = sample_completions(policy, data.eval_prompts, cfg.completion_len, cfg.temperature, gen)
    with torch.no_grad():
        lp = sequence_logps(policy, data.eval_prompts, ys)
        lr = sequence_logps(ref, data.eval_prompts, ys)
    return {"reward": float(reward_fn(ys).mean()), "kl": float((lp - lr).mean())}


def train_preference(
    ref: nn.Module,
    data: PreferenceData,
    cfg: PrefConfig,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    reward_fn: Callable[[torch.Tensor], torch.Tensor] = vowel_reward,
) -> dict[str, Any]:
    """Train a copy of ``ref`` on the pairs with a preference loss; the reference stays frozen.

    Args:
        ref: Reference LM (not modified).
        data: Pairs from :func:`make_preference_data`.
        cfg: The run.
        loss_fn: ``(pc, pr, rc, rr, beta=β) -> (B,)``; default ``LOSSES[cfg.loss]``.
        reward_fn: Reward used for evaluation.

    Returns:
        ``{"config", "reward", "kl", "ref_reward", "history": [(step, loss)], "seconds", "policy"}``.
    """
    torch = _torch()
    from llmlab.training.discopop import get_loss

    fn = loss_fn if loss_fn is not None else get_loss(cfg.loss)
    torch.manual_seed(cfg.seed)
    policy = copy.deepcopy(ref)
    for p in policy.parameters():  # the reference may already be frozen by an earlier run
        p.requires_grad_(True)
    for p in ref.parameters():
        p.requires_grad_(False)
    ref.eval()
    policy.train()
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed + 5)
    history: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    n = data.prompts.shape[0]
    for step in range(cfg.steps):
        idx = torch.randint(0, n, (cfg.batch_size,), generator=gen)
        both = torch.cat([data.chosen[idx], data.rejected[idx]])  # (2B, T): one forward for both
        lps = sequence_logps(policy, torch.cat([data.prompts[idx]] * 2), both)
        pc, pr = lps.chunk(2)
        loss = fn(pc, pr, data.ref_chosen_logps[idx], data.ref_rejected_logps[idx], beta=cfg.beta).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite preference loss at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        history.append((step, loss.item()))
    ev = evaluate_policy(policy, ref, data, cfg, reward_fn)
    return {"config": asdict(cfg), **ev, "ref_reward": data.ref_reward, "history": history,
            "seconds": time.perf_counter() - t0, "policy": policy}


def pretrain_reference(quick: bool = False, seed: int = 0, data: Any = None) -> tuple[Any, Any]:
    """A small byte transformer pre-trained on the standard library; returns ``(model, val_bytes)``."""
    from llmlab.training.tiny_lm import TrainConfig, load_corpus, train

    data = data if data is not None else load_corpus(None, 2_000_000)
    cfg = TrainConfig(arch="transformer", n_layer=2, n_embd=64, n_head=4, intermediate_size=256,
                      steps=80 if quick else 300, seq_len=128, batch_size=16, lr=3e-3, seed=seed, eval_windows=8,
                      threads=1)
    rec = train(cfg, data=data)
    return rec["model"].eval(), data[1]


def candidate_fitness(fn: Callable[..., Any], beta: float = 0.05, task_path: str | None = None,
                      steps: int = 40, kl_weight: float = 0.05, seed: int = 0) -> dict[str, float]:
    """Fitness of a discovery candidate on the tiny-LM task: reward − ``kl_weight``·KL after a short run.

    Args:
        fn: Candidate ``(self, pc, pr, rc, rr) -> (B,)``.
        beta: ``self.beta``.
        task_path: A file from :func:`save_task` (None: build a quick task in-process, slow).
        steps: Training steps.
        kl_weight: λ of the fitness.
        seed: Seed.

    Returns:
        ``{"fitness", "reward", "kl", "ref_reward"}``.
    """
    torch = _torch()
    if task_path is not None:
        task = torch.load(task_path, weights_only=False)
        ref, data = task["ref"], task["data"]
    else:
        ref, text = pretrain_reference(quick=True, seed=seed)
        data = make_preference_data(ref, text, PrefConfig(seed=seed, n_pairs=256, n_eval=128))

    class _Self:
        pass

    this = _Self()
    this.beta = beta  # type: ignore[attr-defined]
    cfg = PrefConfig(beta=beta, steps=steps, seed=seed)
    rec = train_preference(ref, data, cfg, loss_fn=lambda pc, pr, rc, rr, beta: fn(this, pc, pr, rc, rr))
    fit = rec["reward"] - kl_weight * rec["kl"]
    return {"fitness": fit if math.isfinite(fit) else float("-inf"), "reward": rec["reward"], "kl": rec["kl"],
            "ref_reward": rec["ref_reward"]}


def save_task(path: str, quick: bool = True, seed: int = 0) -> None:
    """Pre-train a reference and sample its pairs once, for :func:`candidate_fitness` in a sandbox."""
    torch = _torch()
    ref, text = pretrain_reference(quick=quick, seed=seed)
    data = make_preference_data(ref, text, PrefConfig(seed=seed, n_pairs=256, n_eval=128))
    torch.save({"ref": ref, "data": data}, path)


def experiment_reward_kl(quick: bool = False, seed: int = 0,
                         betas: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1),
                         losses: tuple[str, ...] = ("dpo", "discopop", "hinge")) -> dict[str, Any]:
    """Reward vs KL of DPO, DiscoPOP (LRML) and hinge over β (the paper's IMDb frontier, Fig. 4).

    Returns:
        ``{"runs": {loss: {beta: {"reward", "kl"}}}, "claim", "claim_direction_holds", ...}``.
    """
    t0 = time.perf_counter()
    ref, text = pretrain_reference(quick=quick, seed=seed)
    base = PrefConfig(seed=seed, steps=30 if quick else 80, n_pairs=256 if quick else 512,
                      n_eval=128 if quick else 256)
    data = make_preference_data(ref, text, base)
    runs: dict[str, dict[str, dict[str, float]]] = {}
    for loss in losses:
        runs[loss] = {}
        for b in betas:
            rec = train_preference(ref, data, PrefConfig(**{**asdict(base), "loss": loss, "beta": b}))
            runs[loss][str(b)] = {"reward": rec["reward"], "kl": rec["kl"],
                                  "final_loss": rec["history"][-1][1] if rec["history"] else float("nan")}
    mid = [str(b) for b in betas if 0.025 <= b <= 0.1]
    holds: dict[str, bool] = {}
    if "dpo" in runs and "discopop" in runs and mid:
        holds["discopop KL < dpo KL at mid β (0.025-0.1)"] = all(
            runs["discopop"][b]["kl"] < runs["dpo"][b]["kl"] for b in mid)
        holds["discopop reward >= 0.95 x dpo reward at mid β"] = all(
            runs["discopop"][b]["reward"] >= 0.95 * runs["dpo"][b]["reward"] for b in mid)
    return {
        "experiment": "discopop_reward_kl", "quick": quick, "seed": seed, "ref_reward": data.ref_reward,
        "claim": "at β in [0.025, 0.1] LRML matches DPO reward with lower KL; LRML degrades at β = 0.01",
        "runs": runs, "claim_direction_holds": holds, "seconds": time.perf_counter() - t0,
    }


__all__ = [
    "PrefConfig",
    "PreferenceData",
    "candidate_fitness",
    "evaluate_policy",
    "experiment_reward_kl",
    "make_preference_data",
    "pretrain_reference",
    "save_task",
    "sequence_logps",
    "train_preference",
    "vowel_reward",
]
