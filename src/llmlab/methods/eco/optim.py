"""ECO's zeroth-order search of the corruption strength σ (official ``eco/optimizer/zoo.py``).

Scalar central difference: ``g = (f(σ+ε) − f(lo)) / (σ+ε − lo)`` with ``lo = max(σ−ε, 1e-8)``, then
``σ ← max(σ − lr·g, σ_min)``; two evaluations of the objective per step, only forward passes.

Deliberate deviation: the official step divides by ``2ε`` even when the lower point was clipped to 1e-8,
which biases the gradient near σ = ε; we divide by the actual distance between the two points. The two agree
whenever σ − ε ≥ 1e-8 (e.g. the official default run: σ = 0.1, ε = 0.0999, σ_min = 0.1, lr = 100).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmlab.core.errors import ConfigError


@dataclass
class ZerothOrderScalar:
    """Minimise a scalar objective ``f(σ)`` by central differences.

    Args:
        sigma: Initial σ.
        lr: Step size.
        eps: Half-width of the difference.
        sigma_min: Lower bound of σ.
        target: Stop early when ``f(σ+ε) < target`` (the official script stops at 0.27 on WMDP accuracy).

    Example:
        >>> opt = ZerothOrderScalar(sigma=1.0, lr=0.5, eps=0.01, sigma_min=0.1)
        >>> hist = opt.run(lambda s: (s - 3.0) ** 2, steps=40)
        >>> round(opt.sigma, 3)
        3.0
    """

    sigma: float
    lr: float
    eps: float
    sigma_min: float = 0.0
    target: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.eps <= 0 or self.lr <= 0:
            raise ConfigError(f"eps and lr must be > 0, got eps={self.eps}, lr={self.lr}")
        self.sigma = max(self.sigma, self.sigma_min)

    def step(self, f: Callable[[float], float]) -> dict[str, float]:
        hi = self.sigma + self.eps
        lo = max(self.sigma - self.eps, 1e-8)
        f_hi, f_lo = float(f(hi)), float(f(lo))
        grad = (f_hi - f_lo) / (hi - lo)
        before = self.sigma
        self.sigma = max(self.sigma - self.lr * grad, self.sigma_min)
        rec = {"sigma": before, "next_sigma": self.sigma, "f_hi": f_hi, "f_lo": f_lo, "grad": grad}
        self.history.append(rec)
        return rec

    def run(self, f: Callable[[float], float], steps: int) -> list[dict[str, float]]:
        """Up to ``steps`` steps (2 evaluations each), stopping early at ``target``."""
        for _ in range(steps):
            rec = self.step(f)
            if self.target is not None and rec["f_hi"] < self.target:
                break
        return self.history

    def summary(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "steps": len(self.history), "evaluations": 2 * len(self.history)}
