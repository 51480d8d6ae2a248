"""The arena voting page: anonymous pairwise battles, reveal after the vote, BT leaderboard with CIs.

After GenAI-Arena (Jiang et al., arXiv 2406.04485) and Chatbot Arena, whose pages are gradio apps; this
one is FastAPI + Jinja2 with a tiny htmx-compatible script (``static/arena.js``: ``hx-post``/``hx-get``
on forms, ``hx-target``, ``hx-swap``) because no CDN is reachable; every form also works without
JavaScript (a plain POST answered with a full page).

Security model:

- The server picks the prompt and the two models and stores them as a *battle*; the page only ever sees
  the battle's signed token (``<battle id>.<HMAC-SHA256(secret, id)>``). A vote carries the token and a
  choice (A, B, tie, both bad); model ids come from the stored battle, never from the client.
- One vote per battle: the vote's primary key is the battle id, so a replay fails atomically (409).
- A token that does not verify is refused (403); one older than ``token_ttl_s`` is refused (410).
- Per-client rate limits (votes and new battles per minute, keyed by the connection's address).
  ``X-Forwarded-For`` is honoured only from the proxies named in ``trusted_proxies`` (the right-most
  address not itself a trusted proxy is the client); from anyone else, localhost included, it is ignored
  (uvicorn's own proxy-header handling, which trusts 127.0.0.1, is switched off).
- Request bodies are capped (``max_body_bytes``, 16 KiB by default; a vote is ~100 bytes): a larger body
  is refused with 413 before it is read into memory.
- Anonymity in file mode, where each (prompt, model) output is fixed: once a client has voted on a
  prompt it has seen that prompt's outputs with their models revealed, so it is never shown that prompt
  again (any later battle on it would identify the models before the vote).
- SQLite in WAL mode with a busy timeout (:mod:`llmlab.web.store`): concurrent votes are all kept.

Deviations from GenAI-Arena/FastChat: leaderboards use all votes (every battle here is anonymous), and
the BT fit falls back to the L2 objective (``reg = 0.5``) while the plain MLE does not exist (some model
has never lost or never won), saying so on the page.
"""

# No `from __future__ import annotations`: FastAPI must see the real Request type of the nested handlers.

import hashlib
import hmac
import io
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from llmlab.core.errors import ConfigError, DataError, MissingExtraError
from llmlab.core.jsonl import read_jsonl
from llmlab.web.store import ArenaStore, Battle, VoteRejected

CHOICES: dict[str, str] = {"A": "model_a", "B": "model_b", "tie": "tie", "bothbad": "tie (bothbad)"}
"""Form value → FastChat winner."""

HERE = Path(__file__).resolve().parent


@dataclass
class ArenaSettings:
    """How the arena runs.

    Attributes:
        outputs: JSONL of ``{"prompt_id", "prompt", "model", "output"}`` (file mode), or of
            ``{"prompt_id", "prompt"}`` when ``live_models`` generate the answers.
        db: SQLite file.
        secret: Token-signing key; default: a random key kept in the database.
        rate_limit_per_min: Votes per client per minute (new battles: 4× this).
        bootstrap_rounds: Bootstrap rounds for the leaderboard CIs.
        token_ttl_s: How long a battle accepts its vote.
        live_models: Name → model spec or :class:`~llmlab.backends.model.Model`; answers are generated at
            battle time through the Model stack instead of read from ``outputs``.
        seed: Seed of the battle sampler (None: random).
        max_body_bytes: Largest request body accepted (413 above).
        trusted_proxies: Addresses of reverse proxies whose ``X-Forwarded-For`` is believed.
    """

    outputs: str
    db: str = "arena.sqlite"
    secret: str | None = None
    rate_limit_per_min: int = 30
    bootstrap_rounds: int = 200
    token_ttl_s: float = 3600.0
    live_models: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    max_body_bytes: int = 16_384
    trusted_proxies: tuple[str, ...] = ()


