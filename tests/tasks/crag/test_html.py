from __future__ import annotations

import bz2
import json
from pathlib import Path

from llmlab.tasks.crag import html_to_text


def test_blocks_become_lines_and_scripts_go() -> None:
    html = ("<html><head><title>T</title><style>p{}</style></head><body><nav>Menu</nav><p>The <b>bold</b> "
            "word</p><ul><li>one</li><li>two</li></ul><script>var x = 1;</script></body></html>")
    assert html_to_text(html) == "Menu\nThe bold word\none\ntwo"
    assert html_to_text("") == ""


def test_real_pages_give_their_text(shared_data: Path) -> None:
    with bz2.open(shared_data / "crag/example_data/dev_data.jsonl.bz2", "rt") as f:
        rows = [json.loads(line) for line in f]
    page = rows[0]["search_results"][0]
    text = html_to_text(page["page_result"])
    assert "Office 2019" in text and "<" not in text[:2000]
    assert "function(" not in text  # inline scripts removed
