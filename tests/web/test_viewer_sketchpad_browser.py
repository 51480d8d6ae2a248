"""A real Visual Sketchpad run (scripted planner, real sandboxed drawing) opened in the run viewer in Chromium:
every turn's text is there and the sketch the code drew is shown as an image, stored once per run."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.chromium import browser_page, needs_chromium
from tests.helpers.servers import serve_asgi

pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
pytest.importorskip("matplotlib")
pytest.importorskip("networkx")

pytestmark = needs_chromium

DRAW = """THOUGHT 0: I will draw the directed graph with its capacities.
ACTION 0:
```python
import networkx as nx
import numpy as np
import matplotlib.pyplot as plt
m = np.array([[0, 1, 4], [0, 0, 6], [0, 0, 0]])
G = nx.from_numpy_array(m, create_using=nx.DiGraph)
pos = nx.spring_layout(G, seed=0)
nx.draw(G, pos, with_labels=True, node_color='lightblue')
nx.draw_networkx_edge_labels(G, pos, edge_labels=nx.get_edge_attributes(G, 'weight'))
plt.show()
print('edges:', G.number_of_edges())
```"""
LOOK = "THOUGHT 1: Let me list the capacities.\nACTION 1:\n```python\nprint(sorted(G.edges(data='weight')))\n```"
ANSWER = "THOUGHT 2: Paths 0-2 (4) and 0-1-2 (1) give 5.\nACTION 2: No action needed.\nANSWER: 5. TERMINATE"


@pytest.fixture
def sketchpad_run(tmp_path: Path, shared_data: Path) -> tuple[Path, str]:
    from llmlab.runner import EvalSpec, run_eval

    script = tmp_path / "planner.yaml"
    script.write_text(yaml.safe_dump({"replies": [DRAW, LOOK, ANSWER]}))
    runs = tmp_path / "runs"
    summary = run_eval(EvalSpec(task="sketchpad.graph_maxflow", method="sketchpad", model_spec=f"mock:{script}",
                                limit=1, concurrency=1, run_id="sketch", runs_dir=str(runs)))
    assert summary.n_scored == 1 and summary.aggregate["accuracy"] == 1.0
    return runs, "sketch"


@pytest.fixture
def viewer_url(sketchpad_run: tuple[Path, str]) -> Iterator[str]:
    from llmlab.web.viewer import create_viewer

    runs, _ = sketchpad_run
    with serve_asgi(create_viewer(runs)) as root:
        yield root


@pytest.fixture
def page() -> Iterator[Any]:
    yield from browser_page(viewport={"width": 1280, "height": 900})


def test_sketchpad_transcript_shows_every_turn_and_the_sketch(viewer_url: str, page: Any,
                                                              sketchpad_run: tuple[Path, str]) -> None:
    runs, run_id = sketchpad_run
    page.goto(f"{viewer_url}/run/{run_id}/item/graph_maxflow/0")
    page.wait_for_selector("#transcript")
    calls = page.locator("#transcript .call")
    assert calls.count() == 3  # three planner turns
    last = calls.nth(2).inner_text()
    for text in ("# USER REQUEST #:", "THOUGHT 0: I will draw", "OBSERVATION: Execution success.", "edges: 3",
                 "THOUGHT 1: Let me list", "[(0, 1, 1), (0, 2, 4), (1, 2, 6)]", "ANSWER: 5. TERMINATE"):
        assert text in last, text
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    imgs = page.evaluate("Array.from(document.querySelectorAll('#transcript img.msg-image'))"
                         ".map(i => [i.getAttribute('src'), i.naturalWidth, i.naturalHeight])")
    # the sketch is in the requests of turns 2 and 3 (the history), decoded at its real size
    assert len(imgs) == 2 and imgs[0][0] == imgs[1][0]
    assert all(w > 200 and h > 150 for _, w, h in imgs)
    assert page.locator("#transcript img.msg-image").first.is_visible()
    sha = imgs[0][0].rsplit("/", 1)[1]
    with sqlite3.connect(runs / run_id / "run.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM blobs WHERE sha256 = ?", (sha,)).fetchone()[0] == 1
    shot = runs / "sketchpad_item.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
