"""DiscoPOP (arXiv 2406.08414): the LRML loss (eq. 5), its closed-form gradient, and the baseline losses.

All losses take per-pair summed log-probs ``(B,)`` and return per-pair losses ``(B,)``. See
:mod:`llmlab.training.discopop` for the deviations from the official code / TRL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmlab.core.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover
        raise MissingExtraError("torch", "torch", "DiscoPOP losses") from exc
    return torch


def _logits(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
    """``(π_w − π_l) − (ref_w − ref_l)``: the un-scaled log-ratio difference per pair, ``(B,)``."""
    return (pc - pr) - (rc - rr)


# -- losses (all: per-pair, shape (B,)) -----------------------------------------------------------------


def discopop_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float = 0.05,
    tau: float = 0.05,
) -> torch.Tensor:
    """LRML / DiscoPOP loss per pair: a σ(ρ/τ)-weighted blend of the logistic and exponential losses.

    Args:
        policy_chosen_logps: ``(B,)`` summed log-probs of the chosen responses under the policy.
        policy_rejected_logps: ``(B,)`` same for the rejected responses.
        reference_chosen_logps: ``(B,)`` chosen under the frozen reference.
        reference_rejected_logps: ``(B,)`` rejected under the reference.
        beta: KL strength β (0.05 in every recipe of the paper).
        tau: Temperature of the modulation (0.05, hard-coded in the official code).

    Returns:
        ``(B,)`` losses (take the mean for the batch loss).

    Example:
        >>> import torch
        >>> z = torch.zeros(1)
        >>> round(discopop_loss(z, z, z, z).item(), 4)  # 0.5·ln 2 + 0.5
        0.8466
    """
    torch = _torch()
    F = torch.nn.functional
    rho = beta * _logits(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    # (1 − m)·(−log σ(ρ)) + m·exp(−ρ), with m = σ(ρ/τ) and 1 − m = σ(−ρ/τ); the exponential part is
    # computed as exp(log σ(ρ/τ) − ρ), equal to TRL's m·exp(−ρ) wherever that is finite, without its overflow
    # (inf·0 = nan) at very negative ρ and without changing the value anywhere (no clamp).
    return torch.sigmoid(-rho / tau) * -F.logsigmoid(rho) + torch.exp(F.logsigmoid(rho / tau) - rho)


def discopop_grad(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float = 0.05,
    tau: float = 0.05,
) -> torch.Tensor:
    """Closed-form ``∂L/∂ policy_chosen_logps`` of :func:`discopop_loss` per pair (the rejected one is its negative).

    With ``ρ`` as above, ``m = σ(ρ/τ)``, ``m' = m(1 − m)/τ``:
    ``∂L/∂ρ = m'·(exp(−ρ) − softplus(−ρ)) − (1 − m)·σ(−ρ) − m·exp(−ρ)`` and ``∂ρ/∂π_w = β``.

    Returns:
        ``(B,)`` gradients.
    """
    torch = _torch()
    F = torch.nn.functional
    rho = beta * _logits(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    m = torch.sigmoid(rho / tau)
    one_minus_m = torch.sigmoid(-rho / tau)
    dm = m * one_minus_m / tau
    me = torch.exp(F.logsigmoid(rho / tau) - rho)  # m·exp(−ρ), stably
    d_rho = dm * F.logsigmoid(rho) - one_minus_m * torch.sigmoid(-rho) + me * (one_minus_m / tau - 1)
    return beta * d_rho


def dpo_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor, beta: float = 0.05,
             label_smoothing: float = 0.0) -> torch.Tensor:
    """DPO (TRL ``sigmoid``): ``−(1−ε)·log σ(βΔ) − ε·log σ(−βΔ)`` per pair (same argument order as above)."""
    torch = _torch()
    z = beta * _logits(pc, pr, rc, rr)
    return -(1 - label_smoothing) * torch.nn.functional.logsigmoid(z) \
        - label_smoothing * torch.nn.functional.logsigmoid(-z)


def hinge_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor,
               beta: float = 0.05) -> torch.Tensor:
    """SLiC / hinge: ``max(0, 1 − βΔ)``."""
    torch = _torch()
    return torch.relu(1 - beta * _logits(pc, pr, rc, rr))


def ipo_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor,
             beta: float = 0.05) -> torch.Tensor:
    """IPO: ``(Δ − 1/(2β))²`` (unnormalised; see :mod:`llmlab.training.discopop`)."""
    return (_logits(pc, pr, rc, rr) - 1 / (2 * beta)) ** 2


def kto_pair_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor,
                  beta: float = 0.05) -> torch.Tensor:
    """KTO-pair (the paired form used as a seed in the paper): batch-mean KL anchors, clamped at 0.

    Per pair, the mean of its chosen and rejected terms: TRL averages the 2B terms of a batch, so the mean
    of these (B,) losses equals TRL's batch loss (their sum would be exactly twice it).
    """
    torch = _torch()
    chosen_kl = (pc - rc).mean().clamp(min=0)
    rejected_kl = (pr - rr).mean().clamp(min=0)
    chosen = 1 - torch.sigmoid(beta * ((pc - rc) - rejected_kl))
    rejected = 1 - torch.sigmoid(beta * (chosen_kl - (pr - rr)))
    return (chosen + rejected) / 2


def cell_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor,
              beta: float = 0.05) -> torch.Tensor:
    """CELL: the even blend ``0.5·exp(−βΔ) + 0.5·(−log σ(βΔ))`` (App. E)."""
    torch = _torch()
    z = beta * _logits(pc, pr, rc, rr)
    return 0.5 * torch.exp(-z) + 0.5 * -torch.nn.functional.logsigmoid(z)


def padll_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor,
               beta: float = 0.05) -> torch.Tensor:
    """PADLL: logistic loss scaled by 0.9, halved again on pairs the policy currently ranks wrongly (Δ < 0)."""
    torch = _torch()
    d = _logits(pc, pr, rc, rr)
    weight = 0.9 * (1 - 0.5 * (d < 0).to(d.dtype))
    return weight * -torch.nn.functional.logsigmoid(beta * d)


def aql_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor,
             beta: float = 0.05) -> torch.Tensor:
    """AQL: logistic/hinge blend weighted by σ(−(z/0.05 − q)) around a batch-adaptive quantile q."""
    torch = _torch()
    z = beta * _logits(pc, pr, rc, rr)
    q = 0.5 + 0.01 * (torch.sigmoid((z / 0.05).mean()) - 0.5)
    w = torch.sigmoid(-(z / 0.05 - q))
    return w * -torch.nn.functional.logsigmoid(z) + (1 - w) * torch.relu(1 - z)


def aqfl_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor,
              beta: float = 0.05) -> torch.Tensor:
    """AQFL: logistic/hinge blend whose weight grows with the distance from a batch-adaptive quantile."""
    torch = _torch()
    z = beta * _logits(pc, pr, rc, rr)
    zs = z / 0.05
    q = zs.std() * torch.sigmoid(-zs).mean()
    q = q + 0.05 * (torch.sigmoid(zs.mean()) - q)
    w = torch.sigmoid(0.1 * (zs - q).abs())
    return w * -torch.nn.functional.logsigmoid(z) + (1 - w) * torch.relu(1 - z)


def dbaql_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor,
               beta: float = 0.05) -> torch.Tensor:
    """DBAQL: logistic (temperature 0.9) / exponential blend weighted by σ(var(z/0.05))."""
    torch = _torch()
    z = beta * _logits(pc, pr, rc, rr)
    w = torch.sigmoid((z / 0.05).var())
    return w * -torch.nn.functional.logsigmoid(z / 0.9) + (1 - w) * torch.exp(-z * 0.9)


def pfl_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor,
             beta: float = 0.05) -> torch.Tensor:
    """PFL: logistic/2 where the policy already prefers the chosen response, hinge·2 elsewhere."""
    torch = _torch()
    z = beta * _logits(pc, pr, rc, rr)
    return torch.where(pc > pr, -torch.nn.functional.logsigmoid(z) / 2.0, torch.relu(1 - z) * 2.0)


LossFn = Callable[..., "torch.Tensor"]
LOSSES: dict[str, LossFn] = {
    "discopop": discopop_loss, "lrml": discopop_loss, "dpo": dpo_loss, "sigmoid": dpo_loss,
    "hinge": hinge_loss, "ipo": ipo_loss, "kto_pair": kto_pair_loss, "cell": cell_loss,
    "padll": padll_loss, "aql": aql_loss, "aqfl": aqfl_loss, "dbaql": dbaql_loss, "pfl": pfl_loss,
}


def get_loss(name: str) -> LossFn:
    """A loss by name.

    Raises:
        ConfigError: For an unknown name (the message lists the known ones).
    """
    if name not in LOSSES:
        raise ConfigError(f"unknown preference loss {name!r}. Available: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]
