r"""OmegaPRM: divide-and-conquer Monte Carlo tree search that collects process-supervision labels.

Paper: "Improve Mathematical Reasoning in Language Models by Automated Process Supervision", Luo et al.
(Google DeepMind), 2024, arXiv 2406.06592. Implements the data-collection algorithm (§3): a state is
``s = (question, solution prefix)``; ``MC(s)`` is the fraction of ``k`` completions of the prefix (by the
``completer`` role) whose final answer the oracle accepts; a binary search over the steps of a wrong
rollout from a state with ``MC(s) > 0`` finds its first wrong step; the tree keeps every (state, rollout)
pair with

- ``Q(s, r) = α^(1 − MC(s)) · β^(len(r) / L)`` (len in whitespace words, as openr counts it),
- ``U(s) = c_puct · sqrt(Σ_i N(s_i)) / (1 + N(s))`` (sum over every state of the tree),

and selection takes ``argmax Q(s, r) + U(s)`` over the pool of wrong rollouts of mixed states
(``0 < MC(s) < 1``). Output: per-state MC values (soft labels; a step is correct iff ``MC > 0``) in the
layouts of :mod:`llmlab.methods.prm` (Math-APS flat and tree, Math-Shepherd, PRM800K).

The k completions of one probe are one ``n = k`` request when the backend samples natively
(``Capabilities.native_n``), else k concurrent requests told apart by ``sample_index``.

There is no official code (Google). openreasoner/openr ``data/omegaPRM_v2/omegaprm.py`` is the public
reimplementation we compared against (``tests/parity/test_omegaprm_openr.py``; ``docs/omega_prm.md``).

Deliberate deviations (from openr unless stated):

- A consumed (state, rollout) leaves the pool for good. openr's maintenance phase re-adds every wrong
  rollout of the selected state, including the one just searched, so the same pair can be selected again
  (openr PR #98).
- ``N(s)`` counts selections of ``s`` (the paper's visit count), incremented after its binary search.
  openr at HEAD (commit "fix increment visit count") increments ``N`` once per MC estimation instead, so
  every estimated state has ``N = 1`` and ``U`` is the same for all of them; older openr never incremented.
- Selection recomputes ``Q + U`` of every pool entry at each step (exact argmax). openr keeps a heap whose
  priorities are refreshed only for the selected state, so other entries carry a stale ``U``. Ties go to
  the entry added first.
- With ``Σ N = 0``, ``U = 0`` (the formula); openr floors the sum at 1. Both give every state the same U,
  so the first selection is the same.
- Correctness is the MATH answer check (:func:`llmlab.grading.math_answers.math_equal` on the last
  ``\boxed{}`` or stated answer of prefix + rollout), not openr's substring-of-the-last-sentence test
  (which counts "11" as containing "1"). Pass ``verifier=`` for another oracle.
- Each probe runs MC estimation once (openr before Nov 2024 ran it twice, issue #54).
- Each binary-search probe is a new child state even if an equal prefix exists elsewhere in the tree
  (as openr; merging equal prefixes would save rollouts but changes the tree statistics).
- Budgets are checked before each selection (as openr): a binary search in progress finishes, so the
  rollout total may exceed ``rollout_budget`` by up to one search.
- Defaults α 0.5, β 0.9, L 500, c_puct 0.125, k 16 (the issue / openr); ``search_limit`` 100 is the
  paper's value as recalled (unverified), ``rollout_budget`` 200 is openr's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from llmlab.backends.base import GenerateRequest, Message
from llmlab.backends.model import Model
from llmlab.core.concurrency import gather
from llmlab.core.config import MAX_COUNT, LabConfig, build_config
from llmlab.core.errors import ConfigError
from llmlab.grading.math_answers import extract_math_final, math_equal

Verifier = Callable[[str, str], bool]

STEP_DELIMITER = "\n\n"

# Same structure as openr's policy prompt (instruction, blank line, question and steps so far); our wording.
COMPLETION_PROMPT = (
    "Continue the solution of the question below from the steps already given. Do not repeat those "
    "steps. Separate your steps with a blank line and put the final answer in \\boxed{{}}.\n\n"
    "{question}{prefix}"
)


class OmegaPRMConfig(LabConfig):
    """Options of OmegaPRM data collection.

    Args:
        alpha: α of Q (prefers supposed-to-be-correct wrong rollouts).
        beta: β of Q (prefers short rollouts).
        L: Length normaliser of Q, in words.
        c_puct: Exploration constant of U.
        k: Completions per Monte Carlo estimate.
        search_limit: Most selections (binary searches) per question.
        rollout_budget: Stop selecting once this many completions were drawn.
        filter_rollouts: If > 0, first draw this many completions of the question and skip it unless some
            are right and some wrong (openr uses 32); 0: the root's own estimate decides.
        temperature: Sampling temperature of the completer.
        top_p: Nucleus sampling of the completer.
        max_tokens: Completion budget per rollout.
        prompt: The completer prompt (``{question}``, ``{prefix}`` placeholders).
    """

    alpha: float = Field(default=0.5, gt=0.0)
    beta: float = Field(default=0.9, gt=0.0)
    L: int = Field(default=500, ge=1, le=10_000_000)
    c_puct: float = Field(default=0.125, ge=0.0)
    k: int = Field(default=16, ge=1)
    search_limit: int = Field(default=100, ge=0, le=MAX_COUNT)
    rollout_budget: int = Field(default=200, ge=1, le=100 * MAX_COUNT)
    filter_rollouts: int = Field(default=0, ge=0, le=MAX_COUNT)
    temperature: float = Field(default=0.7, ge=0.0)
    top_p: float | None = 0.9
    max_tokens: int | None = Field(default=2048, ge=1)
    prompt: str = COMPLETION_PROMPT


@dataclass
class Rollout:
    """One completion of a state's prefix: its text, steps and correctness."""

    id: int
    state: int
    text: str
    correct: bool
    consumed: bool = False

    @property
    def steps(self) -> list[str]:
        return split_steps(self.text)


