"""``llmlab doctor --model SPEC``: is the model reachable, is it there, and what does it support?

Checks, in order (later checks are skipped once a required one fails, so the first failure is the one
to fix):

1. ``spec``: the spec has a known ``<backend>:`` prefix;
2. ``backend``: the backend builds (for ``hf`` this loads the model);
3. for ``openai`` specs, per base URL: ``reachable`` (``GET /models`` through the SDK) and ``model``
   (the model is listed; if not, what is listed);
4. ``chat``: a 1-token chat works;
5. ``n=2``, ``logprobs``, ``raw completion``: optional features, probed with 1-token requests;
6. ``context length``: from the backend's capabilities or the server's model listing (vLLM's
   ``max_model_len``).

Required checks (spec, backend, reachable, model, chat) make the command exit non-zero; optional ones
only warn. Each check carries a one-line fix.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import anyio
import anyio.to_thread
import click

from llmlab.backends.base import Backend, GenerateRequest, make_backend
from llmlab.backends.openai_compat import CONTEXT_KEYS, OpenAIBackend, served_entry
from llmlab.core.errors import (
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    LabError,
    MissingExtraError,
)

PROBE_PROMPT = "Reply with the single word OK."
SPEC_HELP = "openai:<model>@<base_url>[,<base_url>...] | hf:<hub id or local path> | mock:<script>"


@dataclass(frozen=True, slots=True)
class Check:
    """One doctor check.

    Attributes:
        name: Short name (``reachable``, ``model``, ``n=2``, ...).
        ok: Whether it passed.
        detail: What was found, one line.
        fix: What to do when it failed, one line (empty when it passed).
        required: A failed required check makes ``llmlab doctor`` exit non-zero; optional ones only warn.
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "FAIL" if self.required else "warn"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, LabError) else first


async def diagnose(spec: str, *, timeout: float = 30.0) -> list[Check]:
    """Run every check for ``spec`` and return them in order.

    Args:
        spec: A model spec string (``openai:...``, ``hf:...``, ``mock:...``).
        timeout: Seconds allowed per network call or probe.

    Returns:
        The checks; a failed required check is the last one returned.

    Example:
        >>> from llmlab.core.concurrency import run_sync
        >>> [c.status for c in run_sync(diagnose("mock:echo"))][:3]
        ['ok', 'ok', 'ok']
    """
    from llmlab.core.registry import BACKENDS

    kind, sep, rest = spec.partition(":")
    if not sep or not kind:
        return [Check("spec", False, f"'{spec}' has no backend prefix", f"use {SPEC_HELP}")]
    if kind not in BACKENDS:
        return [Check("spec", False, f"unknown backend '{kind}' (available: {', '.join(BACKENDS.names())})",
                      f"use {SPEC_HELP}")]
    checks = [Check("spec", True, f"backend '{kind}'")]
    try:
        backend = await anyio.to_thread.run_sync(make_backend, spec)
    except Exception as exc:  # a doctor reports every failure instead of crashing
        if isinstance(exc, MissingExtraError):
            fix = "install the missing package as the message says"
        elif isinstance(exc, LabError):
            fix = f"correct the spec ({SPEC_HELP})"
        else:
            fix = "this looks like a bug or a broken installation; run with -v and report it"
        checks.append(Check("backend", False, _one_line(exc), fix))
        return checks
    try:
        checks.append(Check("backend", True, f"{type(backend).__name__} for '{backend.model}'"))
        checks += await diagnose_backend(backend, timeout=timeout)
    finally:
        await backend.aclose()
    return checks


