"""Drive the run viewer in a real headless Chromium (Debian's package) and check the screenshots.

Screenshots go to ``$LLMLAB_SCREENSHOTS`` when set (to look at them), else to the test's temp folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.chromium import browser_page, needs_chromium
from tests.helpers.runs import make_run
from tests.helpers.servers import serve_asgi

pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
Image = pytest.importorskip("PIL.Image")

pytestmark = needs_chromium


@pytest.fixture
def viewer_url(tmp_path: Path) -> Iterator[str]:
    from llmlab.web.viewer import create_viewer

    runs = tmp_path / "runs"
    make_run(runs, "gsm-direct", {"q0": True, "q1": True, "q2": False, "q3": True, "q4": False}, errors=("q4",),
             created=2.0e9)
    make_run(runs, "gsm-moa", {"q0": False, "q1": True, "q2": True, "q3": True}, model="mock:beta",
             method="moa", created=1.9e9)
    with serve_asgi(create_viewer(runs)) as root:
        yield root


@pytest.fixture
def page() -> Iterator[Any]:
    yield from browser_page(viewport={"width": 1280, "height": 900})


def _shot(page: Any, folder: Path, name: str) -> Path:
    """Take a full-page screenshot and check it is a rendered page, not a blank or an error page."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    img = Image.open(path).convert("RGB")
    w, h = img.size
    assert w >= 1000 and h >= 300
    small = img.resize((w // 4, h // 4))
    pixels = list(small.getdata())
    inked = sum(1 for p in pixels if sum(p) < 600) / len(pixels)  # text, borders, badges
    assert inked > 0.01, f"{name}: page looks blank ({inked:.3%} non-white)"
    assert len(set(pixels)) > 30, f"{name}: too few colours for a rendered page"
    return path


def test_viewer_pages_in_browser(viewer_url: str, page: Any, tmp_path: Path) -> None:
    shots = Path(os.environ.get("LLMLAB_SCREENSHOTS", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)

    page.goto(viewer_url + "/")
    rows = page.locator("#runs tbody tr")
    assert rows.count() == 2
    assert "gsm-direct" in rows.nth(0).inner_text() and "0.750" in rows.nth(0).inner_text()
    _shot(page, shots, "runs")

    page.click("text=gsm-direct")
    page.wait_for_selector("#items")
    assert page.locator("#items tbody tr").count() == 5
    page.select_option("#filter", "error")
    page.click("#apply")
    page.wait_for_url("**filter=error**")
    assert page.locator("#items tbody tr").count() == 1
    assert "429" in page.locator("#items tbody tr").inner_text()
    page.select_option("#filter", "all")
    page.fill("input[name=min]", "0.5")
    page.click("#apply")
    page.wait_for_url("**min=0.5**")
    assert sorted(page.locator("#items tbody tr").evaluate_all("rs => rs.map(r => r.dataset.item)")) == [
        "q0", "q1", "q3"]
    _shot(page, shots, "run_filtered")

    page.click("a.item-link >> text=q1")
    page.wait_for_selector("#transcript")
    assert "What is 1 + 1?" in page.locator("#question").inner_text()
    assert page.locator("#transcript .call").count() == 2
    assert "calculator" in page.locator("#transcript .toolcall").first.inner_text()
    assert page.locator("#transcript .msg.tool").first.is_visible()
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    widths = page.evaluate("Array.from(document.querySelectorAll('img.msg-image')).map(i => i.naturalWidth)")
    assert widths and all(w == 48 for w in widths)  # the PNG from the blob table decoded at its real size
    _shot(page, shots, "item_transcript")

    page.goto(viewer_url + "/run/gsm-direct/item/q4")
    assert page.locator("#traceback").is_visible()
    assert "RateLimitError" in page.locator("#traceback").inner_text()
    _shot(page, shots, "item_error")

    page.goto(viewer_url + "/")
    page.check("#runs tbody tr:nth-child(1) input[name=a]")
    page.check("#runs tbody tr:nth-child(2) input[name=b]")
    page.click("#compare-btn")
    page.wait_for_selector("#pairs")
    first = page.locator("#pairs tbody tr").first
    assert first.get_attribute("class") == "differs"
    assert page.locator("#n-diff").inner_text().startswith("2 of 4 items differ")
    assert "McNemar" in page.locator("#paired").inner_text()
    _shot(page, shots, "compare")

    page.locator("#pairs a.pair-link").first.click()
    page.wait_for_selector("#side-2")
    assert page.locator(".sides .side").first.is_visible()
    _shot(page, shots, "compare_item")
