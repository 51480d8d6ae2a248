"""Independent oracles for the Visual Sketchpad math labels: do the shipped labels say what the math says?

- graph connectivity: ``networkx.has_path`` on the undirected graph of the adjacency matrix;
- graph isomorphism: ``networkx.is_isomorphic`` (VF2) of the two undirected graphs;
- graph max-flow: ``networkx.maximum_flow_value`` with the matrix entries as capacities (directed);
- function parity: sympy, ``f(-x) - f(x)`` and ``f(-x) + f(x)`` simplified to zero (even / odd), with a
  numeric check at 16 points when simplification does not decide;
- function convexity: the definition itself (Jensen's midpoint inequality) checked on 256 random pairs of
  the instance's domain (``x > 0``, else [-10, 10]), the function evaluated through sympy (an ``Abs``
  kink is handled by the definition; a function that is both, i.e. linear, is undecided);
- chess winner: python-chess on the final FEN, only where the position decides the game (checkmate:
  the side not to move won; stalemate or insufficient material: draw). Other positions (a resignation,
  a time loss) are counted as undecidable, not as disagreements.

Geometry3K has no oracle here (it would need a geometry solver).

Run ``python -m llmlab.tasks.sketchpad_oracles [--data-dir DIR]`` for the table recorded in
``docs/sketchpad.md``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from llmlab.core.contracts import Item
from llmlab.core.errors import MissingExtraError


def _need(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(package, "sketchpad", "the Visual Sketchpad label oracles") from None


def _graph(matrix: Any, directed: bool = False) -> Any:
    nx = _need("networkx", "networkx")
    m = json.loads(matrix) if isinstance(matrix, str) else matrix
    g = nx.DiGraph() if directed else nx.Graph()
    g.add_nodes_from(range(len(m)))
    for i, row in enumerate(m):
        for j, w in enumerate(row):
            if w:
                g.add_edge(i, j, capacity=w)
    return g


def connectivity(ex: dict[str, Any]) -> str:
    nx = _need("networkx", "networkx")
    g = _graph(ex["adjacency_matrix"])
    return "yes" if nx.has_path(g, int(ex["query_node_1"]), int(ex["query_node_2"])) else "no"


def isomorphism(ex: dict[str, Any]) -> str:
    nx = _need("networkx", "networkx")
    same = nx.is_isomorphic(_graph(ex["adjacency_matrix_G"]), _graph(ex["adjacency_matrix_H"]))
    return "true" if same else "false"


def maxflow(ex: dict[str, Any]) -> str:
    nx = _need("networkx", "networkx")
    g = _graph(ex["adjacency_matrix"], directed=True)
    return str(int(nx.maximum_flow_value(g, int(ex["source_node"]), int(ex["sink_node"]))))


def _function(ex: dict[str, Any]) -> tuple[Any, Any]:
    sp = _need("sympy", "sympy")
    x = sp.Symbol("x", real=True)
    rhs = str(ex["code"]).split("=", 1)[1]
    return x, sp.sympify(rhs, locals={"x": x, "Abs": sp.Abs})


def parity(ex: dict[str, Any]) -> str:
    sp = _need("sympy", "sympy")
    x, f = _function(ex)
    g = f.subs(x, -x)
    if sp.simplify(g - f) == 0:
        return "even"
    if sp.simplify(g + f) == 0:
        return "odd"
    fn = sp.lambdify(x, f, "math")
    rng = random.Random(0)
    pts = [rng.uniform(0.1, 5.0) for _ in range(16)]
    vals = [(fn(p), fn(-p)) for p in pts]
    if all(abs(a - b) <= 1e-9 * max(1.0, abs(a)) for a, b in vals):
        return "even"
    if all(abs(a + b) <= 1e-9 * max(1.0, abs(a)) for a, b in vals):
        return "odd"
    return "neither"


def convexity(ex: dict[str, Any]) -> str | None:
    sp = _need("sympy", "sympy")
    x, f = _function(ex)
    fn = sp.lambdify(x, f, "math")
    lo, hi = (0.01, 10.0) if ex.get("domain") else (-10.0, 10.0)
    rng = random.Random(0)
    gaps = []  # (f(a) + f(b)) / 2 - f((a + b) / 2): >= 0 everywhere for a convex f
    for _ in range(256):
        a, b = rng.uniform(lo, hi), rng.uniform(lo, hi)
        try:
            fa, fb, fm = float(fn(a)), float(fn(b)), float(fn((a + b) / 2))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            continue
        gaps.append(((fa + fb) / 2 - fm) / max(1.0, abs(fa), abs(fb)))
    if not gaps:
        return None
    convex, concave = all(g >= -1e-12 for g in gaps), all(g <= 1e-12 for g in gaps)
    return None if convex == concave else ("convex" if convex else "concave")


def winner(ex: dict[str, Any]) -> str | None:
    chess = _need("chess", "chess")
    board = chess.Board(ex["fen"])
    if board.is_checkmate():
        return "Black" if board.turn == chess.WHITE else "White"
    if board.is_stalemate() or board.is_insufficient_material():
        return "Draw"
    return None


ORACLES: dict[str, tuple[str, Callable[[dict[str, Any]], str | None]]] = {
    "graph_connectivity": ("networkx.has_path", connectivity),
    "graph_isomorphism": ("networkx.is_isomorphic", isomorphism),
    "graph_maxflow": ("networkx.maximum_flow_value", maxflow),
    "math_parity": ("sympy f(-x) vs f(x)", parity),
    "math_convexity": ("sympy, midpoint convexity on 256 pairs", convexity),
    "winner_id": ("python-chess (decidable positions)", winner),
}


@dataclass
class Agreement:
    """How one task's labels compare with its oracle."""

    task: str
    oracle: str
    items: int = 0
    decided: int = 0
    agree: int = 0
    disagree: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.agree / self.decided if self.decided else float("nan")


def check(task: str, items: Iterable[Item]) -> Agreement:
    """Compare the labels of ``items`` (of ``task``, e.g. ``graph_maxflow``) with the task's oracle."""
    name, fn = ORACLES[task]
    out = Agreement(task, name)
    for item in items:
        out.items += 1
        got = fn(item.input)
        if got is None:
            continue
        out.decided += 1
        if got.lower() == str(item.target).lower():
            out.agree += 1
        else:
            out.disagree.append(item.id)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    from llmlab.tasks import sketchpad_math as sm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    print("| task | oracle | items | decided | agree | rate | disagreeing items |")
    print("|---|---|---|---|---|---|---|")
    for cls in sm.TASKS:
        if cls.folder not in ORACLES:
            continue
        a = check(cls.folder, cls({"data_dir": args.data_dir}).items())
        shown = ", ".join(a.disagree[:5]) + (" ..." if len(a.disagree) > 5 else "")
        print(f"| {a.task} | {a.oracle} | {a.items} | {a.decided} | {a.agree} | {a.rate:.3f} | {shown} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
