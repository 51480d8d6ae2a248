"""Magpie generation: raw completion of the pre-query template, then the response, then more turns.

Stage 1 (instructions): the pre-query template is sent as a *raw* prompt (``/v1/completions`` of vLLM or
``llmlab serve``, or the hf backend's raw mode), ``batch`` samples per call (``n``), stopped at the end of
the user turn. Stage 2 (responses): each instruction goes through the model's normal chat template (a chat
request), greedy by default. Multi-turn (Magpie-MT, ``num_turns > 1``): the conversation so far is
rendered with the tokenizer's chat template under the MT system prompt, the template's
``mt_append`` opens the next user turn, and the model writes the follow-up instruction; its response is
again a chat request (without the MT system prompt, as the official ``gen_mt.py``).

Every finished call is appended to ``DIR/calls.jsonl`` at once (one line, flushed), keyed by what it is
(``i<k>``: instruction call k; ``r<id>.<turn>``: a response; ``i<id>.<turn>``: a follow-up instruction).
A rerun loads the finished keys and makes only the missing calls; a line cut by a crash is dropped. The
settings are kept in ``DIR/manifest.json``; a rerun with other settings is refused (one line). The records
are written at the end: ``magpie.jsonl`` (the official record layout), ``sharegpt.jsonl`` and
``messages.jsonl`` (OpenAI messages).

Deviations: samples of one call are told apart by ``sample_index`` = call number (the official script
reseeds nothing between its vLLM rounds and shuffles the n outputs; here the order is the server's and the
run is reproducible). The official MT prompt's "Al assistant" typo is fixed.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from llmlab.backends.base import GenerateRequest, Message
from llmlab.backends.model import Model
from llmlab.core.concurrency import gather
from llmlab.core.config import LabConfig
from llmlab.core.errors import ConfigError, DataError, UnsupportedFeatureError
from llmlab.data.magpie.sanitize import sanitize_instruction
from llmlab.data.magpie.templates import MT_SYSTEM_PROMPT, SENTINEL, MagpieTemplate

CALLS = "calls.jsonl"
MANIFEST = "manifest.json"
RECORDS = "magpie.jsonl"
SHAREGPT = "sharegpt.jsonl"
MESSAGES = "messages.jsonl"
_UUID_NS = uuid.UUID("6c1f3a52-7d0e-4b8e-9a43-2f6a1d3c9b10")


class MagpieConfig(LabConfig):
    """Magpie generation settings (defaults: the official ``magpie.sh`` / ``gen_res.py``)."""

    n: int = Field(default=1000, ge=1, description="instructions (conversations) to make")
    batch: int = Field(default=200, ge=1, description="samples per instruction call (the server's n)")
    variant: Literal["default", "system", "math", "code", "translation"] = "default"
    temperature: float = Field(default=1.0, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int = Field(default=2048, ge=1)
    early_stopping: bool = True  # official default: "\n" also ends an instruction
    sanitize: bool = False
    response_temperature: float = Field(default=0.0, ge=0)
    response_top_p: float = Field(default=1.0, gt=0, le=1)
    response_max_tokens: int = Field(default=4096, ge=1)
    num_turns: int = Field(default=1, ge=1, le=20)
    seed: int = 0


@dataclass
class GenerateSummary:
    """What a :func:`generate` call did."""

    calls_made: int
    calls_resumed: int
    records: int
    empty_instructions: int
    out_dir: Path


class CallLog:
    """The append-only log of finished calls (``calls.jsonl``): key → JSON payload.

    A last line without its newline (a crash mid-write) is cut off when the log is opened.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, dict[str, Any]] = {}
        if path.exists():
            raw = path.read_bytes()
            keep = raw[: raw.rfind(b"\n") + 1]
            if len(keep) != len(raw):
                path.write_bytes(keep)
            for n, line in enumerate(keep.decode("utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    self.done[str(rec["key"])] = rec
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise DataError(f"{path}:{n}: not a Magpie call record; remove the folder or use a new "
                                    "--out") from None
        self._fh = path.open("a", encoding="utf-8")

    def add(self, key: str, **payload: Any) -> dict[str, Any]:
        rec = {"key": key, **payload}
        self._fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._fh.flush()
        self.done[key] = rec
        return rec

    def close(self) -> None:
        self._fh.close()


def render_conversation(tokenizer: Any, turns: list[tuple[str, str]], system: str | None = None) -> str:
    """The raw text of a finished conversation in the model's chat template (no generation prompt)."""
    msgs: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    for q, a in turns:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return str(tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=False))


def mt_append_of(template: MagpieTemplate, tokenizer: Any) -> str:
    """The text that opens the next user turn: the template's, else derived from ``tokenizer``.

    Raises:
        UnsupportedFeatureError: Neither knows it.
    """
    if template.mt_append is not None:
        return template.mt_append
    exchange = [{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"}]
    head = str(tokenizer.apply_chat_template(exchange, tokenize=False))
    full = str(tokenizer.apply_chat_template([*exchange, {"role": "user", "content": SENTINEL}], tokenize=False))
    if not full.startswith(head) or SENTINEL not in full:
        raise UnsupportedFeatureError(f"cannot tell how {template.model}'s chat template opens a next user turn; "
                                      "multi-turn needs it (num_turns=1 works)")
    return full[len(head):full.index(SENTINEL)]


def _clean(text: str, stops: tuple[str, ...]) -> str:
    """Cut at the first stop string (backends that skip special tokens may let one through) and strip."""
    cut = min((i for i in (text.find(s) for s in stops if s and s != "\n") if i >= 0), default=len(text))
    return text[:cut].strip()


def _sample(rec: dict[str, Any], j: int) -> str:
    texts = rec.get("texts") or []
    return str(texts[j]) if j < len(texts) else ""  # a server that returned fewer samples than asked


def _manifest(cfg: MagpieConfig, template: MagpieTemplate, model: Model) -> dict[str, Any]:
    return {"config": cfg.model_dump(), "pre_query_template": template.prompt(cfg.variant),
            "template_model": template.model, "template_source": template.source, "model": model.name}


def _check_manifest(out: Path, manifest: dict[str, Any]) -> None:
    path = out / MANIFEST
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise DataError(f"{path} is not JSON; remove the folder or use a new --out") from None
        for key in ("config", "pre_query_template"):
            if old.get(key) != manifest[key]:
                changed = key if key != "config" else ", ".join(
                    k for k in manifest["config"] if old.get("config", {}).get(k) != manifest["config"][k])
                raise ConfigError(f"{out} was made with other settings ({changed}); rerun with the same settings "
                                  "to resume, or use a new --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        os.replace(tmp, path)


class _Progress:
    def __init__(self, enabled: bool, total: int, done: int) -> None:
        self.bar: Any = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]magpie"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), transient=False)
            self.bar.start()
            self.task = self.bar.add_task("magpie", total=total, completed=done)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


async def generate(model: Model, out_dir: str | Path, template: MagpieTemplate, cfg: MagpieConfig | None = None,
                   *, tokenizer: Any = None, concurrency: int = 16, progress: bool = False) -> GenerateSummary:
    """Make ``cfg.n`` Magpie conversations into ``out_dir`` (resuming what is there).

    Args:
        model: The aligned chat model; must support raw completion.
        out_dir: The run folder.
        template: The model's templates (:func:`~llmlab.data.magpie.templates.resolve_template`).
        cfg: Settings.
        tokenizer: The model's tokenizer (needed for ``num_turns > 1``; the hf backend's is used if not given).
        concurrency: Calls in flight.
        progress: Show a progress bar.

    Returns:
        A summary; the records are in ``out_dir/magpie.jsonl`` (+ ShareGPT and OpenAI-messages exports).

    Raises:
        UnsupportedFeatureError: The backend has no raw completion, or multi-turn has no tokenizer.
        ConfigError: ``out_dir`` holds a run with other settings.
    """
    cfg = cfg if cfg is not None else MagpieConfig()
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
    if not model.capabilities.raw_completion:
        raise UnsupportedFeatureError(
            f"Magpie needs raw completion, which backend '{model.backend.name}' lacks; use openai:<model>@<url> "
            "(vLLM or llmlab serve, /v1/completions) or hf:<model>")
    if tokenizer is None:
        tokenizer = getattr(model.backend, "tokenizer", None)
    if cfg.num_turns > 1 and tokenizer is None:
        raise UnsupportedFeatureError("multi-turn (num_turns > 1) renders the conversation with the model's chat "
                                      "template: pass --tokenizer DIR (or use an hf: model)")
    pre_query = template.prompt(cfg.variant)
    mt_append = mt_append_of(template, tokenizer) if cfg.num_turns > 1 else ""
    stops = template.instruction_stops(cfg.early_stopping)
    out = Path(out_dir)
    _check_manifest(out, _manifest(cfg, template, model))
    log = CallLog(out / CALLS)
    n_calls = -(-cfg.n // cfg.batch)
    total = n_calls + cfg.n * cfg.num_turns + cfg.n * (cfg.num_turns - 1)
    resumed = len(log.done)
    bar = _Progress(progress, total, resumed)
    made = 0

    async def call(key: str, request: GenerateRequest) -> dict[str, Any]:
        nonlocal made
        if key in log.done:
            return log.done[key]
        resp = await model.generate(request)
        made += 1
        bar.advance()
        return log.add(key, texts=resp.texts, finish=resp.finish_reasons)

    def instruction_call(k: int) -> Any:
        size = min(cfg.batch, cfg.n - k * cfg.batch)
        req = GenerateRequest(prompt=pre_query, n=size, temperature=cfg.temperature, top_p=cfg.top_p,
                              max_tokens=cfg.max_tokens, stop=stops, seed=cfg.seed, sample_index=k)
        return lambda: call(f"i{k}", req)

    def first_instruction(rid: int) -> str:
        return _clean(_sample(log.done[f"i{rid // cfg.batch}"], rid % cfg.batch), stops)

    def instruction_text(raw: str) -> str:
        return sanitize_instruction(raw, template.model)[0] if cfg.sanitize else raw

    async def conversation(rid: int) -> None:
        turns: list[tuple[str, str]] = []
        q = instruction_text(first_instruction(rid))
        for turn in range(1, cfg.num_turns + 1):
            if turn > 1:
                prompt = render_conversation(tokenizer, turns, MT_SYSTEM_PROMPT) + mt_append
                got = await call(f"i{rid}.{turn}", GenerateRequest(
                    prompt=prompt, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens,
                    stop=stops, seed=cfg.seed, sample_index=rid))
                q = instruction_text(_clean(str(got["texts"][0]), stops))
            if not q:
                return  # nothing to answer; the filter's length rule drops the record
            msgs: list[Message | dict[str, Any]] = []
            for u, a in turns:
                msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
            msgs.append({"role": "user", "content": q})
            got = await call(f"r{rid}.{turn}", GenerateRequest.chat(
                msgs, temperature=cfg.response_temperature, top_p=cfg.response_top_p,
                max_tokens=cfg.response_max_tokens, stop=template.stop_tokens, seed=cfg.seed, sample_index=rid))
            turns.append((q, _clean(str(got["texts"][0]), template.stop_tokens)))

    try:
        await gather([instruction_call(k) for k in range(n_calls)], limit=concurrency)
        await gather([functools.partial(conversation, rid) for rid in range(cfg.n)], limit=concurrency)
    finally:
        bar.close()
        log.close()
    records = list(assemble(out, template, cfg, model.name))
    _write_jsonl(out / RECORDS, records)
    _write_jsonl(out / SHAREGPT, (to_sharegpt(r) for r in records))
    _write_jsonl(out / MESSAGES, (to_messages(r) for r in records))
    empty = sum(not r["instruction"] for r in records)
    return GenerateSummary(calls_made=made, calls_resumed=resumed, records=len(records), empty_instructions=empty,
                           out_dir=out)


def assemble(out: Path, template: MagpieTemplate, cfg: MagpieConfig, model_name: str) -> Iterator[dict[str, Any]]:
    """The Magpie records of a finished run folder, in id order (official field names)."""
    done = CallLog(out / CALLS)
    done.close()
    stops = template.instruction_stops(cfg.early_stopping)
    pre_query = template.prompt(cfg.variant)
    for rid in range(cfg.n):
        ins = done.done.get(f"i{rid // cfg.batch}")
        if ins is None:
            continue
        raw = _clean(_sample(ins, rid % cfg.batch), stops)
        rec: dict[str, Any] = {
            "uuid": str(uuid.uuid5(_UUID_NS, f"{pre_query}\x00{cfg.seed}\x00{rid}")),
            "id": rid,
            "pre_query_template": pre_query,
        }
        if cfg.sanitize:
            clean, cls = sanitize_instruction(raw, template.model)
            rec.update(raw_instruction=raw, instruction=clean, instruction_sanitize_class_num=cls)
        else:
            rec["instruction"] = raw
        res = done.done.get(f"r{rid}.1")
        rec["response"] = _clean(str(res["texts"][0]), template.stop_tokens) if res is not None else None
        for turn in range(2, cfg.num_turns + 1):
            q, a = done.done.get(f"i{rid}.{turn}"), done.done.get(f"r{rid}.{turn}")
            if q is None:
                break
            text = _clean(str(q["texts"][0]), stops)
            rec[f"instruction_{turn}"] = sanitize_instruction(text, template.model)[0] if cfg.sanitize else text
            rec[f"response_{turn}"] = _clean(str(a["texts"][0]), template.stop_tokens) if a is not None else None
        rec["gen_input_configs"] = {"temperature": cfg.temperature, "top_p": cfg.top_p,
                                    "input_generator": model_name, "seed": cfg.seed}
        rec["gen_response_configs"] = {"temperature": cfg.response_temperature, "top_p": cfg.response_top_p,
                                       "max_tokens": cfg.response_max_tokens, "output_generator": model_name}
        yield rec


def turns_of(record: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The (instruction, response) turns of a Magpie record (``instruction``/``response``, then ``_2``, ...)."""
    turns: list[tuple[str, str | None]] = [(str(record.get("instruction", "")), record.get("response"))]
    k = 2
    while f"instruction_{k}" in record:
        turns.append((str(record[f"instruction_{k}"]), record.get(f"response_{k}")))
        k += 1
    return turns


def to_sharegpt(record: dict[str, Any]) -> dict[str, Any]:
    """A record as ShareGPT: ``{"id", "conversations": [{"from": "human"|"gpt", "value"}]}``."""
    conv = []
    for q, a in turns_of(record):
        conv.append({"from": "human", "value": q})
        if a is not None:
            conv.append({"from": "gpt", "value": a})
    return {"id": record.get("uuid", record.get("id")), "conversations": conv}


def to_messages(record: dict[str, Any]) -> dict[str, Any]:
    """A record as OpenAI chat messages: ``{"id", "messages": [{"role", "content"}]}``."""
    msgs = []
    for q, a in turns_of(record):
        msgs.append({"role": "user", "content": q})
        if a is not None:
            msgs.append({"role": "assistant", "content": a})
    return {"id": record.get("uuid", record.get("id")), "messages": msgs}


def _write_jsonl(path: Path, rows: Any) -> None:
    """Write atomically: a crash never leaves half a file at ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
