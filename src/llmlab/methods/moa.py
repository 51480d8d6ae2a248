r"""Mixture-of-Agents Enhances Large Language Model Capabilities (Wang et al., arXiv 2406.04692).

Implements §2.2 of the paper (the layered MoA structure: layer ``i`` output =
``⊕ A_{i,j}(x_i) + x_1``, where ``⊕`` is the Aggregate-and-Synthesize prompt) and the presets of §3:
MoA (3 layers, the same proposers in each layer, one aggregator), MoA-Lite (2 layers), and the
paper's single-proposer ablation (one model sampled ``n`` times per layer, which is also the
"Self-MoA" of Li et al., arXiv 2502.00674).

Structure, as in the official code (togethercomputer/MoA ``utils.py``, ``generate_for_alpaca_eval.py``):

- ``L`` layers = ``L - 1`` proposer layers + one aggregator; each proposer of layer ``k`` sees the
  outputs of layer ``k - 1`` injected with the same Aggregate-and-Synthesize block the aggregator gets
  (there is no separate proposer prompt). Layer 1 sees no references.
- Injection (:func:`inject_references`): one block = the template text followed by ``"\\n{i}. {ref}"``
  for each reference, numbered from 1. It is appended after a blank line to an existing leading system
  message, else prepended as a new system message; user/assistant turns are untouched; multi-turn
  conversations get references for the current turn only.
- Defaults: temperature 0.7, max_tokens 2048 for every call, the aggregator too, whatever the proposers'
  settings (the official AlpacaEval flow keeps 0.7/2048 for the aggregator; ``aggregator_temperature`` /
  ``aggregator_max_tokens`` change it); failed proposers are dropped from the references
  (``on_failure="drop"``); outputs are whitespace-stripped. No request carries a seed unless the run has
  one (``--seed``): distinct proposers use sample index 0 (the openai backend sends a seed only for a seed
  or a sample index > 0); only repeated samples of one model get indices 1, 2, ... (a deliberate deviation:
  without distinct indices a cache or a server that seeds by default would merge them).
- Calls per query: ``n * (L - 1) + 1``.

Deliberate deviations from the official code (and why):

- Proposers of a layer run concurrently (``llmlab.core.concurrency.gather``); the official eval scripts
  call them one after another. Results keep the proposer order, so the references are the same.
- The default template is our own paraphrase of the official prompt (same structure, same
  ``Responses from models:`` label); the text is a config field, so the official wording can be
  supplied verbatim (``-p template=...``). The official text hard-codes "open-source models".
- An empty reference list leaves the messages unchanged inside :func:`inject_references` itself (the
  official ``inject_references_to_messages`` would add an empty block; its caller
  ``generate_with_references`` skips the call instead — same observable result).
- Before the aggregator is called its prompt is counted (``model.count_tokens``) against the model's
  ``capabilities.context_length``; an oversized prompt raises
  :class:`~llmlab.core.errors.ContextWindowExceededError` with the sizes instead of being sent (the
  official code sends it and gets ``None`` back). Proposers of layers ≥ 2 get the same check; for them
  an overflow is a proposer failure handled by ``on_failure``.
- Failure policy is configurable: ``drop`` (official), ``retry`` (re-issue up to ``failure_retries``
  times, then drop) or ``fail`` (raise). It applies to backend errors that outlive the Model stack's
  own retries; user mistakes (config, budget, unsupported feature) always propagate.
- Per-layer proposer lists come from named roles (``layer_roles``); the official scripts use one list
  for every layer. The Together-specific "temperature ≤ 1e-4 → 0" mapping is not copied.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, model_validator

from llmlab.backends.base import GenerateRequest, GenerateResponse, Message
from llmlab.backends.model import Model
from llmlab.core.concurrency import gather
from llmlab.core.config import LabConfig
from llmlab.core.contracts import Query, Roles, Solution
from llmlab.core.errors import BackendError, ConfigError, ContextWindowExceededError
from llmlab.methods.base import Method

# Our paraphrase of the official Aggregate-and-Synthesize prompt; same structure:
# instruction paragraph, then the "Responses from models:" label the numbered references follow.
AGGREGATE_AND_SYNTHESIZE = (
    "Below are responses that several models gave to the most recent user query. Combine them into a "
    "single response of the highest quality. Weigh each one critically, since parts of them may be "
    "wrong or biased. Do not just copy any of them: write a refined, accurate and complete answer to "
    "the instruction that is well organised, coherent and reliable.\n\n"
    "Responses from models:"
)


def inject_references(
    messages: Sequence[Message], references: Sequence[str], template: str = AGGREGATE_AND_SYNTHESIZE
) -> tuple[Message, ...]:
    r"""Inject numbered references into a conversation (the paper's Aggregate-and-Synthesize prompt).

    Args:
        messages: The conversation, ending with the user turn being answered.
        references: The previous layer's responses, in order.
        template: Text placed before the numbered references.

    Returns:
        New messages: the block merged into a leading system message after a blank line, or prepended
        as a new system message. An empty ``references`` returns ``messages`` unchanged.

    Example:
        >>> out = inject_references([Message("user", "hi")], ["a", "b"], template="T")
        >>> out[0].content
        'T\n1. a\n2. b'
    """
    msgs = tuple(messages)
    if not references:
        return msgs
    block = template + "".join(f"\n{i}. {ref}" for i, ref in enumerate(references, start=1))
    if msgs and msgs[0].role == "system":
        return (Message("system", msgs[0].text + "\n\n" + block), *msgs[1:])
    return (Message("system", block), *msgs)


class MoAConfig(LabConfig):
    """Mixture-of-Agents options.

    Attributes:
        layers: ``L`` = proposer layers + 1 aggregator (MoA 3, MoA-Lite 2, 1 = aggregator alone).
        samples_per_model: Distinct samples drawn from each proposer per layer (Self-MoA: n from one model).
        layer_roles: Role name holding each proposer layer's models (length ``L - 1``); default
            ``"proposers"`` for every layer (the role falls back to the main model).
        temperature: Sampling temperature of every proposer call.
        max_tokens: Completion limit of every proposer call.
        aggregator_temperature: Aggregator temperature (official flow: 0.7 whatever ``temperature`` is).
        aggregator_max_tokens: Aggregator limit (official flow: 2048 whatever ``max_tokens`` is).
        template: Text before the numbered references.
        on_failure: ``drop`` a failed proposer (official), ``retry`` it, or ``fail`` the query.
        failure_retries: Extra attempts per proposer with ``on_failure="retry"``.
        concurrency: Most proposer calls of a layer in flight (``None``: all of them).
        strip: Strip whitespace from outputs (the official client does).
    """

    layers: int = Field(3, ge=1)
    samples_per_model: int = Field(1, ge=1)
    layer_roles: list[str] | None = None
    temperature: float | None = 0.7
    max_tokens: int | None = 2048
    aggregator_temperature: float | None = 0.7
    aggregator_max_tokens: int | None = 2048
    template: str = AGGREGATE_AND_SYNTHESIZE
    on_failure: Literal["drop", "retry", "fail"] = "drop"
    failure_retries: int = Field(2, ge=0)
    concurrency: int | None = Field(None, ge=1)
    strip: bool = True

    @model_validator(mode="after")
    def _check_layer_roles(self) -> MoAConfig:
        if self.layer_roles is not None and len(self.layer_roles) != self.layers - 1:
            raise ValueError(
                f"layer_roles names {len(self.layer_roles)} layer(s) but layers={self.layers} has "
                f"{self.layers - 1} proposer layer(s)"
            )
        return self


class MoALiteConfig(MoAConfig):
    """MoA-Lite: 2 layers (one proposer layer, then the aggregator)."""

    layers: int = Field(2, ge=1)


class SelfMoAConfig(MoAConfig):
    """Self-MoA / single-proposer MoA: one proposer layer of 6 samples from one model."""

    layers: int = Field(2, ge=1)
    samples_per_model: int = Field(6, ge=1)


def _usage(resp: GenerateResponse) -> dict[str, int]:
    return {"prompt_tokens": resp.usage.prompt_tokens, "completion_tokens": resp.usage.completion_tokens}


def check_fits(model: Model, request: GenerateRequest, what: str) -> int:
    """Count the prompt tokens of ``request`` and raise if it cannot fit ``model``'s context window.

    Args:
        model: The model that would receive the request.
        request: The request to measure.
        what: Names the prompt in the error message.

    Returns:
        The prompt's token count.

    Raises:
        ContextWindowExceededError: Prompt plus ``max_tokens`` exceed ``capabilities.context_length``.
    """
    n = model.count_tokens(request)
    ctx = model.capabilities.context_length
    budget = request.max_tokens if request.max_tokens is not None else 0
    if ctx is not None and n + budget > ctx:
        raise ContextWindowExceededError(n, budget, ctx, what=what)
    return n


class MixtureOfAgents(Method):
    """Mixture-of-Agents: layers of concurrent proposers, then one aggregator.

    Roles: ``proposers`` (a list; falls back to the main model), ``aggregator`` (falls back to the main
    model), plus any role named in ``layer_roles``.

    Example:
        >>> from llmlab.core.concurrency import run_sync
        >>> moa = MixtureOfAgents({"layers": 2})
        >>> sol = run_sync(moa.solve(Query.from_text("hi"), Roles(Model("mock:echo"))))
        >>> sol.trace["calls"]
        2
    """

    name = "moa"
    Config = MoAConfig

    @property
    def cfg(self) -> MoAConfig:
        assert isinstance(self.config, MoAConfig)
        return self.config

    def layer_models(self, roles: Roles) -> list[list[Model]]:
        """The proposer models of each proposer layer (before ``samples_per_model`` repetition)."""
        cfg = self.cfg
        names = cfg.layer_roles if cfg.layer_roles is not None else ["proposers"] * (cfg.layers - 1)
        out = []
        for name in names:
            models = roles.many(name)
            if not models:
                raise ConfigError(f"MoA role '{name}' holds no models; pass --role {name}=SPEC")
            out.append(models)
        return out

    async def _propose(
        self, model: Model, messages: tuple[Message, ...], sample_index: int, layer: int
    ) -> dict[str, Any]:
        cfg = self.cfg
        request = GenerateRequest(
            messages=messages, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
            sample_index=sample_index,
        )
        attempts = 1 + (cfg.failure_retries if cfg.on_failure == "retry" else 0)
        record: dict[str, Any] = {
            "model": model.name, "sample_index": sample_index, "text": None, "error": None, "usage": None,
            "latency_s": None,
        }
        start = time.perf_counter()
        for attempt in range(1, attempts + 1):
            record["attempts"] = attempt
            try:
                check_fits(model, request, f"MoA layer-{layer} proposer prompt")
                resp = await model.generate(request)
            except ContextWindowExceededError as exc:
                if cfg.on_failure == "fail":
                    raise
                record["error"] = str(exc)
                break  # a resend cannot fit either
            except BackendError as exc:
                if cfg.on_failure == "fail":
                    raise
                record["error"] = f"{type(exc).__name__}: {exc}"
                continue
            text = resp.text.strip() if cfg.strip else resp.text
            record.update(text=text, error=None, usage=_usage(resp), latency_s=resp.latency_s)
            break
        record["wall_s"] = time.perf_counter() - start
        return record

    async def solve(self, query: Query, roles: Roles) -> Solution:
        """Run the proposer layers and the aggregator on ``query``.

        Args:
            query: The conversation (multi-turn allowed); references go to the current turn only.
            roles: ``proposers`` / per-layer roles and ``aggregator``.

        Returns:
            The aggregator's text, the extracted answer, and a trace with every layer's references and
            per-call usage and latency.

        Raises:
            ContextWindowExceededError: The aggregator prompt would not fit its model.
            BackendError: A proposer failed with ``on_failure="fail"``, or the aggregator call failed.
        """
        cfg = self.cfg
        outer = int(query.metadata.get("sample_index", 0))
        messages = tuple(query.messages)
        references: list[str] = []
        trace_layers: list[dict[str, Any]] = []
        for k, models in enumerate(self.layer_models(roles), start=1):
            layer_msgs = inject_references(messages, references, cfg.template)
            # sample index = the agent's occurrence among the layer's agents of the SAME model (offset by the
            # query's own sample index when MoA is itself sampled, e.g. by self_consistency): distinct
            # models keep index 0 — so, as in the official flow, no seed reaches the server — while repeated
            # samples of one model (Self-MoA, a model listed twice) never share a cache key.
            n_s = cfg.samples_per_model
            size = len(models) * n_s
            seen: dict[str, int] = {}
            agents = []
            for m in models:
                key = m.backend.cache_identity()
                for _ in range(n_s):
                    agents.append((m, outer * size + seen.get(key, 0)))
                    seen[key] = seen.get(key, 0) + 1
            start = time.perf_counter()
            thunks = [functools.partial(self._propose, m, layer_msgs, s, k) for m, s in agents]
            records = await gather(thunks, limit=cfg.concurrency)
            trace_layers.append({
                "layer": k,
                "references_in": list(references),
                "calls": records,
                "references_out": [r["text"] for r in records if r["text"] is not None],
                "dropped": sum(r["text"] is None for r in records),
                "wall_s": time.perf_counter() - start,
            })
            references = trace_layers[-1]["references_out"]

        aggregator = roles["aggregator"]
        request = GenerateRequest(
            messages=inject_references(messages, references, cfg.template),
            temperature=cfg.aggregator_temperature,
            max_tokens=cfg.aggregator_max_tokens,
            sample_index=outer,
        )
        prompt_tokens = check_fits(aggregator, request, "MoA aggregator prompt")
        resp = await aggregator.generate(request)
        text = resp.text.strip() if cfg.strip else resp.text
        n_calls = sum(len(layer["calls"]) for layer in trace_layers) + 1
        trace = {
            "layers": trace_layers,
            "aggregator": {
                "model": aggregator.name,
                "references_in": list(references),
                "counted_prompt_tokens": prompt_tokens,
                "text": text,
                "usage": _usage(resp),
                "latency_s": resp.latency_s,
            },
            "calls": n_calls,
        }
        return Solution(text=text, answer=query.extract(text) if query.extract else text, trace=trace)


class MixtureOfAgentsLite(MixtureOfAgents):
    """MoA-Lite (paper §3): 2 layers — one proposer layer, then the aggregator."""

    name = "moa_lite"
    Config = MoALiteConfig


class SelfMixtureOfAgents(MixtureOfAgents):
    """Single-proposer MoA / Self-MoA: one model sampled 6 times (distinct sample indices), aggregated."""

    name = "self_moa"
    Config = SelfMoAConfig
