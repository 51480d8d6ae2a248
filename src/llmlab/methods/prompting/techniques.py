r"""The Prompt Report's text techniques (Schulhoff et al., 2024, arXiv 2406.06608, §2.2), one small strategy each.

Every technique cites its own paper. Prompts are the UPPER_CASE constants of
:mod:`llmlab.methods.prompting.prompts` (our wording, the papers' structure).

Deliberate simplifications (each also in ``docs/prompting.md``):

- ``rephrase_and_respond`` is the one-step RaR variant (one call); the two-step variant is not built.
- ``prompt_ensemble`` is DiVeRSe's prompt ensemble with a plain majority vote; the step-aware verifier
  of DiVeRSe is what ``prm_weighted_sc`` (:mod:`llmlab.methods.prm`) provides.
- ``self_verification`` keeps the candidates whose backward check says "correct" and votes among them
  (majority over all candidates when none passes); the paper's masked-condition re-prediction is not built.
- ``chain_of_verification`` is the "factored" CoVe variant: each verification question is answered in a
  separate call that does not see the baseline answer.
- ``knn`` exemplar selection uses a hashed bag-of-words embedding unless ``embed=py:<module:attr>`` names
  an embedding function; ``bm25`` is Okapi BM25 (k1 = 1.5, b = 0.75).
- ``program_of_thought`` runs the program with ``llmlab.sandbox.run`` (no network, resource limits,
  a wall-clock timeout); the answer is the last line it prints.
"""

from __future__ import annotations

import importlib
import json
import math
import random
import re
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llmlab.backends.base import Message
from llmlab.core.errors import ConfigError, UnsupportedFeatureError
from llmlab.methods.prompting import prompts as P
from llmlab.methods.prompting.base import Ctx, Inner, Result, last_user, run_many, technique

# -- zero-shot -------------------------------------------------------------------------------------------


@technique("role", "zero-shot", "transform", "Role prompting (Zheng et al., 2023)", "2311.10054",
           "a persona in the system message")
def role(role: str = "a helpful expert") -> Callable[[list[Message], Ctx], list[Message]]:
    def t(msgs: list[Message], ctx: Ctx) -> list[Message]:
        return [Message("system", P.ROLE_PREFIX.format(role=role)), *[m for m in msgs if m.role != "system"]]

    return t


@technique("style", "zero-shot", "transform", "Style prompting (Lu et al., 2023)", "2302.09185",
           "ask for a writing style")
def style(style: str = "concise") -> Callable[[list[Message], Ctx], list[Message]]:
    return lambda msgs, ctx: last_user(msgs, lambda q: f"{q}\n\n{P.STYLE_SUFFIX.format(style=style)}")


@technique("emotion", "zero-shot", "transform", "EmotionPrompt (Li et al., 2023)", "2307.11760",
           "append an emotional stimulus")
def emotion(stimulus: str = P.EMOTION_DEFAULT) -> Callable[[list[Message], Ctx], list[Message]]:
    return lambda msgs, ctx: last_user(msgs, lambda q: f"{q} {P.EMOTION_SUFFIX.format(stimulus=stimulus)}")


@technique("re2", "zero-shot", "transform", "Re-reading (Xu et al., 2023)", "2309.06275", "repeat the question")
def re2() -> Callable[[list[Message], Ctx], list[Message]]:
    return lambda msgs, ctx: last_user(msgs, lambda q: P.RE2_TEMPLATE.format(question=q))


@technique("rephrase_and_respond", "zero-shot", "transform", "Rephrase and Respond (Deng et al., 2023)",
           "2311.04205", "one-step RaR: rephrase, expand, then answer")
def rephrase_and_respond() -> Callable[[list[Message], Ctx], list[Message]]:
    return lambda msgs, ctx: last_user(msgs, lambda q: f"{q}\n{P.RAR_SUFFIX}")


