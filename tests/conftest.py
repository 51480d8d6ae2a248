"""Shared fixtures: offline hub, the shared data folder (skip when absent), anyio on asyncio."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LLMLAB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LLMLAB_SHARED_DATA", REPO.parent / "shared" / "data"))
# The library never looks at ../shared/data (this repository's test layout): the suite points the user
# setting at it, so data-backed tests run on a fresh clone without any variable set by hand.
if SHARED_DATA.is_dir():
    os.environ.setdefault("LLMLAB_DATA_DIR", str(SHARED_DATA))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark data folder (../shared/data); tests using it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's response/data cache out of the user's home."""
    monkeypatch.setenv("LLMLAB_CACHE_DIR", str(tmp_path_factory.mktemp("llmlab-cache")))