@dataclass
class State:
    """A tree node: the solution steps after the question, its statistics, and its rollouts."""

    id: int
    steps: tuple[str, ...]
    parent: int | None
    N: int = 0
    mc: float | None = None
    total_rollouts: int = 0
    correct_rollouts: int = 0
    rollouts: list[int] = field(default_factory=list)
    children: list[int] = field(default_factory=list)

    def prefix_text(self) -> str:
        return STEP_DELIMITER.join(self.steps)


@dataclass
class SearchResult:
    """What one question's search produced."""

    question: str
    answer: str
    states: list[State]
    rollouts: list[Rollout]
    searches: int
    total_rollouts: int
    skipped: str | None = None
    log: list[dict[str, Any]] = field(default_factory=list)

    def flat(self) -> list[dict[str, Any]]:
        """Every state as ``{solution_prefix, mc_value}`` (the prefix includes the question, as Math-APS)."""
        out = []
        for s in self.states:
            prefix = self.question if not s.steps else self.question + STEP_DELIMITER + s.prefix_text()
            out.append({"solution_prefix": prefix, "mc_value": s.mc})
        return out

    def tree(self) -> dict[str, Any]:
        """The nested tree ``{text, mc_value, children}``; ``text`` is the steps a node adds to its parent."""

        def node(i: int) -> dict[str, Any]:
            s = self.states[i]
            parent_len = len(self.states[s.parent].steps) if s.parent is not None else 0
            text = self.question if s.parent is None else STEP_DELIMITER.join(s.steps[parent_len:])
            return {"text": text, "mc_value": s.mc, "children": [node(c) for c in s.children]}

        return node(0) if self.states else {}

    def first_errors(self) -> list[int]:
        """Ids of the states with ``MC = 0`` whose parent has ``MC > 0``: prefixes ending at a first error."""
        out = []
        for s in self.states:
            if s.mc == 0 and s.parent is not None:
                parent_mc = self.states[s.parent].mc
                if parent_mc is not None and parent_mc > 0:
                    out.append(s.id)
        return out