@technique("system2_attention", "zero-shot", "solver", "System 2 Attention (Weston & Sukhbaatar, 2023)",
           "2311.11829", "regenerate the context without distractors, then answer")
def system2_attention() -> Callable[[list[Message], Ctx], Any]:
    async def s(msgs: list[Message], ctx: Ctx) -> Result:
        rewritten = await ctx.call([Message("user", P.S2A_REWRITE.format(question=msgs[-1].text))], tag="s2a.rewrite")
        text = await ctx.call(last_user(msgs, lambda q: rewritten), tag="s2a.answer")
        return Result(text, ctx.answer_of(text), {"rewritten": rewritten})

    return s


@technique("direct", "zero-shot", "solver", "Zero-shot prompting (Radford et al., 2019)", "", "one call")
def direct() -> Callable[[list[Message], Ctx], Any]:
    async def s(msgs: list[Message], ctx: Ctx) -> Result:
        text = await ctx.call(msgs, tag="answer")
        return Result(text, ctx.answer_of(text))

    return s


# -- thought generation ----------------------------------------------------------------------------------


def _inducer(text: str) -> Callable[[list[Message], Ctx], list[Message]]:
    return lambda msgs, ctx: last_user(msgs, lambda q: f"{q}\n{text}")


@technique("zero_shot_cot", "thought generation", "transform", "Zero-shot CoT (Kojima et al., 2022)", "2205.11916",
           "append a thought inducer")
def zero_shot_cot(inducer: str = P.ZERO_SHOT_COT) -> Callable[[list[Message], Ctx], list[Message]]:
    return _inducer(inducer)


@technique("plan_and_solve", "decomposition", "transform", "Plan-and-Solve (Wang et al., 2023)", "2305.04091",
           "devise a plan, then carry it out")
def plan_and_solve() -> Callable[[list[Message], Ctx], list[Message]]:
    return _inducer(P.PLAN_AND_SOLVE)


@technique("thread_of_thought", "thought generation", "transform", "Thread-of-Thought (Zhou et al., 2023)",
           "2311.08734", "walk through the context in parts")
def thread_of_thought() -> Callable[[list[Message], Ctx], list[Message]]:
    return _inducer(P.THREAD_OF_THOUGHT)


@technique("tab_cot", "thought generation", "transform", "Tab-CoT (Jin & Lu, 2023)", "2305.17812",
           "reason in a table")
def tab_cot() -> Callable[[list[Message], Ctx], list[Message]]:
    return _inducer(P.TAB_COT)


@technique("step_back", "thought generation", "solver", "Step-Back prompting (Zheng et al., 2023)", "2310.06117",
           "ask the general principle first, then answer with it")
def step_back() -> Callable[[list[Message], Ctx], Any]:
    async def s(msgs: list[Message], ctx: Ctx) -> Result:
        principles = await ctx.call([Message("user", P.STEP_BACK_QUESTION.format(question=ctx.question))],
                                    tag="step_back.abstract")
        final = last_user(msgs, lambda q: P.STEP_BACK_ANSWER.format(question=q, principles=principles))
        text = await ctx.call(final, tag="step_back.answer")
        return Result(text, ctx.answer_of(text), {"principles": principles})

    return s


# -- few-shot and exemplar selection ---------------------------------------------------------------------

_WORD_RE = re.compile(r"\w+")


def _tokens(text: str) -> list[str]:
    return [w.lower() for w in _WORD_RE.findall(text)]


def hashed_embedding(text: str, dim: int = 256) -> list[float]:
    """A bag-of-words vector hashed into ``dim`` buckets (deterministic), L2-normalised."""
    import hashlib

    vec = [0.0] * dim
    for w in _tokens(text):
        vec[int(hashlib.md5(w.encode()).hexdigest(), 16) % dim] += 1.0
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm else vec


