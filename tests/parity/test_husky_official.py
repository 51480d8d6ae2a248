"""Husky side by side with the official code: prompt structure, tool vocabulary, parsing, normalisation.

Runs only when pointed at an official checkout (agent-husky/Husky-v1, the folder holding ``husky/``):

    LLMLAB_HUSKY_OFFICIAL=/path/to/Husky-v1 python -m pytest tests/parity/test_husky_official.py -q

Nothing of the checkout is imported as a package: the prompt modules are plain string constants read with
``ast``, and the few pure official helpers (``extract_tool_and_step``, ``extract_answer``, ``TOOL_LIST``,
``code_prefix``, ``simplify_answer``, ``normalize_answer``, ``compute_f1_score``) are compiled from their source
into a scratch namespace, so their answers can be compared with ours on the same inputs.
"""

from __future__ import annotations

import ast
import os
import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llmlab.methods.husky import prompts as P
from llmlab.methods.husky.agent import extract_answer, history_text, parse_action, simplify_output
from llmlab.tasks.husky_eval import f1_score, normalize_answer

OFFICIAL = os.environ.get("LLMLAB_HUSKY_OFFICIAL")
ROOT = Path(OFFICIAL) / "husky" if OFFICIAL is not None else Path("-")
pytestmark = pytest.mark.skipif(
    OFFICIAL is None or not (ROOT / "run_husky.py").is_file(),
    reason="set LLMLAB_HUSKY_OFFICIAL to an agent-husky/Husky-v1 checkout (the folder holding husky/)",
)

PAIRS = [  # (our template, official module, official constant)
    (P.ACTION_PROMPT, "action_prompts", "HUSKY_ACTION_GENERATOR_PROMPT"),
    (P.CODE_PROMPT, "code_prompts", "HUSKY_CODE_GENERATOR_PROMPT"),
    (P.MATH_PROMPT, "math_prompts", "HUSKY_MATH_GENERATOR_PROMPT"),
    (P.QUERY_PROMPT, "query_prompts", "HUSKY_QUERY_GENERATOR_PROMPT"),
    (P.REASON_PROMPT, "reasoning_prompts", "HUSKY_REASONING_GENERATOR_FEWSHOT_PROMPT"),
    (P.CODE_WRITER_PROMPT, "writer_prompts", "HUSKY_CODE_OUTPUT_WRITER_FEWSHOT_PROMPT"),
    (P.SEARCH_WRITER_PROMPT, "writer_prompts", "HUSKY_SEARCH_OUTPUT_WRITER_FEWSHOT_PROMPT"),
]
FIELD = "\x00"


def constants(path: Path) -> dict[str, str]:
    """The plain string constants of a module (f-strings, i.e. the chat wrappers, are skipped)."""
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out[node.targets[0].id] = node.value.value  # type: ignore[attr-defined]
    return out


def official_functions(path: Path, names: set[str]) -> dict[str, Any]:
    """Compile the named top-level functions and assignments of an official file into a scratch namespace."""
    tree = ast.parse(path.read_text())
    keep = [n for n in tree.body if (isinstance(n, ast.FunctionDef) and n.name in names)
            or (isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) in names)]
    ns: dict[str, Any] = {"re": re, "string": string, "Counter": Counter}
    exec(compile(ast.Module(keep, []), str(path), "exec"), ns)  # the official helpers, side by side
    return ns


def ours_skeleton(template: str) -> str:
    return re.sub(r"(?<!\{)\{\w+\}(?!\})", FIELD, template).replace("{{", "{").replace("}}", "}")


def labels(block: str) -> list[str]:
    return re.findall(r"^([A-Z][\w ]*?):", block, re.M)


@pytest.mark.parametrize(("ours", "module", "name"), PAIRS, ids=[p[2] for p in PAIRS])
def test_same_structure_as_the_official_prompt(ours: str, module: str, name: str) -> None:
    official = constants(ROOT / "prompts" / f"{module}.py")[name]
    theirs, mine = official.replace("%s", FIELD), ours_skeleton(ours)
    # the query part after the last separator is byte-identical (field labels, order, cue, trailing space)
    assert mine.split("---")[-1] == theirs.split("---")[-1]
    # the same number of rule bullets in the instruction, and few-shot blocks with the same field labels
    head_o, head_m = theirs.split("---")[0], mine.split("---")[0]
    assert len(re.findall(r"^- ", head_m, re.M)) == len(re.findall(r"^- ", head_o, re.M))
    blocks_o, blocks_m = theirs.split("---")[1:-1], mine.split("---")[1:-1]
    assert bool(blocks_o) == bool(blocks_m)
    assert {tuple(labels(b)) for b in blocks_m} <= {tuple(labels(b)) for b in blocks_o}
    assert ours.count("---") >= 1 and mine.count(FIELD) == theirs.count(FIELD)


