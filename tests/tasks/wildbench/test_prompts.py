from __future__ import annotations

import re

from llmlab.tasks.wildbench.prompts import (
    EMPTY_MARK,
    TRUNCATION_MARK,
    build_pairwise_prompt,
    build_score_prompt,
    shorten,
)

CONV = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Write a haiku."}]


def test_k_rule_measures_the_truncated_text_in_the_prompt() -> None:
    target = " ".join(["word"] * 1500)  # truncated to 1000 words in the prompt
    pp = build_pairwise_prompt(CONV, ["ok?"], target, "short", target_is_a=True, max_words=1000)
    assert pp.target_text.endswith(TRUNCATION_MARK)
    assert len(pp.target_text) == len(" ".join(["word"] * 1000) + TRUNCATION_MARK)


def test_prompt_structure_and_placement() -> None:
    pp = build_pairwise_prompt(CONV, ["Is it 5-7-5?", "Is it about nature?"], "TARGET", "REF", target_is_a=False)
    p = pp.prompt
    assert "{$" not in p
    assert "USER: hi\n\nASSISTANT: hello\n\n" in p
    assert re.search(r"<\|begin_of_query\|>\s*Write a haiku.\s*<\|end_of_query\|>", p)
    assert re.search(r"<\|begin_of_response_A\|>\s*REF\s*<\|end_of_response_A\|>", p)
    assert re.search(r"<\|begin_of_response_B\|>\s*TARGET\s*<\|end_of_response_B\|>", p)
    assert "- Is it 5-7-5?\n- Is it about nature?\n" in p
    for key in ("analysis of A", "analysis of B", "reason of A=B", "reason of A>B", "reason of B>A", "choice"):
        assert f'"{key}"' in p
    s = build_score_prompt(CONV, ["c"], "")  # the official score template passes the empty string
    assert EMPTY_MARK not in s and '"score"' in s
    assert re.search(r"<\|begin_of_response\|>\s*<\|end_of_response\|>", s)


def test_shorten() -> None:
    assert shorten("a b c", 3) == "a b c"
    assert shorten("a b c d", 2) == "a b" + TRUNCATION_MARK
    assert shorten("a b c d", -1) == "a b c d"