@dataclass
class Outputs:
    """Prompts and, per prompt, each model's output."""

    prompts: dict[str, str]
    outputs: dict[str, dict[str, str]]

    @staticmethod
    def load(path: str | Path, *, need_outputs: bool = True) -> "Outputs":
        prompts: dict[str, str] = {}
        outputs: dict[str, dict[str, str]] = {}
        for where, rec in read_jsonl(path, what="outputs file"):
            if "prompt_id" not in rec or "prompt" not in rec:
                raise DataError(f"{where}: needs keys prompt_id and prompt (and model, output)")
            pid = str(rec["prompt_id"])
            prompts[pid] = str(rec["prompt"])
            if "model" in rec and "output" in rec:
                outputs.setdefault(pid, {})[str(rec["model"])] = str(rec["output"])
            elif need_outputs:
                raise DataError(f"{where}: needs keys model and output")
        if need_outputs and not any(len(v) >= 2 for v in outputs.values()):
            raise DataError(f"{path}: no prompt has outputs from two models; an arena needs pairs")
        return Outputs(prompts, outputs)


class RateLimiter:
    """Sliding one-minute window per client."""

    def __init__(self, per_minute: int, window_s: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and now - hits[0] > self.window_s:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return False
            hits.append(now)
            return True


def sign(secret: bytes, battle_id: str) -> str:
    """A battle token: ``id.hmac``."""
    mac = hmac.new(secret, battle_id.encode(), hashlib.sha256).hexdigest()
    return f"{battle_id}.{mac}"


def verify(secret: bytes, token: str) -> str | None:
    """The battle id of a genuine token, else ``None`` (constant-time comparison)."""
    battle_id, _, mac = token.partition(".")
    if not battle_id or not mac:
        return None
    good = hmac.new(secret, battle_id.encode(), hashlib.sha256).hexdigest()
    return battle_id if hmac.compare_digest(good, mac) else None


class Arena:
    """The arena's state: settings, store, sampler, limiters and a leaderboard cache."""

    def __init__(self, settings: ArenaSettings) -> None:
        from llmlab.backends.model import get_model

        self.settings = settings
        if settings.rate_limit_per_min < 1:
            raise ConfigError(f"rate limit must be >= 1 per minute, got {settings.rate_limit_per_min}")
        self.live = {name: get_model(spec) for name, spec in settings.live_models.items()}
        if self.live and len(self.live) < 2:
            raise ConfigError("live mode needs at least two models")
        self.data = Outputs.load(settings.outputs, need_outputs=not self.live)
        self.store = ArenaStore(settings.db)
        self.secret = settings.secret.encode() if settings.secret is not None else self.store.secret()
        self.rng = random.Random(settings.seed)
        self.vote_limit = RateLimiter(settings.rate_limit_per_min)
        self.battle_limit = RateLimiter(4 * settings.rate_limit_per_min)
        self._board: tuple[int, dict[str, Any]] | None = None
        self._board_lock = threading.Lock()

    async def new_battle(self, client: str) -> Battle:
        if self.live:
            pid = self.rng.choice(sorted(self.data.prompts))
            ma, mb = self.rng.sample(sorted(self.live), 2)
            prompt = self.data.prompts[pid]
            import anyio

            texts: dict[str, str] = {}

            async def gen(name: str) -> None:
                texts[name] = await self.live[name].complete(prompt)

            async with anyio.create_task_group() as tg:
                tg.start_soon(gen, ma)
                tg.start_soon(gen, mb)
            oa, ob = texts[ma], texts[mb]
        else:
            seen = self.store.voted_prompt_ids(client)
            fresh = sorted(k for k, v in self.data.outputs.items() if len(v) >= 2 and k not in seen)
            if not fresh:
                raise VoteRejected("you have voted on every prompt of this arena; thank you (see the leaderboard)",
                                   409)
            pid = self.rng.choice(fresh)
            ma, mb = self.rng.sample(sorted(self.data.outputs[pid]), 2)
            prompt, oa, ob = self.data.prompts[pid], self.data.outputs[pid][ma], self.data.outputs[pid][mb]
        battle = Battle(secrets.token_hex(16), pid, prompt, ma, mb, oa, ob, client, time.time())
        self.store.add_battle(battle)
        return battle

    def vote(self, token: str, choice: str, client: str) -> tuple[Battle, str]:
        """Check and record one vote.

        Raises:
            VoteRejected: Rate limited (429), bad choice (400), forged token (403), unknown battle (404),
                expired (410), already voted (409).
        """
        if not self.vote_limit.allow(client):
            raise VoteRejected("too many votes from this client; wait a minute", 429)
        winner = CHOICES.get(choice)
        if winner is None:
            raise VoteRejected(f"unknown choice {choice!r}", 400)
        battle_id = verify(self.secret, token)
        if battle_id is None:
            raise VoteRejected("invalid battle token", 403)
        battle = self.store.get_battle(battle_id)
        if battle is None:
            raise VoteRejected("unknown battle", 404)
        if time.time() - battle.created > self.settings.token_ttl_s:
            raise VoteRejected("this battle has expired; start a new one", 410)
        self.store.add_vote(battle, winner, client)
        return battle, winner

    def leaderboard(self) -> dict[str, Any]:
        """BT ratings with bootstrap CIs over all votes (cached until the next vote)."""
        from llmlab.stats.arena import (
            FSCHAT_0236_REG,
            Battles,
            battle_counts,
            bootstrap_bt,
            half_wins,
            identifiable,
        )

        with self._board_lock:
            votes = self.store.votes()
            if self._board is not None and self._board[0] == len(votes):
                return self._board[1]
            board: dict[str, Any] = {"n_votes": len(votes), "rows": [], "note": None, "reg": 0.0}
            if votes:
                bt = Battles.from_records(votes)
                reg = 0.0 if identifiable(half_wins(bt.counts())) else FSCHAT_0236_REG
                if reg:
                    board["note"] = ("Some model has not yet both won and lost, so the plain Bradley–Terry "
                                     f"MLE does not exist; showing the L2-regularised fit (reg={reg}).")
                boot = bootstrap_bt(bt, rounds=self.settings.bootstrap_rounds, reg=reg, seed=0)
                counts = battle_counts(bt)
                rows = boot.table()
                for r in rows:
                    r["battles"] = int(counts[bt.models.index(r["model"])])
                board.update(rows=rows, reg=reg, nonconverged=boot.nonconverged)
            self._board = (len(votes), board)
            return board


def plot_png(board: Mapping[str, Any]) -> bytes:
    """A PNG of the ratings with their 95% CIs (matplotlib, Agg)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("matplotlib", "plot", "the leaderboard plot") from None
    rows = list(reversed(board["rows"]))
    fig, ax = plt.subplots(figsize=(7, 0.5 * max(len(rows), 2) + 1.2))
    if rows:
        y = range(len(rows))
        r = [row["rating"] for row in rows]
        err = [[row["rating"] - row["lower"] for row in rows], [row["upper"] - row["rating"] for row in rows]]
        ax.errorbar(r, list(y), xerr=err, fmt="o", capsize=4)
        ax.set_yticks(list(y), [row["model"] for row in rows])
    else:
        ax.text(0.5, 0.5, "no votes yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("Bradley–Terry rating (95% bootstrap CI)")
    ax.set_title(f"Arena leaderboard ({board['n_votes']} votes)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def create_app(settings: ArenaSettings) -> Any:
    """Build the FastAPI app.

    Raises:
        MissingExtraError: fastapi or jinja2 is not installed.
    """
    try:
        import jinja2
        from fastapi import FastAPI, Request
        from fastapi.responses import HTMLResponse, JSONResponse, Response
        from fastapi.staticfiles import StaticFiles
    except ImportError as exc:
        raise MissingExtraError(exc.name or "fastapi", "web", "the arena page") from None

    arena = Arena(settings)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    app = FastAPI(title="llmlab arena", docs_url=None, redoc_url=None)
    app.state.arena = arena
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def render(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status)

    trusted = set(settings.trusted_proxies)

    def client_of(request: Request) -> str:
        peer = request.client.host if request.client is not None else "unknown"
        forwarded = request.headers.get("x-forwarded-for")
        if peer not in trusted or not forwarded:
            return peer
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        for hop in reversed(hops):  # the right-most address that is not one of our proxies
            if hop not in trusted:
                return hop
        return peer

    @app.middleware("http")
    async def cap_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        limit = settings.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            return render("_error.html", 413, message=f"request body over {limit} bytes", full=False)
        return await call_next(request)

    async def read_body(request: Request) -> bytes | None:
        """The body, or None once it passes the cap (a chunked body without Content-Length)."""
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def is_hx(request: Request) -> bool:
        return request.headers.get("HX-Request") == "true"

    async def battle_view(request: Request) -> HTMLResponse:
        client = client_of(request)
        if not arena.battle_limit.allow(client):
            return render("_error.html", 429, message="too many new battles from this client; wait a minute",
                          full=not is_hx(request))
        try:
            battle = await arena.new_battle(client)
        except VoteRejected as exc:
            return render("_error.html", exc.status, message=str(exc), full=not is_hx(request))
        return render("arena.html" if not is_hx(request) else "_battle.html", battle=battle,
                      token=sign(arena.secret, battle.id))

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        return await battle_view(request)

    @app.get("/battle", response_class=HTMLResponse)
    async def battle(request: Request) -> HTMLResponse:
        return await battle_view(request)

    @app.post("/vote", response_class=HTMLResponse)
    async def vote(request: Request) -> HTMLResponse:
        # the form is parsed here (urlencoded) so python-multipart is not needed; DB work runs in a thread
        body = await read_body(request)
        if body is None:
            return render("_error.html", 413, message=f"request body over {settings.max_body_bytes} bytes",
                          full=not is_hx(request))
        form = parse_qs(body.decode("utf-8", "replace"))
        token = form.get("token", [""])[0]
        choice = form.get("choice", [""])[0]
        import anyio

        try:
            battle, winner = await anyio.to_thread.run_sync(arena.vote, token, choice, client_of(request))
        except VoteRejected as exc:
            return render("_error.html", exc.status, message=str(exc), full=not is_hx(request))
        return render("_reveal.html" if is_hx(request) else "reveal_page.html", battle=battle, winner=winner)

    @app.get("/leaderboard", response_class=HTMLResponse)
    def leaderboard() -> HTMLResponse:
        return render("leaderboard.html", board=arena.leaderboard(), stamp=arena.store.n_votes())

    @app.get("/leaderboard.png")
    def leaderboard_png() -> Response:
        return Response(plot_png(arena.leaderboard()), media_type="image/png",
                        headers={"Cache-Control": "no-store"})

    @app.get("/api/leaderboard")
    def leaderboard_json() -> JSONResponse:
        return JSONResponse(arena.leaderboard())

    return app


def serve(settings: ArenaSettings, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the arena with uvicorn (blocking)."""
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("uvicorn", "web", "serving the arena") from None
    uvicorn.Server(uvicorn_config(create_app(settings), host=host, port=port)).run()


def uvicorn_config(app: Any, *, host: str, port: int, log_level: str = "info") -> Any:
    """The uvicorn config the arena is served with (tests start their server from the same one)."""
    import uvicorn

    # proxy headers are handled by client_of (trusted_proxies only); uvicorn's default trusts 127.0.0.1
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, proxy_headers=False)
