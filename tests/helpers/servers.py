"""Start a real OpenAI-compatible server (``llmlab serve``) on 127.0.0.1 for tests and benches.

Two ways, both yield the base URL ``"http://127.0.0.1:PORT/v1"`` (a ``str`` subclass, :class:`ServerURL`,
that also carries ``.port``, ``.root``, ``.model`` — the served model name — and ``.proc`` for a
subprocess):

- :func:`serve_subprocess` runs ``python -m llmlab.cli serve`` in its own process: a real, separate
  server that a test can SIGKILL (``url.proc.kill()``) to simulate a crash. Starting costs ~1-2 s.
- :func:`serve_thread` runs uvicorn in a background thread of this process: fast (~0.1 s), for tests
  that only need real HTTP. Accepts a spec string, a :class:`Backend` or a :class:`Model`.

Example::

    from tests.helpers.servers import serve_subprocess, server_stats

    with serve_subprocess("mock:echo?fail_500=0.1", name="m") as url:
        model = Model(f"openai:m@{url}")          # url.model == "m"
        ...
        assert server_stats(url)["requests"] == 12   # backend calls the server made

The model name a client must send is ``url.model`` (``--name`` if given, else the backend's own name, e.g.
``mock-echo`` for ``mock:echo``); the server answers 404 to any other name.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from llmlab.backends.base import Backend
from llmlab.backends.model import Model, RetryPolicy

REPO = Path(__file__).resolve().parents[2]
_URL_LINE = re.compile(r"as '(?P<name>.*)' at (?P<url>http://\S+/v1)")


class ServerURL(str):
    """A base URL (``http://127.0.0.1:PORT/v1``) that also knows its server.

    Attributes:
        port: The TCP port.
        root: ``http://127.0.0.1:PORT`` (for ``/health`` and ``/llmlab/stats``).
        model: The served model name clients must send.
        proc: The server's ``subprocess.Popen`` (``None`` for :func:`serve_thread`).
        log_path: File with the subprocess's stdout+stderr (``None`` for threads).
    """

    port: int
    root: str
    model: str
    proc: subprocess.Popen[bytes] | None
    log_path: Path | None

    @staticmethod
    def make(url: str, model: str, proc: subprocess.Popen[bytes] | None = None,
             log_path: Path | None = None) -> ServerURL:
        u = ServerURL(url)
        u.root = url.removesuffix("/v1")
        u.port = int(u.root.rsplit(":", 1)[1])
        u.model = model
        u.proc = proc
        u.log_path = log_path
        return u


def server_stats(url: str) -> dict[str, Any]:
    """``GET /llmlab/stats``: ``{"requests": N, "errors": E, "by_endpoint": {...}}`` (backend calls)."""
    root = url.removesuffix("/").removesuffix("/v1")
    out: dict[str, Any] = httpx.get(f"{root}/llmlab/stats", timeout=10).json()
    return out


def _wait_health(root: str, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"llmlab serve exited with code {proc.returncode} before becoming healthy")
        try:
            if httpx.get(f"{root}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"server at {root} did not become healthy in time")
        time.sleep(0.05)


@contextlib.contextmanager
def serve_subprocess(
    spec: str,
    *,
    name: str | None = None,
    concurrency: int | None = None,
    env: dict[str, str] | None = None,
    startup_timeout: float = 60.0,
    extra_args: list[str] | None = None,
) -> Iterator[ServerURL]:
    """Run ``llmlab serve --model SPEC`` on a free 127.0.0.1 port in a child process.

    The port is chosen by the server itself (``--port 0``, no race); its printed URL is read from the
    log file, then ``/health`` is polled. At exit the process is terminated (then killed after 5 s).
    A test may SIGKILL it earlier through ``url.proc``; exit then only reaps it.

    Args:
        spec: Backend spec to serve (``mock:echo?latency=0.2``, ``hf:/path/to/dir``, ...).
        name: ``--name``: the model name clients use (default: the backend's own).
        concurrency: ``--concurrency`` (backend calls in flight; server default 64).
        env: Extra environment variables for the child.
        startup_timeout: Seconds to wait for the server to answer ``/health``.
        extra_args: More ``llmlab serve`` arguments.

    Yields:
        The base URL (a :class:`ServerURL` with ``.proc``, ``.port``, ``.model``, ``.log_path``).

    Raises:
        RuntimeError: The server exited during start-up (the message includes its log).
        TimeoutError: It did not become healthy in ``startup_timeout`` seconds.
    """
    cmd = [sys.executable, "-m", "llmlab.cli", "serve", "--model", spec, "--host", "127.0.0.1", "--port", "0"]
    if name is not None:
        cmd += ["--name", name]
    if concurrency is not None:
        cmd += ["--concurrency", str(concurrency)]
    cmd += extra_args if extra_args is not None else []
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env if env is not None else {})}
    fd, log_name = tempfile.mkstemp(prefix="llmlab-serve-", suffix=".log")
    log_path = Path(log_name)
    with os.fdopen(fd, "wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=child_env, cwd=str(REPO), start_new_session=True)
    try:
        deadline = time.monotonic() + startup_timeout
        match = None
        while match is None:
            match = _URL_LINE.search(log_path.read_text(errors="replace"))
            if match is not None:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"llmlab serve exited with code {proc.returncode}:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"llmlab serve did not start in {startup_timeout}s:\n{log_path.read_text()}")
            time.sleep(0.05)
        url = ServerURL.make(match["url"], match["name"], proc, log_path)
        try:
            _wait_health(url.root, deadline, proc)
        except (RuntimeError, TimeoutError) as exc:
            raise type(exc)(f"{exc}:\n{log_path.read_text()}") from None
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        log_path.unlink(missing_ok=True)


@contextlib.contextmanager
def serve_thread(model_or_spec: str | Backend | Model, *, name: str | None = None,
                 startup_timeout: float = 30.0) -> Iterator[ServerURL]:
    """Run the OpenAI-compatible app with uvicorn in a daemon thread on a free 127.0.0.1 port.

    A spec string or a Backend is wrapped in a Model with retries off (failures reach the client); a
    Model is served as is. The server has its own event loop, so the test's loop and client are free.

    Args:
        model_or_spec: What to serve.
        name: Served model name (default: the backend's own).
        startup_timeout: Seconds to wait for uvicorn to start.

    Yields:
        The base URL (a :class:`ServerURL`; ``.proc`` is ``None``).
    """
    from llmlab.backends.server import create_app

    if isinstance(model_or_spec, (str, Backend)):
        model = Model(model_or_spec, retry=RetryPolicy(max_retries=0), concurrency=256, validate_schema=False)
    else:
        model = model_or_spec
    app = create_app(model, name)
    with serve_asgi(app, startup_timeout=startup_timeout) as root:
        yield ServerURL.make(f"{root}/v1", name if name is not None else model.name)


@contextlib.contextmanager
def serve_asgi(app: Any, *, startup_timeout: float = 30.0) -> Iterator[str]:
    """Run any ASGI app (the OpenAI-compatible server, the run viewer) under uvicorn in a daemon thread.

    Yields the base URL (``http://127.0.0.1:<free port>``, no path); stops the server on exit.
    """
    import uvicorn

    from llmlab.backends.server import bind_socket, url_of

    sock = bind_socket("127.0.0.1", 0)
    # A bounded graceful shutdown: a request still hanging (mock ``hang``) must not block the test's exit.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="llmlab-serve-thread")
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn thread exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn thread did not start in time")
            time.sleep(0.01)
        yield url_of(sock).removesuffix("/v1")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
