r"""The math tasks of Visual Sketchpad (arXiv 2406.09403, §4.1) on their real instances.

Data: the preprocessed instances of Yushi-Hu/VisualSketchpad (``tasks/<task>/<id>/example.json``;
geometry ``ex.json`` + ``image.png``), found by :func:`llmlab.core.data.find_data` under the dataset
folder ``visual-sketchpad`` (a checkout of the official repository works as that folder: it has the
same ``tasks/`` layout). Tasks (IsoBench, Fu et al. 2024, and Geometry3K, Lu et al. 2021):

========================================  =====  ===========================================
task                                      items  target
========================================  =====  ===========================================
``sketchpad.graph_connectivity``          128    ``yes`` / ``no``
``sketchpad.graph_isomorphism``           128    ``true`` / ``false``
``sketchpad.graph_maxflow``               128    an integer
``sketchpad.math_convexity``              256    ``convex`` / ``concave``
``sketchpad.math_parity``                 384    ``even`` / ``odd`` / ``neither``
``sketchpad.winner_id``                   257    ``White`` / ``Black`` / ``Draw``
``sketchpad.geometry``                    48     a choice letter (47 have a diagram)
========================================  =====  ===========================================

Requests have the structure of the official ``math_data.TASK2PROMPT`` (definition, the instance's data,
the answer words), in our words. Answers: the method's ``ANSWER: ... TERMINATE`` span (official protocol)
is normalised per task (:func:`normalize`): the first answer word (``neither`` before ``even``/``odd``;
``not convex``/``not concave``, ``not isomorphic``, ``no path`` read as their negations; ``White
wins``/``Black wins`` before a bare colour), the max-flow value (the number after "maximum flow ... is",
else the last integer), a geometry choice letter or the choice whose value is nearest a number
(within 1% or 0.05). A reply with no answer word is wrong, never a guess.

Deviations: the official repository ships no scorer (``compute_acc_single`` is commented out and calls a
``match_multiple_choice`` judge that is not in the repository); the rules above are ours and
deterministic. Official request quirks not copied: the convexity request says "defined for all x>0"
for every function; ours states the instance's own domain (``x > 0`` or all real x). The parity
request defines odd but not even functions; ours defines both. Geometry instance 792 has no
``image.png`` in the repository; its request goes without a diagram.

Example:
    >>> t = GraphMaxflow()
    >>> t.score(Item("m", {}, 5), "The maximum flow from 0 to 2 is 5").correct
    True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from llmlab.backends.base import Message, image_part, text_part
from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import DataError
from llmlab.tasks.base import Task, TaskConfig

DATASET = "visual-sketchpad"


class SketchpadTaskConfig(TaskConfig):
    """Options of the Visual Sketchpad math tasks.

    Args:
        data_dir: A folder holding ``visual-sketchpad/tasks/<task>/`` (default: the usual search order).
        split: Only ``test`` (the repository's instances).
    """


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    return data


def _matrix(value: Any, where: str) -> list[list[int]]:
    m = json.loads(value) if isinstance(value, str) else value
    if not isinstance(m, list) or not all(isinstance(r, list) and len(r) == len(m) for r in m):
        raise DataError(f"{where}: an adjacency matrix must be a square list of lists")
    return [[int(v) for v in r] for r in m]


def _first(text: str, words: Sequence[str]) -> str | None:
    """The word of ``words`` that occurs first in ``text`` (whole words, case-insensitive)."""
    best: tuple[int, str] | None = None
    for w in words:
        m = re.search(rf"\b{re.escape(w)}\b", text, re.I)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), w)
    return best[1] if best else None


def normalize(task: str, text: str | None, choices: Sequence[str] = (),
              values: Sequence[float] = ()) -> str | None:
    """The canonical answer of ``text`` for ``task`` (``None`` when it gives none).

    Example:
        >>> normalize("math_parity", "neither even nor odd")
        'neither'
        >>> normalize("winner_id", "Black is checkmated, so White wins")
        'White'
    """
    if text is None:
        return None
    t = text.strip()
    if task == "graph_connectivity":
        if re.search(r"\b(not connected|no path|disconnected)\b", t, re.I):
            word = _first(t, ("yes", "no"))
            return word if word is not None else "no"
        word = _first(t, ("yes", "no", "true", "false"))
        if word is None and re.search(r"\b(connected|there is a path)\b", t, re.I):
            return "yes"
        return {"true": "yes", "false": "no"}.get(word, word) if word else None
    if task == "graph_isomorphism":
        word = _first(t, ("true", "false", "yes", "no"))
        if word is not None:
            return {"yes": "true", "no": "false"}.get(word, word)
        if re.search(r"\b(not isomorphic|non-isomorphic)\b", t, re.I):
            return "false"
        return "true" if re.search(r"\bisomorphic\b", t, re.I) else None
    if task == "graph_maxflow":
        flat = t.replace(",", "")
        m = re.search(r"max(?:imum)?[\s-]*flow\b[^0-9]*?\b(?:is|=|:|of)\s*\$?(-?\d+(?:\.0+)?)\b", flat, re.I)
        if m:
            return str(int(float(m.group(1))))
        nums = re.findall(r"-?\d+(?:\.\d+)?", flat)
        return str(int(float(nums[-1]))) if nums and float(nums[-1]).is_integer() else None
    if task == "math_convexity":
        if re.search(r"\bnot\s+convex\b", t, re.I):
            return "concave"
        if re.search(r"\bnot\s+concave\b", t, re.I):
            return "convex"
        return _first(t, ("convex", "concave"))
    if task == "math_parity":
        if re.search(r"\bneither\b", t, re.I):
            return "neither"
        return _first(t, ("even", "odd"))
    if task == "winner_id":
        m = re.search(r"\b(white|black)\s+(?:wins|won|is the winner|is winning|has won)\b", t, re.I)
        if m:
            return m.group(1).capitalize()
        word = _first(t, ("white", "black", "draw", "stalemate"))
        return {"stalemate": "Draw"}.get(word.lower(), word.capitalize()) if word else None
    if task == "geometry":
        letters = "ABCDEFGH"[: len(choices)] if choices else "ABCD"
        m = re.fullmatch(rf"\(?([{letters}])\)?(?:[.:)\s].*)?", t, re.S)
        if m:
            return m.group(1)
        m = re.search(rf"\b(?:answer|choice|option)\s*(?:is\s*)?\(?([{letters}])\)?\b", t, re.I)
        if m:
            return m.group(1)
        nums = re.findall(r"-?\d+(?:\.\d+)?", t.replace(",", ""))
        if nums and values:
            x = float(nums[-1])
            best = min(range(len(values)), key=lambda i: abs(values[i] - x))
            if abs(values[best] - x) <= max(0.05, 0.01 * abs(values[best])):
                return letters[best]
        return None
    raise DataError(f"unknown Visual Sketchpad task {task!r}")


class SketchpadMathTask(Task):
    """Base of the Visual Sketchpad math tasks: loading, the request, answer normalisation, scoring."""

    name = ""
    Config = SketchpadTaskConfig
    folder: ClassVar[str] = ""
    prompt_family: ClassVar[str] = "math"

    def _instance_dirs(self) -> list[Path]:
        root = self.data_path(DATASET, "tasks", self.folder)
        if not root.is_dir():
            raise DataError(f"{root} is not a folder of instances (expected {DATASET}/tasks/{self.folder}/<id>/)")
        dirs = [d for d in root.iterdir() if d.is_dir()]
        if not dirs:
            raise DataError(f"{root}: no instance folders")
        return sorted(dirs, key=lambda d: (0, int(d.name)) if d.name.isdigit() else (1, d.name))

    def items(self) -> Iterable[Item]:
        for d in self._instance_dirs():
            path = d / "example.json"
            if not path.is_file():
                raise DataError(f"{d}: no example.json")
            ex = _load_json(path)
            if "label" not in ex:
                raise DataError(f"{path}: no 'label'")
            yield Item(f"{self.folder}/{d.name}", ex, self.target(ex), {"source_id": ex.get("id")})

    def target(self, ex: Mapping[str, Any]) -> str:
        return str(ex["label"])

    def request(self, ex: Mapping[str, Any]) -> str:
        """The instance's question text; every task defines it, unless it overrides :meth:`prompt` (geometry)."""
        raise NotImplementedError(f"{type(self).__name__} defines neither request() nor prompt()")

    def prompt(self, item: Item) -> Query:
        text = self.request(item.input)
        return Query((Message("user", text),), extract=self.extract,
                     metadata={"id": item.id, "sketchpad_prompt": self.prompt_family, "sketchpad_task": self.folder})

    def extract(self, text: str) -> str | None:
        return normalize(self.folder, text)

    def score(self, item: Item, answer: str | None) -> Score:
        extracted = self.extract(answer) if answer is not None else None
        ok = extracted is not None and extracted.lower() == str(item.target).lower()
        return Score(float(ok), correct=ok, extracted=extracted)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        out = super().aggregate(scores)
        out["unparsed"] = sum(1 for s in scores if s.extracted is None)
        return out


class GraphConnectivity(SketchpadMathTask):
    """IsoBench graph connectivity: is there a path between the two query nodes (``yes``/``no``)."""

    name = "sketchpad.graph_connectivity"
    folder = "graph_connectivity"

    def target(self, ex: Mapping[str, Any]) -> str:
        return "yes" if ex["label"] in (True, "True", "true") else "no"

    def request(self, ex: Mapping[str, Any]) -> str:
        return (
            "You are given the adjacency matrix of an undirected graph and two query nodes.\n\n"
            "YOUR TASK is to decide whether there is a path between the two query nodes.\n\n"
            "    Definition of connectivity:\n"
            "        Two vertices u and v of an undirected graph G are connected if G contains a path from u "
            "to v; a path is a finite sequence of edges joining a sequence of vertices.\n"
            "The nodes and the adjacency matrix are zero-indexed.\n\n"
            f"Query Example:\nAdjacency Matrix: {ex['adjacency_matrix']}\n"
            f"    Query nodes indices (zero-indexed): {ex['query_node_1']} and {ex['query_node_2']}\n"
            "Respond with 'yes' or 'no' on whether the query nodes are connected in the graph.\n"
            "If there is a path, give it as a sequence of vertices and explain your reasoning; if there is "
            "none, explain why in detail."
        )


class GraphIsomorphism(SketchpadMathTask):
    """IsoBench graph isomorphism of two graphs G and H (``true``/``false``)."""

    name = "sketchpad.graph_isomorphism"
    folder = "graph_isomorphism"

    def target(self, ex: Mapping[str, Any]) -> str:
        return "true" if ex["label"] in (True, "True", "true") else "false"

    def request(self, ex: Mapping[str, Any]) -> str:
        return (
            "You are given the adjacency matrices of two graphs G and H.\n\n"
            "    YOUR TASK is to decide whether the two graphs are isomorphic.\n"
            "Definition of graph isomorphism:\n"
            "        An isomorphism of graphs G and H is a bijection f: V(G) -> V(H) between their vertex sets "
            "such that any two vertices u and v of G are adjacent in G if and only if f(u) and f(v) are "
            "adjacent in H (an edge-preserving bijection). G and H are isomorphic when such an f exists.\n"
            "    The adjacency matrices are zero-indexed.\n\n"
            f"    Adjacency Matrix of Graph G:\n    {ex['adjacency_matrix_G']}\n\n"
            f"    Adjacency Matrix of Graph H:\n    {ex['adjacency_matrix_H']}\n"
            "The nodes are zero-indexed.\n"
            "Respond with 'true' or 'false' on whether the two graphs are isomorphic to each other."
        )


class GraphMaxflow(SketchpadMathTask):
    """IsoBench max-flow on a weighted directed graph (the integer value)."""

    name = "sketchpad.graph_maxflow"
    folder = "graph_maxflow"

    def request(self, ex: Mapping[str, Any]) -> str:
        return (
            "You are given the adjacency matrix of a weighted directed graph and two query nodes: a source "
            "node, where the flow starts, and a sink node, where it ends.\n\n"
            "    YOUR TASK is to solve the maxflow problem on this graph. Definition of the maxflow problem:\n"
            "        In a directed graph with a source node s and a sink node t, every edge has a capacity "
            "(an integer) that bounds the flow it can carry. The goal is the largest amount of flow that can "
            "be sent from s to t while no edge carries more than its capacity.\n"
            f"    Query Example:\n    adjacency matrix: {ex['adjacency_matrix']}\n"
            f"    Source node (zero-indexed): {ex['source_node']}\n"
            f"    Sink node (zero-indexed): {ex['sink_node']}\n"
            "The nodes are zero-indexed. Respond with the value of the maximum flow."
        )


def _domain(ex: Mapping[str, Any]) -> str:
    d = ex.get("domain")
    return f"defined for {d}" if d else "defined for all real x"


class MathConvexity(SketchpadMathTask):
    """IsoBench function convexity (``convex``/``concave``)."""

    name = "sketchpad.math_convexity"
    folder = "math_convexity"

    def request(self, ex: Mapping[str, Any]) -> str:
        return (
            "You are given a real-valued, scalar function f(x). YOUR TASK is to decide whether f(x) is a "
            "convex function or a concave function.\n"
            "Definition of a convex function: for all x, y and 0 <= t <= 1, f(tx + (1 - t)y) <= t f(x) + "
            "(1 - t) f(y).\n"
            "Definition of a concave function: for all x, y and 0 <= t <= 1, f(tx + (1 - t)y) >= t f(x) + "
            "(1 - t) f(y).\n"
            f"f(x) is {_domain(ex)}. Here is the expression of f(x): {ex['code']}\n"
            "Respond with 'convex' or 'concave' first, based on the definitions and your observation of "
            "the function."
        )


class MathParity(SketchpadMathTask):
    """IsoBench function parity (``even``/``odd``/``neither``)."""

    name = "sketchpad.math_parity"
    folder = "math_parity"

    def request(self, ex: Mapping[str, Any]) -> str:
        return (
            "You are given a real-valued, scalar function f(x). YOUR TASK is to decide whether f(x) is an "
            "even function, an odd function, or neither.\n"
            "Definition of an even function: f(-x) = f(x) for every x.\n"
            "Definition of an odd function: f(-x) = -f(x) for every x (reversing the sign of x reverses the "
            "sign of the value and keeps its absolute value).\n"
            "A function is neither when it satisfies neither condition. "
            f"Here is the expression of f(x): {ex['code']}\n"
            "Respond with 'even', 'odd' or 'neither' first, based on the definitions and your observation of "
            "the function."
        )


class WinnerId(SketchpadMathTask):
    """IsoBench chess winner identification from the final position's FEN (``White``/``Black``/``Draw``)."""

    name = "sketchpad.winner_id"
    folder = "winner_id"

    def request(self, ex: Mapping[str, Any]) -> str:
        return (
            f"Here is the FEN of the final position of a chess game: {ex['fen']}\n"
            "Determine the game's outcome. Who won: White or Black?\n"
            "Answer 'white', 'black' or 'draw'."
        )


class Geometry(SketchpadMathTask):
    """Geometry3K problems with their diagram (an image part), the logic form and the figure's matplotlib code.

    The target is the choice letter; the item's metadata keeps the choices and their values.
    """

    name = "sketchpad.geometry"
    folder = "geometry"
    prompt_family = "geo"

    def items(self) -> Iterable[Item]:
        for d in self._instance_dirs():
            path = d / "ex.json"
            if not path.is_file():
                raise DataError(f"{d}: no ex.json")
            ex = _load_json(path)
            for key in ("problem_text", "choices", "answer"):
                if key not in ex:
                    raise DataError(f"{path}: no {key!r}")
            image = d / "image.png"
            yield Item(f"geometry/{d.name}", {**ex, "_image": str(image) if image.is_file() else None},
                       str(ex["answer"]),
                       {"choices": list(ex["choices"]), "values": [float(v) for v in ex.get("precise_value", [])]})

    def prompt(self, item: Item) -> Query:
        ex = item.input
        logic = ex.get("logic_form", {}).get("diagram_logic_form", [])
        choices = "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(ex["choices"]))
        parts: list[dict[str, Any]] = [text_part("Given the geometry diagram ")]
        if ex.get("_image"):
            parts.append(image_part(Path(ex["_image"]).read_bytes()))
        else:
            parts.append(text_part("(no diagram available)"))
        parts.append(text_part(
            f" and the diagram logic form {logic}\n"
            f"Below is the original matplotlib code of the geometry: {ex.get('code', '')}\n"
            f"You must draw auxiliary lines to solve the following question: [{ex['problem_text']}]\n"
            f"Choices:\n{choices}\n"
            "Propose matplotlib code to draw the auxiliary lines, and label the start and end point of each "
            "auxiliary line. Answer with the letter of the correct choice."))
        meta = {"id": item.id, "sketchpad_prompt": "geo", "sketchpad_task": "geometry", "choices": ex["choices"]}
        choices_, values = list(item.metadata["choices"]), list(item.metadata["values"])
        return Query((Message("user", tuple(parts)),), extract=lambda t: normalize("geometry", t, choices_, values),
                     metadata=meta)

    def score(self, item: Item, answer: str | None) -> Score:
        extracted = normalize("geometry", answer, item.metadata["choices"], item.metadata["values"])
        ok = extracted == item.target
        return Score(float(ok), correct=ok, extracted=extracted)


TASKS = (GraphConnectivity, GraphIsomorphism, GraphMaxflow, MathConvexity, MathParity, WinnerId, Geometry)