def split_steps(text: str) -> list[str]:
    """The steps of a solution text: blank-line separated, stripped, empty ones dropped."""
    return [p.strip() for p in text.split(STEP_DELIMITER) if p.strip()]


def default_verifier(solution: str, expected: str) -> bool:
    r"""Whether the final answer of ``solution`` (last ``\boxed{}`` or stated answer) equals ``expected``."""
    found = extract_math_final(solution)
    return found is not None and math_equal(found, expected)


def q_value(mc: float, rollout_words: int, alpha: float, beta: float, L: int) -> float:
    """``Q(s, r) = α^(1 − MC(s)) · β^(len(r) / L)``.

    Example:
        >>> round(q_value(0.5, 100, 0.5, 0.9, 500), 6)  # 0.5**0.5 * 0.9**0.2
        0.692362
    """
    return float(alpha ** (1.0 - mc) * beta ** (rollout_words / L))


def u_value(n_total: int, n_state: int, c_puct: float) -> float:
    """``U(s) = c_puct · sqrt(Σ N) / (1 + N(s))``.

    Example:
        >>> u_value(4, 1, 0.125)
        0.125
    """
    return c_puct * math.sqrt(n_total) / (1 + n_state)


class OmegaPRM:
    r"""Collects per-step MC labels for one question at a time with a completer model.

    Args:
        completer: The policy whose completions estimate MC.
        config: An :class:`OmegaPRMConfig` or its keys.
        verifier: ``(solution_text, expected_answer) -> bool`` (the oracle); default: MATH equivalence.

    One instance runs one search at a time (it holds the current tree); :func:`collect` makes one per
    question.

    Example:
        >>> from llmlab.backends.mock import MockBackend
        >>> from llmlab.core.concurrency import run_sync
        >>> omega = OmegaPRM(Model(MockBackend(["x = 2\n\nSo \\boxed{2}"])), {"k": 2})
        >>> res = run_sync(omega.search("x+1=3?", "2"))
        >>> res.states[0].mc, res.searches
        (1.0, 0)
    """

    def __init__(
        self,
        completer: Model,
        config: OmegaPRMConfig | dict[str, Any] | None = None,
        *,
        verifier: Verifier | None = None,
    ) -> None:
        self.completer = completer
        built = config if isinstance(config, OmegaPRMConfig) else build_config(OmegaPRMConfig, config)
        assert isinstance(built, OmegaPRMConfig)
        self.config = built
        self.verifier = verifier if verifier is not None else default_verifier

    # -- one question ----------------------------------------------------------------------------------

    async def search(self, question: str, answer: str) -> SearchResult:
        """Run the tree search for ``question`` whose reference final answer is ``answer``."""
        cfg = self.config
        res = SearchResult(question, answer, [], [], 0, 0)
        self._res = res
        if cfg.filter_rollouts:
            texts = await self._complete(question, (), cfg.filter_rollouts, tag="filter")
            res.total_rollouts += len(texts)
            n_ok = sum(self._is_correct(question, (), t, answer) for t in texts)
            if n_ok in (0, len(texts)):
                res.skipped = "all filter rollouts correct" if n_ok else "no filter rollout correct"
                return res
        root = self._new_state((), None)
        await self._estimate(root)
        while res.searches < cfg.search_limit and res.total_rollouts < cfg.rollout_budget:
            picked = self.select()
            if picked is None:
                break
            state, rollout = picked
            rollout.consumed = True
            res.log.append({"search": res.searches, "state": state.id, "rollout": rollout.id,
                            "score": self.score(state, rollout)})
            steps = rollout.steps
            before = res.total_rollouts
            first_error, probes = await self._binary_search(state, steps, 0, len(steps) - 1)
            res.log[-1].update(first_error=first_error, probes=probes, rollouts=res.total_rollouts - before)
            state.N += 1
            res.searches += 1
        return res

    # -- selection -------------------------------------------------------------------------------------

    def pool(self) -> list[tuple[State, Rollout]]:
        """Unconsumed wrong rollouts of states with ``0 < MC < 1``, in the order they were added."""
        out = []
        for r in self._res.rollouts:
            s = self._res.states[r.state]
            if not r.correct and not r.consumed and s.mc is not None and 0 < s.mc < 1:
                out.append((s, r))
        return out

    def score(self, state: State, rollout: Rollout) -> float:
        """Selection score ``Q(s, r) + U(s)`` with the tree's current counts."""
        cfg = self.config
        assert state.mc is not None
        n_total = sum(s.N for s in self._res.states)
        return q_value(state.mc, len(rollout.text.split()), cfg.alpha, cfg.beta, cfg.L) + u_value(
            n_total, state.N, cfg.c_puct
        )

    def select(self) -> tuple[State, Rollout] | None:
        """``argmax_(s, r) Q(s, r) + U(s)`` over the pool (first added wins ties), or ``None`` if empty."""
        best: tuple[State, Rollout] | None = None
        best_score = -math.inf
        for s, r in self.pool():
            sc = self.score(s, r)
            if sc > best_score:
                best, best_score = (s, r), sc
        return best

    # -- expansion -------------------------------------------------------------------------------------

    async def _binary_search(self, base: State, steps: Sequence[str], lo: int, hi: int) -> tuple[int | None, int]:
        """Locate the first wrong step of ``steps`` (a wrong rollout of ``base``).

        Returns:
            The first error as an absolute 1-based step number (``None`` if every probe had MC > 0), and
            the number of probes (MC estimates) made.
        """
        # Iterative form of the paper's recursion: a probe with MC = 0 moves hi left of it (the first
        # error is at or before mid); a probe with MC > 0 becomes the new base (steps up to mid are fine).
        n_steps, start, probes, found = len(steps), len(base.steps), 0, False
        while lo <= hi:
            probes += 1
            mid = (lo + hi) // 2
            probe = self._new_state((*base.steps, *steps[lo : mid + 1]), base.id)
            await self._estimate(probe)
            assert probe.mc is not None
            if probe.mc == 0:
                hi, found = mid - 1, True
            else:
                base, lo = probe, mid + 1
        return (start + lo + 1 if found and lo < n_steps else None), probes

    async def _estimate(self, state: State) -> None:
        """MC(s) from k completions; correct ones become MC = 1 children; wrong ones join the pool."""
        res, cfg = self._res, self.config
        texts = await self._complete(res.question, state.steps, cfg.k, tag=f"state{state.id}")
        res.total_rollouts += len(texts)
        new = []
        for text in texts:
            ok = self._is_correct(res.question, state.steps, text, res.answer)
            r = Rollout(len(res.rollouts), state.id, text, ok)
            res.rollouts.append(r)
            state.rollouts.append(r.id)
            new.append(r)
        state.total_rollouts += len(new)
        state.correct_rollouts += sum(r.correct for r in new)
        state.mc = state.correct_rollouts / state.total_rollouts
        if state.mc == 0:
            return
        for r in new:
            if r.correct:
                child = self._new_state((*state.steps, *r.steps), state.id)
                child.mc = 1.0

    def _new_state(self, steps: tuple[str, ...], parent: int | None) -> State:
        s = State(len(self._res.states), tuple(steps), parent)
        self._res.states.append(s)
        if parent is not None:
            self._res.states[parent].children.append(s.id)
        return s

    def _is_correct(self, question: str, steps: Sequence[str], rollout: str, answer: str) -> bool:
        solution = STEP_DELIMITER.join([question, *steps, rollout])
        return bool(self.verifier(solution, answer))

    async def _complete(self, question: str, steps: Sequence[str], n: int, *, tag: str) -> list[str]:
        """Draw n completions of ``question`` + ``steps``: one n-sample request when the backend can."""
        cfg = self.config
        prefix = (STEP_DELIMITER + STEP_DELIMITER.join(steps)) if steps else ""
        msgs = (Message("user", cfg.prompt.format(question=question, prefix=prefix)),)
        base = GenerateRequest(messages=msgs, temperature=cfg.temperature, top_p=cfg.top_p,
                               max_tokens=cfg.max_tokens)
        if self.completer.capabilities.native_n:
            resp = await self.completer.generate(base.with_(n=n))
            return list(resp.texts)

        def one(i: int) -> Callable[[], Any]:
            async def run() -> str:
                return (await self.completer.generate(base.with_(sample_index=i))).text

            return run

        return await gather([one(i) for i in range(n)])


