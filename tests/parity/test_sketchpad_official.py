"""Visual Sketchpad side by side with the official prompts and parser (Yushi-Hu/VisualSketchpad).

Runs only when pointed at an official checkout (it imports ``agent/prompt.py`` and ``agent/parse.py``
from it, stubbing ``ipdb``; never commit that code):

    git clone https://github.com/Yushi-Hu/VisualSketchpad /tmp/sketchpad-official
    LLMLAB_SKETCHPAD_OFFICIAL=/tmp/sketchpad-official python -m pytest tests/parity/test_sketchpad_official.py -q -s

Checks, per math task and for geometry, on the checkout's own instances: the same section markers in the
same order (tools, ``# GOAL #``, ``# REQUIREMENTS #``, the ``# EXAMPLE`` topics, ``# USER REQUEST #``,
``# RESULT #``), the same tool vocabulary, the same feedback openings, the task data in the request, the
parser's verdict on a set of replies, and that the byte-level differences listed in
``llmlab.methods.sketchpad.prompts`` are still what the official text does.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from llmlab.backends.base import Message
from llmlab.core.contracts import Item
from llmlab.methods.sketchpad import Sketchpad, parse_action
from llmlab.methods.sketchpad import prompts as ours
from llmlab.tasks import sketchpad_math as sm

OFFICIAL = os.environ.get("LLMLAB_SKETCHPAD_OFFICIAL")
ROOT = Path(OFFICIAL) if OFFICIAL else Path("-")
pytestmark = pytest.mark.skipif(
    OFFICIAL is None or not (ROOT / "agent" / "prompt.py").is_file(),
    reason="set LLMLAB_SKETCHPAD_OFFICIAL to a Yushi-Hu/VisualSketchpad checkout",
)

MATH = [sm.GraphConnectivity, sm.GraphIsomorphism, sm.GraphMaxflow, sm.MathConvexity, sm.MathParity, sm.WinnerId]
VOCAB_MATH = ("matplotlib", "networkx", "nx.from_numpy_array", "chess", "display", "nx.maximum_flow",
              "nx.is_isomorphic", "from tools import *", "from IPython.display import display", "from PIL import Image",
              "THOUGHT 0", "ACTION 0", "THOUGHT 1", "ACTION 1", "OBSERVATION: Execution success.", "ANSWER:",
              "TERMINATE", "```python", "# USER REQUEST #:", "# RESULT #:")
VOCAB_GEO = ("find_perpendicular_intersection", "find_parallel_intersection", "# Hint #:", "matplotlib",
             "auxiliary line", "from tools import find_perpendicular_intersection, find_parallel_intersection",
             "THOUGHT 0", "ACTION 0", "ANSWER:", "TERMINATE", "# RESULT #:")


@pytest.fixture(scope="module")
def official() -> types.SimpleNamespace:
    for name in ("ipdb",):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.set_trace = lambda *a, **k: None  # type: ignore[attr-defined]
            sys.modules[name] = stub
    sys.path.insert(0, str(ROOT / "agent"))
    try:
        prompt = importlib.import_module("prompt")
        parse = importlib.import_module("parse")
    finally:
        sys.path.remove(str(ROOT / "agent"))
    return types.SimpleNamespace(prompt=prompt, parse=parse)


def _sections(text: str) -> list[str]:
    """The section markers in order; an example is reduced to its topic keyword."""
    out = []
    for m in re.finditer(r"^# ?(?:(GOAL|REQUIREMENTS|Hint|USER REQUEST|RESULT) ?#|(EXAMPLE[^\n]*))", text, re.M):
        tag = m.group(1) or m.group(2)
        if tag.startswith("EXAMPLE"):
            topic = re.search(r"convexity|connectivity|winner|isomorphism|parity", tag)
            tag = f"EXAMPLE:{topic.group(0) if topic else ''}"
        out.append(tag)
    return out


def _ours(cls: type, item: Item) -> str:
    msgs, _ = Sketchpad().initial_messages(cls().prompt(item))
    return msgs[1].text


def _first_item(cls: type) -> tuple[Item, dict[str, Any]]:
    folder = ROOT / "tasks" / cls.folder
    first = sorted((d for d in folder.iterdir() if d.is_dir()), key=lambda d: int(d.name) if d.name.isdigit() else 0)[0]
    ex = json.loads((first / ("ex.json" if cls is sm.Geometry else "example.json")).read_text())
    task = cls({"data_dir": str(ROOT.parent / "_sk")})
    if cls is sm.Geometry:
        image = first / "image.png"
        item = Item(f"geometry/{first.name}", {**ex, "_image": str(image) if image.is_file() else None}, ex["answer"],
                    {"choices": ex["choices"], "values": ex.get("precise_value", [])})
    else:
        item = Item(f"{cls.folder}/{first.name}", ex, task.target(ex), {})
    return item, ex


@pytest.mark.parametrize("cls", MATH, ids=[c.folder for c in MATH])
def test_math_prompt_structure_and_vocabulary(official: Any, cls: type) -> None:
    item, ex = _first_item(cls)
    theirs = official.prompt.MathPrompt(cls.folder).initial_prompt(ex, 0)
    mine = _ours(cls, item)
    print(cls.folder, _sections(theirs))
    assert _sections(theirs) == _sections(mine)
    for word in VOCAB_MATH:
        assert word in theirs and word in mine, word
    assert theirs.rstrip().endswith("# RESULT #:") and mine.rstrip().endswith("# RESULT #:")
    request_theirs = theirs.rsplit("# USER REQUEST #:", 1)[1]
    request_mine = mine.rsplit("# USER REQUEST #:", 1)[1]
    for key in ("adjacency_matrix", "adjacency_matrix_G", "adjacency_matrix_H", "fen", "code", "query_node_1",
                "source_node", "sink_node"):
        if key in ex:
            assert str(ex[key]) in request_theirs and str(ex[key]) in request_mine, key
    answer_words = re.findall(r"'(\w+)'", request_theirs)
    assert all(f"'{w}'" in request_mine for w in answer_words), answer_words  # maxflow names none


def test_geometry_prompt_structure_and_listed_differences(official: Any) -> None:
    item, ex = _first_item(sm.Geometry)
    theirs = official.prompt.GeoPrompt().initial_prompt(ex, 0)
    content = Sketchpad().initial_messages(sm.Geometry().prompt(item))[0][1].content
    mine = "".join(p["text"] if p["type"] == "text" else "<img>" for p in content) if not isinstance(content, str) \
        else content
    theirs_sections = _sections(theirs)
    print("geometry", theirs_sections)
    # listed difference: the official final request lacks the leading "# "
    assert theirs_sections[-1] == "RESULT" and "\nUSER REQUEST #: Given the geometry diagram" in theirs
    assert _sections(mine) == [*theirs_sections[:-1], "USER REQUEST", "RESULT"]
    for word in VOCAB_GEO:
        assert word in theirs and word in mine, word
    # listed difference: the official tool block opens with ```python and closes with '''
    tools = theirs.split("# GOAL #")[0]
    assert "```python" in tools and "'''" in tools and tools.count("```") == 1
    assert ex["image_path_code"] in theirs and not Path(ex["image_path_code"]).exists()  # no diagram reaches the model
    assert "<img>" in mine and ex["problem_text"] in mine


def test_feedback_openings(official: Any) -> None:
    p = official.prompt.MathPrompt("math_parity")
    pairs = [
        (p.get_parsing_feedback("msg", "code"), ours.PARSING_FEEDBACK.format(error_code="code", error_message="msg")),
        (p.get_exec_feedback(1, "boom"), ours.EXECUTION_ERROR.format(exit_code=1, output="boom")),
        (p.get_exec_feedback(0, "fine"), ours.EXECUTION_SUCCESS_HEAD + "fine" + ours.EXECUTION_SUCCESS_TAIL),
    ]
    for theirs, mine in pairs:
        opening = theirs.split(",")[0].split("\n")[0]
        assert mine.startswith(opening), (opening, mine)
        assert ("ANSWER" in theirs) == ("ANSWER" in mine)
    sysmsg = official.prompt.MULTIMODAL_ASSISTANT_MESSAGE
    for word in ("jupyter", "display", "THOUGHT", "ANSWER: <your answer>", "TERMINATE", "PIL"):
        assert word in sysmsg and word in ours.SYSTEM_MESSAGE, word


REPLIES = [
    "THOUGHT 0: x\nACTION 0:\n```python\nprint(1)\n```",
    "THOUGHT 0: no code",
    "```python\nx = 1\n",
    "```python```",
    "```python\ndef f(:\n```",
    "ANSWER: 3. TERMINATE",
    "```python\nprint('TERMINATE')\n```",
    "text ```python\nimport numpy as np\nprint(np.pi)\n``` more ```python\nprint(2)\n```",
]


@pytest.mark.parametrize("reply", REPLIES)
def test_parser_verdicts_match(official: Any, reply: str) -> None:
    theirs = official.parse.Parser().parse(reply)
    mine = parse_action(reply)
    assert theirs["status"] == mine.ok
    if mine.ok:
        assert theirs["content"] == mine.code  # no backslashes here, so the official stripping changes nothing


def test_listed_parser_difference_blank_code(official: Any) -> None:
    reply = "```python\n  \n```"
    assert official.parse.Parser().parse(reply)["status"]  # the official parser runs a blank cell
    assert parse_action(reply).error_code == "empty_code"


def test_listed_parser_difference_backslashes(official: Any) -> None:
    reply = '```python\nprint("a\\nb")\n```'
    assert "\\" not in official.parse.Parser().parse(reply)["content"]  # the official parser drops them
    assert "\\n" in (parse_action(reply).code or "")


def test_initial_turn_roles(official: Any) -> None:
    item, _ = _first_item(sm.GraphMaxflow)
    msgs, images = Sketchpad().initial_messages(sm.GraphMaxflow().prompt(item))
    assert [m.role for m in msgs] == ["system", "user"] and images == []
    assert isinstance(msgs[0], Message) and msgs[0].text == ours.SYSTEM_MESSAGE
