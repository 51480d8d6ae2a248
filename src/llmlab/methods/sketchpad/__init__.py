r"""Visual Sketchpad: Sketching as a Visual Chain of Thought for Multimodal LMs (Hu et al., arXiv 2406.09403).

Implements the paper's planner/executor loop (§3; official Yushi-Hu/VisualSketchpad ``agent/agent.py``
``SketchpadUserAgent.receive``) for the math tasks (§4.1: IsoBench graph max-flow, connectivity,
isomorphism, function convexity and parity, chess winner id; Geometry3K with auxiliary lines):

1. The planner (a multimodal role, ``planner``; default ``--model``) gets the system message and an
   initial prompt: the task family's tools and worked examples (:mod:`.prompts`) around the task's
   ``# USER REQUEST #`` (text and images, as OpenAI-style content parts).
2. Each reply is parsed (:func:`parse_action`): the first ```` ```python ```` block is the ACTION.
   A reply without a parsable block that says ``TERMINATE`` (outside code) ends the dialogue; its
   ``ANSWER:`` is the answer. Any other unparsable reply gets the parsing feedback.
3. A parsed block runs in the notebook (:class:`~.kernel.SketchpadKernel`: :func:`llmlab.sandbox.run`,
   state carried across cells). Its printed text and the images it displayed (PIL images, matplotlib
   figures) return in the next user turn as ``OBSERVATION: Execution success ...`` with image parts in
   place, or as ``OBSERVATION: Execution error. Exit code: ...`` with the traceback.
4. Parsing failures and execution errors count as consecutive failures; a successful execution resets
   the count. After ``max_failures`` consecutive failures have been fed back, the next one stops the
   dialogue; the planner is called at most ``max_turns`` times (official ``MAX_REPLY = 10`` for both).

:class:`SketchpadBaseline` is the paper's comparison: the same model, the same request, one call, no code.

Deliberate deviations from the official code (and why):

- Official bugs not copied: ``run_task.py`` stops after the first instance (a stray ``break``); here
  ``llmlab eval`` runs every item, several at once (``--concurrency``), each in its own sandboxes. The
  parser deletes every backslash of the code (``content.replace("\\", "")``, which turns ``"\n"`` into
  ``"n"``); ours keeps the code as written. A block of only whitespace is a parsing error here
  (``empty_code``); the official parser accepts it and runs a blank cell. The geometry prompt points
  at an image path that does not exist, so no diagram reaches the model; ours sends ``image.png`` (see
  :mod:`.prompts`).
- ``TERMINATE`` counts only outside code blocks (a ``print("TERMINATE")`` inside an ACTION is code);
  the official check is a substring test on the whole message. As in the official loop, a reply whose
  code block parses is executed even when it also says TERMINATE.
- The kernel is emulated by replaying earlier cells in a fresh sandbox per action (see
  :mod:`.kernel`); ``plt.show()`` returns its figures as images (the official Jupyter setup returned
  only ``display``-ed images, as the geometry trace in the repository shows).
- When the dialogue stops at a cap without TERMINATE, the answer is the last ``ANSWER:`` the planner
  wrote, if any (``fallback_answer``; the trace says ``finished: false``); the official trace is scored
  afterwards by hand-written matching that the repository does not ship.
- Vision tasks (V*Bench, BLINK, MMVP) and their expert servers (GroundingDINO, SoM, Depth-Anything) are
  not implemented: only the math and geometry tools, which need no expert server.
- Prompts are our paraphrases (byte-level differences in :mod:`.prompts`); ``prompts_file`` can supply
  the official wording.

Example:
    >>> from llmlab.core.concurrency import run_sync
    >>> from llmlab.backends.model import Model
    >>> from llmlab.core.contracts import Query, Roles
    >>> m = Model("mock:text=THOUGHT 0: easy. ANSWER: 4 TERMINATE")
    >>> run_sync(Sketchpad().solve(Query.from_text("2+2?"), Roles(m))).answer
    '4'
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from llmlab.backends.base import ContentPart, GenerateRequest, Message, content_images, image_part, text_part
from llmlab.core.config import LabConfig
from llmlab.core.contracts import Query, Roles, Solution
from llmlab.core.errors import ConfigError
from llmlab.methods.base import Method
from llmlab.methods.sketchpad import prompts as P
from llmlab.methods.sketchpad.kernel import Execution, SketchpadKernel, decode_data_url

__all__ = ["Action", "Sketchpad", "SketchpadBaseline", "SketchpadConfig", "extract_answer", "parse_action"]

ROLES = frozenset({"planner"})
_FENCE_OPEN = "```python"
_FENCE = "```"


@dataclass(frozen=True)
class Action:
    """A parsed planner reply.

    Attributes:
        ok: A runnable code block was found.
        code: The block's code (``ok``), else ``None``.
        prose: The reply with its code block cut out (where THOUGHT, ANSWER and TERMINATE are looked for).
        error_code: Why parsing failed (``no_code_block``, ``unclosed_code_block``, ``empty_code``,
            ``syntax_error``), or ``""``.
        error_message: The parser's message for the feedback.
        terminate: ``TERMINATE`` appears outside code.
    """

    ok: bool
    code: str | None
    prose: str
    error_code: str = ""
    error_message: str = ""
    terminate: bool = False


def parse_action(reply: str) -> Action:
    r"""Parse a planner reply: the first ```` ```python ```` block up to the next ```` ``` ````.

    Example:
        >>> a = parse_action("THOUGHT 0: draw.\nACTION 0:\n```python\nprint('TERMINATE')\n```")
        >>> a.ok, a.code.strip(), a.terminate
        (True, "print('TERMINATE')", False)
        >>> parse_action("ANSWER: 3. TERMINATE").terminate
        True
    """
    start = reply.find(_FENCE_OPEN)
    if start == -1:
        return Action(False, None, reply, "no_code_block", P.PARSE_MESSAGES["no_code_block"], "TERMINATE" in reply)
    body_start = start + len(_FENCE_OPEN)
    end = reply.find(_FENCE, body_start)
    if end == -1:
        prose = reply[:start]
        return Action(False, None, prose, "unclosed_code_block", P.PARSE_MESSAGES["unclosed_code_block"],
                      "TERMINATE" in prose)
    code = reply[body_start:end]
    prose = reply[:start] + reply[end + len(_FENCE):]
    terminate = "TERMINATE" in prose
    if not code.strip():
        return Action(False, None, prose, "empty_code", P.PARSE_MESSAGES["empty_code"], terminate)
    try:
        compile(code, "<action>", "exec")
    except (SyntaxError, ValueError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        return Action(False, code, prose, "syntax_error", P.PARSE_MESSAGES["syntax_error"].format(detail=detail),
                      terminate)
    return Action(True, code, prose, terminate=terminate)


_ANSWER = re.compile(r"ANSWER\s*:", re.I)


def extract_answer(prose: str) -> str | None:
    """The text after the last ``ANSWER:`` up to ``TERMINATE`` (else its line's end), stripped; ``None`` if absent.

    Example:
        >>> extract_answer("THOUGHT 1: ... ANSWER: yes, there is a path. TERMINATE")
        'yes, there is a path'
    """
    matches = list(_ANSWER.finditer(prose))
    if not matches:
        return None
    span = prose[matches[-1].end():]
    cut = span.find("TERMINATE")
    # without TERMINATE the answer is the rest of its line
    span = span[:cut] if cut != -1 else span.strip().split("\n", 1)[0]
    span = span.strip().rstrip(".").strip()
    return span


class SketchpadConfig(LabConfig):
    """Options of Visual Sketchpad.

    Args:
        max_turns: Planner calls per dialogue (official ``MAX_REPLY = 10``).
        max_failures: Consecutive parsing/execution failures fed back before the next one stops the
            dialogue (official ``MAX_REPLY = 10``).
        prompt: The initial prompt family: ``math`` (IsoBench tasks), ``geo`` (auxiliary lines) or
            ``auto`` (the task's ``sketchpad_prompt`` metadata; ``math`` when absent).
        temperature: Planner temperature (official GPT-4o at 0).
        max_tokens: Per planner call.
        timeout: Wall-clock seconds per code cell (autogen's Jupyter executor: 60).
        memory_mb: Address-space limit of a cell's processes, MiB (0: unlimited).
        max_images: Images returned per cell.
        max_image_side: Longest side of a returned image, pixels.
        fallback_answer: At a cap without TERMINATE, use the last ``ANSWER:`` written.
        prompts_file: YAML/JSON mapping prompt names (:data:`~.prompts.PROMPT_NAMES`) to replacement texts.
    """

    max_turns: int = Field(default=10, ge=1, le=1000)
    max_failures: int = Field(default=10, ge=0, le=1000)
    prompt: Literal["auto", "math", "geo"] = "auto"
    temperature: float = Field(default=0.0, ge=0.0)
    max_tokens: int = Field(default=2048, ge=1)
    timeout: float = Field(default=60.0, gt=0.0, le=3600.0)
    memory_mb: int = Field(default=4096, ge=0)
    max_images: int = Field(default=8, ge=1, le=64)
    max_image_side: int = Field(default=1024, ge=32, le=8192)
    fallback_answer: bool = True
    prompts_file: str | None = None


def load_prompts(path: str | None) -> dict[str, str]:
    """The prompt texts, with ``path``'s replacements applied.

    Raises:
        ConfigError: The file cannot be read, is not a mapping of strings, or names an unknown prompt.
    """
    texts = {name: getattr(P, name) for name in P.PROMPT_NAMES}
    if path is None:
        return texts
    import json

    import yaml

    p = Path(path)
    try:
        raw = p.read_text()
        data = json.loads(raw) if p.suffix == ".json" else yaml.safe_load(raw)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"prompts_file={path}: cannot read it ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"prompts_file={path}: expected a mapping of prompt names to texts")
    unknown = sorted(set(data) - set(texts))
    if unknown:
        raise ConfigError(f"prompts_file={path}: unknown prompt(s) {unknown}; known: {', '.join(P.PROMPT_NAMES)}")
    texts.update(data)
    return texts


def _request_parts(query: Query) -> tuple[list[ContentPart], list[bytes], str | None]:
    """The query's last user content as parts, its inline images, and its system message (if any)."""
    system = next((m.text for m in query.messages if m.role == "system"), None)
    user = [m for m in query.messages if m.role == "user"]
    if not user:
        raise ConfigError("Visual Sketchpad needs a query with a user message")
    content = user[-1].content
    parts = [text_part(content)] if isinstance(content, str) else [dict(p) for p in content]
    images = [b for b in (decode_data_url(u) for u in content_images(content)) if b is not None]
    return parts, images, system


def _merge_text(parts: list[ContentPart]) -> tuple[ContentPart, ...]:
    """Adjacent text parts joined (what a chat template would see), empty ones dropped."""
    out: list[ContentPart] = []
    for p in parts:
        if p.get("type") == "text":
            if not p["text"]:
                continue
            if out and out[-1].get("type") == "text":
                out[-1] = text_part(out[-1]["text"] + p["text"])
                continue
        out.append(p)
    return tuple(out)


def _content(parts: list[ContentPart]) -> str | tuple[ContentPart, ...]:
    merged = _merge_text(parts)
    if len(merged) == 1 and merged[0].get("type") == "text":
        return str(merged[0]["text"])
    return merged


KernelFactory = Callable[[list[bytes]], Any]


class Sketchpad(Method):
    """The Visual Sketchpad planner loop (see the module docstring).

    Args:
        config: :class:`SketchpadConfig` or its fields.
        kernel_factory: Builds a dialogue's notebook from the request's images (default:
            :class:`~.kernel.SketchpadKernel` in the sandbox); tests pass fakes.
    """

    name = "sketchpad"
    Config = SketchpadConfig

    def __init__(self, config: LabConfig | Mapping[str, Any] | None = None, *,
                 kernel_factory: KernelFactory | None = None) -> None:
        super().__init__(config)
        self.prompts = load_prompts(self.cfg.prompts_file)
        self.kernel_factory = kernel_factory

    @property
    def cfg(self) -> SketchpadConfig:
        assert isinstance(self.config, SketchpadConfig)
        return self.config

    def _kernel(self, images: list[bytes]) -> Any:
        if self.kernel_factory is not None:
            return self.kernel_factory(images)
        c = self.cfg
        return SketchpadKernel(images, timeout=c.timeout, memory=c.memory_mb << 20 if c.memory_mb else None,
                               max_images=c.max_images, max_side=c.max_image_side)

    def initial_messages(self, query: Query) -> tuple[tuple[Message, ...], list[bytes]]:
        """The system message and the initial user turn (tools, examples, the request), and its images."""
        parts, images, _system = _request_parts(query)
        family = self.cfg.prompt if self.cfg.prompt != "auto" else query.metadata.get("sketchpad_prompt", "math")
        if family not in ("math", "geo"):
            raise ConfigError(f"sketchpad prompt family must be math or geo, got {family!r}")
        t = self.prompts
        head = t["MATH_TOOLS"] + t["MATH_EXAMPLES"] if family == "math" else t["GEO_TOOLS"] + t["GEO_EXAMPLES"]
        if images:
            head += t["USER_IMAGES"].format(names=", ".join(f"image_{i}" for i in range(1, len(images) + 1)))
        user = [text_part(head + t["REQUEST_HEADER"]), *parts, text_part(t["REQUEST_FOOTER"])]
        return (Message("system", t["SYSTEM_MESSAGE"]), Message("user", _content(user))), images

    def observation(self, ex: Execution) -> tuple[str | tuple[ContentPart, ...], dict[str, Any]]:
        """The user turn that reports an execution, and its trace entry."""
        t = self.prompts
        n_images = len(ex.images)
        info = {"exit_code": ex.exit_code, "output": ex.text[-4000:], "images": n_images, "timed_out": ex.timed_out,
                "killed_by": ex.killed_by, "wall_s": round(ex.wall_s, 3)}
        if not ex.ok:
            return t["EXECUTION_ERROR"].format(exit_code=ex.exit_code, output=ex.text.strip()), info
        parts: list[ContentPart] = [text_part(t["EXECUTION_SUCCESS_HEAD"])]
        for ev in ex.events:
            parts.append(image_part(ev["png"]) if ev["type"] == "image" else text_part(ev["text"]))
        parts.append(text_part(t["EXECUTION_SUCCESS_TAIL"]))
        return _content(parts), info

    async def solve(self, query: Query, roles: Roles) -> Solution:
        roles.check_known(ROLES, "sketchpad")
        planner = roles["planner"]
        cfg = self.cfg
        messages, images = self.initial_messages(query)
        kernel = self._kernel(images)
        turns: list[dict[str, Any]] = []
        failures = 0
        stop = "max_turns"
        last_answer: str | None = None
        final_text = ""
        finished = False
        for turn in range(cfg.max_turns):
            resp = await planner.generate(GenerateRequest(
                messages=messages, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                sample_index=query.metadata.get("sample_index", 0)))
            reply = resp.text
            final_text = reply
            messages = (*messages, Message("assistant", reply))
            action = parse_action(reply)
            said = extract_answer(action.prose)
            if said is not None:
                last_answer = said
            entry: dict[str, Any] = {"turn": turn, "reply": reply, "code": action.code, "parsed": action.ok}
            turns.append(entry)
            if not action.ok and action.terminate:
                entry["event"] = "terminate"
                stop, finished = "terminate", True
                break
            if not action.ok:
                entry["event"] = "parse_error"
                entry["error_code"] = action.error_code
                if failures >= cfg.max_failures:
                    stop = "max_failures"
                    break
                failures += 1
                feedback: str | tuple[ContentPart, ...] = self.prompts["PARSING_FEEDBACK"].format(
                    error_code=action.error_code, error_message=action.error_message)
            else:
                assert action.code is not None
                t0 = time.perf_counter()
                ex = await kernel.execute(action.code)
                feedback, info = self.observation(ex)
                info["wall_s"] = round(time.perf_counter() - t0, 3)
                entry["execution"] = info
                if ex.ok:
                    entry["event"] = "execution_success"
                    failures = 0
                else:
                    entry["event"] = "execution_error"
                    if failures >= cfg.max_failures:
                        stop = "max_failures"
                        break
                    failures += 1
            entry["feedback"] = feedback if isinstance(feedback, str) else _feedback_text(feedback)
            messages = (*messages, Message("user", feedback))
        answer_text = extract_answer(parse_action(final_text).prose) if finished else None
        if answer_text is None and finished:
            answer_text = parse_action(final_text).prose.replace("TERMINATE", "").strip()
        if not finished and cfg.fallback_answer:
            answer_text = last_answer
        answer = query.extract(answer_text) if query.extract and answer_text is not None else answer_text
        trace = {
            "method": "sketchpad", "stop": stop, "finished": finished, "turns": turns, "planner_calls": len(turns),
            "images_returned": sum(t.get("execution", {}).get("images", 0) for t in turns),
            "answer_text": answer_text,
        }
        return Solution(text=final_text, answer=answer, trace=trace)


def _feedback_text(content: tuple[ContentPart, ...]) -> str:
    """A feedback turn's text with ``<image>`` where its images are (for the trace)."""
    return "".join(str(p["text"]) if p.get("type") == "text" else "<image>" for p in content)


class SketchpadBaselineConfig(LabConfig):
    """Options of the no-sketch baseline: one call, no code run.

    Args:
        temperature: Sampling temperature (the paper's GPT-4o baseline: 0).
        max_tokens: Tokens of the reply.
    """

    temperature: float = Field(default=0.0, ge=0.0)
    max_tokens: int = Field(default=2048, ge=1)


class SketchpadBaseline(Method):
    """The paper's comparison: the same multimodal model answers the same request without sketching.

    The request (text and images) is sent with :data:`~.prompts.BASELINE_SYSTEM` and asked to end with
    ``ANSWER: ... TERMINATE``; the answer is read like Sketchpad's (:func:`extract_answer`, the whole reply
    when there is no ``ANSWER:``), so both methods are scored by the same rules.

    Example:
        >>> from llmlab.core.concurrency import run_sync
        >>> from llmlab.backends.model import Model
        >>> from llmlab.core.contracts import Query, Roles
        >>> m = Model("mock:text=THOUGHT: it is even. ANSWER: even TERMINATE")
        >>> run_sync(SketchpadBaseline().solve(Query.from_text("parity?"), Roles(m))).answer
        'even'
    """

    name = "sketchpad_baseline"
    Config = SketchpadBaselineConfig

    async def solve(self, query: Query, roles: Roles) -> Solution:
        roles.check_known(ROLES, "sketchpad_baseline")
        cfg = self.config
        assert isinstance(cfg, SketchpadBaselineConfig)
        parts, _images, _system = _request_parts(query)
        user = Message("user", _content([*parts, text_part(P.BASELINE_FOOTER)]))
        resp = await roles["planner"].generate(GenerateRequest(
            messages=(Message("system", P.BASELINE_SYSTEM), user), temperature=cfg.temperature,
            max_tokens=cfg.max_tokens, sample_index=query.metadata.get("sample_index", 0)))
        said = extract_answer(resp.text)
        answer_text = said if said is not None else resp.text
        answer = query.extract(answer_text) if query.extract else answer_text
        return Solution(text=resp.text, answer=answer,
                        trace={"method": "sketchpad_baseline", "answer_text": answer_text, "planner_calls": 1})
