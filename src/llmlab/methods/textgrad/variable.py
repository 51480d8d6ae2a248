"""The TextGrad computation graph: :class:`Variable`, the concurrent backward pass, and its Graphviz view.

A Variable holds text, a role description (required: the paper finds it matters a lot), whether it wants
feedback (``requires_grad``), its predecessors, and the feedback it received (``gradients``, each with the
conversation it came from in ``gradients_context``). Ops (:mod:`.functions`) set ``grad_fn``.

Backward (paper §2; official ``Variable.backward``): in reverse topological order, every node that requires
grad first reduces its grouped gradients (:class:`~.functions.Aggregate`), then runs its ``grad_fn``, which
adds feedback to its predecessors. The official code walks one node and one predecessor at a time. Here a
node runs as soon as every node that feeds it feedback (its successors in the graph) has finished, so the
siblings at one depth and the B items of a batch run at once, and a node's per-predecessor calls run at once
too. Feedback is kept in a deterministic order (the serial order of the nodes that produced it), so a
concurrent pass gives exactly the gradients of the serial one (``concurrent=False``) with an
order-independent engine.

Deviations from textgrad 0.1.8, each on purpose:

- ``gradients`` is a list in a fixed order, and ``predecessors`` a list without duplicates (official: sets,
  whose order changes between runs and decides the order of the feedback the optimizer reads).
- Bad input is one :class:`~llmlab.core.errors.ConfigError` line: a missing role description (official: a
  ``TypeError`` for the missing keyword), the requires_grad invariant, a cycle, and ``backward()`` on a graph
  where nothing but the root requires grad (official: runs and updates nothing).
- ``gradients_context`` is read with ``.get``, so feedback without a context is ``None`` also after
  ``reset_gradients`` (the official reset turns its defaultdict into a plain dict: a later lookup of a
  context-less gradient raises KeyError).
- Images (``bytes`` values) are not supported.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from llmlab.core.errors import ConfigError

if TYPE_CHECKING:
    from llmlab.methods.textgrad.engine import Engine, EngineLike

GradFn = Callable[["Engine", int, bool], Awaitable[None]]


@dataclass(eq=False)
class ReduceGroup:
    """Gradients that meet at one variable with the same group are summarised by one LLM call."""

    name: str
    reduce: Callable[[list[Variable], Engine], Awaitable[Variable]] = field(repr=False)


class BackwardContext:
    """A node's backward function with the values saved in the forward pass (shown in the graph)."""

    def __init__(self, name: str, fn: GradFn) -> None:
        self.name = name
        self.fn = fn

    async def __call__(self, engine: Engine, order: int, concurrent: bool) -> None:
        await self.fn(engine, order, concurrent)

    def __repr__(self) -> str:
        return self.name