def bm25_scores(query: str, docs: Sequence[str], k1: float = 1.5, b: float = 0.75) -> list[float]:
    """Okapi BM25 of ``query`` against each of ``docs``."""
    toks = [_tokens(d) for d in docs]
    n = len(toks)
    avg = sum(len(t) for t in toks) / n if n else 0.0
    df = Counter(w for t in toks for w in set(t))
    out = []
    for t in toks:
        tf = Counter(t)
        score = 0.0
        for w in set(_tokens(query)):
            if w not in tf:
                continue
            idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
            score += idf * tf[w] * (k1 + 1) / (tf[w] + k1 * (1 - b + b * len(t) / (avg or 1.0)))
        out.append(score)
    return out


def _load_pool(pool: str | None, ctx: Ctx) -> list[dict[str, Any]]:
    if pool is not None:
        path = Path(pool)
        if not path.exists():
            raise ConfigError(f"few-shot pool file not found: {pool}")
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    found = ctx.metadata.get("exemplars")
    if not found:
        raise ConfigError("few-shot techniques need exemplars: Query.metadata['exemplars'] or pool=<file.jsonl>")
    return list(found)


def select_exemplars(question: str, pool: Sequence[Mapping[str, Any]], k: int, select: str = "first",
                     order: str = "given", seed: int = 0, embed: str | None = None) -> list[Mapping[str, Any]]:
    """Pick ``k`` exemplars for ``question`` and order them.

    Args:
        question: The question the exemplars are for (an exemplar equal to it is never picked).
        pool: Candidates, each a mapping with ``input`` (and ``output``, ``rationale``, ... as templates need).
        k: How many to pick.
        select: ``first``, ``random`` (seeded), ``knn`` (cosine of embeddings) or ``bm25``.
        order: ``given`` (selection order), ``similar_last`` (the most similar next to the question) or
            ``reverse``.
        seed: Seed of ``random`` selection.
        embed: ``py:<module:attr>`` embedding function for ``knn`` (default: hashed bag of words).

    Example:
        >>> pool = [{"input": "cats purr"}, {"input": "dogs bark loudly"}, {"input": "cats sleep"}]
        >>> [e["input"] for e in select_exemplars("why do cats purr", pool, 2, select="bm25")]
        ['cats purr', 'cats sleep']
    """
    cands = [e for e in pool if str(e["input"]).strip() != question.strip()]
    if select == "first":
        chosen = cands[:k]
        sims = None
    elif select == "random":
        chosen = random.Random(seed).sample(cands, min(k, len(cands)))
        sims = None
    elif select in ("knn", "bm25"):
        if select == "bm25":
            scores = bm25_scores(question, [str(e["input"]) for e in cands])
        else:
            fn = _embedder(embed)
            q = fn(question)
            scores = [sum(a * b for a, b in zip(q, fn(str(e["input"])), strict=True)) for e in cands]
        ranked = sorted(range(len(cands)), key=lambda i: (-scores[i], i))[:k]
        chosen = [cands[i] for i in ranked]
        sims = [scores[i] for i in ranked]
    else:
        raise ConfigError(f"few-shot select '{select}' unknown: first, random, knn or bm25")
    if order == "reverse" or (order == "similar_last" and sims is not None):
        chosen = list(reversed(chosen))
    elif order not in ("given", "similar_last"):
        raise ConfigError(f"few-shot order '{order}' unknown: given, similar_last or reverse")
    return chosen


def _embedder(spec: str | None) -> Callable[[str], Sequence[float]]:
    if spec is None:
        return hashed_embedding
    if not spec.startswith("py:"):
        raise ConfigError(f"embed '{spec}': use py:<module:attr>")
    mod, _, attr = spec[3:].partition(":")
    try:
        fn = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"embed '{spec}': cannot load ({exc})") from None
    return fn