async def collect(
    completer: Model,
    problems: Sequence[tuple[str, str]],
    config: OmegaPRMConfig | dict[str, Any] | None = None,
    *,
    verifier: Verifier | None = None,
    concurrency: int = 4,
) -> list[SearchResult]:
    r"""Run OmegaPRM on many ``(question, answer)`` pairs, ``concurrency`` questions at a time.

    Example:
        >>> from llmlab.backends.mock import MockBackend
        >>> from llmlab.core.concurrency import run_sync
        >>> out = run_sync(collect(Model(MockBackend(["\\boxed{1}"])), [("q?", "1")], {"k": 1}))
        >>> out[0].states[0].mc
        1.0
    """

    def job(q: str, a: str) -> Callable[[], Any]:
        async def run() -> SearchResult:
            return await OmegaPRM(completer, config, verifier=verifier).search(q, a)

        return run

    return await gather([job(q, a) for q, a in problems], limit=concurrency)


# -- output layouts ------------------------------------------------------------------------------------

LAYOUTS = ("math-aps", "math-aps-tree", "math-shepherd", "prm800k")


def hard_labels(labels: Sequence[float | None]) -> list[float] | None:
    """Fill unlabelled steps by monotonicity (a step before a step with MC > 0 is correct); ``None`` if unknown.

    Example:
        >>> hard_labels([None, 0.5, None, 0.0]), hard_labels([None, 0.0])
        ([1.0, 1.0, None, 0.0], None)
    """
    out: list[float | None] = list(labels)
    seen_positive = False
    for i in range(len(out) - 1, -1, -1):
        lab = out[i]
        if lab is not None and lab > 0:
            seen_positive = True
            out[i] = 1.0
        elif lab is None and seen_positive:
            out[i] = 1.0
        elif lab is not None:
            out[i] = 0.0
    if out and out[0] is None:
        return None
    return out  # type: ignore[return-value]


