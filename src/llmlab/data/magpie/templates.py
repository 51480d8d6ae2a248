r"""Magpie pre-query templates: read from the official model config, or derived from a chat template.

A *pre-query template* is the left part of a chat template up to where the user's text would begin
(Llama-3: ``<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n``). The official
``configs/model_configs.json`` (magpie-align/magpie) holds it for 34 models, with stop tokens and the
variants (generic system prompt, math/code/translation system prompts, the multi-turn append template);
:func:`load_model_configs` reads that file as data. For any other model, :func:`derive_template`
renders the tokenizer's own chat template around a sentinel user message and cuts at the sentinel.

Derivation rules (where they meet the file, and where the file chose otherwise):

- the template is rendered with ``add_generation_prompt=False``; the text before the sentinel is the
  pre-query template, so a template that inserts a default system prompt (Qwen2.5, Qwen2) keeps it —
  the fix of magpie issue #28. The file drops Qwen2's ("You are a helpful assistant.") but keeps
  Qwen2.5's; Gemma-2's file entry ends with ``\n\n`` where the template writes ``\n``; both are the
  official choices, and the file wins when a model is in it;
- a BOS the tokenizer adds on encoding but the template does not write is prepended (Yi, Phi-3);
- :func:`same_template` ignores one space after the BOS, which the file's SentencePiece entries carry
  (``<s> [INST] ``: a decoding artifact; ``<s>[INST]`` tokenizes the same);
- stop tokens: every special token the rendered turns contain, except the BOS, plus the EOS;
- ``mt_append_template``: what a third (user) message adds after a user/assistant exchange, up to its
  text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llmlab.core.errors import ConfigError, DataError, UnsupportedFeatureError

SENTINEL = "MAGPIESENTINELQUERY"
VARIANTS = ("default", "system", "math", "code", "translation")
# The file's key per variant.
_VARIANT_KEYS = {
    "default": "pre_query_template",
    "system": "pre_query_template_with_system_prompt",
    "math": "pre_query_template_math",
    "code": "pre_query_template_code",
    "translation": "pre_query_template_translation",
}
# System prompts of the variants, for templates derived from a tokenizer (paper §4 task control; the
# official config writes them into the Llama-3 templates).
SYSTEM_PROMPTS = {
    "system": "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
              "helpful, detailed, and polite answers to the user's questions.",
    "math": "You are an AI assistant designed to provide helpful, step-by-step guidance on solving math "
            "problems. The user will ask you a wide range of complex mathematical questions.\nYour purpose is "
            "to assist users in understanding mathematical concepts, working through equations, and arriving "
            "at the correct solutions.",
    "code": "You are an AI assistant designed to provide helpful, step-by-step guidance on coding problems. The "
            "user will ask you a wide range of coding questions.\nYour purpose is to assist users in "
            "understanding coding concepts, working through code, and arriving at the correct solutions.",
    "translation": "You are an AI assistant specifically designed to provide accurate and contextually "
                   "appropriate translations. Users will ask you to translate text between various "
                   "languages.\nYour purpose is to assist users in understanding and conveying meaning across "
                   "languages, maintaining the original context and nuances.",
}
# Multi-turn: the system prompt of the follow-up instruction stage (gen_mt.py; its "Al" typo fixed).
MT_SYSTEM_PROMPT = (
    "You are a helpful AI assistant. The user will engage in a multi-round conversation with you, asking "
    "initial questions and following up with additional related questions. Your goal is to provide thorough, "
    "relevant and insightful responses to help the user with their queries."
)


@dataclass(frozen=True)
class MagpieTemplate:
    """One model's Magpie templates and stop tokens.

    Attributes:
        model: The model id it is for.
        pre_query: Template per variant (``default`` always; others where known).
        stop_tokens: Strings that end a generated instruction (end-of-turn, headers, EOS).
        stop_token_ids: Their ids, where known.
        stop_tokens_assistant: Role words a model may write when it drifts into the reply (official: added
            to the instruction stage's stops).
        mt_append: What follows an exchange to open the next user turn (multi-turn), if known.
        source: ``"config"`` (the official file) or ``"tokenizer"`` (derived).
    """

    model: str
    pre_query: dict[str, str]
    stop_tokens: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    stop_tokens_assistant: tuple[str, ...] = ()
    mt_append: str | None = None
    source: str = "config"
    extra: dict[str, Any] = field(default_factory=dict)

    def prompt(self, variant: str = "default") -> str:
        """The pre-query template of ``variant``.

        Raises:
            ConfigError: The variant is unknown or this model has no template for it.
        """
        if variant not in VARIANTS:
            raise ConfigError(f"template variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if variant not in self.pre_query:
            have = ", ".join(v for v in VARIANTS if v in self.pre_query)
            raise ConfigError(f"model {self.model} has no '{variant}' pre-query template (it has: {have}); "
                              "pass --tokenizer DIR to derive one from its chat template")
        return self.pre_query[variant]

    def instruction_stops(self, early_stopping: bool = True) -> tuple[str, ...]:
        r"""Stops of the instruction stage: stop tokens + assistant role words (+ ``\n`` when early stopping)."""
        stops = [*self.stop_tokens, *self.stop_tokens_assistant]
        if early_stopping:
            stops.append("\n")
        return tuple(dict.fromkeys(s for s in stops if s))


def load_model_configs(path: str | Path | None = None, *,
                       data_dir: str | Path | None = None) -> dict[str, MagpieTemplate]:
    """Read the official ``model_configs.json`` (the ``magpie`` dataset) into templates by model id.

    Args:
        path: An explicit file; default: ``magpie/configs/model_configs.json`` from the data lookup.
        data_dir: The data folder for the lookup (``--data-dir``).

    Raises:
        DataError: The file is missing or not the expected JSON object.
    """
    if path is None:
        from llmlab.core.data import find_data

        path = find_data("magpie", "configs", "model_configs.json", data_dir=data_dir)
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{p}: cannot read the Magpie model configs ({exc})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{p}: expected a JSON object keyed by model id")
    out: dict[str, MagpieTemplate] = {}
    for model, cfg in raw.items():
        if not isinstance(cfg, dict) or not isinstance(cfg.get("pre_query_template"), str):
            raise DataError(f"{p}: entry {model!r} has no 'pre_query_template' string")
        pre = {v: cfg[k] for v, k in _VARIANT_KEYS.items() if isinstance(cfg.get(k), str)}
        out[model] = MagpieTemplate(
            model=model,
            pre_query=pre,
            stop_tokens=tuple(cfg.get("stop_tokens") or ()),
            stop_token_ids=tuple(cfg.get("stop_token_ids") or ()),
            stop_tokens_assistant=tuple(cfg.get("stop_tokens_assistant") or ()),
            mt_append=cfg.get("mt_append_template"),
            source="config",
        )
    return out


def _render(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    except Exception as exc:  # jinja's raise_exception (e.g. "System role not supported") and template errors
        roles = [m["role"] for m in messages]
        raise UnsupportedFeatureError(f"the chat template cannot render {roles}: {exc}") from None
    return str(text)


def _bos_added(tokenizer: Any) -> str | None:
    """The BOS text the tokenizer adds on encoding, or None."""
    bos, bos_id = getattr(tokenizer, "bos_token", None), getattr(tokenizer, "bos_token_id", None)
    if not bos or bos_id is None:
        return None
    ids = tokenizer("a")["input_ids"]
    return str(bos) if ids and ids[0] == bos_id else None


def _prefix(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    text = _render(tokenizer, messages)
    at = text.find(SENTINEL)
    if at < 0:
        raise UnsupportedFeatureError("the chat template drops the user's text; cannot find where the query begins")
    pre = text[:at]
    bos = _bos_added(tokenizer)
    if bos is not None and not pre.startswith(bos):
        pre = bos + pre
    return pre


def derive_template(tokenizer: Any, model: str = "", *, variants: tuple[str, ...] = VARIANTS) -> MagpieTemplate:
    r"""Derive a model's Magpie templates from its tokenizer's chat template.

    Args:
        tokenizer: A transformers tokenizer with ``chat_template`` set.
        model: The model id (for messages and the record).
        variants: Variants to derive; a variant whose system message the template refuses is left out.

    Returns:
        The templates (``source="tokenizer"``).

    Raises:
        UnsupportedFeatureError: The tokenizer has no chat template, or it hides the user's text.

    Example:
        >>> derive_template(tok).prompt()  # doctest: +SKIP
        '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n'
    """
    if getattr(tokenizer, "chat_template", None) is None:
        raise UnsupportedFeatureError(f"tokenizer of {model or 'this model'} has no chat template; a Magpie "
                                      "pre-query template cannot be derived")
    user = {"role": "user", "content": SENTINEL}
    pre: dict[str, str] = {"default": _prefix(tokenizer, [user])}
    for v in variants:
        if v == "default":
            continue
        try:
            pre[v] = _prefix(tokenizer, [{"role": "system", "content": SYSTEM_PROMPTS[v]}, user])
        except UnsupportedFeatureError:
            continue  # e.g. Gemma refuses a system role
    mt_append: str | None = None
    try:
        exchange = [{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"}]
        head = _render(tokenizer, exchange)
        full = _render(tokenizer, [*exchange, user])
        if full.startswith(head) and SENTINEL in full:
            mt_append = full[len(head):full.index(SENTINEL)]
    except UnsupportedFeatureError:
        mt_append = None
    # Stop tokens: the special tokens the turns are written with (the BOS excepted) and the EOS.
    convo = _render(tokenizer, [{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"}])
    bos = getattr(tokenizer, "bos_token", None)
    specials = [t for t in getattr(tokenizer, "all_special_tokens", []) if t and t != bos]
    added = [str(t) for t in getattr(tokenizer, "get_added_vocab", dict)() if t != bos]
    seen = [t for t in dict.fromkeys([*specials, *added]) if t in convo]
    eos = getattr(tokenizer, "eos_token", None)
    stops = tuple(dict.fromkeys([*sorted(seen, key=convo.find), *([str(eos)] if eos else [])]))
    ids = tuple(int(tokenizer.convert_tokens_to_ids(t)) for t in stops)
    return MagpieTemplate(model=model, pre_query=pre, stop_tokens=stops, stop_token_ids=ids,
                          stop_tokens_assistant=("assistant",), mt_append=mt_append, source="tokenizer")


def same_template(a: str, b: str, bos: str | None = None) -> bool:
    """Whether two pre-query templates are the same, ignoring one space after ``bos`` (see the module doc)."""

    def norm(s: str) -> str:
        return bos + s[len(bos) + 1:] if bos and s.startswith(bos + " ") else s

    return norm(a) == norm(b)


def resolve_template(model: str, *, configs: dict[str, MagpieTemplate] | None = None, tokenizer: Any = None,
                     template_model: str | None = None, data_dir: str | Path | None = None) -> MagpieTemplate:
    """The templates for ``model``: the official file's entry, else derived from ``tokenizer``.

    Args:
        model: The served model's name (an hf path or an openai model name).
        configs: The loaded file (default: :func:`load_model_configs`; not read when ``tokenizer`` decides).
        tokenizer: A tokenizer to derive from when the file has no entry.
        template_model: Use this file entry instead of ``model``'s (a model served under another name).
        data_dir: For the file lookup.

    Raises:
        ConfigError: ``template_model`` is not in the file, or neither the file nor a tokenizer has the model.
    """
    key = template_model if template_model is not None else model
    if configs is None:
        try:
            configs = load_model_configs(data_dir=data_dir)
        except DataError:
            if template_model is not None or tokenizer is None:
                raise
            configs = {}
    if key in configs:
        return configs[key]
    # The file is keyed by hub id; a served name is often only its last part.
    tails = [m for m in configs if m.split("/")[-1] == key.split("/")[-1]]
    if template_model is None and len(tails) == 1:
        return configs[tails[0]]
    if template_model is not None:
        raise ConfigError(f"--template {template_model!r} is not in model_configs.json; choose one of: "
                          f"{', '.join(sorted(configs))}")
    if tokenizer is not None:
        return replace(derive_template(tokenizer, model), model=model)
    raise ConfigError(f"no Magpie template for model {model!r}: it is not in model_configs.json ({len(configs)} "
                      "models); pass --template MODEL_ID (a file entry) or --tokenizer DIR (derive it from its "
                      "chat template)")
