"""DiscoPOP: the discovered LRML preference loss, its baselines, and the LLM-driven discovery loop.

Paper: Chris Lu, Samuel Holt, Claudio Fanconi, Alex J. Chan, Jakob Foerster, Mihaela van der Schaar,
Robert Tjarko Lange, "Discovering Preference Optimization Algorithms with and for Large Language Models"
(arXiv 2406.08414, NeurIPS 2024). Implemented here:

* §3 / eq. (5) LRML ("DiscoPOP"): with ``ρ = β·[(log π(y_w) − log π(y_l)) − (log π_ref(y_w) − log π_ref(y_l))]``
  and ``m = σ(ρ/τ)``, the per-pair loss ``(1 − m)·(−log σ(ρ)) + m·exp(−ρ)``, τ = β = 0.05
  (:func:`discopop_loss`, :func:`discopop_grad` = its closed-form derivative).
* The baselines of the paper's tables in the same signature: DPO (sigmoid), SLiC (hinge), IPO, KTO-pair,
  and the other discovered losses of App. E (CELL, PADLL, AQL, AQFL, DBAQL, PFL), all per pair
  (:data:`LOSSES`).
* §3.1 discovery loop (:func:`discover`): an LLM role proposes a loss as code with a fixed signature
  (JSON ``{"thought", "name", "code"}``), the code is validated (compiles, exactly one function, output
  shape, finite values and gradients) in a sandboxed subprocess with a time limit, trained briefly on a
  fitness task, scored, and the fitness (or the error) is fed back; the history and the best losses are
  kept. Fitness tasks: ``toy`` (a tabular policy on a Bradley-Terry bandit, seconds) and ``tiny_lm``
  (:mod:`llmlab.training.dpo` on a byte LM; minutes).

Deliberate deviations from the official code (SakanaAI/DiscoPOP) / TRL:

* ``exp(−ρ)`` is evaluated as ``exp(−max(ρ, −50))``: for ρ < −50 the official form gives ``0·inf = nan``
  in float32 while the mixing weight σ(ρ/τ) is already exactly 0; values for ρ ≥ −50 are unchanged.
* IPO is the unnormalised ``((ρ/β) − 1/(2β))²`` of the original TRL ``ipo`` loss (current TRL divides the
  log-ratios by the completion length, which needs token counts this signature does not carry).
* The official loop ``exec``s LLM code inside the trainer process; here every candidate runs in a
  separate worker process with a wall-clock limit and an import allow-list (torch, math, numpy). This is
  a guard against accidents (infinite loops, crashes, stray imports), not a security boundary.
* Fitness is not MT-Bench (7B training + GPT-4 judge); it is reward − λ·KL on small offline tasks, so the
  loop's mechanics, not the paper's discovered ranking, are what is reproduced.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmlab.core.errors import ConfigError, MissingExtraError, ParseError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from llmlab.backends.model import Model


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
    m = torch.sigmoid(rho / tau)
    return (1 - m) * -F.logsigmoid(rho) + m * torch.exp(-rho.clamp(min=-50.0))


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
    dm = m * (1 - m) / tau
    e = torch.exp(-rho.clamp(min=-50.0))
    de = torch.where(rho < -50.0, torch.zeros_like(e), -e)  # d exp(-max(ρ, -50)) / dρ
    d_rho = dm * (e - F.softplus(-rho)) - (1 - m) * torch.sigmoid(-rho) + m * de
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
    """IPO: ``(Δ − 1/(2β))²`` (unnormalised; see the module docstring)."""
    return (_logits(pc, pr, rc, rr) - 1 / (2 * beta)) ** 2


def kto_pair_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor,
                  beta: float = 0.05) -> torch.Tensor:
    """KTO-pair (the paired form used as a seed in the paper): batch-mean KL anchors, clamped at 0."""
    torch = _torch()
    chosen_kl = (pc - rc).mean().clamp(min=0)
    rejected_kl = (pr - rr).mean().clamp(min=0)
    chosen = 1 - torch.sigmoid(beta * ((pc - rc) - rejected_kl))
    rejected = 1 - torch.sigmoid(beta * (chosen_kl - (pr - rr)))
    return chosen + rejected


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


# -- discovery loop -------------------------------------------------------------------------------------

SYSTEM_PROMPT = """You are a machine learning researcher who is testing out different RLHF loss functions. \
When you respond, output a JSON object with exactly three keys: "thought" (your reasoning about what to try \
next and why), "name" (a short snake_case name for the loss) and "code" (the Python code of the loss). \
The code must define exactly one function with this signature:

