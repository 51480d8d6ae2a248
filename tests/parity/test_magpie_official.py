"""Magpie side by side with the official code (magpie-align/magpie): sanitiser, tagging prompts, configs.

Runs only when pointed at an official checkout (a folder holding ``exp/str_utils.py`` and
``configs/model_configs.json``):

    LLMLAB_MAGPIE_OFFICIAL=/path/to/magpie python -m pytest tests/parity/test_magpie_official.py -q

``exp/str_utils.py`` (which imports only ``re``) is loaded from that folder; nothing official is copied
into this repository.

Expected: our sanitiser equals ``instruction_post_process`` (text and class number) on every crafted
instruction except where one of the two official bugs we fixed applies (a ``<b>`` first line; an
answer marker followed by a single colon), which are counted and checked to be exactly those cases; the
tagging prompts equal the official ones up to trailing spaces; the config file is read to the same values.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from llmlab.data.magpie.sanitize import _ANSWER_WORDS, sanitize_instruction
from llmlab.data.magpie.tagging import JUDGE_MISSIONS
from llmlab.data.magpie.templates import load_model_configs

OFFICIAL = os.environ.get("LLMLAB_MAGPIE_OFFICIAL")
pytestmark = pytest.mark.skipif(
    OFFICIAL is None or not (Path(OFFICIAL) / "exp" / "str_utils.py").is_file(),
    reason="set LLMLAB_MAGPIE_OFFICIAL to a magpie-align/magpie checkout (folder with exp/str_utils.py)",
)

HEADS = ["", "1. ", "a) ", "Task: ", "**Question** ", "## Instruction: ", "Q2. ", "Question 3: ", "Part 1: ",
         "*", "**", '"', "<b>", "Problem: "]
BODIES = [
    "How do I sort a list in Python?", "How do I sort? Then explain more", "Write a poem about the sea",
    "Write a poem\nwith two lines", "List the steps:\nfirst\nsecond", "Consider:\nwhat is x? more",
    "Here is my task:\nDo # this", "Solve x+1=2.\n## Step 1: subtract", "Solve x.\n# Step 1 go",
    "What is 2+2? Answer: 4", "What is 2+2? The answer is: 4", "Explain tides. Explanation: the moon",
    "Compute 3*3. Solution: 9", "What is it? Answer:: 4", "Bold** text? yes", "Quoted\" line\nnext",
    "<b>Bold line</b>\nrest", "Give me ideas. Here are some: a, b", "",
]
TAILS = ["", "\nMore text after.", " **", "?"]
MODELS = ["meta-llama/Meta-Llama-3-8B-Instruct", "google/gemma-2-9b-it", "Qwen/Qwen2-7B-Instruct"]


def _official() -> Any:
    spec = importlib.util.spec_from_file_location("magpie_str_utils", Path(str(OFFICIAL)) / "exp" / "str_utils.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fixed_bug_applies(text: str) -> bool:
    single_colon_marker = any(f"{w}:" in text or f"{w}s:" in text for w in _ANSWER_WORDS)
    return "<b>" in text or single_colon_marker


def test_sanitiser_matches_official_except_the_two_fixed_bugs():
    off = _official()
    same = differ = 0
    for model, (h, b, t) in itertools.product(MODELS, itertools.product(HEADS, BODIES, TAILS)):
        text = h + b + t
        want = off.instruction_post_process(text, model)
        got = sanitize_instruction(text, model)
        if (got[0], float(got[1])) == (want[0], float(want[1])):
            same += 1
        else:
            assert _fixed_bug_applies(text), (model, text, got, want)
            differ += 1
    assert same + differ == len(MODELS) * len(HEADS) * len(BODIES) * len(TAILS)
    assert same > 5 * differ  # the bug cases are the exception
    print(f"sanitiser: {same} equal, {differ} differ (fixed bugs) of {same + differ}")


def _norm(s: str) -> str:
    return "\n".join(line.rstrip() for line in s.strip().splitlines())


def test_tagging_prompts_equal_official():
    off = _official()
    fns = {"difficulty": off.input_difficulty_rating, "quality": off.input_quality_rating,
           "classification": off.input_classification}
    q = "How do I sort a list in Python?"
    for mission, (prompt, _) in JUDGE_MISSIONS.items():
        assert _norm(prompt.format(input=q)) == _norm(fns[mission](q)), mission


def test_configs_read_to_the_official_values():
    raw = json.loads((Path(str(OFFICIAL)) / "configs" / "model_configs.json").read_text())
    ours = load_model_configs(Path(str(OFFICIAL)) / "configs" / "model_configs.json")
    assert set(ours) == set(raw)
    for model, cfg in raw.items():
        t = ours[model]
        assert t.prompt() == cfg["pre_query_template"] and list(t.stop_tokens) == cfg["stop_tokens"]
        assert list(t.stop_token_ids) == cfg["stop_token_ids"] and t.mt_append == cfg.get("mt_append_template")
        for key, value in cfg.items():
            if key.startswith("pre_query_template_"):
                variant = {"with_system_prompt": "system"}.get(key.removeprefix("pre_query_template_"),
                                                               key.removeprefix("pre_query_template_"))
                assert t.prompt(variant) == value