def _few_shot(template: str, k: int, select: str, order: str, seed: int, pool: str | None,
              embed: str | None) -> Callable[[list[Message], Ctx], list[Message]]:
    def t(msgs: list[Message], ctx: Ctx) -> list[Message]:
        chosen = select_exemplars(ctx.question, _load_pool(pool, ctx), k, select, order, seed, embed)
        try:
            shots = "\n\n".join(template.format(**e) for e in chosen)
        except KeyError as exc:
            raise ConfigError(f"an exemplar lacks the field {exc} this few-shot technique needs") from None
        return last_user(msgs, lambda q: P.FEW_SHOT_QUERY.format(exemplars=shots, question=q))

    return t


@technique("few_shot", "few-shot", "transform", "Few-shot prompting (Brown et al., 2020); KNN selection "
           "(Liu et al., 2021)", "2005.14165", "k exemplars (first/random/knn/bm25), ordered")
def few_shot(k: int = 5, select: str = "first", order: str = "given", seed: int = 0, pool: str | None = None,
             embed: str | None = None) -> Callable[[list[Message], Ctx], list[Message]]:
    return _few_shot(P.EXEMPLAR, k, select, order, seed, pool, embed)


@technique("few_shot_cot", "thought generation", "transform", "Chain-of-Thought (Wei et al., 2022)", "2201.11903",
           "exemplars with rationales")
def few_shot_cot(k: int = 5, select: str = "first", order: str = "given", seed: int = 0, pool: str | None = None,
                 embed: str | None = None) -> Callable[[list[Message], Ctx], list[Message]]:
    return _few_shot(P.EXEMPLAR_COT, k, select, order, seed, pool, embed)


@technique("contrastive_cot", "thought generation", "transform", "Contrastive CoT (Chia et al., 2023)",
           "2311.09277", "exemplars with a right and a wrong rationale")
def contrastive_cot(k: int = 2, select: str = "first", order: str = "given", seed: int = 0, pool: str | None = None,
                    embed: str | None = None) -> Callable[[list[Message], Ctx], list[Message]]:
    return _few_shot(P.EXEMPLAR_CONTRASTIVE, k, select, order, seed, pool, embed)


# -- decomposition ---------------------------------------------------------------------------------------

_NUMBERED_RE = re.compile(r"^\s*(\d+)[.)]\s*(.+?)\s*$", re.M)


def numbered_lines(text: str) -> list[str]:
    """The items of a numbered list (``1. ...``, ``2) ...``)."""
    return [m.group(2) for m in _NUMBERED_RE.finditer(text)]


@technique("least_to_most", "decomposition", "solver", "Least-to-Most (Zhou et al., 2022)", "2205.10625",
           "decompose, then solve subquestions in order")
def least_to_most(max_subquestions: int = 8) -> Callable[[list[Message], Ctx], Any]:
    async def s(msgs: list[Message], ctx: Ctx) -> Result:
        plan = await ctx.call([Message("user", P.LTM_DECOMPOSE.format(question=ctx.question))], tag="ltm.decompose")
        subs = numbered_lines(plan)[:max_subquestions] or [ctx.question]
        solved, text = "", ""
        for i, sq in enumerate(subs):  # sequential: each answer is context for the next
            prompt = P.LTM_SOLVE.format(question=msgs[-1].text, solved=solved, subquestion=sq)
            text = await ctx.call(last_user(msgs, _const(prompt)), tag=f"ltm.solve{i + 1}")
            solved += f"Subquestion: {sq}\nAnswer: {text}\n\n"
        return Result(text, ctx.answer_of(text), {"subquestions": subs})

    return s


def _const(text: str) -> Callable[[str], str]:
    return lambda _q: text


_CODE_RE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)


@technique("program_of_thought", "decomposition", "solver", "Program of Thoughts (Chen et al., 2022)", "2211.12588",
           "write a program, run it in the sandbox, answer its output")
def program_of_thought(timeout: float = 10.0) -> Callable[[list[Message], Ctx], Any]:
    async def s(msgs: list[Message], ctx: Ctx) -> Result:
        reply = await ctx.call(last_user(msgs, lambda q: P.POT_PROMPT.format(question=q)), tag="pot.program")
        m = _CODE_RE.search(reply)
        code = m.group(1) if m is not None else reply
        out, info = await _run_code(code, timeout)
        trace = {"code": code, **info}
        answer = ctx.answer_of(out) if out is not None else None
        return Result(out if out is not None else reply, answer, trace)

    return s