def loss_fn(self, policy_chosen_logps: torch.FloatTensor, policy_rejected_logps: torch.FloatTensor,
            reference_chosen_logps: torch.FloatTensor, reference_rejected_logps: torch.FloatTensor
            ) -> torch.FloatTensor:

It receives one-dimensional tensors of summed log-probabilities (one entry per preference pair: the chosen \
and the rejected response under the policy and under the frozen reference model) and must return a tensor \
of per-pair losses with the same shape. `self.beta` is {beta}. `torch`, `F` (torch.nn.functional) and \
`math` are available; only torch, math and numpy may be imported. Any other hyper-parameter must be a \
constant inside the function. Aim for losses that reach a high reward while staying close to the reference \
model (low KL)."""

FIRST_USER_PROMPT = """Here are some results we've obtained:
{archive}

Please generate the next one."""

FITNESS_PROMPT = "Fitness: {fitness:.4f}.\nPlease generate the next one."

INVALID_PROMPT = "Code not valid. Error:\n{error}\nPlease generate the next one."

SEED_CODES: dict[str, str] = {
    "dpo": '''def loss_fn(self, policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
            reference_rejected_logps):
    logits = (policy_chosen_logps - policy_rejected_logps) - (reference_chosen_logps - reference_rejected_logps)
    return -F.logsigmoid(self.beta * logits)
''',
    "hinge": '''def loss_fn(self, policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
            reference_rejected_logps):
    logits = (policy_chosen_logps - policy_rejected_logps) - (reference_chosen_logps - reference_rejected_logps)
    return torch.relu(1 - self.beta * logits)
''',
    "ipo": '''def loss_fn(self, policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
            reference_rejected_logps):
    logits = (policy_chosen_logps - policy_rejected_logps) - (reference_chosen_logps - reference_rejected_logps)
    return (logits - 1 / (2 * self.beta)) ** 2
''',
    "kto_pair": '''def loss_fn(self, policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
            reference_rejected_logps):
    chosen_kl = (policy_chosen_logps - reference_chosen_logps).mean().clamp(min=0)
    rejected_kl = (policy_rejected_logps - reference_rejected_logps).mean().clamp(min=0)
    chosen = 1 - torch.sigmoid(self.beta * ((policy_chosen_logps - reference_chosen_logps) - rejected_kl))
    rejected = 1 - torch.sigmoid(self.beta * (chosen_kl - (policy_rejected_logps - reference_rejected_logps)))
    return chosen + rejected
''',
}

ALLOWED_IMPORTS = ("torch", "math", "numpy")


@dataclass
class Candidate:
    """One proposal of the discovery loop and what became of it."""

    generation: int
    name: str
    thought: str
    code: str
    valid: bool
    error: str | None = None
    fitness: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DiscoveryResult:
    """History (every candidate, in order), the archive shown to the proposer, and the best losses."""

    history: list[Candidate]
    archive: list[dict[str, Any]]

    def best(self, k: int = 3) -> list[Candidate]:
        """The ``k`` valid proposals with the highest fitness (seeds excluded)."""
        ok = [c for c in self.history if c.valid and c.fitness is not None]
        return sorted(ok, key=lambda c: -(c.fitness if c.fitness is not None else -math.inf))[:k]


def parse_proposal(text: str) -> tuple[str, str, str]:
    """``(thought, name, code)`` from the proposer's reply (a JSON object, possibly inside a code fence).

    Raises:
        ParseError: When no JSON object with a string ``code`` can be read.
    """
    body = text.strip()
    fence = re.search(r"```(?:json)?\s*(\{.*\})\s*```", body, re.S)
    if fence:
        body = fence.group(1)
    else:
        start, end = body.find("{"), body.rfind("}")
        if start == -1 or end <= start:
            raise ParseError("the reply holds no JSON object with 'thought', 'name' and 'code'")
        body = body[start : end + 1]
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ParseError(f"the reply is not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("code"), str):
        raise ParseError("the JSON reply needs a string 'code' field")
    return str(obj.get("thought", "")), str(obj.get("name", "unnamed")), obj["code"]


class SandboxWorker:
    """A worker process that validates and scores candidate losses, restarted after a timeout or crash.

    Requests and replies are JSON lines on the worker's stdin/stdout; the candidate's own prints go to
    the worker's stderr. A request that does not answer within ``timeout`` seconds kills the worker
    (by its pid; it is our child) and the candidate is rejected.

    Args:
        timeout: Seconds per request.
        beta: ``self.beta`` seen by candidates.
    """

    def __init__(self, timeout: float = 20.0, beta: float = 0.05) -> None:
        self.timeout = timeout
        self.beta = beta
        self._proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from llmlab.training.discopop import worker_main; worker_main()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
            )
            self._request({"op": "ping"}, startup=True)
        return self._proc

    def _request(self, req: dict[str, Any], startup: bool = False, timeout: float | None = None) -> dict[str, Any]:
        proc = self._proc if startup else self._start()
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(req) + "\n")
        proc.stdin.flush()
        budget = timeout if timeout is not None else self.timeout
        limit = max(budget, 120.0) if startup else budget  # importing torch can be slow
        ready, _, _ = select.select([proc.stdout], [], [], limit)
        line = proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            what = "the sandbox did not start" if startup else f"timed out after {budget:g}s"
            return {"ok": False, "error": what}
        reply: dict[str, Any] = json.loads(line)
        return reply

    def run(self, code: str, fitness: str = "toy", options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validate ``code`` and, if valid, score it on the fitness task.

        Returns:
            ``{"ok": bool, "error": str | None, "fitness": float | None, "metrics": {...}}``.
        """
        return self._request({"op": "run", "code": code, "beta": self.beta, "fitness": fitness,
                              "options": options if options is not None else {}})

    def validate(self, code: str, timeout: float | None = None) -> dict[str, Any]:
        """Only the validation step (no training); ``timeout`` overrides the worker's limit."""
        return self._request({"op": "run", "code": code, "beta": self.beta, "fitness": None, "options": {}},
                             timeout=timeout)

    def close(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            self._proc.wait()
            self._proc = None

    def __enter__(self) -> SandboxWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _restricted_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    if name.split(".")[0] not in ALLOWED_IMPORTS:
        raise ImportError(f"import of '{name}' is not allowed (only {', '.join(ALLOWED_IMPORTS)})")
    return __import__(name, globals, locals, fromlist, level)


def load_candidate(code: str) -> Callable[..., Any]:
    """Compile candidate code in a restricted namespace and return its single function.

    Raises:
        ValueError: On a syntax error or when the code does not define exactly one function.
    """
    import builtins

    torch = _torch()
    safe_builtins = {k: getattr(builtins, k) for k in (
        "abs", "all", "any", "bool", "dict", "enumerate", "float", "int", "isinstance", "len", "list", "max",
        "min", "pow", "range", "round", "sum", "tuple", "zip", "ValueError", "Exception", "print", "True",
        "False", "None", "map", "filter", "sorted", "reversed", "divmod", "hasattr", "getattr", "super",
    ) if hasattr(builtins, k)}
    safe_builtins["__import__"] = _restricted_import
    ns: dict[str, Any] = {"__builtins__": safe_builtins, "torch": torch, "F": torch.nn.functional, "math": math}
    try:
        compiled = compile(code, "<candidate>", "exec")
    except SyntaxError as exc:
        raise ValueError(f"SyntaxError: {exc.msg} (line {exc.lineno})") from None
    before = set(ns)
    exec(compiled, ns)
    fns = [v for k, v in ns.items() if k not in before and callable(v)]
    if len(fns) != 1:
        raise ValueError(f"the code must define exactly one function, found {len(fns)}")
    fn: Callable[..., Any] = fns[0]
    return fn


def validate_candidate(fn: Callable[..., Any], beta: float = 0.05, n: int = 10) -> None:
    """The official contract: random ``(n,)`` inputs with grad → ``(n,)`` finite losses and finite gradients.

    Raises:
        ValueError: Naming what failed.
    """
    torch = _torch()

    class _Self:
        pass

    this = _Self()
    this.beta = beta  # type: ignore[attr-defined]
    gen = torch.Generator().manual_seed(0)
    args = [(-torch.rand(n, generator=gen) * 20).requires_grad_() for _ in range(4)]
    out = fn(this, *args)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"the loss must return a tensor, got {type(out).__name__}")
    if tuple(out.shape) != (n,):
        raise ValueError(f"the loss must have shape ({n},) (one value per pair), got {tuple(out.shape)}")
    if not torch.isfinite(out).all():
        raise ValueError("the loss has non-finite values (nan or inf)")
    if not out.requires_grad:
        raise ValueError("the loss is not differentiable w.r.t. the policy log-probabilities (no gradient)")
    out.mean().backward()
    grads = [a.grad for a in args[:2]]
    if any(g is None for g in grads):
        raise ValueError("the loss does not depend differentiably on both policy log-probabilities")
    if not all(torch.isfinite(g).all() for g in grads if g is not None):
        raise ValueError("the gradient has non-finite values (nan or inf)")


