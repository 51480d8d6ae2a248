"""Accessing GPT-4 level Mathematical Olympiad Solutions via Monte Carlo Tree Self-refine with LLaMa-3 8B.

Zhang, Huang, Zhou, Li, Ouyang — arXiv 2406.07394 (MCTSr). Implements §3 of the paper as the official
script does it (trotsky1997/MathBlackBox ``run_with_earlystopping.py``):

- Q(a) = ½ (min R(a) + mean R(a)) over the node's reward samples (paper §3, code ``avg_reward``).
- UCT(a) = Q(a) + c·sqrt(ln(N(parent) + 1) / (N(a) + ε)), c = 1.4, ε = 1e-5 (paper §3); N is the number
  of reward samples, so a root (no parent) has no exploration term.
- Backpropagation Q′(parent) = ½ (Q(parent) + max_child Q(child)) (paper §3), children's raw Q, and the
  official update frontier: leaves get UCT from their own Q, a parent is recomputed from its leaf
  children; a parent already in the UCT table is not walked further (``backprop="official"``).
  ``backprop="full"`` recomputes every node from current statistics instead.
- Expansion eligibility (``filter_mature_node``): fewer than ``max_children`` = 3 children, or the best
  child's Q below the node's own. Selection is greedy over **all** eligible nodes (max UCT, first wins
  ties), not a root-to-leaf descent.
- Self-evaluation: one call per reward sample at temperature 0.95; the score is the last signed number
  after the last "Score"; a score ≥ 95 is replaced by 50 (full-score suppression). A node gets one
  sample when created and one more each time it is selected for expansion.
- Initialisation: a weak answer a0 plus the "I don't know" dummy root, both roots, both rewarded.
- Self-refine: a critique call, then a rewrite call; one new child per rollout.
- Calls per problem without parse retries or oracle stop: 3 + 4·rollouts.

Deliberate deviations from the official code (and why):

- **No ground truth in the search or the answer.** The official runner stops as soon as an answer
  matches the ground truth and scores a problem correct if *any* explored answer is right — that is
  pass@k (MathBlackBox issues #1, #3, #13). Here :meth:`MCTSr.solve` never sees the ground truth and
  answers with a selection policy (``selection``: ``max_q`` by default, ``max_uct``, ``last``,
  ``majority``); that is what accuracy means. :meth:`MCTSr.solve_with_oracle` takes the oracle as a
  separate callable and reports the official metric under ``trace["pass_at_k"]``. By default the
  oracle never changes the search (the answers of an early-stopped run are a prefix of the full run's,
  so "any correct" is the same, and ``calls_at_first_correct`` gives the official cost);
  ``oracle_early_stop=true`` reproduces the official stop literally.
- **Answer format does not depend on the ground truth.** The official prompt picks [number] / [option] /
  [Yes or No] / [answer formula] from the *label's* type; we take it from config or
  ``Query.metadata["answer_format"]`` (set by the task), defaulting to the official GSM8K format.
- **The refine call sees the answer it refines** (``refine_context="full"``). The official ``generate``
  truncates history to the last two messages, so the rewrite call sees only the critique exchange and
  never the answer — a bug we do not copy; ``refine_context="official"`` restores it.
- **Bounded parse retries** (``parse_retries``; the official ``@retry()`` loops forever) and scores
  **clipped** to [-100, 100] (``clip``; the official code does not clip). The suppression threshold and
  value are configurable (``suppress_at=null`` turns it off).
- Nodes are objects, not dict keys of their text: the official tree merges identical answer strings
  (and resets the merged node's children); here two equal texts are two nodes.
- The reward sample of the selected node and its critique call are independent, so they run
  concurrently (as do the two initial reward samples); the tree is the same, the critical path is
  2 + 3·rollouts calls instead of 3 + 4·rollouts.
- ``rollouts`` defaults to 8 (the paper's headline "8-rollouts"); the official script's default
  ``max_iter`` is 16 even for runs named "-mcts-8" (issue #1). If no node is eligible for expansion the
  search stops (the official code would crash). The prompts are our paraphrases of the official ones,
  with the same structure and format tags; the dummy-root strings are our own "I don't know" variants.
- The question is the query's last user message; a leading system message is kept on every call.
"""

