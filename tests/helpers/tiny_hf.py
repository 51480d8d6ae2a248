"""A tiny, offline causal LM for tests: a byte-level BPE tokenizer trained here and a random Llama.

Nothing is downloaded: the tokenizer is trained with ``tokenizers`` on :data:`CORPUS`, the model is built
from a config with a fixed seed, and both are written with ``save_pretrained`` so that
``hf:<dir>`` loads them like any hub checkpoint. Its outputs are gibberish — it exists to test plumbing
(chat templates, sampling, logprobs, stop strings, hooks), never model quality.

Use the session fixture ``tiny_model_dir`` (import it into a test module) or call :func:`make_tiny_model`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A language model predicts the next token from the previous tokens.",
    "Two plus two is four, and three times three is nine.",
    "Question: what is the capital of France? Answer: Paris.",
    "def add(a, b):\n    return a + b\n",
    "Self-consistency samples several answers and takes a majority vote.",
    "The mixture of agents aggregates the proposals of several models.",
    "Once upon a time there was a tiny model that knew very little.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20.",
    "Hello world! How are you today? I am fine, thank you.",
]

SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]

# A ChatML-like template: one header token per role, <|end|> closes each turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def make_tiny_tokenizer(vocab_size: int = 384, chat_template: str | None = CHAT_TEMPLATE):  # type: ignore[no-untyped-def]
    """Train a byte-level BPE tokenizer on :data:`CORPUS` and wrap it for transformers.

    Args:
        vocab_size: Target vocabulary (the 256 byte symbols + merges + special tokens).
        chat_template: Jinja chat template set on the tokenizer; ``None`` leaves it without one.

    Returns:
        A ``PreTrainedTokenizerFast`` with eos ``<|endoftext|>`` and pad ``<|pad|>``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        additional_special_tokens=SPECIAL_TOKENS[2:],
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


def make_tiny_model(dir: Path, *, seed: int = 0, chat_template: str | None = CHAT_TEMPLATE) -> Path:
    """Build and save an offline tiny LlamaForCausalLM with its tokenizer under ``dir``.

    Args:
        dir: Folder to write (created if needed).
        seed: Torch seed for the random weights.
        chat_template: Chat template for the tokenizer (``None``: a base model without one).

    Returns:
        ``dir``, loadable with ``hf:<dir>`` / ``AutoModelForCausalLM.from_pretrained``.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tiny_tokenizer(chat_template=chat_template)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        # Larger than the default 0.02 so that the next-token distribution is peaked enough for greedy
        # and sampled outputs to differ visibly.
        initializer_range=0.5,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    # Like chat models, a turn ends at either the end-of-text or the end-of-turn token.
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|end|>")]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(dir)
    tokenizer.save_pretrained(dir)
    return dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny chat model saved once per test session (a few seconds, offline)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-hf") / "model")
