"""The official --sanitize rules on canned strings (our implementation; two official bugs fixed)."""

from __future__ import annotations

import pytest

from llmlab.data.magpie.sanitize import remove_prefix, sanitize_instruction

LLAMA = "meta-llama/Meta-Llama-3-8B-Instruct"
GEMMA = "google/gemma-2-9b-it"


@pytest.mark.parametrize("text,want", [
    ("1. Task: Sort a list.", "Sort a list."),
    ("**Question** What is 2+2?", "What is 2+2?"),
    ("## Instruction: Write a poem", "Write a poem"),
    ("Q3: Why is the sky blue?", "Why is the sky blue?"),
    ("a) Taskless text", "Taskless text"),
    ("Plain text stays", "Plain text stays"),
])
def test_remove_prefix(text, want):
    assert remove_prefix(text) == want


@pytest.mark.parametrize("text,want,cls", [
    ("**Bold question** about sorting? And more", "Bold question about sorting?", 1),
    ('"Is this quoted?" he asked', "Is this quoted?", 2.1),
    ('"A quoted line\nsecond line', "A quoted line", 2.2),
    ("<b>Bold line</b>\nrest", "Bold line", 3),  # official bug: the cleaned line was thrown away
    ("What is 2+2? Answer: 4", "What is 2+2?", 4),  # official bug: needed "Answer::"
    ("Solve x+1=2.\n## Step 1: subtract", "Solve x+1=2.", 5),
    ("Here is my task:\nDo # this", "Here is my task:\nDo", 6.1),
    ("Consider:\nwhat is x? more", "Consider:\nwhat is x?", 6.2),
    ("List the steps:\nfirst\nsecond", "List the steps:", 6.3),
    ("How do I sort? Then explain", "How do I sort?", 99.1),
    ("Write a poem about the sea\nwith *rhymes*", "Write a poem about the sea", 99.2),
])
def test_llama3_rules(text, want, cls):
    assert sanitize_instruction(text, LLAMA) == (want, cls)


def test_gemma_numbers_its_classes_without_the_step_rule():
    assert sanitize_instruction("Solve x.\n## Step 1: go", GEMMA)[1] == 6.2
    assert sanitize_instruction("List:\nfirst", GEMMA) == ("List:", 5.3)
    assert sanitize_instruction("How now? more", GEMMA) == ("How now?", 6.1)


def test_other_models_are_untouched():
    assert sanitize_instruction("1. Task: keep me\nall", "Qwen/Qwen2-7B-Instruct") == ("1. Task: keep me\nall", 0)