from __future__ import annotations

import functools
import math
import random
import re
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from llmlab.backends.base import GenerateRequest, Message
from llmlab.backends.model import Model
from llmlab.core.concurrency import gather
from llmlab.core.config import LabConfig
from llmlab.core.contracts import Query, Roles, Solution
from llmlab.core.errors import ParseError
from llmlab.methods.base import Oracle, OracleMethod

# -- prompts (paraphrases of the official ones; same structure and format tags) --------------------------

WEAK_ANSWER_PROMPT = (
    "Question: {question}\n"
    "The response should begin with [reasoning process]...[Verification]... and end with {answer_format}\n"
    "Let's think step by step."
)
CRITIQUE_PROMPT = (
    "Question: {question}\n"
    "The answer above is weak. Give a reflection or feedback that would correct it. Examine it strictly "
    "and critically and point out every flaw and every imperfection, each of which should cost it points.\n"
    "Let's think step by step."
)
REFINE_PROMPT = (
    "Question: {question}\n"
    "Refine your answer following the reflection or feedback. The response should begin with "
    "[reasoning process]...[Verification]... and end with {answer_format}\n"
    "Let's think step by step."
)
SELF_EVALUATE_PROMPT = (
    "Question: {question}\n"
    "Answer:{answer}\n"
    "Examine this answer strictly and critically. Point out every flaw and take points off for every "
    "imperfection. Grade harshly and never award full marks, so that the grade can be trusted.\n"
    "Output a score between [-100,+100], i.e. from -100 to +100.\n"
    "Response format:\n"
    "[Analyst]...[Score]..."
)
# The official GSM8K format string (quotes and a literal backslash-n included, as in the official prompt).
GSM8K_ANSWER_FORMAT = '"[Final Answer] The answer is [answer] \\n#### [answer]"'
DUMMY_ANSWERS = (
    "I don't know.",
    "I do not understand this question.",
    "I cannot help with this question.",
    "I don't know how to solve this problem.",
    "I don't know the answer to this question.",
    "Sorry, I don't know the answer to this question.",
)

CALL_STRIDE = 100_000  # sample indices of one search: outer_sample_index * CALL_STRIDE + call number
SCORE_NUMBER = re.compile(r"-?\d+\.\d+|-?\d+")


# -- the formulas --------------------------------------------------------------------------------------


def q_value(rewards: Sequence[float]) -> float:
    """Q(a) = ½ (min R(a) + mean R(a)).

    Example:
        >>> q_value([-20, 40])
        -5.0
    """
    if not rewards:
        raise ValueError("a node needs at least one reward sample")
    return (min(rewards) + statistics.fmean(rewards)) / 2


def uct(q: float, parent_visits: int, visits: int, c: float = 1.4, eps: float = 1e-5) -> float:
    """UCT(a) = Q(a) + c·sqrt(ln(N(parent) + 1) / (N(a) + ε)).

    Example:
        >>> round(uct(10.0, 0, 1), 6)
        10.0
    """
    return q + c * math.sqrt(math.log(parent_visits + 1) / (visits + eps))


def parse_score(text: str) -> float:
    """The self-evaluation score: the last signed number after the last ``Score``.

    Raises:
        ParseError: No number there.

    Example:
        >>> parse_score("[Analyst] fine [Score] 87.5")
        87.5
    """
    tail = text.split("Score")[-1]
    numbers = SCORE_NUMBER.findall(tail)
    if not numbers:
        snippet = tail.strip().replace("\n", " ")[:60]
        raise ParseError(f"no score number after 'Score' in the self-evaluation: '{snippet}'")
    return float(numbers[-1])


