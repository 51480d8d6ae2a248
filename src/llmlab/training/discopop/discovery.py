"""DiscoPOP (arXiv 2406.08414) §3.1: the LLM-driven discovery loop and the sandbox that scores candidates.

A proposer returns a loss as code; the code is validated (compiles, exactly one function, output shape,
finite values and gradients) and scored on a fitness task in a separate worker process with a time limit
and an import allow-list; the fitness or the error goes back to the proposer. See
:mod:`llmlab.training.discopop` for the deviations from the official code.
"""

from __future__ import annotations

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

from llmlab.core.errors import ParseError
from llmlab.training.discopop.losses import _torch
from llmlab.training.discopop.prompts import (
    FIRST_USER_PROMPT,
    FITNESS_PROMPT,
    INVALID_PROMPT,
    SEED_CODES,
    SYSTEM_PROMPT,
)

if TYPE_CHECKING:  # pragma: no cover
    from llmlab.backends.model import Model
    from llmlab.sandbox import SandboxProcess

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

    The worker runs in :class:`llmlab.sandbox.SandboxProcess` (no network, scrubbed environment, its own
    directory and uid, whole tree killed on close).

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
        self._box: SandboxProcess | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            from llmlab.sandbox import Limits, SandboxProcess, python_env

            self.close()
            # llmlab.sandbox: no network, scrubbed environment, own directory, processes limited; no
            # address-space limit (importing torch reserves far more virtual memory than it uses).
            self._box = SandboxProcess(
                [sys.executable, "-c", "from llmlab.training.discopop.discovery import worker_main; worker_main()"],
                env={**python_env(), "OMP_NUM_THREADS": "1"}, limits=Limits(memory=None),
            )
            self._proc = self._box.proc
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
        if self._box is not None:
            self._box.close()
            self._box = None
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
