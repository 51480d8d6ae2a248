"""Local transformers backend: ``hf:<hub id or local path>[?device=cpu&dtype=float32]``.

Loads the tokenizer and an ``AutoModelForCausalLM`` once, then answers requests in ONE worker thread,
one request at a time (an anyio ``CapacityLimiter(1)`` owned by the backend), so the event loop is never
blocked and concurrent requests queue instead of competing for the CPU/GPU.

Decoding is a plain KV-cached loop rather than ``model.generate`` so that every piece a method may rely on
is explicit and testable:

- chat requests go through ``tokenizer.apply_chat_template(add_generation_prompt=True)``; raw ``prompt``
  requests are tokenized as given (a BOS is added only if the tokenizer adds one and the prompt does not
  already start with it — Magpie's pre-query templates carry their own);
- ``temperature`` ``None`` or ``0`` is greedy; otherwise temperature + nucleus (``top_p``) sampling from a
  ``torch.Generator`` seeded with ``(seed if not None else 0) + sample_index``: the same request gives the
  same sample, a different ``sample_index`` gives a different one; the ``n`` samples of one request are
  the rows of one batch drawn from that generator;
- logprobs are ``log_softmax`` of the model's raw logits (before temperature/top-p, like vLLM's default
  ``raw_logprobs``), with ``top_logprobs`` alternatives;
- ``stop`` strings truncate the text at the earliest stop (finish reason ``"stop"``, also for EOS);
  reaching ``max_tokens`` gives ``"length"``.

ECO (arXiv 2406.07933, §3) needs the prompt embeddings: :attr:`HFBackend.embedding_layer`,
:meth:`HFBackend.tokenize` and :meth:`HFBackend.input_embedding_hook` (a forward hook on the
input-embedding module, removed on exit — only *our* hook, unlike the official ``remove_hooks`` that
clears every hook on the model).

Tools: when the tokenizer's chat template takes ``tools`` (it refers to them, as Qwen2.5, Llama 3.1+,
Hermes and Mistral templates do), tool definitions are rendered by the template itself
(``apply_chat_template(tools=[...])``), assistant tool calls and ``tool`` result messages are passed in
the transformers message format, and tool calls are parsed from the reply (:func:`parse_tool_calls`:
``<tool_call>{...}</tool_call>`` blocks, a bare JSON call or list of calls, Llama's ``<|python_tag|>`` and
Mistral's ``[TOOL_CALLS]`` prefixes; only calls to a tool of the request count, and their text is removed
from the reply). A template without tools raises :class:`UnsupportedFeatureError` for a request with
tools. Images are refused (``capabilities.images`` is False: a causal LM takes no pixels). A schema in
``response_format`` is not enforced here (``structured_output`` is False): the Model checks the reply
and asks again.

Deviations: ``tool_choice`` cannot force a call in free decoding: ``"none"`` leaves the tools out of the
prompt and parses nothing, a named function keeps only that tool, ``"required"`` is treated as
``"auto"``. ``request.timeout`` is ignored (a local forward pass cannot be abandoned half-way); usage
counts every generated token of every sample, including the EOS token and tokens past a stop string.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread

from llmlab.backends.base import (
    Backend,
    Capabilities,
    GenerateRequest,
    GenerateResponse,
    Message,
    TokenLogprob,
    Tool,
    ToolCall,
    Usage,
)
from llmlab.core.errors import (
    ConfigError,
    ContextWindowExceededError,
    MissingExtraError,
    UnsupportedFeatureError,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 256
"""New tokens when a request leaves ``max_tokens`` unset (capped by the context window)."""

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_DTYPES = ("auto", "float32", "float16", "bfloat16")
_OPTIONS = ("device", "dtype")


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingExtraError("torch", "torch", "the hf backend") from None
    return torch


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise MissingExtraError("transformers", "hf", "the hf backend") from None
    return transformers


def _offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(k, "").strip().lower() in truthy for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (``HF_ENDPOINT`` or huggingface.co) answers a TCP connect in ``timeout`` s.

    A quick probe instead of letting transformers wait out its retries (~50 s) on a machine without network.
    """
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    got = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(got, str)


