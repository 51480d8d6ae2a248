"""The run viewer's pages through FastAPI's test client (the browser test drives the same pages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.runs import make_run, png

pytest.importorskip("fastapi")
pytest.importorskip("jinja2")


@pytest.fixture
def client(tmp_path: Path) -> Any:
    from fastapi.testclient import TestClient

    from llmlab.web.viewer import create_viewer

    make_run(tmp_path, "run-a", {"q0": True, "q1": True, "q2": False, "q3": True, "q4": False},
             errors=("q4",), created=2.0e9)
    make_run(tmp_path, "run-b", {"q0": False, "q1": True, "q2": False, "q3": True}, model="mock:beta",
             created=1.9e9)
    make_run(tmp_path, "other-task", {"q0": True}, task="other")
    return TestClient(create_viewer(tmp_path, allowed_hosts=("testserver",)))


def test_runs_list_shows_task_models_score_ci_and_errors(client: Any) -> None:
    html = client.get("/").text
    assert html.index("run-a") < html.index("run-b")  # newest first
    assert "mock:beta" in html and "toy" in html
    # run-a: accuracy 3/4 over the items scored without error, ± 1.96·SE
    assert "0.750 <span class=\"pm\">± 0.490</span>" in html
    assert '<td class="num bad">1</td>' in html  # one error


@pytest.mark.parametrize(("query", "expected"), [
    ("", {"q0", "q1", "q2", "q3", "q4"}),
    ("?filter=correct", {"q0", "q1", "q3"}),
    ("?filter=incorrect", {"q2"}),
    ("?filter=error", {"q4"}),
    ("?min=0.5", {"q0", "q1", "q3"}),
    ("?max=0.5", {"q2"}),
    ("?q=3+%2B+3", {"q3"}),  # text search in the question
])
def test_item_filters(client: Any, query: str, expected: set[str]) -> None:
    import re

    html = client.get(f"/run/run-a{query}").text
    assert set(re.findall(r'data-item="([^"]+)"', html)) == expected


def test_bad_filter_and_unknown_run_are_one_line(client: Any) -> None:
    from html import unescape

    r = client.get("/run/run-a?filter=maybe")
    assert r.status_code == 400 and "unknown filter 'maybe'" in unescape(r.text)
    r = client.get("/run/run-a?min=abc")
    assert r.status_code == 400 and "min must be a number" in r.text
    assert client.get("/run/nope").status_code == 404
    assert client.get("/run/..%2F..%2Fetc").status_code == 404
    assert client.get("/blob/run-a/notahash").status_code == 400
    assert client.get(f"/blob/run-a/{'0' * 64}").status_code == 404


def test_item_page_shows_transcript_tool_calls_image_and_error(client: Any) -> None:
    html = client.get("/run/run-a/item/q1").text
    assert "What is 1 + 1?" in html
    assert "→ calculator" in html and "call_1" in html and "result of <code>call_1</code>" in html
    assert "temperature=0.0" in html and "1 tools: calculator" in html
    import re

    (src,) = set(re.findall(r'src="(/blob/run-a/[0-9a-f]{64})"', html))
    img = client.get(src)
    assert img.status_code == 200 and img.headers["content-type"] == "image/png" and img.content == png()
    err = client.get("/run/run-a/item/q4").text
    assert "RateLimitError: 429 slow down" in err and "Traceback (most recent call last)" in err
    assert 'class="badge error"' in err


def test_compare_page_lists_differing_items_first_with_paired_stats(client: Any) -> None:
    import re

    html = client.get("/compare?a=run-a&b=run-b").text
    items = re.findall(r'data-item="([^"]+)"', html)
    assert items[0] == "q0" and set(items) == {"q0", "q1", "q2", "q3"}  # q4 failed in A: not shared
    assert "1 of 4 items differ" in html
    assert "McNemar" in html and "+0.2500" in html
    side = client.get("/compare/item?a=run-a&b=run-b&item=q0").text
    assert side.count("The sum is") >= 2 and 'id="side-2"' in side
    bad = client.get("/compare?a=run-a&b=other-task")
    assert bad.status_code == 400 and "different tasks" in bad.text


def test_missing_runs_dir_is_one_line(tmp_path: Path) -> None:
    from llmlab.core.errors import ConfigError
    from llmlab.web.viewer import create_viewer

    with pytest.raises(ConfigError, match="does not exist"):
        create_viewer(tmp_path / "none")


def test_a_real_eval_is_viewable_with_its_image(tmp_path: Path) -> None:
    """Runner → store → viewer: the question, the verdict and the image a method sent."""
    import re

    from fastapi.testclient import TestClient

    import tests.stats.test_runs  # noqa: F401  (registers the rephrased task, the look method, mockvision)
    from llmlab.runner import EvalSpec, run_eval
    from llmlab.web.viewer import create_viewer

    run_eval(EvalSpec(task="rephrased", method="look", model_spec="mockvision:text=2", runs_dir=str(tmp_path),
                      run_id="img", limit=6))
    client = TestClient(create_viewer(tmp_path, allowed_hosts=None))
    html = client.get("/run/img/item/1-0").text
    assert "rephrasing 0: double 1" in html and 'class="badge correct"' in html
    (src,) = set(re.findall(r'src="(/blob/img/[0-9a-f]{64})"', html))
    assert client.get(src).content == png()
    listing = client.get("/").text
    assert "0.500 <span class=\"pm\">±" in listing  # 3 of 6 right (question 1 answered "2")


def test_only_loopback_host_names_are_answered_by_default(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from llmlab.web.viewer import create_viewer

    make_run(tmp_path, "r", {"q0": True})
    client = TestClient(create_viewer(tmp_path), base_url="http://127.0.0.1:8765")
    assert client.get("/").status_code == 200
    assert client.get("/", headers={"host": "localhost:8765"}).status_code == 200
    assert client.get("/", headers={"host": "attacker.example"}).status_code == 400  # DNS rebinding