_DECOMP_LINE_RE = re.compile(r"^\s*(?:\d+[.)]\s*)?(qa|code)\s*:\s*(.+?)\s*$", re.I | re.M)


async def _run_code(program: str, timeout: float) -> tuple[str | None, dict[str, Any]]:
    try:
        sandbox = importlib.import_module("llmlab.sandbox")
    except ImportError:
        raise UnsupportedFeatureError(
            "program_of_thought and decomposed_prompting's code handler need the code sandbox (llmlab.sandbox), "
            "which this build does not have"
        ) from None
    run = await sandbox.run({"main.py": program}, [sys.executable, "main.py"], timeout=timeout)
    lines = [x for x in str(run.stdout).splitlines() if x.strip()]
    out = lines[-1].strip() if lines and run.exit_code == 0 and not run.timed_out else None
    return out, {"exit_code": run.exit_code, "stdout": run.stdout, "stderr": run.stderr, "timed_out": run.timed_out}


@technique("decomposed_prompting", "decomposition", "solver", "Decomposed Prompting (Khot et al., 2022)",
           "2210.02406", "a decomposer writes sub-task calls; a handler runs each (qa: LLM, code: sandbox)")
def decomposed_prompting(max_steps: int = 8, timeout: float = 10.0) -> Callable[[list[Message], Ctx], Any]:
    async def s(msgs: list[Message], ctx: Ctx) -> Result:
        plan = await ctx.call([Message("user", P.DECOMP_PLAN.format(question=ctx.question))], tag="decomp.plan")
        steps = [(m.group(1).lower(), m.group(2)) for m in _DECOMP_LINE_RE.finditer(plan)][:max_steps]
        if not steps:
            text = await ctx.call(msgs, tag="decomp.fallback")
            return Result(text, ctx.answer_of(text), {"steps": []})
        results: list[str] = []
        trace: list[dict[str, Any]] = []
        for i, (handler, sub) in enumerate(steps):  # in order: a step may use #k of earlier steps
            for k in range(len(results), 0, -1):
                sub = sub.replace(f"#{k}", results[k - 1])
            if handler == "qa":
                out = await ctx.call([Message("user", P.DECOMP_QA.format(subquestion=sub))], tag=f"decomp.qa{i + 1}")
                info: dict[str, Any] = {}
            else:
                reply = await ctx.call([Message("user", P.POT_PROMPT.format(question=sub))], tag=f"decomp.code{i + 1}")
                m = _CODE_RE.search(reply)
                ran, info = await _run_code(m.group(1) if m is not None else reply, timeout)
                out = ran if ran is not None else ""
            results.append(out.strip())
            trace.append({"handler": handler, "subquestion": sub, "result": out.strip(), **info})
        text = results[-1]
        return Result(text, ctx.answer_of(text), {"steps": trace})

    return s


@technique("skeleton_of_thought", "decomposition", "solver", "Skeleton-of-Thought (Ning et al., 2023)",
           "2307.15337", "outline, then expand every point in parallel")
def skeleton_of_thought(max_points: int = 10) -> Callable[[list[Message], Ctx], Any]:
    async def s(msgs: list[Message], ctx: Ctx) -> Result:
        skeleton = await ctx.call([Message("user", P.SOT_SKELETON.format(question=ctx.question))], tag="sot.skeleton")
        points = numbered_lines(skeleton)[:max_points]
        if not points:
            text = await ctx.call(msgs, tag="sot.fallback")
            return Result(text, ctx.answer_of(text), {"points": []})

        def expand(i: int, point: str) -> Callable[[], Any]:
            prompt = P.SOT_EXPAND.format(question=ctx.question, skeleton=skeleton, index=i + 1, point=point)
            return lambda: ctx.call([Message("user", prompt)], tag=f"sot.expand{i + 1}")

        bodies = await run_many([expand(i, p) for i, p in enumerate(points)])
        text = "\n".join(f"{i + 1}. {p} {b.strip()}" for i, (p, b) in enumerate(zip(points, bodies, strict=True)))
        return Result(text, ctx.answer_of(text), {"points": points})

    return s


