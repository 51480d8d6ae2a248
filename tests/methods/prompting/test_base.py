from __future__ import annotations

import pytest

from llmlab.core.errors import ConfigError
from llmlab.core.registry import METHODS
from llmlab.methods.prompting.base import Prompting, build, parse_spec


def test_parse_spec() -> None:
    assert parse_spec("few_shot(k=5)+zero_shot_cot+self_consistency(n=5)") == [
        ("few_shot", {"k": 5}), ("zero_shot_cot", {}), ("self_consistency", {"n": 5})]
    assert parse_spec("role(role='a judge, fair')+emotion(stimulus=Be careful.)") == [
        ("role", {"role": "a judge, fair"}), ("emotion", {"stimulus": "Be careful."})]
    assert parse_spec("prompt_ensemble(inducers=[a, b], n_per=2)") == [
        ("prompt_ensemble", {"inducers": ["a", "b"], "n_per": 2})]


@pytest.mark.parametrize(("spec", "message"), [
    ("zero_shot_cott", "unknown prompting technique 'zero_shot_cott'"),
    ("few_shot(k=5", "missing '\\)'"),
    ("few_shot(5)", "not key=value"),
    ("few_shot(q=1)", "technique 'few_shot'"),
    ("least_to_most+step_back", "at most one solver"),
    ("self_consistency+re2", "comes after a wrapper"),
    ("", "empty"),
    ("self_consistency(n=1000000000)", "n must be between 0 and 100000"),
    ("max_mutual_information(calibration=[What is 1?, x])", "cannot parse the value of 'calibration'"),
])
def test_bad_specs_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(spec)


def test_registered_and_composition_order() -> None:
    assert METHODS.get("prompting") is Prompting
    p = build("re2+zero_shot_cot+self_refine+self_consistency(n=2)")
    assert p.names == ["re2", "zero_shot_cot", "self_refine", "self_consistency"]
    assert len(p.transforms) == 2 and len(p.wrappers) == 2