class Variable:
    """A node of the computation graph: a text with a role, its predecessors and the feedback it got.

    Args:
        value: The text (ints and floats are stored as text, as the official Variable does).
        predecessors: The variables this one was computed from.
        requires_grad: Whether this variable wants feedback. A variable that does not may not have a
            predecessor that does (checked here).
        role_description: What the text is for, e.g. "system prompt for a math QA model" (required).

    Raises:
        ConfigError: No role description, a value that is not text, or the requires_grad invariant broken.

    Example:
        >>> q = Variable("2+2?", role_description="question to the LLM", requires_grad=False)
        >>> q.get_short_value(), q.requires_grad
        ('2+2?', False)
    """

    def __init__(
        self,
        value: str | int | float = "",
        predecessors: Iterable[Variable] | None = None,
        requires_grad: bool = True,
        *,
        role_description: str | None = None,
    ) -> None:
        if role_description is None or not str(role_description).strip():
            raise ConfigError(
                "a Variable needs role_description=... saying what its text is for "
                "(e.g. role_description='system prompt to the language model')"
            )
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(f"a Variable's value must be text, got {type(value).__name__}")
        preds: list[Variable] = []
        for p in predecessors if predecessors is not None else ():
            if not isinstance(p, Variable):
                raise ConfigError(f"a predecessor must be a Variable, got {type(p).__name__}")
            if all(p is not q for q in preds):
                preds.append(p)
        needing = [p.role_description for p in preds if p.requires_grad]
        if not requires_grad and needing:
            raise ConfigError(
                f"a Variable with requires_grad=False ('{role_description}') cannot have predecessors that "
                f"require grad: {needing}"
            )
        self.value: str = str(value)
        self.role_description: str = str(role_description)
        self.requires_grad: bool = requires_grad
        self.predecessors: list[Variable] = preds
        self.gradients: list[Variable] = []
        self.gradients_context: dict[Variable, dict[str, str] | None] = {}
        self.grad_fn: BackwardContext | None = None
        self._reduce_meta: list[ReduceGroup] = []
        self._order: tuple[int, ...] = ()

    # -- textgrad's accessors ------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"Variable(value={self.value!r}, role={self.role_description!r}, grads={len(self.gradients)})"

    def __str__(self) -> str:
        return self.value

    def get_value(self) -> str:
        return self.value

    def set_value(self, value: str) -> None:
        self.value = str(value)

    def get_role_description(self) -> str:
        return self.role_description

    def set_role_description(self, role_description: str) -> None:
        self.role_description = role_description

    def get_grad_fn(self) -> BackwardContext | None:
        return self.grad_fn

    def set_grad_fn(self, grad_fn: BackwardContext) -> None:
        self.grad_fn = grad_fn

    def get_short_value(self, n_words_offset: int = 10) -> str:
        """The first and last ``n_words_offset`` words joined by ``(...)`` when the value is long."""
        words = self.value.split(" ")
        if len(words) <= 2 * n_words_offset:
            return self.value
        return " ".join(words[:n_words_offset]) + " (...) " + " ".join(words[-n_words_offset:])

    def get_gradient_text(self) -> str:
        """The feedback texts, one per line, in their deterministic order."""
        return "\n".join(g.value for g in self.gradients)

    def add_gradient(self, gradient: Variable, context: dict[str, str] | None = None) -> None:
        """Add feedback (kept sorted by its ``_order`` key, so concurrent and serial passes agree)."""
        keys = [g._order for g in self.gradients]
        pos = len(keys)
        while pos > 0 and keys[pos - 1] > gradient._order:
            pos -= 1
        self.gradients.insert(pos, gradient)
        self.gradients_context[gradient] = context

    def reset_gradients(self) -> None:
        """Drop the feedback, its contexts and the reduce groups (official ``reset_gradients``)."""
        self.gradients = []
        self.gradients_context = {}
        self._reduce_meta = []

    def __add__(self, other: Variable) -> Variable:
        from llmlab.methods.textgrad.functions import Sum

        return Sum().forward([self, other])

    # -- graph ----------------------------------------------------------------------------------------

    def topological_order(self) -> list[Variable]:
        """Every variable this one depends on, predecessors first (iterative DFS).

        Raises:
            ConfigError: The graph has a cycle.
        """
        order: list[Variable] = []
        state: dict[int, int] = {}  # 1 = on the stack, 2 = done
        stack: list[tuple[Variable, int]] = [(self, 0)]
        state[id(self)] = 1
        while stack:
            v, i = stack.pop()
            if i < len(v.predecessors):
                stack.append((v, i + 1))
                p = v.predecessors[i]
                s = state.get(id(p), 0)
                if s == 1:
                    raise ConfigError(f"the computation graph has a cycle through '{p.role_description}'")
                if s == 0:
                    state[id(p)] = 1
                    stack.append((p, 0))
            else:
                state[id(v)] = 2
                order.append(v)
        return order

    def backward(self, engine: EngineLike | None = None, *, concurrent: bool = True) -> None:
        """Synchronous :meth:`abackward` (for notebooks and scripts)."""
        from llmlab.methods.textgrad.engine import run_blocking

        run_blocking(self.abackward(engine, concurrent=concurrent))

    async def abackward(self, engine: EngineLike | None = None, *, concurrent: bool = True) -> None:
        """Backpropagate feedback from this variable through the graph.

        Args:
            engine: The backward (feedback) engine; default: the context's (``with tg.backward_engine(m):``).
            concurrent: Run every node whose successors are done at once (default) or one node and one call
                at a time in reverse topological order (the official schedule).

        Raises:
            ConfigError: No engine, a cycle, or nothing in the graph that requires grad.
        """
        from llmlab.methods.textgrad.engine import resolve_engine

        backward_engine = resolve_engine(engine, "backward()")
        topo = self.topological_order()
        if not any(v.requires_grad for v in topo if v is not self):
            raise ConfigError(
                f"backward() from '{self.role_description}': nothing in its graph requires grad, so there is "
                "nothing to update (make the variable to optimise requires_grad=True)"
            )
        self.gradients = []
        serial = list(reversed(topo))
        rank = {id(v): i for i, v in enumerate(serial)}
        if not concurrent:
            for v in serial:
                await _visit(v, backward_engine, rank[id(v)], False)
            return
        pending = {id(v): 0 for v in topo}
        for v in topo:
            for p in v.predecessors:
                pending[id(p)] += 1

        try:
            async with anyio.create_task_group() as tg:

                async def run(v: Variable) -> None:
                    await _visit(v, backward_engine, rank[id(v)], True)
                    for p in v.predecessors:
                        pending[id(p)] -= 1
                        if pending[id(p)] == 0:
                            tg.start_soon(run, p)

                tg.start_soon(run, self)
        except BaseExceptionGroup as group:  # one failed call: raise it as itself (the runner handles it)
            from llmlab.core.concurrency import first_error

            raise first_error(group) from None

    def graph(self, path: str | Path | None = None, *, print_gradients: bool = False) -> str:
        """The computation graph ending here as Graphviz DOT text; with ``path``, also files.

        Args:
            path: Where to write ``<path>.dot`` and, when the ``dot`` program exists, ``<path>.png``.
            print_gradients: Add each node's feedback to its box.

        Returns:
            The DOT text.
        """
        topo = self.topological_order()
        ids = {id(v): f"v{i}" for i, v in enumerate(topo)}
        lines = [
            "digraph textgrad {",
            '  rankdir=TB; bgcolor="white";',
            '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=9];',
        ]
        for v in topo:
            color = "#dbe9ff" if v.requires_grad else "#eeeeee"
            rows = [f"<b>role</b>: {_html(v.role_description, 60)}", f"<b>value</b>: {_html(v.get_short_value(), 60)}"]
            if v.grad_fn is not None:
                rows.append(f"<b>grad_fn</b>: {_html(repr(v.grad_fn), 60)}")
            if print_gradients and v.gradients:
                rows.append(f"<b>feedback</b>: {_html(v.get_gradient_text(), 60, 600)}")
            label = "<br align='left'/>".join(rows)
            lines.append(f'  {ids[id(v)]} [fillcolor="{color}", label=<{label}<br align="left"/>>];')
        for v in topo:
            for p in v.predecessors:
                lines.append(f"  {ids[id(p)]} -> {ids[id(v)]};")
        lines.append("}")
        dot = "\n".join(lines) + "\n"
        if path is not None:
            base = Path(path)
            base.parent.mkdir(parents=True, exist_ok=True)
            base.with_suffix(".dot").write_text(dot)
            exe = shutil.which("dot")
            if exe is not None:
                subprocess.run([exe, "-Tpng", str(base.with_suffix(".dot")), "-o", str(base.with_suffix(".png"))],
                               check=False, capture_output=True, timeout=60)
        return dot


