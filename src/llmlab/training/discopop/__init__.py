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

Package layout (every public name is re-exported here):

* :mod:`~llmlab.training.discopop.losses`: LRML and the baseline / App. E losses, :data:`LOSSES`, :func:`get_loss`.
* :mod:`~llmlab.training.discopop.prompts`: the proposer's prompt templates and the seed losses' code.
* :mod:`~llmlab.training.discopop.discovery`: the discovery loop, the sandboxed worker, candidate validation
  and the toy fitness task.
* :mod:`~llmlab.training.discopop.cli`: ``llmlab lab discover`` and ``llmlab lab align``.
"""

from __future__ import annotations

from llmlab.training.discopop.discovery import (
    ALLOWED_IMPORTS,
    Candidate,
    DiscoveryResult,
    SandboxWorker,
    discover,
    load_candidate,
    parse_proposal,
    toy_fitness,
    validate_candidate,
    worker_main,
)
from llmlab.training.discopop.losses import (
    LOSSES,
    LossFn,
    aqfl_loss,
    aql_loss,
    cell_loss,
    dbaql_loss,
    discopop_grad,
    discopop_loss,
    dpo_loss,
    get_loss,
    hinge_loss,
    ipo_loss,
    kto_pair_loss,
    padll_loss,
    pfl_loss,
)
from llmlab.training.discopop.prompts import (
    FIRST_USER_PROMPT,
    FITNESS_PROMPT,
    INVALID_PROMPT,
    SEED_CODES,
    SYSTEM_PROMPT,
)

__all__ = [
    "ALLOWED_IMPORTS",
    "FIRST_USER_PROMPT",
    "FITNESS_PROMPT",
    "INVALID_PROMPT",
    "LOSSES",
    "SEED_CODES",
    "SYSTEM_PROMPT",
    "Candidate",
    "DiscoveryResult",
    "LossFn",
    "SandboxWorker",
    "aqfl_loss",
    "aql_loss",
    "cell_loss",
    "dbaql_loss",
    "discopop_grad",
    "discopop_loss",
    "discover",
    "dpo_loss",
    "get_loss",
    "hinge_loss",
    "ipo_loss",
    "kto_pair_loss",
    "load_candidate",
    "padll_loss",
    "parse_proposal",
    "pfl_loss",
    "toy_fitness",
    "validate_candidate",
    "worker_main",
]
