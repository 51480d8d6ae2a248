"""Fixtures: an outputs file, and a real uvicorn server for the arena on 127.0.0.1 (free port)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

MODELS = ("alpha", "beta", "gamma")


@pytest.fixture
def outputs_file(tmp_path: Path) -> Path:
    path = tmp_path / "outputs.jsonl"
    with path.open("w") as fh:
        for p in range(4):
            for i, m in enumerate(MODELS):
                fh.write(json.dumps({"prompt_id": f"p{p}", "prompt": f"Prompt {p}: explain <tags> & more",
                                     "model": m, "output": f"answer number {i} to {p}"}) + "\n")
    return path


@pytest.fixture
def arena_server(tmp_path: Path, outputs_file: Path) -> Iterator[Callable[..., tuple[str, Any]]]:
    """Start ``create_app(ArenaSettings(...))`` under uvicorn; returns (base_url, app)."""
    uvicorn = pytest.importorskip("uvicorn")
    from llmlab.web.app import ArenaSettings, create_app, uvicorn_config

    servers: list[tuple[Any, threading.Thread]] = []

    def start(db_name: str = "arena.sqlite", **overrides: Any) -> tuple[str, Any]:
        settings = ArenaSettings(outputs=str(outputs_file), db=str(tmp_path / db_name), seed=0,
                                 bootstrap_rounds=50, **overrides)
        app = create_app(settings)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("arena server did not start")
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}", app

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
