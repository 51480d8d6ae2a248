"""MoA reference injection vs the official ``inject_references_to_messages`` (togethercomputer/MoA ``utils.py``).

Runs only when pointed at an official checkout; ``utils.py`` is imported by path (it needs ``openai``,
``loguru`` and ``requests`` importable; nothing is sent anywhere):

    LLMLAB_MOA_OFFICIAL=/path/to/MoA python -m pytest tests/parity/test_moa_official.py -q

Seven conversations (single turn, leading system message, multi-turn, system + multi-turn, references with
newlines and non-ASCII text, an empty-string reference, no references). Each asserts that our
``inject_references``, given the official template text (read from the official function at run time; ours
is a paraphrase), gives exactly the official messages (roles and contents, character for character).
With no references the official ``generate_with_references`` skips the injection; the case compares with
that rule.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from llmlab.backends.base import Message
from llmlab.methods.moa import inject_references

OFFICIAL = os.environ.get("LLMLAB_MOA_OFFICIAL")
UTILS = Path(OFFICIAL) / "utils.py" if OFFICIAL is not None else Path("-")
pytestmark = pytest.mark.skipif(
    OFFICIAL is None or not UTILS.is_file(), reason="set LLMLAB_MOA_OFFICIAL to a togethercomputer/MoA checkout"
)

CASES: dict[str, tuple[list[dict[str, str]], list[str]]] = {
    "single_turn": ([{"role": "user", "content": "Name a prime."}], ["2", "Seven is prime."]),
    "system_first": (
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
        ["Paris.", "It is Paris.", "Lyon"],
    ),
    "multi_turn": (
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
         {"role": "user", "content": "Tell me a joke."}],
        ["Why did the chicken...", "Knock knock."],
    ),
    "system_multi_turn": (
        [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "a"},
         {"role": "assistant", "content": "b"}, {"role": "user", "content": "c?"}],
        ["d"],
    ),
    "newlines_unicode": ([{"role": "user", "content": "Translate: café"}],
                         ["Kaffee\n\nmit Milch", "コーヒー", "  spaced  "]),
    "empty_reference": ([{"role": "user", "content": "q"}], ["", "answer"]),
    "no_references": ([{"role": "system", "content": "S"}, {"role": "user", "content": "q"}], []),
}


@pytest.fixture(scope="module")
def official() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_official_moa_utils", UTILS)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("case", list(CASES))
def test_injection_is_identical(official: Any, case: str) -> None:
    messages, refs = CASES[case]
    # the official generate_with_references injects only when there are references
    theirs = official.inject_references_to_messages(messages, refs) if refs else messages
    # our prompt text is a paraphrase of theirs; the mechanics are compared with their text, read at run
    # time (with no references the official function returns the bare template as the system message)
    template = official.inject_references_to_messages([{"role": "user", "content": "x"}], [])[0]["content"]
    ours = inject_references([Message(m["role"], m["content"]) for m in messages], refs,  # type: ignore[arg-type]
                             template=template)
    assert [{"role": m.role, "content": m.content} for m in ours] == theirs
