from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.crag import make_kg, serve_crag


@pytest.fixture
def kg_dir(tmp_path: Path) -> Path:
    return make_kg(tmp_path / "cragkg")


@pytest.fixture
def crag_server(kg_dir: Path) -> Iterator[str]:
    with serve_crag(kg_dir) as url:
        yield url