def normalize_score(
    score: float, *, clip: bool = True, suppress_at: float | None = 95.0, suppress_to: float = 50.0
) -> float:
    """Clip to [-100, 100], then replace a score ≥ ``suppress_at`` by ``suppress_to`` (official: 95 → 50).

    Example:
        >>> normalize_score(120), normalize_score(94), normalize_score(-300)
        (50.0, 94, -100.0)
    """
    if clip:
        score = max(-100.0, min(100.0, score))
    if suppress_at is not None and score >= suppress_at:
        score = suppress_to
    return score


# -- the tree ------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    """One answer in the search tree.

    Attributes:
        id: Creation order (0 = the weak answer).
        text: The answer text.
        parent: The node it refines (``None`` for roots).
        prompt: The user prompt that produced ``text`` (what the official history keeps).
        dummy: The "I don't know" root.
        critique: The feedback this node was rewritten from (``None`` for roots).
    """

    id: int
    text: str
    parent: Node | None
    prompt: str
    dummy: bool = False
    critique: str | None = None
    children: list[Node] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    @property
    def visits(self) -> int:
        """N(a): the number of reward samples (1 + times selected)."""
        return len(self.rewards)

    @property
    def q(self) -> float:
        return q_value(self.rewards)


@dataclass
class Tree:
    """Answer nodes (creation order) and their UCT table."""

    nodes: list[Node] = field(default_factory=list)
    uct: dict[int, float] = field(default_factory=dict)

    def add(self, text: str, parent: Node | None, prompt: str, **kw: Any) -> Node:
        node = Node(len(self.nodes), text, parent, prompt, **kw)
        self.nodes.append(node)
        if parent is not None:
            parent.children.append(node)
        return node

    def expandable(self, max_children: int = 3) -> list[Node]:
        """Nodes eligible for expansion: < ``max_children`` children, or best child's Q below their own."""
        return [
            n for n in self.nodes
            if len(n.children) < max_children or max(c.q for c in n.children) < n.q
        ]

    def select(self, max_children: int = 3) -> Node | None:
        """The eligible node with the highest UCT (first in creation order on ties); ``None`` if none."""
        best, best_value = None, -math.inf
        for node in self.expandable(max_children):
            value = self.uct.get(node.id, -math.inf)
            if value > best_value:
                best, best_value = node, value
        return best

    def update(self, c: float = 1.4, eps: float = 1e-5, mode: Literal["official", "full"] = "official") -> None:
        """Recompute UCT values after a change (backpropagation, then UCT).

        ``official``: leaves from their own Q; a node's parent from Q′ = ½(Q + max child Q); the walk
        continues upward only through parents not yet in the table (the official ``update_ucb``).
        ``full``: every node from current statistics (leaves Q, inner nodes Q′).
        """

        def n_parent(node: Node) -> int:
            return node.parent.visits if node.parent is not None else 0

        def inner(node: Node) -> float:
            return uct((node.q + max(ch.q for ch in node.children)) / 2, n_parent(node), node.visits, c, eps)

        leaves = [n for n in self.nodes if not n.children]
        for leaf in leaves:
            self.uct[leaf.id] = uct(leaf.q, n_parent(leaf), leaf.visits, c, eps)
        if mode == "full":
            for n in self.nodes:
                if n.children:
                    self.uct[n.id] = inner(n)
            return
        frontier = leaves
        while frontier:
            nxt: dict[int, Node] = {}
            for node in frontier:
                father = node.parent
                if father is None:
                    continue
                if father.id not in self.uct:
                    nxt[father.id] = father
                else:
                    self.uct[father.id] = inner(father)
            frontier = list(nxt.values())


# -- the method ----------------------------------------------------------------------------------------