# -- ensembling ------------------------------------------------------------------------------------------


def vote(answers: Sequence[str | None]) -> str | None:
    """Majority answer; ties go to the first seen; ``None`` answers do not vote."""
    counts = Counter(a for a in answers if a is not None)
    return max(counts, key=lambda a: counts[a]) if counts else None


async def _samples(inner: Inner, ctx: Ctx, n: int) -> list[Result]:
    def one(i: int) -> Callable[[], Awaitable[Result]]:
        return lambda: inner(ctx.sample(i, n))

    return await run_many([one(i) for i in range(n)])


def _pick(results: Sequence[Result], answer: str | None) -> Result:
    return next((r for r in results if answer is not None and r.answer == answer), results[0])


@technique("self_consistency", "ensembling", "wrapper", "Self-Consistency (Wang et al., 2022)", "2203.11171",
           "n sampled runs, majority answer")
def self_consistency(n: int = 5) -> Callable[[Inner, Ctx], Any]:
    async def w(inner: Inner, ctx: Ctx) -> Result:
        results = await _samples(inner, ctx, n)
        answers = [r.answer for r in results]
        winner = vote(answers)
        best = _pick(results, winner)
        return Result(best.text, winner, {"answers": answers, "votes": dict(Counter(a for a in answers if a))})

    return w


_USC_RE = re.compile(r"Response\s*(\d+)", re.I)


@technique("universal_self_consistency", "ensembling", "wrapper", "Universal Self-Consistency (Chen et al., 2023)",
           "2311.17311", "n sampled runs, the model picks the most consistent")
def universal_self_consistency(n: int = 5) -> Callable[[Inner, Ctx], Any]:
    async def w(inner: Inner, ctx: Ctx) -> Result:
        results = await _samples(inner, ctx, n)
        listing = "\n\n".join(f"Response {i + 1}:\n{r.text}" for i, r in enumerate(results))
        reply = await ctx.call([Message("user", P.USC_SELECT.format(question=ctx.question, responses=listing))],
                               tag="usc.select")
        m = _USC_RE.search(reply)
        idx = int(m.group(1)) - 1 if m is not None and 0 < int(m.group(1)) <= n else 0
        return Result(results[idx].text, results[idx].answer, {"selected": idx, "answers": [r.answer for r in results]})

    return w


def _suffix(ind: str) -> Callable[[str], str]:
    return lambda q: f"{q}\n{ind}"


def _member(sub: Ctx, variant: list[Message]) -> Callable[[], Awaitable[str]]:
    return lambda: sub.call(variant, tag="ensemble.member")


@technique("prompt_ensemble", "ensembling", "solver", "DiVeRSe prompt ensemble (Li et al., 2022)", "2206.02336",
           "several prompt variants, majority answer")
def prompt_ensemble(inducers: Sequence[str] = (P.ZERO_SHOT_COT, P.PLAN_AND_SOLVE, P.THREAD_OF_THOUGHT),
                    n_per: int = 1) -> Callable[[list[Message], Ctx], Any]:
    async def s(msgs: list[Message], ctx: Ctx) -> Result:
        jobs = []
        total = len(inducers) * n_per
        for j, ind in enumerate(inducers):
            for r in range(n_per):
                sub = ctx.sample(j * n_per + r, total)
                variant = last_user(msgs, _suffix(ind))
                jobs.append(_member(sub, variant))
        texts = await run_many(jobs)
        answers = [ctx.answer_of(t) for t in texts]
        winner = vote(answers)
        text = next((t for t, a in zip(texts, answers, strict=True) if a == winner), texts[0])
        return Result(text, winner, {"answers": answers})

    return s