def test_same_tool_vocabulary_and_order() -> None:
    official = constants(ROOT / "prompts" / "action_prompts.py")["HUSKY_ACTION_GENERATOR_PROMPT"]
    bullets_o = re.findall(r"^- \[(\w+)\] is for", official, re.M)
    bullets_m = re.findall(r"^- \[(\w+)\] is for", P.ACTION_PROMPT, re.M)
    assert bullets_m == bullets_o == list(P.TOOLS)
    head_o, head_m = official.split("\n")[0], P.ACTION_PROMPT.split("\n-")[0]
    assert re.findall(r"\[(\w+)\]", head_o) == re.findall(r"\[(\w+)\]", head_m)


def test_code_prefix_is_the_official_one() -> None:
    ns = official_functions(ROOT / "run_husky.py", {"code_prefix"})
    assert ns["code_prefix"] == P.CODE_PREFIX
    official_prompt_imports = constants(ROOT / "prompts" / "code_prompts.py")["HUSKY_CODE_GENERATOR_PROMPT"]
    listed = {ln for ln in official_prompt_imports.splitlines() if ln.startswith(("import ", "from "))}
    ours = {ln for ln in P.CODE_PROMPT.splitlines() if ln.startswith(("import ", "from "))}
    assert ours - listed == {"from sympy import symbols, Eq, solve, expand, factor, simplify, Matrix"}


ACTIONS = ["[code] Compute 12 * 34.", "[math] Solve for x.", "[search] Find the capital.", "[commonsense] Compare.",
           "[finish] The answer is 42.", "[finish] The answer is Washington D.C.", "[finish] Paris",
           "[browse] Look it up.", "no tool at all", "[finish]", "[match_info] Find the Seahawks game.",
           "[Code] Compute it.", " [math] leading space", "[math] two\nlines"]
# Where we differ on purpose (see llmlab.methods.husky.agent): match_info is a tool; tool names are
# case-insensitive; leading whitespace is ignored.
INTENDED = {"[match_info] Find the Seahawks game.", "[Code] Compute it.", " [math] leading space"}


def test_action_parsing_matches_the_official_except_the_fixed_bugs() -> None:
    ns = official_functions(ROOT / "run_husky.py", {"extract_tool_and_step", "extract_answer", "TOOL_LIST"})
    differ = set()
    for text in ACTIONS:
        tool, step = ns["extract_tool_and_step"](text)
        if tool not in ns["TOOL_LIST"]:
            tool = "commonsense"
        ours = parse_action(text)
        if (ours.tool, ours.step) != (tool, step.strip()):
            differ.add(text)
        if tool == "finish":
            assert extract_answer(ours.step) == ns["extract_answer"](step.strip()).strip()
    assert differ == INTENDED


def test_output_normalisation_and_squad_scores_match() -> None:
    utils = official_functions(ROOT / "utils.py", {"simplify_answer"})
    for stdout in ["4\n", "0.333333333\n", "[2, 3]\n", "", "\n", "-7.125\n", "x = 3\n", "1e3\n", "12\n13\n"]:
        assert simplify_output(stdout) == str(utils["simplify_answer"](stdout, convert_to_str=True)).strip()
    ev = official_functions(ROOT / "eval_husky.py", {"normalize_answer", "compute_f1_score"})
    pairs = [("The James Madison", "james madison"), ("President James Madison", "james madison"),
             ("yes", "no"), ("no", "no"), ("Titan-IIIE rocket", "Titan IIIE"), ("", "x"), ("a an the", "the")]
    for pred, label in pairs:
        assert normalize_answer(pred) == ev["normalize_answer"](pred)
        assert f1_score(pred, label) == pytest.approx(ev["compute_f1_score"](pred, label)[0])


def test_history_lines_have_the_official_step_output_form() -> None:
    official = constants(ROOT / "prompts" / "reasoning_prompts.py")["HUSKY_REASONING_GENERATOR_FEWSHOT_PROMPT"]
    example = official.split("---")[2]
    hist = example.split("Solution history:\n", 1)[1].split("\nCurrent step:", 1)[0]
    pairs = re.findall(r"Step: (.*)\nOutput: (.*)", hist)
    assert pairs and history_text(pairs) == hist