def parse_hf_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``<id or path>[?device=..&dtype=..]`` and validate the options.

    Args:
        spec: The part of the model spec after ``hf:``.

    Returns:
        The model id/path and the options.

    Raises:
        ConfigError: An empty model, an unknown option or an unknown dtype.
    """
    body, _, query = spec.partition("?")
    body = body.strip()
    if not body:
        raise ConfigError("hf spec needs a model: hf:<hub id or local path>[?device=cpu&dtype=float32]")
    opts = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(opts) - set(_OPTIONS))
    if unknown:
        raise ConfigError(f"hf spec '{spec}': unknown option(s) {unknown}; allowed: {', '.join(_OPTIONS)}")
    if "dtype" in opts and opts["dtype"] not in _DTYPES:
        raise ConfigError(f"hf spec '{spec}': dtype must be one of {', '.join(_DTYPES)}, got '{opts['dtype']}'")
    return body, opts


def resolve_model_source(name: str) -> tuple[str, bool]:
    """Decide whether ``name`` is a local folder or a hub id.

    Returns:
        ``(source, is_local)``; a local source is an absolute path.

    Raises:
        ConfigError: ``name`` is neither an existing folder nor a valid hub id (or is a file).
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve()), True
    if path.exists():
        raise ConfigError(f"hf model path '{name}' is a file; give the folder written by save_pretrained")
    looks_local = name.startswith(("/", "./", "../", "~")) or name.startswith(".") or os.sep + os.sep in name
    if looks_local or not _HUB_ID.match(name):
        raise ConfigError(
            f"hf model '{name}' is neither an existing folder nor a valid hub id (like 'Qwen/Qwen2.5-0.5B-Instruct'); "
            "check the path"
        )
    return name, False


