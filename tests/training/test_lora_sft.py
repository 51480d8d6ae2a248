"""LoRA SFT loop: answer-only loss, frozen base, mixture weights, and that it learns."""

from __future__ import annotations

import pytest

pytest.importorskip("peft")
torch = pytest.importorskip("torch")

from llmlab.core.errors import ConfigError  # noqa: E402
from llmlab.training.lora_sft import LoraSFTConfig, collate, encode_example, lora_sft  # noqa: E402
from tests.helpers.tiny_hf import make_tiny_tokenizer  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    """Tiny models train faster on one thread (and do not fight the rest of a loaded machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# LoRA on the attention and the output head: a random tiny model barely moves with the inner layers alone.
TINY_TARGETS = ["q_proj", "v_proj", "lm_head"]


def tiny_lm(tok, max_pos: int = 1024, seed: int = 0):  # type: ignore[no-untyped-def]
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_pos,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)


def test_prompt_tokens_are_masked_and_long_prompts_cut_from_the_left() -> None:
    tok = make_tiny_tokenizer()
    ids, labels = encode_example(tok, "Question: two plus two?", " four", 512)
    n_prompt = len(tok("Question: two plus two?", add_special_tokens=False)["input_ids"])
    assert labels[:n_prompt] == [-100] * n_prompt and labels[n_prompt:] == ids[n_prompt:]
    assert ids[-1] == tok.eos_token_id
    ids2, labels2 = encode_example(tok, "word " * 200, " four", 16)
    assert len(ids2) == 16 and labels2[-len(labels[n_prompt:]):] == labels[n_prompt:]
    with pytest.raises(ConfigError, match="max_len"):
        encode_example(tok, "q", " four " * 20, 8)
    x, m, y = collate([(ids, labels), (ids2, labels2)], tok.pad_token_id)
    assert x.shape == m.shape == y.shape and int(m[1].sum()) == 16 and int((y[1] != -100).sum()) == len(ids) - n_prompt


def test_lora_learns_the_answers_and_leaves_the_base_weights_untouched() -> None:
    tok = make_tiny_tokenizer()
    model = tiny_lm(tok)
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    examples = [("Question: the capital of France? Answer:", " Paris"),
                ("Question: two plus two? Answer:", " four")]
    cfg = LoraSFTConfig(steps=30, batch_size=4, lr=5e-2, rank=4, seed=0, target_modules=TINY_TARGETS)
    rec = lora_sft(model, tok, examples, cfg)
    hist = [loss for _, loss in rec["history"]]
    assert sum(hist[-5:]) / 5 < 0.5 * sum(hist[:5]) / 5
    peft_model = rec["model"]
    assert 0 < rec["trainable_params"] < rec["total_params"] / 2
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    merged_free = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
                   for k, v in peft_model.state_dict().items() if "lora_" not in k}
    assert all(torch.equal(merged_free[k], v) for k, v in base.items())


def test_mixture_weights_decide_what_is_sampled() -> None:
    tok = make_tiny_tokenizer()
    examples = [("Question: A? Answer:", " yes"), ("Question: B? Answer:", " no")]
    seen: list[int] = []
    orig = torch.multinomial

    def spy(w, n, **kw):  # type: ignore[no-untyped-def]
        out = orig(w, n, **kw)
        seen.extend(out.tolist())
        return out

    torch.multinomial = spy
    try:
        lora_sft(tiny_lm(tok), tok, examples, LoraSFTConfig(steps=5, batch_size=8), weights=[0.0, 1.0])
    finally:
        torch.multinomial = orig
    assert seen and set(seen) == {1}
    with pytest.raises(ConfigError, match="weights"):
        lora_sft(tiny_lm(tok), tok, examples, LoraSFTConfig(steps=1), weights=[1.0])