async def diagnose_backend(backend: Backend, *, timeout: float = 30.0) -> list[Check]:
    """The checks after the backend is built: server checks (openai), then feature probes.

    Args:
        backend: A built backend.
        timeout: Seconds allowed per network call or probe.

    Returns:
        The checks, stopping after the first failed required one.
    """
    checks: list[Check] = []
    listed_context: int | None = None
    if isinstance(backend, OpenAIBackend):
        server_checks, listed_context = await _server_checks(backend, timeout)
        checks += server_checks
        if any(not c.ok and c.required for c in checks):
            return checks
    chat = await _probe_chat(backend, timeout)
    checks.append(chat)
    if not chat.ok and chat.required:
        return checks
    checks.append(await _probe_n(backend, timeout))
    checks.append(await _probe_logprobs(backend, timeout))
    checks.append(await _probe_raw(backend, timeout))
    ctx = backend.capabilities.context_length
    ctx = ctx if ctx is not None else listed_context
    if ctx is not None:
        checks.append(Check("context length", True, f"{ctx} tokens", required=False))
    else:
        checks.append(Check("context length", False, "not reported by the backend or server",
                            "nothing to do; prompts are not checked against a window "
                            "(vLLM reports max_model_len in /v1/models)", required=False))
    return checks


async def _server_checks(backend: Any, timeout: float) -> tuple[list[Check], int | None]:
    checks: list[Check] = []
    context: int | None = None
    for ep in backend.endpoints:
        url = ep.url
        try:
            with anyio.fail_after(timeout):
                entries = await backend.list_models(ep, timeout)
        except (BackendTimeoutError, TimeoutError):
            checks.append(Check("reachable", False, f"{url}: no answer in {timeout:g}s",
                                "check that the server is up and not overloaded, or raise --timeout"))
            continue
        except BackendConnectionError as exc:
            checks.append(Check("reachable", False, f"{url}: cannot connect ({_one_line(exc)})",
                                "start the server (e.g. vllm serve MODEL, or llmlab serve --model SPEC "
                                "--port P) or correct the URL"))
            continue
        except BackendError as exc:
            checks.append(Check("reachable", False, f"{url}: HTTP {exc.status} (not authorised)",
                                "set LLMLAB_API_KEY or OPENAI_API_KEY"))
            continue
        if entries is None:
            # The server answers but has no model list: reachable, presence unknown.
            checks.append(Check("reachable", True, f"{url}: answers (GET /models gave no model list)"))
            checks.append(Check("model", False, f"{url}: the server does not list its models",
                                "nothing to do if the chat check passes", required=False))
            continue
        checks.append(Check("reachable", True, f"{url}: answers"))
        ids = [str(m["id"]) for m in entries]
        entry = served_entry(backend.model, entries)
        if entry is not None:
            checks.append(Check("model", True, f"'{backend.model}' is served at {url}"))
            for key in CONTEXT_KEYS:
                value = entry.get(key)
                if isinstance(value, int) and value > 0:
                    context = value
                    break
        else:
            shown = ", ".join(ids[:10]) + (f" (+{len(ids) - 10} more)" if len(ids) > 10 else "")
            fix = f"use openai:{ids[0]}@{url}" if ids else "load a model into the server"
            checks.append(Check("model", False,
                                f"'{backend.model}' is not served at {url}; served: {shown if ids else 'none'}",
                                fix))
    return checks, context


async def _run(backend: Backend, request: GenerateRequest, timeout: float) -> Any:
    backend.check(request)
    with anyio.fail_after(timeout):
        return await backend.generate(request)


async def _probe_chat(backend: Backend, timeout: float) -> Check:
    req = GenerateRequest.chat([{"role": "user", "content": PROBE_PROMPT}], max_tokens=1, temperature=0.0,
                               timeout=timeout)
    if not backend.capabilities.chat:
        return Check("chat", False, "the backend has no chat support (no chat template)",
                     "send raw prompts, or use a chat/instruct model", required=False)
    try:
        resp = await _run(backend, req, timeout)
    except TimeoutError:
        return Check("chat", False, f"no answer in {timeout:g}s", "raise --timeout or check the server's load")
    except Exception as exc:  # report, never crash
        return Check("chat", False, _one_line(exc), "fix the error above; see the server's log")
    return Check("chat", True, f"1-token reply {resp.text!r} ({resp.usage.prompt_tokens} prompt tokens)")


async def _probe_n(backend: Backend, timeout: float) -> Check:
    req = _feature_request(backend, n=2, temperature=1.0, timeout=timeout)
    try:
        resp = await _run(backend, req, timeout)
    except Exception as exc:  # report, never crash
        return Check("n=2", False, _one_line(exc),
                     "sample with n=1 and distinct sample_index values (one call per sample)", required=False)
    if len(resp.texts) != 2:
        return Check("n=2", False, f"asked for 2 choices, got {len(resp.texts)}",
                     "sample with n=1 and distinct sample_index values (one call per sample)", required=False)
    return Check("n=2", True, "2 choices in one call", required=False)