class HFBackend(Backend):
    """A local transformers causal LM behind the backend contract.

    Args:
        model: Hub id or local folder (as written by ``save_pretrained``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; default CUDA when available, else CPU.
        dtype: ``"float32"`` (default on CPU), ``"float16"``, ``"bfloat16"`` or ``"auto"`` (the
            checkpoint's; default on GPU).

    Raises:
        ConfigError: Bad path/id, or the model is not cached while offline, or it fails to load.
        MissingExtraError: torch or transformers is not installed.

    Example:
        >>> b = HFBackend.from_spec("/path/to/model?device=cpu")  # doctest: +SKIP
        >>> run_sync(b.generate(GenerateRequest(prompt="Once upon", max_tokens=8))).text  # doctest: +SKIP
    """

    name: ClassVar[str] = "hf"

    def __init__(self, model: str, *, device: str | None = None, dtype: str | None = None) -> None:
        source, is_local = resolve_model_source(model)
        # decide about the hub before importing torch/transformers, so an unreachable hub is one quick line
        hub_down = not is_local and not _offline() and not hub_reachable()
        if hub_down and not _in_hub_cache(source):
            raise ConfigError(
                f"hf model '{model}' is not in the local Hugging Face cache and the hub is unreachable from "
                "this machine; pass a local folder (hf:/path/to/model) or download it once with network"
            )
        torch = _import_torch()
        transformers = _import_transformers()
        self.model = model
        self.source = source
        self.device = device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype if dtype is not None else ("float32" if self.device == "cpu" else "auto")
        torch_dtype = "auto" if self.dtype == "auto" else getattr(torch, self.dtype)
        local_only = _offline() or hub_down  # cached and the hub is down: load it without waiting on the hub
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=local_only)
            self.hf_model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype,
                                                                              local_files_only=local_only)
        except OSError as exc:
            raise self._load_error(model, is_local, exc) from None
        except (ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"hf model '{model}' could not be loaded as a causal LM: {first}") from None
        try:
            self.hf_model.to(self.device)
        except (RuntimeError, AssertionError) as exc:
            raise ConfigError(f"hf model '{model}': cannot use device '{self.device}' ({exc})") from None
        self.hf_model.eval()
        self._eos_ids = self._find_eos_ids()
        params = inspect.signature(self.hf_model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._has_logits_to_keep = "logits_to_keep" in params
        self.capabilities = Capabilities(
            chat=self.has_chat_template,
            raw_completion=True,
            native_n=True,
            logprobs=True,
            tokenize=True,
            embeddings=True,
            context_length=self._context_length(),
            tools=self.template_takes_tools,
        )
        self._limiter = anyio.CapacityLimiter(1)
        self._hook_lock = threading.Lock()

    @staticmethod
    def _load_error(model: str, is_local: bool, exc: OSError) -> ConfigError:
        lines = str(exc).strip().splitlines()
        first = lines[0] if lines else type(exc).__name__
        if is_local:
            return ConfigError(f"hf model folder '{model}' could not be loaded: {first}")
        if _offline():
            return ConfigError(
                f"hf model '{model}' is neither a local folder nor in the local Hugging Face cache, and offline "
                "mode is on (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE); download it once with network access or pass "
                "a local path"
            )
        return ConfigError(
            f"hf model '{model}' could not be fetched from the Hugging Face Hub ({first}); "
            "check the id, your network, or pass a local path"
        )

    @classmethod
    def from_spec(cls, spec: str) -> HFBackend:
        """Build from ``<hub id or local path>[?device=cpu&dtype=float32]``."""
        body, opts = parse_hf_spec(spec)
        return cls(body, device=opts.get("device"), dtype=opts.get("dtype"))

    # -- introspection -----------------------------------------------------------------------------

    @property
    def has_chat_template(self) -> bool:
        return getattr(self.tokenizer, "chat_template", None) is not None

    @property
    def template_takes_tools(self) -> bool:
        """Whether the chat template renders tool definitions (it refers to ``tools``)."""
        template = getattr(self.tokenizer, "chat_template", None)
        if isinstance(template, dict):  # named templates: transformers picks "tool_use" when tools are given
            return "tool_use" in template or any("tools" in str(t) for t in template.values())
        return isinstance(template, str) and re.search(r"\btools\b", template) is not None

    def _context_length(self) -> int | None:
        cfg = self.hf_model.config
        cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
            value = getattr(cfg, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def _find_eos_ids(self) -> set[int]:
        ids: set[int] = set()
        gen_eos = getattr(getattr(self.hf_model, "generation_config", None), "eos_token_id", None)
        for value in (gen_eos, self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return ids

    def cache_identity(self) -> str:
        """Kind, model and dtype (a different dtype gives different outputs)."""
        return f"{self.name}:{self.model}?dtype={self.dtype}"

    # -- tokens ------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens added."""
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return list(ids)

    def prompt_ids(self, request: GenerateRequest) -> list[int]:
        """The exact token ids the model will see for ``request``.

        Raises:
            UnsupportedFeatureError: A chat request to a tokenizer without a chat template.
        """
        if request.prompt is not None:
            bos = self.tokenizer.bos_token
            add_special = not (bos is not None and request.prompt.startswith(bos))
            ids: list[int] = self.tokenizer(request.prompt, add_special_tokens=add_special)["input_ids"]
            return list(ids)
        assert request.messages is not None
        if not self.has_chat_template:
            raise UnsupportedFeatureError(
                f"hf model '{self.model}' has no chat template; send a raw `prompt` instead of messages, "
                "or use a chat/instruct model"
            )
        kwargs: dict[str, Any] = {}
        tools = offered_tools(request)
        if tools:
            kwargs["tools"] = [t.to_openai() for t in tools]
        text = self.tokenizer.apply_chat_template(
            [hf_message(m) for m in request.messages],
            add_generation_prompt=True,
            tokenize=False,
            **kwargs,
        )
        # The template already contains any BOS it wants.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, request: GenerateRequest) -> int:
        """Exact prompt tokens (chat template applied)."""
        return len(self.prompt_ids(request))

    def check(self, request: GenerateRequest) -> None:
        """Also reject chat requests when the tokenizer has no chat template, and bad sampling values."""
        takes_tools = self.template_takes_tools  # the template may be set after loading
        if takes_tools != self.capabilities.tools:
            self.capabilities = dataclasses.replace(self.capabilities, tools=takes_tools)
        if request.tools and not takes_tools:
            raise UnsupportedFeatureError(
                f"hf model '{self.model}': its chat template does not render tools; use a tool-calling model "
                "(e.g. Qwen2.5-Instruct, Llama-3.1-Instruct) or serve one with vLLM"
            )
        super().check(request)
        if request.messages is not None and not self.has_chat_template:
            raise UnsupportedFeatureError(
                f"hf model '{self.model}' has no chat template; send a raw `prompt` instead of messages, "
                "or use a chat/instruct model"
            )

        if request.temperature is not None and request.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {request.temperature}")
        if request.top_p is not None and not 0 < request.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {request.top_p}")
        if request.max_tokens is not None and request.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {request.max_tokens}")

    # -- embeddings (ECO) --------------------------------------------------------------------------

    @property
    def embedding_layer(self) -> Any:
        """The model's input-embedding module (``torch.nn.Embedding`` for most models)."""
        return self.hf_model.get_input_embeddings()

    @contextmanager
    def input_embedding_hook(self, fn: Callable[[Any, Any], Any]) -> Iterator[None]:
        """Let ``fn(input_ids, embeds) -> embeds`` rewrite the input embeddings while the block runs.

        The hook sees every forward of the embedding layer: the prefill ``(B, L)`` ids with ``(B, L, D)``
        embeddings, then each decode step with ``L == 1`` (ECO corrupts only when ``L > 1``). Returning
        ``None`` keeps the embeddings. It applies to every generation that runs while installed, and only
        this hook is removed on exit.

        Args:
            fn: ``(input_ids (B, L), embeds (B, L, D)) -> embeds (B, L, D) | None``.
        """

        def _hook(module: Any, args: tuple[Any, ...], output: Any) -> Any:
            input_ids = args[0] if args else None
            return fn(input_ids, output)

        with self._hook_lock:
            handle = self.embedding_layer.register_forward_hook(_hook)
        try:
            yield
        finally:
            handle.remove()

    # -- generation --------------------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        """Run ``request`` in the backend's single worker thread (requests queue, one at a time)."""
        self.check(request)
        response = await anyio.to_thread.run_sync(self._generate_sync, request, limiter=self._limiter)
        return with_tool_calls(request, response)

    def _max_new_tokens(self, prompt_len: int, request: GenerateRequest) -> int:
        ctx = self.capabilities.context_length
        if request.max_tokens is not None:
            if ctx is not None and prompt_len + request.max_tokens > ctx:
                raise ContextWindowExceededError(prompt_len, request.max_tokens, ctx)
            return request.max_tokens
        if ctx is None:
            return DEFAULT_MAX_TOKENS
        if prompt_len >= ctx:
            raise ContextWindowExceededError(prompt_len, 1, ctx)
        return min(DEFAULT_MAX_TOKENS, ctx - prompt_len)

    def _generate_sync(self, request: GenerateRequest) -> GenerateResponse:
        torch = _import_torch()
        prompt = self.prompt_ids(request)
        if not prompt:
            raise ConfigError("the prompt is empty after tokenization; give some text")
        max_new = self._max_new_tokens(len(prompt), request)
        greedy = request.temperature is None or request.temperature == 0
        generator = None
        if not greedy:
            generator = torch.Generator(device=self.device)
            generator.manual_seed((request.seed if request.seed is not None else 0) + request.sample_index)
        n = request.n
        want_top = request.top_logprobs if request.logprobs else 0

        tokens: list[list[int]] = [[] for _ in range(n)]
        chosen_lp: list[list[float]] = [[] for _ in range(n)]
        top_lp: list[list[list[tuple[int, float]]]] = [[] for _ in range(n)]
        finish: list[str | None] = [None] * n
        cut: list[int | None] = [None] * n  # character index of the earliest stop string

        with torch.inference_mode():
            ids = torch.tensor([prompt] * n, dtype=torch.long, device=self.device)  # (n, L)
            logits, past = self._forward(ids, None)  # (n, V)
            for _step in range(max_new):
                logp = torch.log_softmax(logits, dim=-1)  # (n, V)
                # (n,) next tokens
                nxt = torch.argmax(logits, dim=-1) if greedy else self._sample(torch, logits, request, generator)
                if want_top:
                    top_vals, top_ids = torch.topk(logp, k=min(want_top, logp.shape[-1]), dim=-1)
                nxt_list = nxt.tolist()
                chosen = logp.gather(-1, nxt[:, None])[:, 0].tolist()
                for i in range(n):
                    if finish[i] is not None:
                        continue
                    tok = nxt_list[i]
                    tokens[i].append(tok)
                    chosen_lp[i].append(chosen[i])
                    if want_top:
                        top_lp[i].append(list(zip(top_ids[i].tolist(), top_vals[i].tolist(), strict=True)))
                    if tok in self._eos_ids:
                        finish[i] = "stop"
                    elif request.stop:
                        cut[i] = self._find_stop(tokens[i], request.stop)
                        if cut[i] is not None:
                            finish[i] = "stop"
                if all(f is not None for f in finish):
                    break
                logits, past = self._forward(nxt[:, None], past)

        texts: list[str] = []
        reasons: list[str] = []
        logprobs: list[list[TokenLogprob]] = []
        for i in range(n):
            body = tokens[i][:-1] if tokens[i] and tokens[i][-1] in self._eos_ids else tokens[i]
            text = self._decode(body)
            keep = len(body)
            cut_at = cut[i]
            if cut_at is not None:
                text = text[:cut_at]
                keep = self._tokens_within(body, cut_at)
            texts.append(text)
            reason = finish[i]
            reasons.append(reason if reason is not None else "length")
            if request.logprobs:
                logprobs.append([
                    TokenLogprob(
                        token=self.token_str(tok),
                        logprob=chosen_lp[i][k],
                        top=self._top_dict(top_lp[i][k]) if want_top else {},
                    )
                    for k, tok in enumerate(body[:keep])
                ])
        usage = Usage(prompt_tokens=len(prompt), completion_tokens=sum(len(t) for t in tokens))
        return GenerateResponse(
            texts=texts,
            finish_reasons=reasons,
            usage=usage,
            logprobs=logprobs if request.logprobs else None,
            model=self.model,
        )

    def _forward(self, ids: Any, past: Any) -> tuple[Any, Any]:
        """One KV-cached forward; returns the last position's float logits ``(B, V)`` and the cache.

        transformers renamed ``past_key_values`` to ``cache`` in 5.x; both spellings are supported.
        """
        kwargs: dict[str, Any] = {"input_ids": ids, "use_cache": True}
        if past is not None:
            kwargs[self._cache_arg] = past
        if self._has_logits_to_keep:
            kwargs["logits_to_keep"] = 1
        out = self.hf_model(**kwargs)
        cache = getattr(out, "cache", None)
        if cache is None:
            cache = getattr(out, "past_key_values", None)
        return out.logits[:, -1, :].float(), cache

    @staticmethod
    def _sample(torch: Any, logits: Any, request: GenerateRequest, generator: Any) -> Any:
        assert request.temperature is not None
        probs = torch.softmax(logits / request.temperature, dim=-1)  # (n, V)
        top_p = request.top_p if request.top_p is not None else 1.0
        if top_p < 1.0:
            sorted_p, order = torch.sort(probs, dim=-1, descending=True)
            # Keep the smallest prefix whose mass reaches top_p (the token crossing it included).
            drop = (torch.cumsum(sorted_p, dim=-1) - sorted_p) >= top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        return torch.multinomial(probs, 1, generator=generator)[:, 0]  # (n,)

    def _decode(self, ids: list[int]) -> str:
        text: str = self.tokenizer.decode(ids, skip_special_tokens=True)
        return text

    def _find_stop(self, ids: list[int], stops: tuple[str, ...]) -> int | None:
        text = self._decode(ids)
        hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
        return min(hits) if hits else None

    def _tokens_within(self, ids: list[int], cut: int) -> int:
        """How many leading tokens contribute text before character ``cut``."""
        for j in range(len(ids)):
            if len(self._decode(ids[:j])) >= cut:
                return j
        return len(ids)

    def token_str(self, token_id: int) -> str:
        """A token's text; a token holding only part of a UTF-8 character gets its raw vocabulary symbol.

        Byte-level BPE tokens that are not whole characters all decode to U+FFFD, which would collide as
        ``top_logprobs`` keys; their vocabulary symbols are distinct.
        """
        text: str = self.tokenizer.decode([token_id])
        if "\ufffd" in text:
            sym = self.tokenizer.convert_ids_to_tokens(token_id)
            return sym if isinstance(sym, str) else text
        return text

    def _top_dict(self, pairs: list[tuple[int, float]]) -> dict[str, float]:
        top: dict[str, float] = {}
        for tok, lp in pairs:
            top.setdefault(self.token_str(tok), lp)
        return top


# -- tools -----------------------------------------------------------------------------------------

def offered_tools(request: GenerateRequest) -> tuple[Tool, ...]:
    """The tools put in the prompt: none for ``tool_choice="none"``, only the named one for a function choice."""
    if not request.tools or request.tool_choice == "none":
        return ()
    choice = request.tool_choice
    if isinstance(choice, dict):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if isinstance(name, str):
            return tuple(t for t in request.tools if t.name == name)
    return request.tools


def hf_message(m: Message) -> dict[str, Any]:
    """A message in the transformers chat-template format (tool calls with dict arguments)."""
    d: dict[str, Any] = {"role": m.role, "content": m.text}
    if m.tool_calls:
        calls = []
        for c in m.tool_calls:
            try:
                args: Any = c.parsed_arguments()
            except Exception:  # keep what the model wrote when it is not an object
                args = c.arguments
            calls.append({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": args}})
        d["tool_calls"] = calls
    if m.tool_call_id is not None:
        d["tool_call_id"] = m.tool_call_id
    if m.name is not None:
        d["name"] = m.name
    return d


_TOOL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_PREFIXES = ("<|python_tag|>", "[TOOL_CALLS]")


def _as_calls(value: Any) -> list[dict[str, Any]] | None:
    items = value if isinstance(value, list) else [value]
    calls = []
    for v in items:
        if not isinstance(v, dict) or not isinstance(v.get("name"), str):
            return None
        args = v.get("arguments", v.get("parameters", {}))
        calls.append({"name": v["name"], "arguments": args})
    return calls


def parse_tool_calls(text: str, names: set[str], prefix: str = "call") -> tuple[str, list[ToolCall]]:
    """Tool calls written in a reply, and the reply with them removed.

    Recognised: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks (Hermes, Qwen2.5; an
    unclosed last block too), or the whole reply being one JSON call or a list of calls (Llama 3.1's
    ``{"name": ..., "parameters": ...}``), optionally after ``<|python_tag|>`` or ``[TOOL_CALLS]``. A call
    to a name not in ``names`` is not a call (the text is kept).

    Example:
        >>> rest, calls = parse_tool_calls('Sure.<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>',
        ...                                {"add"})
        >>> rest, calls[0].name, calls[0].arguments
        ('Sure.', 'add', '{"a": 1}')
    """
    found: list[dict[str, Any]] = []
    rest = text
    if "<tool_call>" in text:
        kept = []
        for m in _TOOL_BLOCK.finditer(text):
            try:
                calls = _as_calls(json.loads(m.group(1)))
            except json.JSONDecodeError:
                calls = None
            if calls and all(c["name"] in names for c in calls):
                found += calls
                kept.append(m.span())
        for start, end in reversed(kept):
            rest = rest[:start] + rest[end:]
    else:
        body = text.strip()
        for p in _PREFIXES:
            if body.startswith(p):
                body = body[len(p):].strip()
        if body.startswith(("{", "[")):
            try:
                calls = _as_calls(json.loads(body))
            except json.JSONDecodeError:
                calls = None
            if calls and all(c["name"] in names for c in calls):
                found, rest = calls, ""
    out = [ToolCall(f"{prefix}_{k}", c["name"],
                    c["arguments"] if isinstance(c["arguments"], str) else json.dumps(c["arguments"]))
           for k, c in enumerate(found)]
    return rest.strip() if out else text, out


def with_tool_calls(request: GenerateRequest, response: GenerateResponse) -> GenerateResponse:
    """Move the tool calls written in each choice's text into ``response.tool_calls`` (finish ``tool_calls``)."""
    tools = offered_tools(request)
    if not tools:
        return response
    names = {t.name for t in tools}
    all_calls: list[list[ToolCall]] = []
    for i, text in enumerate(response.texts):
        rest, calls = parse_tool_calls(text, names, prefix=f"call_{request.sample_index}_{i}")
        all_calls.append(calls)
        if calls:
            response.texts[i] = rest
            response.finish_reasons[i] = "tool_calls"
    if any(all_calls):
        response.tool_calls = all_calls
    return response
