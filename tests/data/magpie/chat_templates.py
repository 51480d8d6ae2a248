"""Offline tokenizers carrying real chat models' chat templates (written here from their tokenizer configs).

Each family gets a tiny BPE tokenizer trained here with the family's special tokens (names as the real
tokenizer has them, ids our own) and its chat template Jinja string. The Qwen2.5 template is the tool-free
part of the real one (the tools branch is not what Magpie renders). Nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QWEN25 = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}"
    "{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if (message.role == 'user') or (message.role == 'system' and not loop.first)"
    " or (message.role == 'assistant') %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>'"
    " + '\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + "
    "'<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
YI = (
    "{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}{% endif %}"
    "{% if system_message is defined %}{{ system_message }}{% endif %}{% for message in messages %}"
    "{% set content = message['content'] %}{% if message['role'] == 'user' %}"
    "{{ '<|im_start|>user\\n' + content + '<|im_end|>\\n<|im_start|>assistant\\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ content + '<|im_end|>' + '\\n' }}{% endif %}{% endfor %}"
)

# family: (chat template, bos, eos, other special tokens, whether encoding adds the BOS)
FAMILIES: dict[str, tuple[str, str | None, str, tuple[str, ...], bool]] = {
    "llama3": (LLAMA3, "<|begin_of_text|>", "<|end_of_text|>",
               ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"), False),
    "qwen2": (QWEN2, None, "<|im_end|>", ("<|im_start|>", "<|endoftext|>"), False),
    "qwen2.5": (QWEN25, None, "<|im_end|>", ("<|im_start|>", "<|endoftext|>"), False),
    "gemma": (GEMMA, "<bos>", "<eos>", ("<start_of_turn>", "<end_of_turn>"), True),
    "phi3": (PHI3, "<s>", "<|endoftext|>", ("</s>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"), True),
    "mistral": (MISTRAL, "<s>", "</s>", ("[INST]", "[/INST]"), True),
    "yi": (YI, "<|startoftext|>", "<|endoftext|>", ("<|im_start|>", "<|im_end|>"), True),
}

# Which file entries each family stands for.
FILE_MODELS = {
    "llama3": ("meta-llama/Meta-Llama-3-8B-Instruct", "meta-llama/Meta-Llama-3-70B-Instruct"),
    "qwen2": ("Qwen/Qwen2-7B-Instruct", "Qwen/Qwen2-72B-Instruct"),
    "qwen2.5": ("Qwen/Qwen2.5-3B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-72B-Instruct"),
    "gemma": ("google/gemma-1.1-7b-it", "google/gemma-2-9b-it"),
    "phi3": ("microsoft/Phi-3-mini-128k-instruct", "microsoft/Phi-3.5-mini-instruct"),
    "mistral": ("mistralai/Mistral-7B-Instruct-v0.3",),
    "yi": ("01-ai/Yi-1.5-34B-Chat",),
}


def make_tokenizer(family: str) -> Any:
    """A tiny fast tokenizer with ``family``'s special tokens and chat template (offline, ~0.1 s)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    template, bos, eos, others, adds_bos = FAMILIES[family]
    specials = [t for t in (bos, eos, *others) if t]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(["How do I sort a list?", "The capital of France is Paris."], trainer=trainer)
    if adds_bos and bos:
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A",
                                                           special_tokens=[(bos, tok.token_to_id(bos))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos,
                                   additional_special_tokens=[t for t in others])
    fast.chat_template = template
    return fast