def _entropy(dist: Mapping[str, float]) -> float:
    return -sum(p * math.log2(p) for p in dist.values() if p > 0)


def mutual_information(per_input: Sequence[Sequence[str | None]]) -> float:
    """I(X; Y) = H(Y) − H(Y | X) from sampled answers per input (bits; inputs weighted equally).

    Example:
        >>> mutual_information([["a", "a"], ["b", "b"]]), mutual_information([["a", "b"], ["a", "b"]])
        (1.0, 0.0)
    """
    conds = []
    for answers in per_input:
        got = [a if a is not None else "<none>" for a in answers]
        conds.append({a: c / len(got) for a, c in Counter(got).items()} if got else {})
    conds = [c for c in conds if c]
    if not conds:
        return 0.0
    marginal: dict[str, float] = {}
    for c in conds:
        for a, p in c.items():
            marginal[a] = marginal.get(a, 0.0) + p / len(conds)
    return _entropy(marginal) - sum(_entropy(c) for c in conds) / len(conds)


@technique("max_mutual_information", "ensembling", "solver", "Max Mutual Information (Sorensen et al., 2022)",
           "2203.11364", "pick the template whose answers carry the most information about the inputs")
def max_mutual_information(templates: Sequence[str] = ("{question}", f"{{question}}\n{P.ZERO_SHOT_COT}"),
                           calibration: Sequence[str] | None = None, n: int = 4) -> Callable[[list[Message], Ctx], Any]:
    """Template selection by mutual information, estimated from ``n`` samples per calibration input.

    The calibration inputs are ``calibration`` or ``Query.metadata["unlabeled"]``; the choice is made once
    per technique instance and reused. Sorensen et al. read P(y | x) from logprobs; sampling estimates it
    for any backend.
    """
    if any("{question}" not in t for t in templates):
        raise ConfigError("max_mutual_information: every template needs a {question} placeholder")
    chosen: dict[str, Any] = {}

    async def s(msgs: list[Message], ctx: Ctx) -> Result:
        if "index" not in chosen:
            inputs = list(calibration) if calibration is not None else list(ctx.metadata.get("unlabeled", []))
            if not inputs:
                raise ConfigError("max_mutual_information needs calibration inputs (calibration=[...] or "
                                  "Query.metadata['unlabeled'])")

            def probe(t: int, x: int, j: int) -> Callable[[], Awaitable[str]]:
                sub = ctx.sample(j, n)
                text = templates[t].format(question=inputs[x])
                return lambda: sub.call([Message("user", text)], tag=f"mmi.t{t}")

            jobs = [probe(t, x, j) for t in range(len(templates)) for x in range(len(inputs)) for j in range(n)]
            texts = await run_many(jobs)
            answers = [ctx.answer_of(tx) for tx in texts]
            per = len(inputs) * n
            scores = []
            for t in range(len(templates)):
                block = answers[t * per : (t + 1) * per]
                scores.append(mutual_information([block[x * n : (x + 1) * n] for x in range(len(inputs))]))
            chosen["index"] = max(range(len(templates)), key=lambda t: (scores[t], -t))
            chosen["scores"] = scores
        template = templates[chosen["index"]]
        text = await ctx.call(last_user(msgs, lambda q: template.format(question=q)), tag="mmi.answer")
        return Result(text, ctx.answer_of(text), {"template": chosen["index"], "mi": chosen["scores"]})

    return s


# -- self-criticism --------------------------------------------------------------------------------------


@technique("self_refine", "self-criticism", "wrapper", "Self-Refine (Madaan et al., 2023)", "2303.17651",
           "feedback then revise, until STOP or iters")
