"""Runs: ``llmlab eval`` / ``run`` / ``report`` / ``score`` on top of tasks, methods and the Model stack.

An eval streams items through ``task.prompt → method.solve → task.score`` with at most ``concurrency``
items in flight, writes each item's row as soon as it finishes (run store), and resumes a run id by
calling only the items that have no row yet (or failed). Calls, tokens, cost and cache hits are
attributed per item through :func:`llmlab.backends.model.recording`.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio

from llmlab.backends.base import Backend, GenerateRequest, GenerateResponse
from llmlab.backends.cache import ResponseCache
from llmlab.backends.model import Ledger, Model, Price, RetryPolicy, recording
from llmlab.core.concurrency import first_error
from llmlab.core.config import parse_params
from llmlab.core.contracts import Item, Query, Roles, Score, Solution
from llmlab.core.errors import (
    BackendConnectionError,
    BudgetExceededError,
    ConfigError,
    DataError,
    LabError,
    MissingExtraError,
    UnsupportedFeatureError,
)
from llmlab.core.jsonl import read_jsonl
from llmlab.core.registry import METHODS, TASKS
from llmlab.core.runstore import ItemRow, RunStore, call_rows
from llmlab.core.transcripts import call_trace, message_to_dict
from llmlab.methods.base import Method, OracleMethod
from llmlab.tasks.base import Task

# Errors that stop a run: the same mistake would fail every item (the server is down, a setting is wrong, a
# feature the backend lacks, the budget is spent). Anything else raised while solving or scoring one item
# is recorded on that item (type, message, traceback) and retried on resume.
RUN_STOPPING_ERRORS = (BackendConnectionError, ConfigError, UnsupportedFeatureError, MissingExtraError,
                       BudgetExceededError)


async def solve_item(method: Method, task: Task, item: Item, query: Query, roles: Roles) -> Solution:
    """Solve one item; an :class:`OracleMethod` also gets an oracle built from the task's async scorer."""
    if isinstance(method, OracleMethod):
        async def oracle(answer: str | None) -> bool:
            return bool((await task.ascore(item, answer, roles)).correct)

        return await method.solve_with_oracle(query, roles, oracle)
    return await method.solve(query, roles)


class RunInterrupted(LabError):
    """Ctrl-C (or a cancellation) during a run: says what is saved and how to resume."""

    exit_code = 130


# -- building models from CLI options ------------------------------------------------------------------

def load_prices(path: str | None) -> dict[str, Price]:
    """Read a YAML price table ``model: {input_per_m: x, output_per_m: y}``."""
    if path is None:
        return {}
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text())
        return {str(k): Price(float(v["input_per_m"]), float(v["output_per_m"])) for k, v in (raw or {}).items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"price table {path}: expected 'model: {{input_per_m: X, output_per_m: Y}}' ({exc})"
        ) from None


def build_roles(
    model_spec: str,
    roles: Sequence[str] = (),
    *,
    cache: bool = False,
    budget: float | None = None,
    on_budget: str = "warn",
    prices: str | None = None,
    max_retries: int = 6,
    timeout: float | None = None,
    concurrency: int = 16,
    seed: int | None = None,
) -> Roles:
    """Build the default Model and any ``NAME=SPEC`` role Models, sharing one ledger and cache.

    ``seed`` becomes every request's seed unless the method sets one (backends fold the sample index in),
    so ``--seed`` reaches the backend's sampler.

    Raises:
        ConfigError: A retry count, timeout, budget or concurrency out of range (one line each).
    """
    if max_retries < 0 or max_retries > 100:
        raise ConfigError(f"--max-retries must be between 0 and 100, got {max_retries}")
    if timeout is not None and not 0 < timeout <= 86_400:
        raise ConfigError(f"--timeout must be > 0 seconds (at most a day), got {timeout}")
    if budget is not None and budget <= 0:
        raise ConfigError(f"--budget must be > 0 USD, got {budget}")
    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    ledger = Ledger(prices=load_prices(prices), budget_usd=budget, on_budget=on_budget)  # type: ignore[arg-type]
    shared_cache = ResponseCache() if cache else None
    built: dict[str, Model] = {}

    def make(spec: str) -> Model:
        if spec not in built:
            m = Model(spec, concurrency=concurrency, retry=RetryPolicy(max_retries=max_retries), cache=shared_cache,
                      ledger=ledger, defaults={"seed": seed} if seed is not None else None)
            if timeout is not None and hasattr(m.backend, "timeout"):
                m.backend.timeout = timeout
            built[spec] = m
        return built[spec]

    named: dict[str, list[Model]] = {}
    for pair in roles:
        name, sep, spec = pair.partition("=")
        if not sep or not name or not spec:
            raise ConfigError(f"--role expects NAME=SPEC, got '{pair}'")
        named.setdefault(name.strip(), []).append(make(spec.strip()))
    return Roles(make(model_spec), **{k: (v[0] if len(v) == 1 else v) for k, v in named.items()})


