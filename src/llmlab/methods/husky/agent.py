r"""The Husky loop: an action generator picks the next step and its tool, a tool expert executes it, until finish.

Paper: "Husky: A Unified, Open-Source Language Agent for Multi-Step Reasoning", Kim, Paranjape, Khot,
Hajishirzi, arXiv 2406.06469 (§3: action generation and tool execution; Table of tools). Official code:
agent-husky/Husky-v1 ``husky/run_husky.py`` (read for the loop, the tool vocabulary, the code prefix, the
output normalisation and the stopping rule; no code copied).

One question, as the paper and the official script do it:

1. **Action** (role ``action``): the question and the solution history go into the action prompt; the reply
   is ``[tool] step`` (:func:`parse_action`), or ``[finish] ...`` whose answer is the text after the last
   "The answer is" (:func:`extract_answer`).
2. **Execution** by the tool's expert, then the history grows by ``Step: <step>\nOutput: <output>``
   (:func:`history_text`; ``None`` while empty):

   - ``[code]`` (role ``code``): the expert writes Python for the current step only; it runs in
     :func:`llmlab.sandbox.run` after the official import prefix, with a 10 s wall clock; stdout is normalised as
     the official ``simplify_answer`` does for text (a number is rounded to 4 places: ``4`` → ``4.0``); the
     writer (role ``commonsense``) rewrites it as a sentence.
   - ``[math]`` (role ``math``): step-by-step reasoning for the sub-question.
   - ``[search]`` (role ``search`` writes the query): the retriever's top result (:mod:`.search`), rewritten
     by the writer. ``[match_info]``: the same query writer, a ``kind="match_info"`` lookup, no rewrite.
   - ``[commonsense]`` (role ``commonsense``): the few-shot reasoner.

   Math and commonsense outputs are cut at the official cut points (``\nStep:``, ``\nCurrent step:``,
   ``\nThe answer is``, ``\nNext solution``); every call stops at ``---``.
3. Repeat until ``[finish]`` or the step cap: at most ``max_steps`` tool executions and ``max_steps + 1`` action
   calls (the official loop: the last action is only read for a ``[finish]``). The cap defaults to the official
   per-dataset value a task puts in ``Query.metadata["max_steps"]`` (10 for GSM8K/MATH, 5 for the QA sets),
   else the script default 6.

Calls per executed step: 1 action + 1 expert (+ 1 writer for code and search, none when the tool failed).
Every call is in :attr:`Solution.calls` and every step (tool, step, code, exec result, query, search result,
output, which calls it made) in ``trace["steps"]``. Questions of a batch run concurrently
(:meth:`Husky.solve_batch`; ``llmlab eval --concurrency``), each in its own task, never through files.

Any role not given falls back to ``--model`` (a "prompt-only Husky" with one general instruct model); Husky's
own fine-tuned experts are served models like any other (``--role action=openai:...``).

Official bugs not copied (spec §12.2, and two more found while reading):

- ``TOOL_LIST`` omits ``match_info``, so every ``[match_info]`` action is coerced to ``[commonsense]``
  although the action prompt offers it: here ``match_info`` is a tool (query writer + a ``match_info``
  lookup; SerpAPI's game spotlight through :class:`~.search.SerpAPISearch`).
- At the cap the official answer is the last code-execution output if the last tool was code, **else the
  empty string**; worse, a question that answers ``[finish]`` on the last action call gets that answer
  overwritten with ``""`` (the cap pass reads the indices from before that call). Here a ``[finish]`` always
  counts, and a capped question answers with the last step's result (``on_cap="last_output"``);
  ``on_cap="official"`` keeps the official rule (for comparisons) and ``on_cap="empty"`` answers ``""``.
- Six processes synchronised by per-question JSON files, pickles and status files polled every second with
  a 10 h timeout: here one async loop per question in one process.
- ``load_data`` is called with arguments it does not accept (a TypeError at start-up); the search stage calls
  ``GoogleSearchAPI.search(..., use_match_info=...)``, a keyword it does not accept either (a TypeError on the
  first search). Not applicable here: tasks load data (:mod:`llmlab.tasks.husky_eval`) and retrievers take
  ``kind``.
- The reasoner's few-shot arithmetic typo ("25/1000 * 28 = 7"): our examples are our own (see
  :mod:`.prompts`).

Deliberate deviations:

- A code run is failed by its exit status (or timeout), not by "anything on stderr" (a warning voided the
  official output); a failed run, one that prints nothing, a failed search and an empty expert reply are shown
  to the action generator as ``This step has failed: <why>.`` (the official code would hand the writer an
  empty output and record whatever it rewrote). A fenced ```` ```python ```` block in the code reply is
  unwrapped before it runs.
- Tool names are matched case-insensitively and exactly (official: case-sensitive, and substring tests such as
  ``"code" in tool``); leading whitespace before ``[tool]`` is ignored. An unparseable action becomes
  ``[commonsense] Solve the question using the given information.`` and an unknown tool becomes
  ``[commonsense]`` with its step kept, as in the official code; both are marked ``fallback`` in the trace.
- The search query is unquoted (a model often wraps it in quotes); search is a local BM25 index by default
  (``search=auto``: BM25 when ``documents`` is given, else no search and every search step fails with the
  reason). SerpAPI needs ``search=serpapi`` and ``SERPAPI_API_KEY``.
- Prompts are chat user messages (no Tulu/Mistral raw wrappers); a query's system message is not sent.
- Decoding as the official scripts: temperature 0 for action, code, math and query; 0.3 for the reasoner and
  the writers; 128 new tokens (action, query), 512 (code, math), 256 (reasoner, writers).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import Field

from llmlab.backends.base import GenerateRequest, Message
from llmlab.backends.model import Model, recording
from llmlab.core.concurrency import gather
from llmlab.core.config import LabConfig
from llmlab.core.contracts import Query, Roles, Solution
from llmlab.core.errors import ConfigError, DataError
from llmlab.methods.base import Method
from llmlab.methods.husky import prompts as P
from llmlab.methods.husky.search import BM25Retriever, CachedRetriever, NoSearch, Retriever, SerpAPISearch

ROLES = frozenset({"action", "code", "math", "search", "commonsense"})
DEFAULT_MAX_STEPS = 6  # the official script's default --max_iterations

_ACTION_RE = re.compile(r"\[(?P<tool>\w+)\]\s*(?P<step>.+)")
_FENCE_RE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.S)


@dataclass(frozen=True)
class Action:
    """A parsed action: the tool, the step (for ``finish``: the answer text), and why it fell back, if it did."""

    tool: str
    step: str
    fallback: str | None = None


def parse_action(text: str) -> Action:
    """Parse ``[tool] step``; garbage → commonsense fallback, an unknown tool → commonsense with its step.

    Example:
        >>> parse_action("[code] Compute 12 * 34.")
        Action(tool='code', step='Compute 12 * 34.', fallback=None)
        >>> parse_action("I think we are done").tool
        'commonsense'
        >>> parse_action("[finish] The answer is 42.")
        Action(tool='finish', step='The answer is 42.', fallback=None)
    """
    m = _ACTION_RE.match(text.strip())
    if m is None:
        return Action("commonsense", P.FALLBACK_STEP, "unparseable action")
    tool, step = m.group("tool").lower(), m.group("step").strip()
    if tool not in P.TOOLS:
        return Action("commonsense", step, f"unknown tool [{m.group('tool')}]")
    return Action(tool, step)


def extract_answer(step: str) -> str:
    """The answer of a ``[finish]`` step: the text after the last "The answer is", without a final period.

    Example:
        >>> extract_answer("The answer is 3.5."), extract_answer("Paris")
        ('3.5', 'Paris')
    """
    answer = step.split("The answer is")[-1].strip()
    return answer[:-1].strip() if answer.endswith(".") else answer


def history_text(steps: Sequence[tuple[str, str]]) -> str:
    r"""The solution history as the prompts show it: ``None``, or ``Step: ..\nOutput: ..`` lines.

    Example:
        >>> history_text([])
        'None'
        >>> print(history_text([("Find x.", "x is 2."), ("Double it.", "It is 4.")]))
        Step: Find x.
        Output: x is 2.
        Step: Double it.
        Output: It is 4.
    """
    if not steps:
        return "None"
    return "\n".join(f"Step: {s.strip()}\nOutput: {o.strip()}" for s, o in steps)


def cut_output(text: str) -> str:
    r"""Cut a free-text expert reply at the first official cut point (the next step, the final answer).

    Example:
        >>> cut_output("x = 2.\nStep: next one")
        'x = 2.'
    """
    for marker in P.OUTPUT_CUTS:
        text = text.split(marker, 1)[0]
    return text.strip()


def simplify_output(stdout: str) -> str:
    r"""Normalise a program's stdout like the official ``simplify_answer`` does for text.

    Empty → ``[FAIL]``; a number → rounded to 4 places (``"4"`` → ``"4.0"``); anything else stripped.

    Example:
        >>> simplify_output("4\n"), simplify_output("0.333333333\n"), simplify_output("[2, 3]\n")
        ('4.0', '0.3333', '[2, 3]')
    """
    if not stdout:
        return "[FAIL]"
    try:
        return str(round(float(stdout), 4))
    except (ValueError, OverflowError):
        return stdout.strip()


def extract_code(reply: str) -> str:
    r"""The program in a code reply: its fenced Python blocks joined, else the whole reply.

    Example:
        >>> extract_code("Here:\n```python\nprint(1)\n```")
        'print(1)'
    """
    blocks = _FENCE_RE.findall(reply)
    return "\n".join(b.strip() for b in blocks).strip() if blocks else reply.strip()


class HuskyConfig(LabConfig):
    """Options of Husky.

    Args:
        max_steps: Most tool executions per question (``None``: the task's official value in
            ``Query.metadata["max_steps"]``, else 6).
        on_cap: The answer of a question that hits the cap: ``last_output`` (the last step's result),
            ``official`` (the last code output if the last action was code, else empty), ``empty``.
        search: ``auto`` (BM25 over ``documents`` when given, else none), ``bm25``, ``serpapi``, ``none``.
        documents: A folder of ``.txt``/``.md`` files or a ``.jsonl`` file of ``{title, text}`` for BM25.
        search_top_k: Results per search (official: 1).
        passage_words: BM25 passage length in words (0: whole documents).
        search_cache: Reuse results of repeated queries (per method instance).
        code_timeout: Wall-clock seconds per program (official: 10).
        code_memory_mb: Address-space limit of a program in MiB.
        code_prefix: Code put before every program (``None``: the official imports).
        action_temperature: Action generator temperature.
        expert_temperature: Code, math and query expert temperature.
        reason_temperature: Commonsense reasoner and writers' temperature.
        action_max_tokens: Completion budget of the action generator.
        query_max_tokens: ... of the query writer.
        code_max_tokens: ... of the code expert.
        math_max_tokens: ... of the math expert.
        reason_max_tokens: ... of the reasoner and the writers.
        concurrency: Questions solved at once by :meth:`Husky.solve_batch`.
    """

    max_steps: int | None = Field(default=None, ge=0, le=1000)
    on_cap: Literal["last_output", "official", "empty"] = "last_output"
    search: Literal["auto", "bm25", "serpapi", "none"] = "auto"
    documents: str | None = None
    search_top_k: int = Field(default=1, ge=1, le=100)
    passage_words: int = Field(default=100, ge=0, le=1_000_000)
    search_cache: bool = True
    code_timeout: float = Field(default=10.0, gt=0.0, le=3600.0)
    code_memory_mb: int = Field(default=2048, ge=64, le=1 << 20)
    code_prefix: str | None = None
    action_temperature: float = 0.0
    expert_temperature: float = 0.0
    reason_temperature: float = 0.3
    action_max_tokens: int = 128
    query_max_tokens: int = 128
    code_max_tokens: int = 512
    math_max_tokens: int = 512
    reason_max_tokens: int = 256
    concurrency: int = Field(default=16, ge=1, le=100_000)


def make_retriever(cfg: HuskyConfig) -> Retriever:
    """The retriever a config asks for (BM25 indexes ``documents`` now, so a bad path fails before any question).

    Raises:
        ConfigError: ``search=bm25`` without ``documents``, documents that cannot be read, or ``serpapi``
            without a key.
    """
    kind = cfg.search
    if kind == "auto":
        kind = "bm25" if cfg.documents is not None else "none"
    inner: Retriever
    if kind == "bm25":
        if cfg.documents is None:
            raise ConfigError("search=bm25 needs documents: pass -p documents=PATH (a folder of .txt/.md files or "
                              "a .jsonl file)")
        try:
            inner = BM25Retriever.from_path(cfg.documents, top_k=cfg.search_top_k, passage_words=cfg.passage_words)
        except DataError as exc:  # a -p value the user got wrong: a config mistake (exit 2), said in one line
            raise ConfigError(str(exc)) from None
    elif kind == "serpapi":
        inner = SerpAPISearch(top_k=cfg.search_top_k)
    else:
        return NoSearch("no search backend is configured (pass -p documents=PATH for a local BM25 index, or "
                        "-p search=serpapi)")
    return CachedRetriever(inner) if cfg.search_cache else inner


@dataclass
class Step:
    """One executed step: the action, what its expert did, the output the history records, and its calls."""

    index: int
    tool: str
    step: str
    action_text: str
    fallback: str | None = None
    output: str = ""
    failed: bool = False
    result: str | None = None  # the tool's raw result: normalised program output, or the search result
    code: str | None = None
    exec: dict[str, Any] | None = None
    query: str | None = None
    expert_text: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)  # [{"role", "call"}]: index into Solution.calls


class Husky(Method):
    """Husky: action generator + code / math / search / commonsense experts, one loop per question.

    Example:
        >>> from llmlab.backends.model import Model
        >>> from llmlab.core.concurrency import run_sync
        >>> action = Model("mock:text=[finish] The answer is 4.")
        >>> sol = run_sync(Husky().solve(Query.from_text("What is 2 + 2?"), Roles(action)))
        >>> sol.answer, sol.trace["finished"], len(sol.calls)
        ('4', True, 1)
    """

    name = "husky"
    Config = HuskyConfig
    ROLES = ROLES

    def __init__(self, config: HuskyConfig | Mapping[str, Any] | None = None, *,
                 retriever: Retriever | None = None) -> None:
        super().__init__(config)
        self.retriever = retriever if retriever is not None else make_retriever(self.cfg)

    @property
    def cfg(self) -> HuskyConfig:
        assert isinstance(self.config, HuskyConfig)
        return self.config

    async def _call(self, model: Model, role: str, prompt: str, temperature: float, max_tokens: int,
                    step: Step | None, rec: Any) -> str:
        if step is not None:
            step.calls.append({"role": role, "call": len(rec.calls)})
        resp = await model.generate(GenerateRequest(
            messages=(Message("user", prompt),), temperature=temperature, max_tokens=max_tokens, stop=P.STOP))
        return resp.text

    async def solve(self, query: Query, roles: Roles) -> Solution:
        """Answer one question with the Husky loop (see the module docstring)."""
        roles.check_known(ROLES, self.name)
        cfg = self.cfg
        question = str(query.metadata.get("question", query.text))
        cap = cfg.max_steps if cfg.max_steps is not None else int(query.metadata.get("max_steps", DEFAULT_MAX_STEPS))
        steps: list[Step] = []
        answer: str | None = None
        finish_text = ""
        last_action: Action | None = None
        with recording() as rec:
            for i in range(cap + 1):
                history = history_text([(s.step, s.output) for s in steps])
                action_calls = [{"role": "action", "call": len(rec.calls)}]
                text = await self._call(roles["action"], "action", P.ACTION_PROMPT.format(
                    question=question, history=history), cfg.action_temperature, cfg.action_max_tokens, None, rec)
                last_action = parse_action(text)
                if last_action.tool == "finish":
                    answer = extract_answer(last_action.step)
                    finish_text = text
                    break
                if i == cap:
                    break  # the cap: this last action is read only for a [finish], as in the official loop
                step = Step(len(steps), last_action.tool, last_action.step, text, last_action.fallback,
                            calls=action_calls)
                await self._execute(step, question, history, roles, rec)
                steps.append(step)
            finished = answer is not None
            if answer is None:
                answer = self._cap_answer(steps, last_action)
            calls = list(rec.calls)
        from llmlab.core.transcripts import call_trace

        body = history_text([(s.step, s.output) for s in steps])
        text = f"{body}\n{finish_text.strip()}" if finish_text.strip() else f"{body}\n(step cap reached)"
        return Solution(
            text=text.strip(), answer=answer,
            trace={"steps": [asdict(s) for s in steps], "finished": finished, "capped": not finished,
                   "max_steps": cap, "tools": [s.tool for s in steps], "question": question,
                   "finish": finish_text.strip() or None},
            calls=[call_trace(c) for c in calls],
        )

    def _cap_answer(self, steps: Sequence[Step], last_action: Action | None) -> str:
        mode = self.cfg.on_cap
        if mode == "empty" or not steps:
            return ""
        if mode == "official":
            if last_action is None or last_action.tool != "code":
                return ""
            code_runs = [s for s in steps if s.tool == "code"]
            return code_runs[-1].result or "" if code_runs else ""
        last = steps[-1]
        return last.result if last.tool == "code" and not last.failed and last.result else last.output

    async def _execute(self, step: Step, question: str, history: str, roles: Roles, rec: Any) -> None:
        cfg = self.cfg
        fields = {"question": question, "history": history, "step": step.step}
        if step.tool == "code":
            reply = await self._call(roles["code"], "code", P.CODE_PROMPT.format(**fields), cfg.expert_temperature,
                                     cfg.code_max_tokens, step, rec)
            step.expert_text = reply
            step.code = extract_code(reply)
            ok, result, why = await self.run_code(step)
            step.result = result
            if not ok:
                self._fail(step, why)
                return
            written = await self._call(roles["commonsense"], "writer", P.CODE_WRITER_PROMPT.format(
                question=question, step=step.step, code=step.code, output=result), cfg.reason_temperature,
                cfg.reason_max_tokens, step, rec)
            self._set_output(step, written.strip(), "the output writer returned nothing")
        elif step.tool in ("search", "match_info"):
            reply = await self._call(roles["search"], "search", P.QUERY_PROMPT.format(**fields),
                                     cfg.expert_temperature, cfg.query_max_tokens, step, rec)
            step.expert_text = reply
            step.query = reply.strip().splitlines()[0].strip().strip('"').strip() if reply.strip() else ""
            if not step.query:
                self._fail(step, "the query writer returned no query")
                return
            found = await self.retriever.search(step.query, kind=step.tool)
            step.result = found
            if found is None:
                reason = getattr(self.retriever, "reason", None)
                self._fail(step, f"the search found nothing for \"{step.query}\"" + (f" ({reason})" if reason else ""))
                return
            if step.tool == "match_info":
                step.output = found  # the official match_info path records the lookup itself
                return
            written = await self._call(roles["commonsense"], "writer", P.SEARCH_WRITER_PROMPT.format(
                step=step.step, result=found), cfg.reason_temperature, cfg.reason_max_tokens, step, rec)
            self._set_output(step, written.strip(), "the search result writer returned nothing")
        elif step.tool == "math":
            reply = await self._call(roles["math"], "math", P.MATH_PROMPT.format(**fields), cfg.expert_temperature,
                                     cfg.math_max_tokens, step, rec)
            step.expert_text = reply
            self._set_output(step, cut_output(reply), "the math expert returned nothing")
        else:  # commonsense
            reply = await self._call(roles["commonsense"], "commonsense", P.REASON_PROMPT.format(**fields),
                                     cfg.reason_temperature, cfg.reason_max_tokens, step, rec)
            step.expert_text = reply
            self._set_output(step, cut_output(reply), "the commonsense reasoner returned nothing")

    @staticmethod
    def _fail(step: Step, why: str) -> None:
        step.failed = True
        step.output = f"This step has failed: {why}."

    def _set_output(self, step: Step, text: str, why_empty: str) -> None:
        if text:
            step.output = text
        else:
            self._fail(step, why_empty)

    async def run_code(self, step: Step) -> tuple[bool, str, str]:
        """Run the step's program in the sandbox: ``(ok, normalised stdout, why it failed)``."""
        from llmlab import sandbox

        cfg = self.cfg
        prefix = cfg.code_prefix if cfg.code_prefix is not None else P.CODE_PREFIX
        program = f"{prefix}\n{step.code or ''}" if prefix else (step.code or "")
        res = await sandbox.run({"main.py": program}, [sys.executable, "main.py"], timeout=cfg.code_timeout,
                                memory=cfg.code_memory_mb << 20,
                                env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        step.exec = {"exit_code": res.exit_code, "stdout": res.stdout[-4000:], "stderr": res.stderr[-4000:],
                     "timed_out": res.timed_out, "killed_by": res.killed_by, "wall_s": round(res.wall_s, 3)}
        result = simplify_output(res.stdout)
        if res.timed_out:
            return False, result, f"the code ran past the {cfg.code_timeout:g} s limit"
        if not res.ok:
            lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
            last = lines[-1].strip() if lines else f"exit status {res.exit_code}"
            return False, result, f"the code raised {last}"[:500]
        if result == "[FAIL]" or not result:
            return False, result, "the code printed nothing"
        return True, result, ""

    async def solve_batch(self, queries: Sequence[Query], roles: Roles) -> list[Solution]:
        """Solve several questions concurrently (at most ``concurrency`` at once); results in input order."""
        from functools import partial

        return await gather([partial(self.solve, q, roles) for q in queries], limit=self.cfg.concurrency)