def toy_fitness(fn: Callable[..., Any], beta: float = 0.05, steps: int = 150, seed: int = 0,
                kl_weight: float = 0.1) -> dict[str, float]:
    """A seconds-long fitness task: a tabular policy over K responses per prompt, Bradley-Terry preferences.

    A reference policy and a hidden reward table are drawn at random; preference pairs are sampled from
    the reference and labelled by the Bradley-Terry model of the reward; the policy (initialised at the
    reference) is trained with the candidate loss by Adam. Fitness = expected reward − ``kl_weight``·KL(π‖π_ref).

    Returns:
        ``{"fitness", "reward", "kl", "ref_reward"}``.
    """
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    P, K, n_pairs = 32, 16, 2048
    ref_logits = torch.randn(P, K, generator=gen)  # (P, K)
    reward = torch.rand(P, K, generator=gen)  # (P, K) in [0, 1]
    ref_p = ref_logits.softmax(-1)
    prompts = torch.randint(0, P, (n_pairs,), generator=gen)
    a = torch.multinomial(ref_p[prompts], 1, generator=gen)[:, 0]
    b = torch.multinomial(ref_p[prompts], 1, generator=gen)[:, 0]
    keep = a != b
    prompts, a, b = prompts[keep], a[keep], b[keep]
    p_a = torch.sigmoid((reward[prompts, a] - reward[prompts, b]) * 10)
    a_wins = torch.rand(p_a.shape, generator=gen) < p_a
    chosen, rejected = torch.where(a_wins, a, b), torch.where(a_wins, b, a)
    ref_lp = ref_logits.log_softmax(-1)
    rc, rr = ref_lp[prompts, chosen], ref_lp[prompts, rejected]
    theta = ref_logits.clone().requires_grad_()
    opt = torch.optim.Adam([theta], lr=0.05)

    class _Self:
        pass

    this = _Self()
    this.beta = beta  # type: ignore[attr-defined]
    for step in range(steps):
        idx = torch.randint(0, prompts.numel(), (128,), generator=torch.Generator().manual_seed(seed * 7919 + step))
        lp = theta.log_softmax(-1)
        pi_c, pi_r = lp[prompts[idx], chosen[idx]], lp[prompts[idx], rejected[idx]]
        loss = fn(this, pi_c, pi_r, rc[idx], rr[idx]).mean()
        if not torch.isfinite(loss):
            return {"fitness": float("-inf"), "reward": float("nan"), "kl": float("nan"), "ref_reward": 0.0}
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        p = theta.softmax(-1)
        r = float((p * reward).sum(-1).mean())
        kl = float((p * (p.clamp_min(1e-30).log() - ref_lp)).sum(-1).mean())
        r0 = float((ref_p * reward).sum(-1).mean())
    fit = r - kl_weight * kl
    return {"fitness": fit if math.isfinite(fit) else float("-inf"), "reward": r, "kl": kl, "ref_reward": r0}