async def _probe_logprobs(backend: Backend, timeout: float) -> Check:
    req = _feature_request(backend, logprobs=True, top_logprobs=2, timeout=timeout)
    fix = "methods that need token confidences will not work; serve the model with vLLM (logprobs supported)"
    try:
        resp = await _run(backend, req, timeout)
    except Exception as exc:  # report, never crash
        return Check("logprobs", False, _one_line(exc), fix, required=False)
    if not resp.logprobs or not resp.logprobs[0]:
        return Check("logprobs", False, "the answer carried no token logprobs", fix, required=False)
    first = resp.logprobs[0][0]
    tops = f", {len(first.top)} alternatives" if first.top else ", no top alternatives"
    return Check("logprobs", True, f"token {first.token!r} logprob {first.logprob:.3f}{tops}", required=False)


async def _probe_raw(backend: Backend, timeout: float) -> Check:
    req = GenerateRequest(prompt=PROBE_PROMPT, max_tokens=1, temperature=0.0, timeout=timeout)
    fix = "raw prompts (e.g. Magpie) need /v1/completions; use a server that has it (vLLM, llama.cpp, llmlab serve)"
    try:
        resp = await _run(backend, req, timeout)
    except Exception as exc:  # report, never crash
        return Check("raw completion", False, _one_line(exc), fix, required=False)
    return Check("raw completion", True, f"1-token completion {resp.text!r}", required=False)


def _feature_request(backend: Backend, **params: Any) -> GenerateRequest:
    """A 1-token probe: chat when the backend chats, else raw."""
    if backend.capabilities.chat:
        return GenerateRequest.chat([{"role": "user", "content": PROBE_PROMPT}], max_tokens=1, **params)
    return GenerateRequest(prompt=PROBE_PROMPT, max_tokens=1, **params)


def render(spec: str, checks: list[Check]) -> str:
    """The checks as a plain-text table: status, name, detail, and an indented fix line per failure."""
    width = max(len(c.name) for c in checks) if checks else 8
    lines = [f"llmlab doctor: {spec}"]
    for c in checks:
        lines.append(f"  {c.status:<4}  {c.name:<{width}}  {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"  {'':<4}  {'':<{width}}  fix: {c.fix}")
    failed = [c for c in checks if not c.ok and c.required]
    warned = [c for c in checks if not c.ok and not c.required]
    if failed:
        lines.append(f"{len(failed)} required check(s) failed: the model cannot be used as given")
    else:
        lines.append("ready" + (f" ({len(warned)} optional feature(s) missing)" if warned else ""))
    return "\n".join(lines)


def sandbox_checks() -> list[Check]:
    """The code sandbox's isolation on this machine (optional: only code-executing systems need it)."""
    from llmlab.sandbox import isolation

    try:
        iso = isolation()
    except LabError as exc:
        return [Check("sandbox", False, _one_line(exc), "unset LLMLAB_SANDBOX_ISOLATION", required=False)]
    if iso.warning:
        return [Check("sandbox", False, f"WARNING: {iso.detail}", iso.warning, required=False)]
    return [Check("sandbox", True, iso.detail)]


@click.command("doctor")
@click.option("--model", "-m", "model_spec", required=True, help=SPEC_HELP)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per network call or probe.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor_command(model_spec: str, timeout: float, as_json: bool) -> None:
    """Check that a model spec is reachable and what it supports (n, logprobs, raw completion)."""
    from llmlab.core.concurrency import run_sync

    checks = run_sync(diagnose(model_spec, timeout=timeout)) + sandbox_checks()
    if as_json:
        click.echo(json.dumps([{**asdict(c), "status": c.status} for c in checks], indent=2))
    else:
        click.echo(render(model_spec, checks))
    failed = [c for c in checks if not c.ok and c.required]
    if failed:
        first = failed[0]
        raise LabError(f"doctor: '{first.name}' failed: {first.detail}" + (f"; fix: {first.fix}" if first.fix else ""))