class MCTSrConfig(LabConfig):
    """MCTSr options (faithful defaults, with the clean-mode fixes on).

    Attributes:
        rollouts: Refinement iterations (paper tables: 4, 8; official default 16).
        c: UCT exploration constant.
        epsilon: ε in the UCT denominator.
        max_children: A node with this many children is "fully expanded" unless a child beats it.
        temperature: Every call's temperature (official 0.95).
        max_tokens: Completion limit of every call (official: none).
        dummy_root: Add the "I don't know" second root.
        clip: Clip scores to [-100, 100].
        suppress_at: Scores at or above this become ``suppress_to`` (``None``: off).
        suppress_to: The replacement score.
        parse_retries: Extra self-evaluation calls when no score can be read (then ParseError).
        refine_context: ``full`` (the rewrite sees the answer) or ``official`` (last 2 messages only).
        backprop: ``official`` update frontier or ``full`` recomputation.
        selection: How the final answer is chosen without ground truth.
        oracle_early_stop: With :meth:`MCTSr.solve_with_oracle`, stop at the first correct answer.
        answer_format: The final-answer format requested (``None``: ``Query.metadata["answer_format"]``,
            else the GSM8K format).
        seed: Picks the dummy-root string.
    """

    rollouts: int = Field(8, ge=0)
    c: float = Field(1.4, ge=0)
    epsilon: float = Field(1e-5, gt=0)
    max_children: int = Field(3, ge=1)
    temperature: float | None = 0.95
    max_tokens: int | None = None
    dummy_root: bool = True
    clip: bool = True
    suppress_at: float | None = 95.0
    suppress_to: float = 50.0
    parse_retries: int = Field(3, ge=0)
    refine_context: Literal["full", "official"] = "full"
    backprop: Literal["official", "full"] = "official"
    selection: Literal["max_q", "max_uct", "last", "majority"] = "max_q"
    oracle_early_stop: bool = False
    answer_format: str | None = None
    seed: int = 0


