"""``llmlab view``: a local, read-only web viewer of stored runs.

Pages (FastAPI + Jinja2, server-rendered, no JavaScript needed; same stack as the arena page):

- ``/``: every run under ``--runs-dir`` (task, method, models, items, score ± 95% CI, errors, date), with
  a form to pick two runs for a side-by-side.
- ``/run/{id}``: the run's items, filtered by outcome (correct, incorrect, error), by a score range and by
  text; the headline estimates with their CIs.
- ``/run/{id}/item/{item}``: one item: its question and reference, the answer, the score, the error with
  its traceback, and the transcript: every model call's messages (content parts, images rendered from
  the run's blob table), tools, tool calls and tool results, parameters and the response.
- ``/compare?a=&b=``: two runs on their shared items, items where they differ first, with the paired
  difference, its CI and paired tests (:mod:`llmlab.stats.runs`); ``/compare/item`` shows one item's two
  transcripts side by side.

Stores are opened read-only (SQLite ``mode=ro``), so viewing a run that is still being written is safe.
The server binds 127.0.0.1 unless told otherwise and then answers only requests addressed to 127.0.0.1 or
localhost (``Host`` header checked, against DNS rebinding); run ids in URLs must name a folder directly
under the runs directory (no path traversal), and blobs are served only by their SHA-256 name.
"""

# No `from __future__ import annotations`: FastAPI must see the real Request type of the nested handlers.

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from llmlab.core.errors import ConfigError, LabError, MissingExtraError
from llmlab.core.runstore import CallRow, ItemRow, RunStore

HERE = Path(__file__).resolve().parent
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
FILTERS = ("all", "correct", "incorrect", "error", "scored")
PAGE = 200


@dataclass
class RunInfo:
    """One run as the list page shows it."""

    run_id: str
    manifest: dict[str, Any]
    n: int
    n_errors: int
    estimates: dict[str, Any]
    transcribed: int

    @property
    def models(self) -> list[str]:
        return [str(self.manifest.get("model", "")), *map(str, self.manifest.get("roles", []))]

    @property
    def created(self) -> str:
        ts = self.manifest.get("created")
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(ts))) if ts is not None else ""

    @property
    def headline(self) -> Any:
        return self.estimates.get("accuracy", self.estimates.get("score"))


class RunsDir:
    """The runs folder the viewer serves."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigError(f"runs folder '{root}' does not exist (pass --runs-dir, or run llmlab eval first)")
        self._infos: dict[str, tuple[tuple[int, ...], RunInfo]] = {}
        self._lock = threading.Lock()

    def run_ids(self) -> list[str]:
        return sorted(p.parent.name for p in self.root.glob("*/run.sqlite") if _RUN_ID.match(p.parent.name))

    def open(self, run_id: str) -> RunStore:
        """The run's store, read-only.

        Raises:
            ConfigError: Not a run directly under the runs folder.
        """
        if not _RUN_ID.match(run_id) or not (self.root / run_id / "run.sqlite").is_file():
            raise ConfigError(f"no run '{run_id}' in {self.root}")
        return RunStore(self.root / run_id, readonly=True)

    def _stamp(self, run_id: str) -> tuple[int, ...]:
        """Changes whenever the store does (the database and its write-ahead log)."""
        out: list[int] = []
        for name in ("run.sqlite", "run.sqlite-wal"):
            try:
                st = (self.root / run_id / name).stat()
                out.extend((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                out.extend((0, 0))
        return tuple(out)

    def info(self, run_id: str) -> RunInfo:
        """The run's summary, recomputed only when its store changed since the last request."""
        stamp = self._stamp(run_id)
        with self._lock:
            hit = self._infos.get(run_id)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        info = self._compute_info(run_id)
        with self._lock:
            self._infos[run_id] = (stamp, info)
        return info

    def _compute_info(self, run_id: str) -> RunInfo:
        from llmlab.stats.runs import run_estimates

        store = self.open(run_id)
        try:
            rows = list(store.rows())
            manifest = store.manifest() or {"run_id": run_id, "task": "?", "method": "?", "model": "?"}
            return RunInfo(run_id, manifest, len(rows), sum(r.error is not None for r in rows),
                           dict(run_estimates(rows)), store.n_transcribed())
        finally:
            store.close()


