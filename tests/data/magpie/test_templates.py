"""Pre-query templates: the official file read as data, and derivation from chat templates offline."""

from __future__ import annotations

import json

import pytest

from llmlab.core.errors import ConfigError, DataError, UnsupportedFeatureError
from llmlab.data.magpie.templates import (
    SYSTEM_PROMPTS,
    derive_template,
    load_model_configs,
    resolve_template,
    same_template,
)
from tests.data.magpie.chat_templates import FAMILIES, FILE_MODELS, make_tokenizer

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def configs(shared_data):
    return load_model_configs(shared_data / "magpie" / "configs" / "model_configs.json")


def test_file_has_34_models_with_their_stops_and_variants(configs):
    assert len(configs) == 34
    llama = configs["meta-llama/Meta-Llama-3-8B-Instruct"]
    assert llama.prompt() == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    assert llama.stop_token_ids == (128009, 128001, 128006, 128007)
    assert llama.mt_append == "<|start_header_id|>user<|end_header_id|>\n\n"
    assert set(llama.pre_query) == {"default", "system", "math", "code", "translation"}
    # The file is data: the 405B entry's typo'd stop token is read as written.
    assert "<|starter_header_id|>" in configs["meta-llama/Meta-Llama-3.1-405B-Instruct"].stop_tokens
    with pytest.raises(ConfigError, match="no 'math' pre-query template"):
        configs["Qwen/Qwen2-7B-Instruct"].prompt("math")


def test_instruction_stops_add_assistant_words_and_newline(configs):
    t = configs["Qwen/Qwen2-7B-Instruct"]
    assert t.instruction_stops(True) == ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "Assistant", "assistant", "\n")
    assert "\n" not in t.instruction_stops(False)


# Families whose derived default template equals the file's entry (a space after a SentencePiece BOS ignored).
AGREE = ["llama3", "qwen2.5", "phi3", "mistral", "yi"]


@pytest.mark.parametrize("family", AGREE)
def test_derived_template_equals_the_file(configs, family):
    tok = make_tokenizer(family)
    t = derive_template(tok, family)
    for model in FILE_MODELS[family]:
        assert same_template(t.prompt(), configs[model].prompt(), tok.bos_token), model


def test_gemma_1_agrees_gemma_2_file_adds_a_blank_line(configs):
    t = derive_template(make_tokenizer("gemma"), "gemma")
    assert t.prompt() == configs["google/gemma-1.1-7b-it"].prompt()
    assert configs["google/gemma-2-9b-it"].prompt() == t.prompt() + "\n"  # the official choice for Gemma-2
    assert set(t.pre_query) == {"default"}  # the template refuses a system role


def test_qwen2_template_keeps_its_default_system_prompt_the_file_drops(configs):
    """The derivation keeps what the template inserts (the magpie #28 fix); the file's Qwen2 entry omits it."""
    t = derive_template(make_tokenizer("qwen2"), "qwen2")
    assert t.prompt() == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    assert t.prompt().endswith(configs["Qwen/Qwen2-7B-Instruct"].prompt())
    assert t.prompt() != configs["Qwen/Qwen2-7B-Instruct"].prompt()


def test_llama3_variants_and_multi_turn_template_equal_the_file(configs):
    t = derive_template(make_tokenizer("llama3"), "llama3")
    f = configs["meta-llama/Meta-Llama-3-8B-Instruct"]
    for v in SYSTEM_PROMPTS:
        assert t.prompt(v) == f.prompt(v), v
    assert t.mt_append == f.mt_append


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_derived_stop_tokens_end_the_turn_and_are_the_files(configs, family):
    tok = make_tokenizer(family)
    t = derive_template(tok, family)
    file_stops = set(configs[FILE_MODELS[family][0]].stop_tokens)
    assert tok.eos_token in t.stop_tokens and tok.eos_token in file_stops
    assert tok.bos_token not in t.stop_tokens
    if family != "yi":  # the Yi entry leaves out <|im_start|>, which its template writes
        assert set(t.stop_tokens) <= file_stops, set(t.stop_tokens) - file_stops
    assert t.stop_token_ids == tuple(tok.convert_tokens_to_ids(s) for s in t.stop_tokens)


def test_resolve_prefers_the_file_and_falls_back_to_the_tokenizer(configs):
    tok = make_tokenizer("qwen2")
    assert resolve_template("Qwen/Qwen2-7B-Instruct", configs=configs, tokenizer=tok).source == "config"
    assert resolve_template("Qwen2-7B-Instruct", configs=configs).model == "Qwen/Qwen2-7B-Instruct"  # served name
    got = resolve_template("my-finetune", configs=configs, tokenizer=tok)
    assert got.source == "tokenizer" and got.model == "my-finetune"
    with pytest.raises(ConfigError, match="--tokenizer DIR"):
        resolve_template("my-finetune", configs=configs)
    with pytest.raises(ConfigError, match=r"is not in model_configs\.json"):
        resolve_template("x", configs=configs, template_model="nope/nope")


def test_no_chat_template_is_one_clear_error():
    tok = make_tokenizer("llama3")
    tok.chat_template = None
    with pytest.raises(UnsupportedFeatureError, match="no chat template"):
        derive_template(tok)


def test_a_broken_config_file_is_a_data_error(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"m": {"stop_tokens": []}}))
    with pytest.raises(DataError, match="no 'pre_query_template'"):
        load_model_configs(bad)
    bad.write_text("[")
    with pytest.raises(DataError, match="cannot read"):
        load_model_configs(bad)
