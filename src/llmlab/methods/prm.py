r"""Process reward models (PRMs), their training data layouts, and PRM-weighted self-consistency.

Paper: "Improve Mathematical Reasoning in Language Models by Automated Process Supervision", Luo et al.,
2024, arXiv 2406.06592 (OmegaPRM). Implements:

- the PRM interface: :class:`PRM` scores each step of a solution in [0, 1]; kinds: :class:`FunctionPRM`
  (any callable, for tests and plug-ins), :class:`LLMPRM` (an LLM asked to rate each step), and
  :class:`HFPRMHead` (a linear head on a transformers causal LM's hidden state at each step's last token,
  trained with the paper's pointwise soft-label objective: binary cross-entropy against MC(s));
- the process-supervision layouts OmegaPRM's labels are read from and written to: Math-APS flat
  (``{solution_prefix, mc_value}`` per state) and tree (``{text, mc_value, children}``), Math-Shepherd
  (steps ended by ``ки`` in ``input``, ``+``/``-`` in ``label``) and PRM800K (``label.steps[].completions
  [].rating``), all into :class:`StepExample` (question, steps, one soft label or ``None`` per step);
- PRM-weighted self-consistency (§4 of the paper): sample N solutions, reduce each one's step scores to a
  solution score (``min``, ``last`` or ``product``), and return the answer with the largest sum of
  solution scores; plain majority vote and best-of-N by PRM score are computed alongside for comparison.

Deliberate deviations:

- The reduction of step scores to a solution score is a parameter. The paper's exact choice was not
  verified here; the default ``min`` follows Math-Shepherd (Lightman et al. use ``product``).
- In a Math-APS tree a node may add several steps at once (a binary-search probe); only the last step of
  each node carries the node's MC label, the others are ``None`` (unlabelled, masked out of the loss).
- PRM800K ratings map to soft labels as 1 → 1.0, 0 (neutral) → 1.0, −1 → 0.0: "not wrong" is the analogue
  of ``MC > 0``.
- The LLM-as-PRM prompt is ours (one call per solution, one "Step i: p" line per step); a step it does not
  rate gets ``default_score`` and is counted in the trace.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field

from llmlab.backends.base import GenerateRequest, Message
from llmlab.backends.model import Model
from llmlab.core.concurrency import gather
from llmlab.core.config import LabConfig
from llmlab.core.contracts import Extractor, Query, Roles, Solution
from llmlab.core.errors import ConfigError, DataError, MissingExtraError
from llmlab.grading.math_answers import canonical_math_final, canonical_number, last_number
from llmlab.methods.base import Method

STEP_DELIMITER = "\n\n"
SHEPHERD_TAG = "ки"

# -- training-data layouts -----------------------------------------------------------------------------


@dataclass
class StepExample:
    """One solution with per-step soft labels (``None``: the step is not labelled)."""

    question: str
    steps: list[str]
    labels: list[float | None]
    answer: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.labels):
            raise DataError(f"{len(self.steps)} steps but {len(self.labels)} labels")


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(STEP_DELIMITER) if p.strip()]


def flat_to_tree(question: str, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Math-APS flat records → the nested tree (each node's parent: the longest other prefix of it).

    Records are ``{solution_prefix, mc_value}`` whose prefixes start with the question.
    """
    paths = []
    for rec in records:
        prefix = str(rec["solution_prefix"])
        if not prefix.startswith(question):
            raise DataError("a solution_prefix does not start with the question")
        paths.append((tuple(_split(prefix[len(question):])), rec["mc_value"]))
    roots = [i for i, (steps, _) in enumerate(paths) if not steps]
    if not roots:
        raise DataError("no record is the question itself (the root)")
    nodes = [{"text": question, "mc_value": mc, "children": []} for _, mc in paths]
    for i, (steps, _) in enumerate(paths):
        if i == roots[0]:
            continue
        # The parent: the longest proper prefix among all records (the earliest of equals), else the root.
        parent = roots[0]
        for j, (other, _) in enumerate(paths):
            if len(other) < len(steps) and steps[: len(other)] == other and len(other) > len(paths[parent][0]):
                parent = j
        nodes[i]["text"] = STEP_DELIMITER.join(steps[len(paths[parent][0]):]) if steps else ""
        nodes[parent]["children"].append(nodes[i])
    root = nodes[roots[0]]
    return root


