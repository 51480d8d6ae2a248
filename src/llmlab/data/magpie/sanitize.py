"""Instruction sanitising of the official pipeline (``--sanitize``, Llama-3 and Gemma models).

At temperature 1 a model's "instruction" often carries a list number, a ``Task:``/``**Question**``
heading, markdown, or the start of its own answer. The official post-processing (``str_utils.py``)
cuts these away and labels each instruction with the rule that fired (a class number). This is our
implementation of the same rules; two official bugs are not copied:

- the ``<b>`` branch computes the first line without the tags and throws it away; here the instruction
  becomes that first line, without ``<b>``/``</b>`` and ``*`` (class 3);
- the answer-marker pattern appends ``s?:`` to markers that already end with ``:``, so ``Answer:`` only
  matched ``Answer::``; here a marker matches with one colon (``Answer:``, ``Answers:``, ``The answer is:``).
"""

from __future__ import annotations

import re

_PREFIX_WORDS = (
    "Task", "Prompt", "Original Prompt", "Question", "The Problem", "Problem", "Scenario", "The senario",
    "Situation", "The situation", "Context", "Challenge", "Query", "Request", "Instructions", "Instruction",
    "Descriptions", "Description",
)
_PREFIXES = [p for w in _PREFIX_WORDS for p in (re.escape(f"{w}:"), re.escape(f"**{w}**"), re.escape(f"## {w}:"))]
_PREFIXES += [r"Question \d+:", r"Question \d+\.", r"Part \d+:", r"Q\d+\.", r"Q\d+:"]
_PREFIX_RE = re.compile(rf"^({'|'.join(_PREFIXES)})\s*", re.IGNORECASE)
_ENUM_RE = re.compile(r"^(\d+\.|\w+\))\s*")
_ANSWER_WORDS = ("Answer", "Answers", "The answer is", "Correct answer", "The correct answer", "Answer is",
                 "Explanation", "Here are some", "Solution Approach", "Solution")
_ANSWER_RE = re.compile(rf"(?:{'|'.join(re.escape(w) for w in _ANSWER_WORDS)})s?:")  # case-sensitive, as official
_STEP_RE = re.compile(r"(?:# Step 1|## Step 1|### Step 1):?")


def remove_prefix(text: str) -> str:
    """Drop a leading list number (``1.``, ``a)``) and one heading such as ``Task:``, ``**Question**``, ``Q2.``."""
    text = _ENUM_RE.sub("", text, count=1).strip()
    m = _PREFIX_RE.match(text)
    return text[m.end():].strip() if m else text


def _unbold(text: str) -> str:
    # Official quirk kept: "**" is removed only when the text's second character starts it.
    return text.replace("**", "").strip() if text.find("**") == 1 else text.strip()


def _until_question(text: str) -> str:
    return text.split("?")[0].strip() + "?"


def _first_line(text: str) -> str:
    return text.split("\n")[0].strip()


def sanitize_instruction(text: str, model: str) -> tuple[str, float]:
    """Clean one generated instruction the way the official ``--sanitize`` does.

    Args:
        text: The raw instruction.
        model: The generating model's id; only Llama-3* and Gemma-2 get the rules (others: unchanged, class 0).

    Returns:
        The cleaned instruction and the class number of the rule that fired.

    Example:
        >>> sanitize_instruction("1. Task: What is 2+2? Answer: 4", "meta-llama/Meta-Llama-3-8B-Instruct")
        ('What is 2+2?', 4)
    """
    name = model.lower()
    llama = "llama-3" in name
    if not (llama or "gemma-2" in name):
        return text, 0
    text = remove_prefix(text)
    answer = _ANSWER_RE.search(text)
    step = _STEP_RE.search(text) if llama else None
    if text.startswith("*") and "?" in text:
        return remove_prefix(text.split("?")[0].replace("*", "").strip() + "?"), 1
    text = remove_prefix(text)
    cls: float
    if text.startswith('"'):
        if "?" in text:
            text, cls = text.split("?")[0].replace('"', "").strip() + "?", 2.1
        else:
            text, cls = _first_line(text).replace('"', "").strip().replace("*", "").strip(), 2.2
    elif text.startswith("<b>"):
        text, cls = _first_line(text).replace("</b>", "").replace("<b>", "").replace("*", "").strip(), 3
    elif answer:
        text, cls = _unbold(text[:answer.start()].strip()), 4
    elif step:
        text, cls = _unbold(text[:step.start()].strip()), 5
    elif _first_line(text).endswith(":"):
        base = 6 if llama else 5
        if "#" in text:
            text, cls = _unbold(text.split("#")[0].strip()), base + 0.1
        elif "?" in text:
            text, cls = _unbold(_until_question(text)), base + 0.2
        else:
            text, cls = _first_line(text).replace("*", "").strip(), base + 0.3
    else:
        base = 99 if llama else 6
        if "?" in text:
            text, cls = _unbold(_until_question(text)), base + 0.1
        else:
            text, cls = _first_line(text).replace("*", "").strip(), base + 0.2
    return remove_prefix(text), round(cls, 1)