def self_refine(iters: int = 2, stop: str = "STOP") -> Callable[[Inner, Ctx], Any]:
    async def w(inner: Inner, ctx: Ctx) -> Result:
        res = await inner(ctx)
        history = []
        for i in range(iters):
            fb = await ctx.call([Message("user", P.REFINE_FEEDBACK.format(question=ctx.question, answer=res.text))],
                                tag=f"refine.feedback{i + 1}")
            history.append(fb)
            if stop in fb:
                break
            text = await ctx.call(
                [Message("user", P.REFINE_REVISE.format(question=ctx.question, answer=res.text, feedback=fb))],
                tag=f"refine.revise{i + 1}",
            )
            res = Result(text, ctx.answer_of(text), res.trace)
        return Result(res.text, res.answer, {**res.trace, "feedback": history})

    return w


@technique("self_verification", "self-criticism", "wrapper", "Self-Verification (Weng et al., 2022)", "2212.09561",
           "n candidates, each checked backwards; vote among the verified")
def self_verification(n: int = 3) -> Callable[[Inner, Ctx], Any]:
    async def w(inner: Inner, ctx: Ctx) -> Result:
        results = await _samples(inner, ctx, n)

        def check(r: Result) -> Callable[[], Any]:
            prompt = P.SELF_VERIFY.format(question=ctx.question, answer=r.answer if r.answer is not None else r.text)
            return lambda: ctx.call([Message("user", prompt)], tag="verify.check")

        verdicts = await run_many([check(r) for r in results])
        ok = [bool(re.search(r"verdict:\s*correct", v, re.I)) for v in verdicts]
        passed = [r.answer for r, good in zip(results, ok, strict=True) if good]
        winner = vote(passed) if passed else vote([r.answer for r in results])
        return Result(_pick(results, winner).text, winner, {"answers": [r.answer for r in results], "verified": ok})

    return w


@technique("chain_of_verification", "self-criticism", "wrapper", "Chain-of-Verification (Dhuliawala et al., 2023)",
           "2309.11495", "plan verification questions, answer them apart, revise")
def chain_of_verification(max_questions: int = 5) -> Callable[[Inner, Ctx], Any]:
    async def w(inner: Inner, ctx: Ctx) -> Result:
        base = await inner(ctx)
        plan = await ctx.call([Message("user", P.COVE_PLAN.format(question=ctx.question, answer=base.text))],
                              tag="cove.plan")
        vqs = [q.strip().lstrip("-*0123456789.) ").strip() for q in plan.splitlines() if q.strip()][:max_questions]
        def verify(q: str) -> Callable[[], Awaitable[str]]:
            return lambda: ctx.call([Message("user", P.COVE_VERIFY.format(vq=q))], tag="cove.verify")

        answers = await run_many([verify(q) for q in vqs])
        qa = "\n".join(f"Q: {q}\nA: {a}" for q, a in zip(vqs, answers, strict=True))
        text = await ctx.call([Message("user", P.COVE_REVISE.format(question=ctx.question, answer=base.text, qa=qa))],
                              tag="cove.revise")
        return Result(text, ctx.answer_of(text), {"baseline": base.text, "verification": list(zip(vqs, answers,
                                                                                                   strict=True))})

    return w


@technique("self_calibration", "self-criticism", "wrapper", "Self-Calibration (Kadavath et al., 2022)", "2207.05221",
           "ask whether the answer is correct; confidence in the trace")
def self_calibration() -> Callable[[Inner, Ctx], Any]:
    async def w(inner: Inner, ctx: Ctx) -> Result:
        res = await inner(ctx)
        reply = await ctx.call([Message("user", P.SELF_CALIBRATE.format(
            question=ctx.question, answer=res.answer if res.answer is not None else res.text))], tag="calibrate")
        said_true = bool(re.search(r"\(A\)|\bTrue\b", reply)) and not re.search(r"\(B\)|\bFalse\b", reply)
        return Result(res.text, res.answer, {**res.trace, "p_true": 1.0 if said_true else 0.0})

    return w
