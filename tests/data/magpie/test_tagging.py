"""Tagging: judge prompts and their parse (failures leave None), guard and reward scores, resume."""

from __future__ import annotations

import json

import pytest

from llmlab.backends.mock import MockBackend
from llmlab.backends.model import Model
from llmlab.core.concurrency import run_sync
from llmlab.core.errors import ConfigError
from llmlab.data.magpie.prompts import TASK_CATEGORIES
from llmlab.data.magpie.tagging import parse_tags, tag_records

RECS = [{"uuid": "a", "instruction": "How do I sort a list in Python?", "response": "Use sorted()."},
        {"uuid": "b", "instruction": "Write a haiku about rain.", "response": "Rain on the roof..."}]


def judge_script(request, index):
    prompt = request.messages[-1].text
    if "rate the quality" in prompt:
        return '{"explanation": "clear", "input_quality": "good"}'
    if "difficulty level" in prompt:
        return ('Sure! {"intent": "The user wants to sort", "knowledge": "sorting", "difficulty": "easy"} '
                "Hope this helps.")
    return "I cannot decide."  # classification: not the JSON asked for


def test_parse_tags_takes_the_json_and_fails_to_none():
    assert parse_tags('x {"primary_tag": "Math", "other_tags": []} y', "classification") == {
        "task_category": "Math", "other_task_category": []}
    assert parse_tags('{"primary_tag": "Math"}', "classification") == {
        "task_category": None, "other_task_category": None}  # a key missing
    assert parse_tags("no json", "quality") == {"input_quality": None, "quality_explanation": None}
    assert parse_tags("{broken", "difficulty") == {"intent": None, "knowledge": None, "difficulty": None}


def test_tagging_writes_each_mission_once_and_resumes(tmp_path):
    judge_backend = MockBackend(judge_script, model="judge")
    judge = Model(judge_backend)
    made = run_sync(tag_records(RECS, tmp_path, ["quality", "difficulty", "classification"], judge=judge))
    assert made == 6
    prompts = [r.messages[-1].text for r in judge_backend.requests]
    assert all(RECS[0]["instruction"] in p or RECS[1]["instruction"] in p for p in prompts)
    assert all(r.temperature == 0.0 and r.messages[0].role == "user" for r in judge_backend.requests)
    assert sum("Coding & Debugging" in p for p in prompts) == 2  # the 12 categories are in the prompt
    assert len(TASK_CATEGORIES) == 12
    tags = [json.loads(line) for line in (tmp_path / "tags.jsonl").read_text().splitlines()]
    by = {(t["uuid"], t["mission"]): t["fields"] for t in tags}
    assert by[("a", "quality")]["input_quality"] == "good" and by[("a", "quality")]["quality_generator"] == "judge"
    assert by[("b", "difficulty")]["difficulty"] == "easy"
    assert by[("a", "classification")]["task_category"] is None  # parse failure leaves None
    again = MockBackend(judge_script)
    assert run_sync(tag_records(RECS, tmp_path, ["quality"], judge=Model(again))) == 0 and not again.requests


def test_safety_asks_the_guard_with_the_pair_and_reward_scores_it(tmp_path):
    guard_backend = MockBackend(["safe", "unsafe\nS2"], model="guard")
    seen = []

    def reward(ins: str, res: str) -> float:
        seen.append((ins, res))
        return -1.5 if "sort" in ins else 2.0

    run_sync(tag_records(RECS, tmp_path, ["safety", "reward"], guard=Model(guard_backend), reward=reward,
                         concurrency=1))
    asked = guard_backend.requests[0].messages
    assert [m.role for m in asked] == ["user", "assistant"] and asked[1].text == "Use sorted()."
    lines = (tmp_path / "tags.jsonl").read_text().splitlines()
    tags = {(t["uuid"], t["mission"]): t["fields"] for t in map(json.loads, lines)}
    assert tags[("a", "safety")] == {"llama_guard_2": "safe"}
    assert tags[("a", "reward")]["instruct_reward"] == -1.5 and tags[("b", "reward")]["instruct_reward"] == 2.0
    assert sorted(seen) == sorted((r["instruction"], r["response"]) for r in RECS)


def test_a_mission_without_its_model_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="needs --judge"):
        run_sync(tag_records(RECS, tmp_path, ["quality"]))
    with pytest.raises(ConfigError, match="unknown tagging mission"):
        run_sync(tag_records(RECS, tmp_path, ["vibes"]))


def test_hf_reward_model_scores_with_its_own_chat_template(tmp_path):
    pytest.importorskip("torch")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: no OpenMP spin on a shared machine
    try:
        _score_with_tiny_reward_model(tmp_path)
    finally:
        torch.set_num_threads(before)


def _score_with_tiny_reward_model(tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from llmlab.data.magpie.tagging import HFRewardModel
    from tests.helpers.tiny_hf import make_tiny_tokenizer

    tok = make_tiny_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, num_labels=1, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    LlamaForSequenceClassification(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    rm = HFRewardModel(str(tmp_path))
    a, b = rm("How do I sort?", "Use sorted()."), rm("How do I sort?", "Numbers: 0 1 2 3")
    assert isinstance(a, float) and a != b and rm("How do I sort?", "Use sorted().") == a