def _html(text: str, width: int, limit: int = 300) -> str:
    text = text if len(text) <= limit else text[:limit] + " ..."
    out, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) + 1 > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    out.append(line)
    esc = [s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for s in out]
    return "<br align='left'/>".join(esc)


async def _visit(v: Variable, engine: Engine, order: int, concurrent: bool) -> None:
    if not v.requires_grad:
        return
    await _reduce_gradients(v, engine)
    if v.grad_fn is not None:
        await v.grad_fn(engine, order, concurrent)


async def _reduce_gradients(v: Variable, engine: Engine) -> None:
    """Summarise each reduce group of ``v``'s feedback that has two or more members with one call."""
    if not v._reduce_meta or len(v.gradients) < 2:
        return
    groups: dict[int, tuple[ReduceGroup, list[Variable]]] = {}
    for g in v.gradients:
        for meta in g._reduce_meta:
            groups.setdefault(id(meta), (meta, []))[1].append(g)
    for meta, members in groups.values():
        if len(members) < 2:
            continue
        reduced = await meta.reduce(members, engine)
        reduced._order = members[0]._order
        for g in members:
            v.gradients.remove(g)
            v.gradients_context.pop(g, None)
        v.add_gradient(reduced, None)


def feedback_variable(value: str, to: Variable, order: tuple[int, ...], meta: list[ReduceGroup]) -> Variable:
    """A feedback Variable for ``to`` (role "feedback to ..."), carrying its order key and reduce groups."""
    g = Variable(value, requires_grad=False, role_description=f"feedback to {to.role_description}")
    g._order = order
    g._reduce_meta = list(meta)
    return g


