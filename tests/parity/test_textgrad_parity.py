"""Side by side with the official textgrad 0.1.8 on the same scripted engine and the same graphs.

Skipped unless ``LLMLAB_TEXTGRAD_OFFICIAL`` names the python of a scratch venv with ``textgrad==0.1.8``::

    python -m venv /tmp/tg-venv && /tmp/tg-venv/bin/pip install textgrad==0.1.8
    LLMLAB_TEXTGRAD_OFFICIAL=/tmp/tg-venv/bin/python python -m pytest tests/parity/test_textgrad_parity.py -s

The scenarios (:mod:`tests.parity.textgrad_scenarios`) run on the official package with a recording engine
that subclasses its ``EngineLM``, and on ours with a mock backend giving the same replies. For every call
we compare the *structure* (kind, the sequence of tags, base vs chain prompt) and the *facts* (the text in
``<ROLE>``, ``<VARIABLE>``, ``<LM_SYSTEM_PROMPT>``, ``<LM_INPUT>``, ``<LM_OUTPUT>``, ``<INPUTS_TO_FUNCTION>``,
``<OUTPUT_OF_FUNCTION>``, ``<CONSTRAINTS>``, and which feedback reaches the objective or the update
context); wording is ours by design. Forward calls must be identical, in order. Backward and update calls
are compared as multisets (the official backward walks a ``set``, so its order changes between runs). The
only differences allowed are the documented ones (``EXPECTED_DIFFERENCES``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llmlab.backends.base import GenerateRequest
from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.methods import textgrad as tg
from llmlab.methods.textgrad.prompts import BACKWARD_SYSTEM_PROMPT
from tests.parity import textgrad_scenarios as sc

OFFICIAL = os.environ.get("LLMLAB_TEXTGRAD_OFFICIAL")
pytestmark = pytest.mark.skipif(
    OFFICIAL is None, reason="set LLMLAB_TEXTGRAD_OFFICIAL to the python of a venv with textgrad==0.1.8")

FACT_TAGS = ("ROLE", "VARIABLE", "LM_SYSTEM_PROMPT", "LM_INPUT", "LM_OUTPUT", "INPUTS_TO_FUNCTION",
             "OUTPUT_OF_FUNCTION", "CONSTRAINTS")
FB = re.compile(r"FB\[[^\]]*\]")
# chain-prompt markers, in each side's wording
CHAIN = {"official": "to address the following feedback on the", "ours": "that addresses this feedback on the"}

# Differences we make on purpose (see the docstrings of llmlab.methods.textgrad.functions):
EXPECTED_DIFFERENCES = {
    "readme": set(),
    "prompt_step_string": set(),
    # tg.sum(losses).backward() with an LLM loss: the official sum adds two empty feedbacks ("\n"), so the
    # loss -> response calls take the chain prompt with no feedback; ours take the base prompt (whose tags
    # differ: the chain prompt names <LM_OUTPUT> once more).
    "prompt_step_llm": {"backward:mode", "backward:tags"},
    # the official sum backward adds the combined feedback twice to each input; the update sees it twice.
    "sum_with_feedback": {"optimizer:feedback"},
}


def _norm(text: str) -> str:
    return " ".join(text.split())


def signature(call: dict[str, Any], side: str) -> tuple[Any, ...]:
    user = call["user"]
    tags = tuple(re.findall(r"<([A-Z_]+)>", user))
    # every occurrence of each fact tag, sorted: the official feedback order in <CONTEXT> is a set's order
    facts = tuple((t, tuple(sorted(_norm(sc.canon_role(m.strip()) if t == "ROLE" else m)
                                   for m in re.findall(rf"<{t}>(.*?)</{t}>", user, re.S))))
                  for t in FACT_TAGS)
    if call["kind"] == "backward":
        objective = sc.first_tag(user, "OBJECTIVE_FUNCTION")
        mode = "chain" if CHAIN[side] in objective else "base"
        feedback = tuple(sorted(FB.findall(objective)))
    else:
        mode = "-"
        feedback = tuple(sorted(FB.findall(sc.first_tag(user, "CONTEXT"))))
    return call["kind"], mode, tags, facts, feedback


def run_ours(name: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def script(request: GenerateRequest, _i: int) -> str:
        assert request.messages is not None
        system = request.messages[0].text if request.messages[0].role == "system" else None
        user = request.messages[-1].text
        if system == BACKWARD_SYSTEM_PROMPT:
            kind = "backward"
        elif system is not None and "<IMPROVED_VARIABLE> {improved variable}" in system:
            kind = "optimizer"
        else:
            kind = "forward"
        text = sc.reply(kind, system, user)
        calls.append({"kind": kind, "system": system, "user": user, "reply": text})
        return text

    sc.SCENARIOS[name](tg, Model(MockBackend(script)))
    return calls


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    assert OFFICIAL is not None
    work = tmp_path_factory.mktemp("textgrad-official")  # textgrad writes ./logs/ in its working directory
    out = work / "official.json"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TEXTGRAD_LOG_DIR": str(work / "logs")}
    subprocess.run([OFFICIAL, str(Path(sc.__file__).resolve()), str(out)], cwd=work, env=env, check=True,
                   timeout=600, capture_output=True)
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def differences(theirs: list[dict[str, Any]], ours: list[dict[str, Any]]) -> set[str]:
    """Which aspects differ, per call kind: 'forward', '<kind>:count', '<kind>:mode', '<kind>:tags', ..."""
    found: set[str] = set()
    fw_t = [(c["system"], c["user"], c["reply"]) for c in theirs if c["kind"] == "forward"]
    fw_o = [(c["system"], c["user"], c["reply"]) for c in ours if c["kind"] == "forward"]
    if fw_t != fw_o:
        found.add("forward")
    for kind in ("backward", "optimizer"):
        st = Counter(signature(c, "official") for c in theirs if c["kind"] == kind)
        so = Counter(signature(c, "ours") for c in ours if c["kind"] == kind)
        if sum(st.values()) != sum(so.values()):
            found.add(f"{kind}:count")
        if st == so:
            continue
        for i, aspect in ((1, "mode"), (2, "tags"), (3, "facts"), (4, "feedback")):
            if Counter(s[i] for s in st.elements()) != Counter(s[i] for s in so.elements()):
                found.add(f"{kind}:{aspect}")
    return found


@pytest.mark.parametrize("name", list(sc.SCENARIOS))
def test_same_calls_as_official(official: dict[str, Any], name: str) -> None:
    ours = run_ours(name)
    theirs = official[name]
    diff = differences(theirs, ours)
    kinds_t, kinds_o = Counter(c["kind"] for c in theirs), Counter(c["kind"] for c in ours)
    print(f"\n{name}: official {dict(kinds_t)} ours {dict(kinds_o)} differences {sorted(diff) or 'none'}",
          file=sys.stderr)
    assert official["version"] == "0.1.8"
    assert kinds_t == kinds_o
    assert diff == EXPECTED_DIFFERENCES[name]


def test_documented_differences_are_what_we_think(official: dict[str, Any]) -> None:
    # the official update sees each summed input's feedback twice, ours once
    t = [c for c in official["sum_with_feedback"] if c["kind"] == "optimizer"]
    o = [c for c in run_ours("sum_with_feedback") if c["kind"] == "optimizer"]
    assert [len(FB.findall(c["user"])) for c in t] == [2, 2]
    assert [len(FB.findall(c["user"])) for c in o] == [1, 1]
    # with an LLM loss under tg.sum, the official loss->response calls are chain prompts with empty feedback
    back = [c for c in official["prompt_step_llm"] if c["kind"] == "backward" and "<LM_OUTPUT> OUT[" in c["user"]]
    loss_calls = [c for c in back if "Is the list sorted" in c["user"]]
    assert len(loss_calls) == 2
    assert all(CHAIN["official"] in c["user"] and not FB.findall(sc.first_tag(c["user"], "OBJECTIVE_FUNCTION"))
               for c in loss_calls)


def test_system_prompts_name_the_same_tags(official: dict[str, Any]) -> None:
    """The backward and optimizer system prompts are ours in wording, the official ones in tags."""
    for name in sc.SCENARIOS:
        ours = run_ours(name)
        for kind in ("backward", "optimizer"):
            t = {tuple(re.findall(r"<([A-Z_/]+)>", c["system"])) for c in official[name] if c["kind"] == kind}
            o = {tuple(re.findall(r"<([A-Z_/]+)>", c["system"])) for c in ours if c["kind"] == kind}
            assert t == o, (name, kind, t, o)