class _Run:
    """State of one search: the tree, the call counter, the trace."""

    def __init__(self, cfg: MCTSrConfig, query: Query, model: Model) -> None:
        self.cfg = cfg
        self.query = query
        self.model = model
        self.question = query.text
        fmt = cfg.answer_format if cfg.answer_format is not None else query.metadata.get("answer_format")
        self.answer_format = fmt if fmt is not None else GSM8K_ANSWER_FORMAT
        first = query.messages[0] if query.messages else None
        self.system = (first,) if first is not None and first.role == "system" else ()
        self.tree = Tree()
        self.outer = int(query.metadata.get("sample_index", 0))
        self.calls = 0
        self.parse_failures = 0
        self.iterations: list[dict[str, Any]] = []

    async def call(self, *turns: tuple[str, str]) -> str:
        msgs = (*self.system, *(Message(role, text) for role, text in turns))  # type: ignore[arg-type]
        # distinct sample index per call: repeated reward prompts must be fresh samples (and when the search
        # itself is sampled, e.g. by self_consistency, its query's sample index keeps runs apart)
        index = self.outer * CALL_STRIDE + self.calls
        self.calls += 1
        resp = await self.model.generate(GenerateRequest(
            messages=msgs, temperature=self.cfg.temperature, max_tokens=self.cfg.max_tokens, sample_index=index
        ))
        return resp.text

    def weak_prompt(self) -> str:
        return WEAK_ANSWER_PROMPT.format(question=self.question, answer_format=self.answer_format)

    async def reward(self, node: Node) -> None:
        """One self-evaluation sample for ``node`` (bounded retries on unreadable scores)."""
        cfg = self.cfg
        prompt = SELF_EVALUATE_PROMPT.format(question=self.question, answer=node.text)
        for attempt in range(cfg.parse_retries + 1):
            reply = await self.call(("user", prompt))
            try:
                raw = parse_score(reply)
            except ParseError as exc:
                self.parse_failures += 1
                if attempt == cfg.parse_retries:
                    raise ParseError(
                        f"MCTSr: {exc} (after {attempt + 1} tries); raise parse_retries or use a model that "
                        "follows the [Score] format"
                    ) from None
                continue
            node.rewards.append(
                normalize_score(raw, clip=cfg.clip, suppress_at=cfg.suppress_at, suppress_to=cfg.suppress_to)
            )
            return

    async def refine(self, node: Node) -> Node:
        """Critique then rewrite ``node``; the new answer becomes its child."""
        crit_prompt = CRITIQUE_PROMPT.format(question=self.question)
        refine_prompt = REFINE_PROMPT.format(question=self.question, answer_format=self.answer_format)
        if self.cfg.refine_context == "official":
            # official: history truncated to the last (prompt, answer) pair of each call
            critique = await self.call(("user", node.prompt), ("assistant", node.text), ("user", crit_prompt))
            text = await self.call(("user", crit_prompt), ("assistant", critique), ("user", refine_prompt))
        else:
            base = (("user", self.weak_prompt()), ("assistant", node.text), ("user", crit_prompt))
            critique = await self.call(*base)
            text = await self.call(*base, ("assistant", critique), ("user", refine_prompt))
        return self.tree.add(text, node, refine_prompt, critique=critique)

    async def refine_into(self, node: Node, out: list[Node]) -> None:
        out.append(await self.refine(node))

    def answer_of(self, node: Node) -> str | None:
        return self.query.extract(node.text) if self.query.extract else node.text

    def select_final(self) -> Node | None:
        cands = [n for n in self.tree.nodes if not n.dummy]
        if not cands:
            return None
        policy = self.cfg.selection
        if policy == "last":
            return cands[-1]
        if policy == "max_uct":
            return max(cands, key=lambda n: self.tree.uct.get(n.id, -math.inf))  # first wins ties
        if policy == "majority":
            votes = Counter(a for a in (self.answer_of(n) for n in cands) if a is not None)
            if votes:
                top = max(votes.values())
                winner = next(a for a in (self.answer_of(n) for n in cands) if a is not None and votes[a] == top)
                cands = [n for n in cands if self.answer_of(n) == winner]
        return max(cands, key=lambda n: n.q)

    async def search(self, oracle: Oracle | None) -> Solution:
        cfg, tree = self.cfg, self.tree
        prompt = self.weak_prompt()
        a0 = tree.add(await self.call(("user", prompt)), None, prompt)
        roots = [a0]
        if cfg.dummy_root:
            dummy_text = random.Random(f"{cfg.seed}:{self.question}").choice(DUMMY_ANSWERS)
            roots.append(tree.add(dummy_text, None, prompt, dummy=True))
        await gather([functools.partial(self.reward, n) for n in roots])

        pass_k: dict[str, Any] | None = None
        stopped = "rollouts"
        if oracle is not None:
            pass_k = {"k": 0, "correct": False, "first_correct": None, "calls_at_first_correct": None,
                      "early_stop": cfg.oracle_early_stop}

        async def judge(node: Node) -> bool:
            """Oracle bookkeeping; True when the search must stop (official early stop)."""
            if oracle is None or pass_k is None:
                return False
            pass_k["k"] += 1
            if await oracle(self.answer_of(node)) and not pass_k["correct"]:
                pass_k.update(correct=True, first_correct=node.id, calls_at_first_correct=self.calls)
            return bool(pass_k["correct"] and cfg.oracle_early_stop)

        if await judge(a0):
            stopped = "oracle"
        else:
            tree.update(cfg.c, cfg.epsilon, cfg.backprop)
            for i in range(cfg.rollouts):
                chosen = tree.select(cfg.max_children)
                if chosen is None:
                    stopped = "no_expandable_node"
                    break
                # the extra reward sample of the selected node and the critique are independent
                made: list[Node] = []
                thunks: list[Callable[[], Awaitable[None]]] = [
                    functools.partial(self.reward, chosen), functools.partial(self.refine_into, chosen, made)
                ]
                await gather(thunks)
                child = made[0]
                await self.reward(child)
                self.iterations.append({"iteration": i, "selected": chosen.id, "new": child.id})
                if await judge(child):
                    stopped = "oracle"
                    break
                tree.update(cfg.c, cfg.epsilon, cfg.backprop)

        final = self.select_final()
        text = final.text if final is not None else ""
        trace = {
            "nodes": [
                {"id": n.id, "parent": n.parent.id if n.parent else None, "dummy": n.dummy, "text": n.text,
                 "answer": self.answer_of(n), "rewards": list(n.rewards), "q": n.q,
                 "uct": tree.uct.get(n.id), "critique": n.critique}
                for n in tree.nodes
            ],
            "iterations": self.iterations,
            "selection": cfg.selection,
            "selected": final.id if final is not None else None,
            "stopped": stopped,
            "calls": self.calls,
            "parse_failures": self.parse_failures,
            "pass_at_k": pass_k,
            # aggregated by the runner as oracle_pass_at_k (never as accuracy)
            "oracle": {"pass_at_k": bool(pass_k["correct"]), "k": pass_k["k"]} if pass_k is not None else None,
        }
        return Solution(text=text, answer=self.answer_of(final) if final is not None else None, trace=trace)