def export(results: Sequence[SearchResult], layout: str) -> list[dict[str, Any]]:
    """JSON-able records of ``results`` in one layout (:data:`LAYOUTS`).

    ``math-aps``/``math-aps-tree`` are openr's Math-APS records (one per question); ``math-shepherd`` and
    ``prm800k`` give one record per root-to-leaf path, hard labels (MC > 0) filled by
    :func:`hard_labels`; Math-Shepherd drops paths with a step whose label is unknown (inside a probe
    that spans several steps and ends at MC = 0), PRM800K keeps them with rating ``None``.
    """
    from llmlab.methods.prm import StepExample, to_math_shepherd, to_prm800k, tree_to_examples

    if layout not in LAYOUTS:
        raise ConfigError(f"layout '{layout}' unknown; one of {', '.join(LAYOUTS)}")
    out: list[dict[str, Any]] = []
    for i, res in enumerate(results):
        if res.skipped is not None or not res.states:
            continue
        if layout in ("math-aps", "math-aps-tree"):
            steps = res.flat() if layout == "math-aps" else res.tree()
            out.append({"question": res.question, "final_answer": res.answer, "reasoning_steps": steps,
                        "question_id": i})
            continue
        for ex in tree_to_examples(res.question, res.tree(), res.answer):
            filled = hard_labels(ex.labels)
            if layout == "math-shepherd":
                if filled is not None and None not in filled:
                    out.append(to_math_shepherd(StepExample(ex.question, ex.steps, list(filled), ex.answer)))
            else:
                labels = filled if filled is not None else ex.labels
                out.append(to_prm800k(StepExample(ex.question, ex.steps, list(labels), ex.answer)))
    return out