def _outcome(row: ItemRow) -> str:
    if row.error is not None:
        return "error"
    if row.correct is True:
        return "correct"
    if row.correct is False:
        return "incorrect"
    return "scored"


def filter_rows(rows: list[ItemRow], flt: str, lo: float | None, hi: float | None, q: str) -> list[ItemRow]:
    """Rows matching an outcome filter, a score range and a text search (id, answer, extracted, error)."""
    if flt not in FILTERS:
        raise ConfigError(f"unknown filter '{flt}'; one of: {', '.join(FILTERS)}")
    out = []
    needle = q.lower().strip()
    for r in rows:
        kind = _outcome(r)
        if flt == "error" and kind != "error":
            continue
        if flt in ("correct", "incorrect") and kind != flt:
            continue
        if flt == "scored" and kind == "error":
            continue
        if lo is not None and (r.score is None or r.score < lo):
            continue
        if hi is not None and (r.score is None or r.score > hi):
            continue
        if needle and not any(needle in str(v).lower() for v in (r.item_id, r.answer, r.extracted, r.error,
                                                                  _query_text(r)) if v is not None):
            continue
        out.append(r)
    return out


def _query_text(row: ItemRow) -> str:
    """The last user message's text of the item's stored query (``""`` when not stored)."""
    for m in reversed(row.query or []):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            return "\n".join(str(p.get("text", "")) for p in c or [] if p.get("type") == "text")
    return ""


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _tool_args(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except (json.JSONDecodeError, TypeError):
        return str(arguments)


def _iter_pairs(a: list[CallRow], b: list[CallRow]) -> Iterator[tuple[CallRow | None, CallRow | None]]:
    for i in range(max(len(a), len(b))):
        yield (a[i] if i < len(a) else None, b[i] if i < len(b) else None)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def create_viewer(runs_dir: str | Path, *, allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS) -> Any:
    """Build the viewer's FastAPI app over ``runs_dir``.

    Args:
        runs_dir: The folder holding one sub-folder per run.
        allowed_hosts: Host names a request's ``Host`` header may carry (others get 400): a web page
            elsewhere cannot read transcripts by rebinding its DNS name to 127.0.0.1. ``None``: any.

    Raises:
        MissingExtraError: fastapi or jinja2 is not installed.
        ConfigError: ``runs_dir`` does not exist.
    """
    try:
        import jinja2
        from fastapi import FastAPI, Request
        from fastapi.responses import HTMLResponse, Response
        from fastapi.staticfiles import StaticFiles
    except ImportError as exc:
        raise MissingExtraError(exc.name or "fastapi", "web", "the run viewer") from None

    runs = RunsDir(runs_dir)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters["pretty"] = _pretty
    env.filters["tool_args"] = _tool_args
    env.globals.update(outcome=_outcome, query_text=_query_text, Z95=1.959963984540054)
    app = FastAPI(title="llmlab runs", docs_url=None, redoc_url=None)
    if allowed_hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.state.runs = runs
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def render(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status)

    def fail(exc: LabError, status: int = 404) -> HTMLResponse:
        return render("viewer_error.html", status, message=str(exc))

    def number(raw: str | None, name: str) -> float | None:
        if raw is None or raw.strip() == "":
            return None
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        infos = []
        for run_id in runs.run_ids():
            try:
                infos.append(runs.info(run_id))
            except LabError:
                continue  # a store being created right now: listed on the next load
        infos.sort(key=lambda i: -float(i.manifest.get("created", 0)))
        return render("viewer_runs.html", runs=infos, root=str(runs.root))

    @app.get("/run/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> HTMLResponse:
        qp = request.query_params
        try:
            info = runs.info(run_id)
            store = runs.open(run_id)
            try:
                rows = list(store.rows())
            finally:
                store.close()
            flt = qp.get("filter", "all")
            lo, hi = number(qp.get("min"), "min"), number(qp.get("max"), "max")
            q = qp.get("q", "")
            shown = filter_rows(rows, flt, lo, hi, q)
            offset = max(0, int(number(qp.get("offset"), "offset") or 0))
        except LabError as exc:
            return fail(exc, 400 if isinstance(exc, ConfigError) and run_id in runs.run_ids() else 404)
        counts = {k: sum(_outcome(r) == k for r in rows) for k in ("correct", "incorrect", "error", "scored")}
        return render("viewer_run.html", info=info, rows=shown[offset:offset + PAGE], total=len(shown),
                      offset=offset, page=PAGE, flt=flt, lo=qp.get("min", ""), hi=qp.get("max", ""), q=q,
                      counts=counts, filters=FILTERS)

    @app.get("/run/{run_id}/item/{item_id:path}", response_class=HTMLResponse)
    def item_page(run_id: str, item_id: str) -> HTMLResponse:
        try:
            info = runs.info(run_id)
            store = runs.open(run_id)
            try:
                row = store.row(item_id)
                calls = store.calls(item_id)
            finally:
                store.close()
            if row is None:
                raise ConfigError(f"run '{run_id}' has no item '{item_id}'")
        except LabError as exc:
            return fail(exc)
        return render("viewer_item.html", info=info, row=row, calls=calls, run_id=run_id)

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(request: Request) -> HTMLResponse:
        from llmlab.stats.runs import compare_runs

        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        metric = request.query_params.get("metric") or None
        try:
            for rid in (a, b):
                runs.open(rid).close()
            comp = compare_runs(a, b, runs.root, metric=metric)
            sa, sb = runs.open(a), runs.open(b)
            try:
                ra = {r.item_id: r for r in sa.rows()}
                rb = {r.item_id: r for r in sb.rows()}
            finally:
                sa.close()
                sb.close()
        except LabError as exc:
            return fail(exc, 400)
        differing = comp.differing()
        same = [(i, x, y) for i, x, y in zip(comp.item_ids, comp.a, comp.b, strict=True) if x == y]
        return render("viewer_compare.html", comp=comp, rows=[*differing, *same], n_diff=len(differing),
                      ra=ra, rb=rb, a=a, b=b, infos=(runs.info(a), runs.info(b)))

    @app.get("/compare/item", response_class=HTMLResponse)
    def compare_item(request: Request) -> HTMLResponse:
        qp = request.query_params
        a, b, item_id = qp.get("a", ""), qp.get("b", ""), qp.get("item", "")
        try:
            sides = []
            for rid in (a, b):
                store = runs.open(rid)
                try:
                    sides.append((rid, store.row(item_id), store.calls(item_id)))
                finally:
                    store.close()
        except LabError as exc:
            return fail(exc, 400)
        return render("viewer_compare_item.html", item_id=item_id, sides=sides,
                      pairs=list(_iter_pairs(sides[0][2], sides[1][2])))

    @app.get("/blob/{run_id}/{sha}")
    def blob(run_id: str, sha: str) -> Response:
        if not _SHA.match(sha):
            return Response("bad blob name", status_code=400)
        try:
            store = runs.open(run_id)
        except LabError:
            return Response("no such run", status_code=404)
        try:
            found = store.blob(sha)
        finally:
            store.close()
        if found is None:
            return Response("no such blob", status_code=404)
        mime, data = found
        if not re.match(r"^image/(png|jpeg|gif|webp)$", mime):
            return Response(data, media_type="application/octet-stream",
                            headers={"Content-Disposition": f'attachment; filename="{sha[:16]}"'})
        return Response(data, media_type=mime, headers={"Cache-Control": "max-age=86400, immutable",
                                                        "X-Content-Type-Options": "nosniff"})

    return app


@click.command("view")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; anything but loopback exposes every transcript to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
def view_command(runs_dir: str, host: str, port: int) -> None:
    """Open a local web viewer of the runs: items, transcripts, filters, side-by-side of two runs."""
    loopback = host in (*LOOPBACK_HOSTS, "::1")
    app = create_viewer(runs_dir, allowed_hosts=LOOPBACK_HOSTS if loopback else None)
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("uvicorn", "web", "serving the run viewer") from None
    if not loopback:
        click.echo(f"warning: binding {host}: anyone who can reach it can read every transcript", err=True)
    click.echo(f"viewing {runs_dir}/ at http://{host}:{port}/  (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)


__all__ = ["FILTERS", "RunInfo", "RunsDir", "create_viewer", "filter_rows", "view_command"]