def _run_request(req: dict[str, Any]) -> dict[str, Any]:
    """Worker side of one request (validate, then optionally score)."""
    beta = float(req.get("beta", 0.05))
    try:
        fn = load_candidate(req["code"])
        validate_candidate(fn, beta)
    except Exception as exc:  # every failure of foreign code is a rejection with its message
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError)
                else str(exc)}
    fitness = req.get("fitness")
    if fitness is None:
        return {"ok": True, "error": None, "fitness": None, "metrics": {}}
    try:
        opts = dict(req.get("options", {}))
        if fitness == "toy":
            metrics = toy_fitness(fn, beta, **opts)
        elif fitness == "tiny_lm":
            from llmlab.training.dpo import candidate_fitness

            metrics = candidate_fitness(fn, beta, **opts)
        else:
            return {"ok": False, "error": f"unknown fitness task {fitness!r}"}
    except Exception as exc:
        return {"ok": False, "error": f"training failed: {type(exc).__name__}: {exc}"}
    return {"ok": True, "error": None, "fitness": metrics.pop("fitness"), "metrics": metrics}


def worker_main() -> None:  # pragma: no cover - runs in the sandbox subprocess
    """Serve JSON-line requests on stdin; candidate output goes to stderr, replies to the real stdout."""
    proto = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    _torch().set_num_threads(1)
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") == "ping":
            reply: dict[str, Any] = {"ok": True}
        else:
            reply = _run_request(req)
        proto.write(json.dumps(reply, default=float) + "\n")
        proto.flush()