class MCTSr(OracleMethod):
    """Monte Carlo Tree Self-refine: a search over refined answers scored by self-evaluation.

    Uses the ``default`` role for every call (answer, critique, rewrite, self-evaluation).

    Example:
        >>> from llmlab.core.concurrency import run_sync
        >>> from llmlab.backends.mock import MockBackend
        >>> m = Model(MockBackend(rules=[("Score", "[Score] 40")], default="The answer is 4"))
        >>> sol = run_sync(MCTSr({"rollouts": 2}).solve(Query.from_text("2+2?"), Roles(m)))
        >>> sol.trace["calls"], sol.text
        (11, 'The answer is 4')
    """

    name = "mcts_sr"
    Config = MCTSrConfig

    @property
    def cfg(self) -> MCTSrConfig:
        assert isinstance(self.config, MCTSrConfig)
        return self.config

    async def solve(self, query: Query, roles: Roles) -> Solution:
        """Search and answer by ``selection`` — no ground truth anywhere (this is what accuracy uses).

        Args:
            query: The problem (its last user message is the question).
            roles: ``default`` answers, critiques, rewrites and scores.

        Returns:
            The selected answer; the trace holds the tree (texts, rewards, Q, UCT), the iterations and
            the call count. ``trace["pass_at_k"]`` is ``None``.

        Raises:
            ParseError: A self-evaluation had no readable score after ``parse_retries`` retries.
        """
        return await _Run(self.cfg, query, roles.default).search(None)

    async def solve_with_oracle(self, query: Query, roles: Roles, is_correct: Oracle) -> Solution:
        """Search as :meth:`solve`, and also judge every explored answer with an oracle (pass@k).

        The Solution's ``answer`` still comes from the selection policy, so it is an honest
        accuracy; the oracle's verdict is only in ``trace["pass_at_k"]`` (``k`` answers judged,
        ``correct`` = any of them right, ``first_correct`` node id, ``calls_at_first_correct`` = the
        calls an official early-stopped run would have made). With ``oracle_early_stop`` the search
        stops at the first correct answer, as the official runner does — then the tree itself depends on
        the ground truth.

        Args:
            query: The problem.
            roles: As for :meth:`solve`.
            is_correct: Called with what ``Task.score`` receives (the extracted answer, or the text when
                the query has no extractor); returns whether it matches the ground truth.

        Returns:
            The Solution, with ``trace["pass_at_k"]`` filled.
        """
        return await _Run(self.cfg, query, roles.default).search(is_correct)

    def answer_uses_ground_truth(self) -> bool:
        """With ``oracle_early_stop`` the tree, and so the selected answer, depends on the ground truth."""
        return bool(self.cfg.oracle_early_stop)
