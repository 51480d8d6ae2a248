"""``llmlab moscar filter`` and ``audit`` end to end on a three-document input."""

from __future__ import annotations

import json

import pytest

from llmlab.cli import main

pytest.importorskip("datatrove")

DE = ("Die Stadtverwaltung hat heute bekannt gegeben, dass die Bibliothek im nächsten Monat wegen "
      "umfangreicher Renovierungsarbeiten geschlossen bleibt.")
DE2 = ("Viele Bürgerinnen und Bürger haben sich darüber beschwert, weil es in der Umgebung keine andere "
       "öffentliche Einrichtung mit Leseräumen gibt.")


def _rec(i: int, paras: list[str], image: str = "photo.jpg") -> dict:
    return {"id": f"d{i}", "text": [{"text_idx": k, "text": t} for k, t in enumerate(paras)],
            "images": [{"img_idx": 0, "url": f"https://img.example.de/{image}"}],
            "metadata": {"url": f"https://news.example.de/{i}.html"}}


def test_filter_then_audit(capsys, tmp_path):
    inp = tmp_path / "in.jsonl"
    recs = [_rec(0, [DE, DE2]), _rec(1, [DE, DE2]), _rec(2, [DE2, DE], image="site-logo.png")]
    inp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    out = tmp_path / "out"
    assert main(["moscar", "filter", str(inp), str(out), "-p", "url_blocklist=none", "-p", "min_doc_bytes=0",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["documents_in"] == 3 and summary["documents_out"] == 1
    assert summary["stages"]["doc_exact_dup"]["documents_removed"] == 1  # d1 is d0 verbatim
    assert summary["stages"]["image_url"]["images_removed"] == 1  # d2's logo, then d2 has no image left
    assert summary["stages"]["doc_content"]["documents_removed"] == 1
    (out / "audit.json").unlink()
    assert main(["moscar", "audit", str(out), "--sample", "1"]) == 0
    rep = json.loads((out / "audit.json").read_text())
    assert rep["stages"]["doc_exact_dup"]["sample"][0]["doc_id"] == "d1"