def _archive_text(archive: list[dict[str, Any]]) -> str:
    return "\n\n".join(json.dumps(a) for a in archive)


async def discover(
    model: Model,
    generations: int = 5,
    fitness: str = "toy",
    fitness_options: dict[str, Any] | None = None,
    seed_archive: list[dict[str, Any]] | None = None,
    timeout: float = 30.0,
    beta: float = 0.05,
    worker: SandboxWorker | None = None,
    on_candidate: Callable[[Candidate], None] | None = None,
) -> DiscoveryResult:
    """The LLM-driven loss discovery loop (one conversation, as the official ``launch_evo.py``).

    Each generation: the proposer returns ``{"thought", "name", "code"}``; the code is validated and scored
    in the sandbox; ``Fitness: …`` or the validation error goes back as the next user turn.

    Args:
        model: The proposer (any :class:`~llmlab.backends.model.Model`; JSON replies expected).
        generations: Number of proposals.
        fitness: ``toy`` or ``tiny_lm``.
        fitness_options: Keyword options of the fitness task.
        seed_archive: Initial archive (default: DPO, hinge, IPO, KTO-pair scored on the same task).
        timeout: Seconds per candidate (validation + training) in the sandbox.
        beta: ``self.beta`` given to candidates.
        worker: A sandbox to reuse (closed by the caller); default: a new one for this call.
        on_candidate: Called after each candidate is scored.

    Returns:
        A :class:`DiscoveryResult`.
    """
    from llmlab.backends.base import Message

    own = worker is None
    sandbox = worker if worker is not None else SandboxWorker(timeout=timeout, beta=beta)
    opts = fitness_options if fitness_options is not None else {}
    try:
        if seed_archive is None:
            seed_archive = []
            for name, code in SEED_CODES.items():
                res = sandbox.run(code, fitness, opts)
                seed_archive.append({"name": name, "code": code,
                                     "fitness": res.get("fitness") if res.get("ok") else None})
        archive = list(seed_archive)
        messages: list[Message] = [
            Message("system", SYSTEM_PROMPT.format(beta=beta)),
            Message("user", FIRST_USER_PROMPT.format(archive=_archive_text(archive))),
        ]
        history: list[Candidate] = []
        for gen_i in range(generations):
            reply = await model.chat(list(messages), temperature=1.0, sample_index=gen_i)
            messages.append(Message("assistant", reply))
            t0 = time.perf_counter()
            try:
                thought, name, code = parse_proposal(reply)
            except ParseError as exc:
                cand = Candidate(gen_i, "unparsed", "", reply, valid=False, error=str(exc))
            else:
                res = sandbox.run(code, fitness, opts)
                cand = Candidate(gen_i, name, thought, code, valid=bool(res.get("ok")), error=res.get("error"),
                                 fitness=res.get("fitness"), metrics=res.get("metrics", {}))
            cand.seconds = time.perf_counter() - t0
            history.append(cand)
            if on_candidate is not None:
                on_candidate(cand)
            if cand.valid and cand.fitness is not None:
                archive.append({"name": cand.name, "code": cand.code, "fitness": cand.fitness})
                messages.append(Message("user", FITNESS_PROMPT.format(fitness=cand.fitness)))
            else:
                messages.append(Message("user", INVALID_PROMPT.format(error=cand.error)))
        return DiscoveryResult(history=history, archive=archive)
    finally:
        if own:
            sandbox.close()


__all__ = [
    "FIRST_USER_PROMPT",
    "LOSSES",
    "SEED_CODES",
    "SYSTEM_PROMPT",
    "Candidate",
    "DiscoveryResult",
    "SandboxWorker",
    "discopop_grad",
    "discopop_loss",
    "discover",
    "dpo_loss",
    "get_loss",
    "load_candidate",
    "parse_proposal",
    "toy_fitness",
    "validate_candidate",
]