def _with_seed(cls: Any, params: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    """``params`` plus the run's seed for a config that has a ``seed`` field the user did not set."""
    out = dict(params)
    fields = getattr(getattr(cls, "Config", None), "model_fields", {})
    if seed is not None and "seed" in fields and "seed" not in out:
        out["seed"] = seed
    return out


def make_method(name: str, params: Sequence[str] | Mapping[str, Any], *, seed: int | None = None) -> Method:
    cls = METHODS.get(name)
    method: Method = cls(_with_seed(cls, params if isinstance(params, Mapping) else parse_params(params), seed))
    return method


def make_task(name: str, params: Mapping[str, Any], *, seed: int | None = None) -> Task:
    cls = TASKS.get(name)
    task: Task = cls(_with_seed(cls, params, seed))
    return task


# -- eval ----------------------------------------------------------------------------------------------

@dataclass
class EvalSpec:
    """Everything ``llmlab eval`` was asked to do."""

    task: str
    method: str = "direct"
    model_spec: str = "mock:echo"
    roles: Sequence[str] = ()
    params: Sequence[str] = ()
    task_params: Sequence[str] = ()
    data_dir: str | None = None
    data: str | None = None
    limit: int | None = None
    concurrency: int = 8
    run_id: str | None = None
    runs_dir: str = "runs"
    seed: int | None = None
    cache: bool = False
    budget: float | None = None
    on_budget: str = "warn"
    prices: str | None = None
    max_retries: int = 6
    timeout: float | None = None
    transcripts: bool = True  # store every call's request and response with its item


@dataclass
class RunSummary:
    """What a finished (or resumed) run reports."""

    run_id: str
    root: Path
    manifest: dict[str, Any]
    aggregate: dict[str, Any]
    n_items: int
    n_scored: int
    n_errors: int
    new_items: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    cache_hits: int
    wall_s: float
    errors: list[str] = field(default_factory=list)
    estimates: dict[str, Any] = field(default_factory=dict)  # metric -> llmlab.stats.inference.Estimate

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "task": self.manifest["task"], "method": self.manifest["method"],
            "model": self.manifest["model"], "items": self.n_items, "scored": self.n_scored,
            "errors": self.n_errors, "new_this_session": self.new_items, "calls": self.calls,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost, 6), "cache_hits": self.cache_hits, "wall_s": round(self.wall_s, 6),
            "aggregate": self.aggregate, "stderr": {k: e.to_dict() for k, e in self.estimates.items()},
            "store": str(self.root / "run.sqlite"),
        }

    def render(self) -> str:
        from io import StringIO

        from rich.console import Console
        from rich.table import Table

        d = self.to_dict()
        table = Table(title=f"run {self.run_id}", show_header=False)
        table.add_column("key")
        table.add_column("value")
        from llmlab.stats.runs import render_estimates

        for k, v in d.items():
            if k == "aggregate":
                for ak, av in v.items():
                    table.add_row(ak, _fmt(av))
                for label, text in render_estimates(self.estimates):
                    table.add_row(label, text)
            elif k != "stderr":
                table.add_row(k, _fmt(v))
        buf = StringIO()
        Console(file=buf, width=100).print(table)
        if self.errors:
            buf.write("first errors:\n" + "\n".join(f"  {e}" for e in self.errors[:5]) + "\n")
        return buf.getvalue().rstrip()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, dict):
        return json.dumps(v, default=str)[:200]
    return str(v)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("llmlab", "openai", "pydantic", "transformers", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _git_sha() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                           cwd=Path(__file__).resolve().parent)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def prompt_hash(query: Query) -> str:
    payload = json.dumps([[m.role, m.content] for m in query.messages], default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_run_id(run_id: str) -> str:
    """A run id is a name, never a path.

    Raises:
        ConfigError: It is empty, has a path separator or ``..``, or characters outside ``A-Za-z0-9._-``.
    """
    if not _RUN_ID_RE.match(run_id) or ".." in run_id:
        raise ConfigError(f"--run-id {run_id!r} is not a valid run name: use 1-128 letters, digits, '.', '_' or '-'"
                          " (no path separators, no '..')")
    return run_id


def open_store(runs_root: Path, run_id: str) -> RunStore:
    """Open (or create) the store of ``run_id`` under ``runs_root``; a bad folder is one clear line."""
    try:
        runs_root.mkdir(parents=True, exist_ok=True)
        return RunStore(runs_root / run_id)
    except OSError as exc:
        raise ConfigError(f"--runs-dir {runs_root}: cannot create a run there ({exc.strerror or exc})") from None


def new_run(runs_root: Path, prefix: str) -> tuple[str, RunStore]:
    """A fresh, unique run id (time + random suffix, created exclusively) and its store."""
    import secrets

    try:
        runs_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--runs-dir {runs_root}: cannot create it ({exc.strerror or exc})") from None
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", prefix)[:80]
    for _ in range(100):
        run_id = f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        try:
            (runs_root / run_id).mkdir()  # exclusive: two evals started in the same second never share a store
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError(f"--runs-dir {runs_root}: cannot create a run there ({exc.strerror or exc})") from None
        return run_id, open_store(runs_root, run_id)
    raise ConfigError(f"could not create a unique run id under {runs_root}")


def model_identity(spec: str) -> str:
    """What a run's outputs depend on in a model spec: the backend and model, not the endpoint URL."""
    kind, _, rest = spec.partition(":")
    if kind in ("openai", "openai-sdk"):
        return f"{kind}:{rest.rpartition('@')[0] or rest}"
    return spec


def role_identity(pair: str) -> str:
    name, _, spec = pair.partition("=")
    return f"{name.strip()}={model_identity(spec.strip())}"


def _task_params(spec: EvalSpec) -> dict[str, Any]:
    params = parse_params(spec.task_params)
    if spec.data_dir is not None:
        params["data_dir"] = spec.data_dir
    if spec.data is not None:
        params["data_file"] = spec.data
    return params


def run_eval(spec: EvalSpec, *, progress: bool = False) -> RunSummary:
    """Run (or resume) an eval and return its summary. Sync edge over :func:`eval_async`."""
    from llmlab.core.concurrency import run_sync

    return run_sync(eval_async(spec, progress=progress))


async def eval_async(spec: EvalSpec, *, progress: bool = False) -> RunSummary:
    """Run (or resume) an eval. Items finished in earlier sessions of the same run id are skipped."""
    if spec.concurrency < 1:
        raise ConfigError(f"--concurrency must be >= 1, got {spec.concurrency}")
    if spec.limit is not None and spec.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {spec.limit}")
    if spec.data is not None:
        fields = getattr(getattr(TASKS.get(spec.task), "Config", None), "model_fields", {})
        if "data_file" not in fields:
            raise ConfigError(f"task '{spec.task}' reads its data from a folder, not one file: pass --data-dir DIR "
                              "(holding the dataset's folder) instead of --data")
    task_params = _task_params(spec)
    task = make_task(spec.task, task_params, seed=spec.seed)
    method = make_method(spec.method, spec.params, seed=spec.seed)
    roles = build_roles(
        spec.model_spec, spec.roles, cache=spec.cache, budget=spec.budget, on_budget=spec.on_budget,
        prices=spec.prices, max_retries=spec.max_retries, timeout=spec.timeout,
        concurrency=max(spec.concurrency, 1) * 4, seed=spec.seed,
    )
    items: list[Item] = []
    for i, item in enumerate(task.items()):
        if spec.limit is not None and i >= spec.limit:
            break
        items.append(item)
    if not items:
        raise DataError(f"task '{spec.task}' has no items (an empty data file, or a filter that keeps nothing); "
                        "check --data / --data-dir and the task options")
    runs_root = Path(spec.runs_dir)
    if spec.run_id is not None:
        run_id = check_run_id(spec.run_id)
        store = open_store(runs_root, run_id)
    else:
        run_id, store = new_run(runs_root, f"{spec.task}-{spec.method}")
    manifest = store.open_manifest(
        {
            "run_id": run_id, "task": spec.task, "method": spec.method, "model": spec.model_spec,
            "model_id": model_identity(spec.model_spec),
            "roles": list(spec.roles), "role_ids": [role_identity(r) for r in spec.roles],
            "method_params": method.config.model_dump(mode="json"),
            "task_params": task.config.model_dump(mode="json"), "limit": spec.limit, "seed": spec.seed,
            "answer_uses_ground_truth": isinstance(method, OracleMethod) and method.answer_uses_ground_truth(),
            "versions": _versions(), "git_sha": _git_sha(), "argv": sys.argv, "created": time.time(),
        },
        # the endpoint URL is not part of a run's identity: a server that moved can be resumed
        identity_keys=("task", "method", "model_id", "role_ids", "method_params", "task_params", "seed"),
    )
    done = store.done_ids()
    pending = [(i, it) for i, it in enumerate(items) if it.id not in done]
    stats = {"new": 0, "errors": 0, "correct": 0, "scored": 0}
    start = time.perf_counter()

    async def run_item(idx: int, item: Item) -> None:
        t0 = time.perf_counter()
        solution: Solution | None = None
        score: Score | None = None
        error: str | None = None
        trace: dict[str, Any] = {}
        query: Query | None = None
        n_solve_calls = 0
        with recording() as rec:
            try:
                query = task.prompt(item)
                solution = await solve_item(method, task, item, query, roles)
                n_solve_calls = len(rec.calls)  # the rest are the scorer's (a judge's) calls
                answer = solution.answer if solution.answer is not None else solution.text
                score = await task.ascore(item, answer, roles)
            except RUN_STOPPING_ERRORS:
                raise  # a mistake every item would repeat (server down, bad config): stop, completed items saved
            except Exception as exc:  # anything else wrong with ONE item is recorded on it; the run goes on
                error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
                trace["error"] = {"type": type(exc).__name__, "message": str(exc),
                                  "traceback": traceback.format_exc(limit=30)}
        if solution is not None:
            trace = {**solution.trace, **trace}
        blobs = store if spec.transcripts else None
        call_traces = [call_trace(r, blobs) for r in rec.calls]
        if solution is not None:
            solution.calls = call_traces[:n_solve_calls]
        store.write(ItemRow(
            item_id=item.id, idx=idx, prompt_hash=prompt_hash(query) if query is not None else "",
            answer=solution.answer if solution else None, text=solution.text if solution else None,
            score=score.value if score else None, correct=score.correct if score else None,
            extracted=score.extracted if score else None, details=score.details if score else {},
            calls=rec.n_calls, prompt_tokens=rec.prompt_tokens, completion_tokens=rec.completion_tokens,
            cost=rec.cost, latency_s=time.perf_counter() - t0, cache_hits=rec.cache_hits,
            retries=rec.retries, error=error,
            trace=trace, cluster=score.cluster if score else None,
            traceback=trace["error"]["traceback"] if "error" in trace else None,
            query=[message_to_dict(m, blobs) for m in query.messages] if query is not None and spec.transcripts
            else None,
            target=item.target,
        ), call_rows(item.id, rec.calls, blobs, call_traces) if spec.transcripts else [])
        stats["new"] += 1
        if error is not None:
            stats["errors"] += 1
        elif score is not None:
            stats["scored"] += 1
            stats["correct"] += bool(score.correct)

    for m in dict.fromkeys(roles.all_models()):
        await m.prepare()  # learns context windows; an unreachable server stops here, before any item
    bar = _progress(progress, len(items), len(items) - len(pending), run_id)
    store.start_writer()  # rows are committed by a writer thread, off the event loop; stopped in the finally
    queue = iter(pending)  # shared by the workers: each item is taken once, in order

    async def worker() -> None:
        # `concurrency` long-lived workers instead of a task per item: no per-item task, cancel scope or
        # semaphore on the event loop
        for idx, item in queue:
            await run_item(idx, item)
            # only a stored item moves the bar (an item cancelled by an abort is not done)
            if bar is not None:
                acc = stats["correct"] / stats["scored"] if stats["scored"] else 0.0
                bar.advance(acc, stats["errors"])

    try:
        async with anyio.create_task_group() as tg:
            for _ in range(min(spec.concurrency, len(pending))):
                tg.start_soon(worker)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    except (KeyboardInterrupt, anyio.get_cancelled_exc_class()):
        done_now = len(store.done_ids())
        raise RunInterrupted(
            f"interrupted: {done_now} of {len(items)} items of run '{run_id}' are saved in {store.root}; "
            f"resume with the same command and --run-id {run_id}"
        ) from None
    finally:
        if bar is not None:
            bar.close()
        for m in roles.all_models():
            await m.aclose()
        store.stop_writer()  # every finished item is committed, whatever stopped the run
    wall = time.perf_counter() - start
    summary = summarize(store, task, manifest, new_items=stats["new"], wall_s=wall)
    store.close()
    return summary


def eval_matrix(spec: EvalSpec, tasks: Sequence[str], models: Sequence[str], *,
                progress: bool = False) -> list[RunSummary]:
    """Run every task × model cell as its own run (own run id and store), one after another.

    ``spec`` gives everything else; with ``spec.run_id`` set, cell ``(task, j)`` is the run
    ``<run-id>-<task>-m<j>``, so re-running the same matrix with the same id resumes every cell.
    Mistakes found before a run starts (an unknown task, a bad parameter) stop the matrix before any cell.
    """
    from dataclasses import replace

    if not tasks or not models:
        raise ConfigError("an eval matrix needs at least one task and one --model")
    for name in tasks:
        TASKS.get(name)  # an unknown task is one line before any cell runs
    if spec.run_id is not None:
        check_run_id(spec.run_id)
    cells = []
    for name in tasks:
        for j, model in enumerate(models):
            run_id = None if spec.run_id is None else check_run_id(f"{spec.run_id}-{name}-m{j}")
            cells.append(replace(spec, task=name, model_spec=model, run_id=run_id))
    return [run_eval(cell, progress=progress) for cell in cells]


def matrix_summary(summaries: Sequence[RunSummary]) -> str:
    """The one table of an eval matrix: score ± 95% CI per task × model."""
    from llmlab.stats.runs import matrix_table

    cells = []
    for s in summaries:
        est = s.estimates.get("accuracy", s.estimates.get("score"))
        if est is None:
            est = next(iter(s.estimates.values()), None)
        cells.append({"task": s.manifest["task"], "model": s.manifest["model"], "run_id": s.run_id,
                      "estimate": est, "errors": s.n_errors})
    return matrix_table(cells)


class _Bar:
    def __init__(self, total: int, done: int, run_id: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("acc {task.fields[acc]:.3f} · errors {task.fields[err]}"), TimeRemainingColumn(),
            transient=False,
        )
        self.progress.start()
        self.task_id = self.progress.add_task(run_id, total=total, completed=done, acc=0.0, err=0)

    def advance(self, acc: float, errors: int) -> None:
        self.progress.update(self.task_id, advance=1, acc=acc, err=errors)

    def close(self) -> None:
        self.progress.stop()


def _progress(enabled: bool, total: int, done: int, run_id: str) -> _Bar | None:
    return _Bar(total, done, run_id) if enabled else None


def _score_of(row: ItemRow) -> Score:
    return Score(value=row.score if row.score is not None else 0.0, correct=row.correct, extracted=row.extracted,
                 details=row.details)


def summarize(store: RunStore, task: Task, manifest: dict[str, Any], *, new_items: int = 0,
              wall_s: float = 0.0) -> RunSummary:
    rows = list(store.rows())
    ok = [r for r in rows if r.error is None]
    errs = [r for r in rows if r.error is not None]
    aggregate: dict[str, Any] = task.aggregate([_score_of(r) for r in ok]) if ok else {"n": 0}
    aggregate.update(oracle_metrics(ok, manifest))
    aggregate = _relabel_ground_truth(aggregate, manifest)
    from llmlab.stats.runs import run_estimates

    estimates = run_estimates(ok)
    if manifest.get("answer_uses_ground_truth"):  # same relabelling as the aggregate: never called accuracy
        estimates = {f"oracle_{k}": v for k, v in estimates.items()}
    return RunSummary(
        run_id=manifest["run_id"], root=store.root, manifest=manifest, aggregate=aggregate, n_items=len(rows),
        n_scored=len(ok), n_errors=len(errs), new_items=new_items, calls=sum(r.calls for r in rows),
        prompt_tokens=sum(r.prompt_tokens for r in rows), completion_tokens=sum(r.completion_tokens for r in rows),
        cost=sum(r.cost for r in rows), cache_hits=sum(r.cache_hits for r in rows), wall_s=wall_s,
        errors=[f"{r.item_id}: {r.error}" for r in errs], estimates=estimates,
    )


def oracle_metrics(rows: Sequence[ItemRow], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Oracle-side metrics (``trace["oracle"]``) as ``oracle_<key>`` means, apart from the selection's metrics.

    When the method's answers depended on the ground truth (``manifest["answer_uses_ground_truth"]``), the
    task's own ``score``/``accuracy`` are moved to ``oracle_score``/``oracle_accuracy`` by the caller.
    """
    out: dict[str, Any] = {}
    sums: dict[str, list[float]] = {}
    for r in rows:
        o = r.trace.get("oracle")
        if isinstance(o, dict):
            for k, v in o.items():
                if isinstance(v, bool | int | float):
                    sums.setdefault(k, []).append(float(v))
    for k, vs in sums.items():
        out[f"oracle_{k}"] = sum(vs) / len(vs)
    return out


def _relabel_ground_truth(aggregate: dict[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    if not manifest.get("answer_uses_ground_truth"):
        return aggregate
    out = {}
    for k, v in aggregate.items():
        out[f"oracle_{k}" if k in ("score", "accuracy") else k] = v
    out["note"] = "answers depended on the ground truth (oracle early stop): no accuracy is reported"
    return out


# -- report --------------------------------------------------------------------------------------------

def report(run_id: str, runs_dir: str = "runs", *, as_json: bool = False) -> str:
    """Summarise a stored run; writes ``report.json`` (and ``report.png`` with matplotlib) beside it."""
    root = Path(runs_dir) / check_run_id(run_id)
    if not (root / "run.sqlite").exists():
        raise ConfigError(f"no run '{run_id}' in {runs_dir}/ (see the run ids there, or pass --runs-dir)")
    store = RunStore(root)
    manifest = store.manifest()
    if manifest is None:
        raise DataError(f"{root / 'run.sqlite'}: no manifest; the run never started")
    task = make_task(manifest["task"], manifest.get("task_params", {}))
    rows = list(store.rows())
    # the span of the items' work: first item start to last item end (across resumed sessions, gaps included)
    spans = [(r.finished_at - r.latency_s, r.finished_at) for r in rows if r.finished_at]
    wall = max(e for _, e in spans) - min(b for b, _ in spans) if spans else 0.0
    summary = summarize(store, task, manifest, wall_s=wall)
    store.close()
    d = summary.to_dict()
    try:
        (root / "report.json").write_text(json.dumps(d, indent=2, default=str))
        png = _plot(rows, summary, root / "report.png")
    except OSError as exc:
        raise ConfigError(f"cannot write the report into {root} ({exc.strerror or exc})") from None
    if as_json:
        return json.dumps(d, indent=2, default=str)
    out = summary.render()
    return out + (f"\nwrote {root / 'report.json'}" + (f" and {png}" if png else ""))


def _plot(rows: list[ItemRow], summary: RunSummary, path: Path) -> Path | None:
    """Latency distribution and running accuracy (and per-category bars when the task reports them)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    cats = {k: v for k, v in summary.aggregate.items() if isinstance(v, dict)
            and v and all(isinstance(x, (int, float)) for x in v.values())}
    n_panels = 2 + (1 if cats else 0)
    fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 3.6))
    lat = [r.latency_s for r in rows]
    axes[0].hist(lat, bins=30, color="#4c72b0")
    axes[0].set(title="latency per item", xlabel="seconds", ylabel="items")
    ok = [r for r in rows if r.error is None]
    running, acc = [], 0.0
    for i, r in enumerate(ok, 1):
        acc += float(r.correct) if r.correct is not None else (r.score or 0.0)
        running.append(acc / i)
    axes[1].plot(range(1, len(running) + 1), running, color="#dd8452")
    axes[1].set(title="running accuracy", xlabel="items (store order)", ylabel="accuracy", ylim=(0, 1))
    if cats:
        name, values = next(iter(cats.items()))
        axes[2].barh(list(values), list(values.values()), color="#55a868")
        axes[2].set(title=name, xlim=(0, 1))
    fig.suptitle(f"{summary.manifest['task']} · {summary.manifest['method']} · {summary.manifest['model']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- score predictions made elsewhere ------------------------------------------------------------------

def score_file(task_name: str, predictions: str, *, out: str | None = None, as_json: bool = False,
               task_params: Sequence[str] = (), model_spec: str | None = None, roles: Sequence[str] = (),
               concurrency: int = 8) -> str:
    """Score a JSONL predictions file with a task's (async) scorer, one line per prediction.

    Judge-based tasks need a judge: ``model_spec`` and/or ``roles`` (``judge=SPEC``) build it; without one,
    a task that calls a model fails with one line saying to pass ``--role judge=SPEC``.
    """
    from llmlab.core.concurrency import run_sync

    task = make_task(task_name, parse_params(task_params))
    path = Path(predictions)
    pairs = [(record, *task.item_from_record(record, where)) for where, record in read_jsonl(
        path, what="predictions file")]
    if not pairs:
        raise DataError(f"{path}: no predictions in the file")
    if model_spec is None and not roles:
        built = Roles(Model(_NoModelBackend()))
    elif model_spec is None:
        built = build_roles("mock:echo", roles)
        built.default = Model(_NoModelBackend())
    else:
        built = build_roles(model_spec, roles)

    async def go() -> list[Score]:
        results: list[Score | None] = [None] * len(pairs)
        slots = anyio.Semaphore(max(1, concurrency))

        async def one(i: int) -> None:
            async with slots:
                _, item, prediction = pairs[i]
                results[i] = await task.ascore(item, prediction, built)

        try:
            async with anyio.create_task_group() as tg:
                for i in range(len(pairs)):
                    tg.start_soon(one, i)
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        finally:
            for m in built.all_models():
                await m.aclose()
        return [r for r in results if r is not None]

    scores = run_sync(go())
    if out is not None:
        written = [{**record, "correct": bool(sc.correct) if sc.correct is not None else None, "score": sc.value,
                    "extracted": sc.extracted} for (record, _, _), sc in zip(pairs, scores, strict=True)]
        Path(out).write_text("".join(json.dumps(r) + "\n" for r in written))
    agg = task.aggregate(scores)
    if as_json:
        return json.dumps(agg, indent=2, default=str)
    return "\n".join(f"{k}: {_fmt(v)}" for k, v in agg.items())


class _NoModelBackend(Backend):
    """The model behind ``llmlab score`` when none was given: any call is a one-line configuration error."""

    name = "none"
    model = "none"

    @classmethod
    def from_spec(cls, spec: str) -> Backend:
        return cls()

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        raise ConfigError("this task scores through a model (a judge): pass --role judge=SPEC or --model SPEC")


# -- one question --------------------------------------------------------------------------------------

def run_one(method_name: str, question: str, *, model_spec: str, roles: Sequence[str] = (),
            params: Sequence[str] = (), **model_kw: Any) -> str:
    """Answer one question with a method (``llmlab run``)."""
    from llmlab.core.concurrency import run_sync

    method = make_method(method_name, params)
    built = build_roles(model_spec, roles, **model_kw)

    async def go() -> tuple[Solution, Any]:
        with recording() as rec:
            try:
                for m in dict.fromkeys(built.all_models()):
                    await m.prepare()
                sol = await method.solve(Query.from_text(question), built)
            finally:
                for m in built.all_models():
                    await m.aclose()
        return sol, rec

    sol, rec = run_sync(go())
    lines = [sol.text]
    if sol.answer is not None and sol.answer != sol.text:
        lines.append(f"answer: {sol.answer}")
    lines.append(f"[{rec.n_calls} calls, {rec.prompt_tokens}+{rec.completion_tokens} tokens, ${rec.cost:.4f}]")
    return "\n".join(lines)


__all__ = ["EvalSpec", "LabError", "RunSummary", "eval_async", "eval_matrix", "matrix_summary", "report", "run_eval",
           "run_one", "score_file"]