def tree_to_flat(question: str, tree: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The nested tree → Math-APS flat records (pre-order), prefixes starting with the question."""
    out: list[dict[str, Any]] = []

    def walk(node: Mapping[str, Any], steps: tuple[str, ...]) -> None:
        prefix = question if not steps else question + STEP_DELIMITER + STEP_DELIMITER.join(steps)
        out.append({"solution_prefix": prefix, "mc_value": node["mc_value"]})
        for child in node.get("children", []):
            walk(child, (*steps, *_split(child["text"])))

    walk(tree, ())
    return out


def tree_to_examples(question: str, tree: Mapping[str, Any], answer: str | None = None) -> list[StepExample]:
    """One :class:`StepExample` per root-to-leaf path; each node's label sits on its last step."""
    out: list[StepExample] = []

    def walk(node: Mapping[str, Any], steps: list[str], labels: list[float | None]) -> None:
        children = node.get("children", [])
        if not children and steps:
            out.append(StepExample(question, list(steps), list(labels), answer, "math-aps"))
        for child in children:
            new = _split(child["text"])
            if not new:
                continue
            mc = child["mc_value"]
            walk(child, [*steps, *new], [*labels, *([None] * (len(new) - 1)), None if mc is None else float(mc)])

    walk(tree, [], [])
    return out


def sibling_pairs(question: str, tree: Mapping[str, Any]) -> list[tuple[list[str], list[str]]]:
    """``(better, worse)`` step lists of sibling nodes whose MC differ (for the pairwise objective)."""
    out: list[tuple[list[str], list[str]]] = []

    def walk(node: Mapping[str, Any], steps: list[str]) -> None:
        kids = [(c, [*steps, *_split(c["text"])]) for c in node.get("children", []) if _split(c["text"])]
        for i, (a, sa) in enumerate(kids):
            for b, sb in kids[i + 1 :]:
                if a["mc_value"] is None or b["mc_value"] is None or a["mc_value"] == b["mc_value"]:
                    continue
                out.append((sa, sb) if a["mc_value"] > b["mc_value"] else (sb, sa))
        for c, sc in kids:
            walk(c, sc)

    walk(tree, [])
    return out


def read_math_aps(path: str | Path) -> list[StepExample]:
    """Examples from a Math-APS file (flat or tree ``reasoning_steps``), one per root-to-leaf path."""
    out: list[StepExample] = []
    for rec in _jsonl(path):
        question, steps = rec["question"], rec["reasoning_steps"]
        tree = steps if isinstance(steps, dict) else flat_to_tree(question, steps)
        out.extend(tree_to_examples(question, tree, rec.get("final_answer")))
    return out


def read_math_shepherd(path: str | Path) -> list[StepExample]:
    """Examples from a Math-Shepherd file (``input`` with ``ки`` step ends, ``label`` with ``+``/``-``)."""
    out: list[StepExample] = []
    for rec in _jsonl(path):
        text, label = rec["input"], rec["label"]
        pieces = text.split(SHEPHERD_TAG)
        first = re.search(r"Step 1\s*:", pieces[0])
        question = pieces[0][: first.start()].strip() if first else ""
        steps, labels = [], []
        pos = 0
        for i, piece in enumerate(pieces[:-1]):
            body = piece[first.start():] if (i == 0 and first) else piece
            pos += len(piece)
            # The label text is the input with each tag replaced by one mark: shift by the tags before.
            mark = label[pos - i * (len(SHEPHERD_TAG) - 1)] if pos - i * (len(SHEPHERD_TAG) - 1) < len(label) else ""
            pos += len(SHEPHERD_TAG)
            steps.append(re.sub(r"^Step\s*\d+\s*:\s*", "", body.strip()))
            labels.append(1.0 if mark == "+" else 0.0 if mark == "-" else None)
        out.append(StepExample(question, steps, labels, None, "math-shepherd"))
    return out


def read_prm800k(path: str | Path) -> list[StepExample]:
    """Examples from PRM800K lines: the chosen (or human) completion of each step with its rating."""
    rating_label = {1: 1.0, 0: 1.0, -1: 0.0}
    out: list[StepExample] = []
    for rec in _jsonl(path):
        steps, labels = [], []
        for step in rec["label"]["steps"]:
            chosen = step.get("chosen_completion")
            comp = step["completions"][chosen] if chosen is not None else step.get("human_completion")
            if comp is None:
                break
            steps.append(comp["text"])
            rating = comp.get("rating")
            labels.append(rating_label.get(rating) if rating is not None else None)
        q = rec["question"]
        out.append(StepExample(q["problem"], steps, labels, q.get("ground_truth_answer"), "prm800k"))
    return out


def to_math_shepherd(ex: StepExample, task: str = "MATH") -> dict[str, str]:
    """A Math-Shepherd line (hard labels: ``+`` iff the soft label > 0); unlabelled steps are refused."""
    if any(lab is None for lab in ex.labels):
        raise DataError("Math-Shepherd needs a label on every step")
    body = "\n".join(f"Step {i + 1}: {s} {SHEPHERD_TAG}" for i, s in enumerate(ex.steps))
    marks = "\n".join(f"Step {i + 1}: {s} {'+' if (lab or 0) > 0 else '-'}"
                      for i, (s, lab) in enumerate(zip(ex.steps, ex.labels, strict=True)))
    return {"input": f"{ex.question} {body}", "label": f"{ex.question} {marks}", "task": task}


def to_prm800k(ex: StepExample) -> dict[str, Any]:
    """A PRM800K-style line: one completion per step, rated 1 (label > 0), −1 (label 0) or ``None``."""
    steps = []
    for s, lab in zip(ex.steps, ex.labels, strict=True):
        rating = None if lab is None else (1 if lab > 0 else -1)
        steps.append({"completions": [{"text": s, "rating": rating, "flagged": None}],
                      "human_completion": None, "chosen_completion": 0})
    return {"question": {"problem": ex.question, "ground_truth_answer": ex.answer},
            "label": {"steps": steps, "total_time": 0, "finish_reason": "solution"}}


def _jsonl(path: str | Path) -> Iterable[dict[str, Any]]:
    from llmlab.core.jsonl import read_jsonl

    for _, rec in read_jsonl(Path(path), what="PRM data file"):
        yield rec


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


LLM_PRM_PROMPT = (
    "You are grading a solution one step at a time.\n\n"
    "Question:\n{question}\n\n"
    "Solution:\n{steps}\n\n"
    "For each step, judge whether it is correct given the question and the steps before it. Reply with one "
    'line per step, "Step <i>: <p>", where <p> is the probability in [0, 1] that step <i> is correct.'
)
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


# -- PRM-weighted self-consistency ---------------------------------------------------------------------

Reduce = Literal["min", "last", "product"]
Vote = Literal["weighted", "majority", "best_of_n"]


def reduce_steps(scores: Sequence[float], how: Reduce) -> float:
    """A solution's score from its step scores (an empty solution scores 0).

    Example:
        >>> reduce_steps([0.9, 0.5, 0.8], "min"), reduce_steps([0.9, 0.5, 0.8], "last")
        (0.5, 0.8)
    """
    if not scores:
        return 0.0
    if how == "min":
        return min(scores)
    if how == "last":
        return scores[-1]
    return math.prod(scores)


def weighted_vote(answers: Sequence[str | None], weights: Sequence[float]) -> tuple[str | None, dict[str, float]]:
    """The answer with the largest total weight (first seen wins ties; ``None`` answers never vote).

    Example:
        >>> weighted_vote(["a", "b", "b"], [0.9, 0.3, 0.4])
        ('a', {'a': 0.9, 'b': 0.7})
    """
    totals: dict[str, float] = {}
    for a, w in zip(answers, weights, strict=True):
        if a is not None:
            totals[a] = totals.get(a, 0.0) + w
    if not totals:
        return None, {}
    return max(totals, key=lambda a: totals[a]), totals


def default_extract(text: str) -> str | None:
    r"""A final answer for voting: the MATH voting key (:func:`canonical_math_final`), else the last number."""
    found = canonical_math_final(text)
    if found is not None:
        return found
    value = last_number(text)
    return canonical_number(value) if value is not None else None


class PRMWeightedSCConfig(LabConfig):
    """Options of PRM-weighted self-consistency.

    Args:
        n: Solutions sampled.
        temperature: Sampling temperature.
        max_tokens: Completion budget per solution.
        reduce: Step scores → solution score: ``min``, ``last`` or ``product``.
        vote: The returned answer: ``weighted`` (PRM-weighted vote), ``majority`` (plain SC) or
            ``best_of_n`` (the answer of the highest-scoring solution). All three are in the trace.
        prm: ``llm`` (the ``prm`` role graded by :class:`LLMPRM`), ``head:<file>`` (a saved
            :class:`HFPRMHead`), or ``py:<module:attr>`` (a PRM object or a callable for :class:`FunctionPRM`).
        concurrency: Most samples or PRM calls in flight (``None``: all).
    """

    n: int = Field(default=8, ge=1)
    temperature: float = Field(default=0.7, ge=0.0)
    max_tokens: int | None = Field(default=1024, ge=1)
    reduce: Reduce = "min"
    vote: Vote = "weighted"
    prm: str = "llm"
    concurrency: int | None = Field(default=None, ge=1)


class PRMWeightedSC(Method):
    r"""Sample N solutions, score them with a PRM, and vote with the PRM scores as weights.

    Example:
        >>> from llmlab.backends.mock import MockBackend
        >>> from llmlab.core.concurrency import run_sync
        >>> m = PRMWeightedSC({"n": 3}, prm=FunctionPRM(lambda q, s: [0.1 if "bad" in x else 0.9 for x in s]))
        >>> replies = ["bad\n\n\\boxed{1}", "bad\n\n\\boxed{1}", "good\n\n\\boxed{2}"]
        >>> run_sync(m.solve(Query.from_text("q"), Roles(Model(MockBackend(replies))))).answer
        '2'
    """

    name = "prm_weighted_sc"
    Config = PRMWeightedSCConfig

    def __init__(
        self, config: PRMWeightedSCConfig | Mapping[str, Any] | None = None, *, prm: PRM | None = None
    ) -> None:
        super().__init__(config)
        self._prm = prm

    @property
    def cfg(self) -> PRMWeightedSCConfig:
        assert isinstance(self.config, PRMWeightedSCConfig)
        return self.config

    def _resolve_prm(self, roles: Roles) -> PRM:
        if self._prm is not None:
            return self._prm
        spec = self.cfg.prm
        if spec == "llm":
            return LLMPRM(roles["prm"])
        if spec.startswith("head:"):
            return HFPRMHead.load_head(spec[5:])
        if spec.startswith("py:"):
            import importlib

            mod, _, attr = spec[3:].partition(":")
            try:
                obj = getattr(importlib.import_module(mod), attr)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(f"prm '{spec}': cannot load ({exc})") from None
            return obj if hasattr(obj, "score_steps") else FunctionPRM(obj)
        raise ConfigError(f"prm '{spec}' not understood: use llm, head:<file> or py:<module:attr>")

    async def _sample(self, query: Query, model: Model) -> list[str]:
        cfg = self.cfg
        base = GenerateRequest(messages=query.messages, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                               sample_index=int(query.metadata.get("sample_index", 0)) * cfg.n)
        if model.capabilities.native_n:
            return list((await model.generate(base.with_(n=cfg.n))).texts)

        def one(i: int) -> Callable[[], Awaitable[str]]:
            async def run() -> str:
                return (await model.generate(base.with_(sample_index=base.sample_index + i))).text

            return run

        return await gather([one(i) for i in range(cfg.n)], limit=cfg.concurrency)

    async def solve(self, query: Query, roles: Roles) -> Solution:
        """Sample, score every step, reduce, and vote.

        Returns:
            The chosen answer; the trace holds ``samples``, ``answers``, ``step_scores``,
            ``solution_scores``, ``weighted`` (answer → summed score), ``majority`` (answer → count) and
            the answers each vote picks (``weighted_answer``, ``majority_answer``, ``best_of_n_answer``).
        """
        roles.check_known({"prm"}, self.name)
        cfg = self.cfg
        prm = self._resolve_prm(roles)
        extract: Extractor = query.extract if query.extract is not None else default_extract
        texts = await self._sample(query, roles.default)
        answers = [extract(t) for t in texts]
        question = query.text

        def grade(t: str) -> Callable[[], Awaitable[list[float]]]:
            async def run() -> list[float]:
                return await prm.score_steps(question, _split(t))

            return run

        step_scores = await gather([grade(t) for t in texts], limit=cfg.concurrency)
        sol_scores = [reduce_steps(s, cfg.reduce) for s in step_scores]
        w_answer, w_votes = weighted_vote(answers, sol_scores)
        m_answer, m_votes = weighted_vote(answers, [1.0] * len(answers))
        ranked = [i for i in range(len(texts)) if answers[i] is not None]
        best = max(ranked, key=lambda i: sol_scores[i]) if ranked else None
        b_answer = answers[best] if best is not None else None
        chosen = {"weighted": w_answer, "majority": m_answer, "best_of_n": b_answer}[cfg.vote]
        text = next((t for t, a in zip(texts, answers, strict=True) if a == chosen and a is not None), texts[0])
        if cfg.vote == "best_of_n" and best is not None:
            text = texts[best]
        trace = {
            "samples": texts, "answers": answers, "step_scores": step_scores, "solution_scores": sol_scores,
            "weighted": w_votes, "majority": {k: int(v) for k, v in m_votes.items()},
            "weighted_answer": w_answer, "majority_answer": m_answer, "best_of_n_answer": b_answer,
            "unrated_steps": getattr(prm, "unrated", 0),
        }
        return Solution(text=text, answer=chosen, trace=trace)
