"""A planted multilingual test corpus for the mOSCAR filters, built from real text on a Debian machine.

The clean text is the translated message catalogues Debian packages ship
(``/usr/share/locale/<lang>/LC_MESSAGES/*.mo``, read with a small GNU ``.mo`` parser; English comes from the
catalogues' source strings). Several messages of one language make a paragraph, several paragraphs and
image references make a document in the mOSCAR release schema. Then known noise is planted on chosen
documents, each kind on its own documents, and written down in ``planted.json``, so that
:func:`evaluate` can measure each filter's precision and recall on exactly what was planted:

======================= ============================================= ==============================
kind                    what is planted                               stage expected to remove it
======================= ============================================= ==============================
short_doc               a document under 500 bytes                    ``doc_length``
adult_url               a document whose URL is on the blocklist      ``doc_url``
wrong_language          a paragraph from another language             ``lid`` (paragraph)
boilerplate             a cookie/copyright/share/navigation paragraph ``node_text`` (paragraph)
dup_paragraph           a paragraph repeated (exact or lightly edited) ``node_dedup`` (paragraph)
repetitive_doc          one sentence repeated throughout a paragraph  ``doc_repetition``
nsfw_doc                two or three words of the NSFW list           ``doc_nsfw``
logo_image              an image URL such as ``.../site-logo.png``     ``image_url`` (image)
exact_dup               a verbatim copy of an earlier document        ``doc_exact_dup``
near_dup                a copy with ~3% of words changed              ``doc_near_dup``
======================= ============================================= ==============================

The corpus is never committed: tests, the bench and ``llmlab moscar corpus`` build it when they need it.
"""

from __future__ import annotations

import json
import random
import re
import struct
from collections import defaultdict
from pathlib import Path
from typing import Any

from llmlab.core.errors import DataError

LOCALE_DIR = Path("/usr/share/locale")
# LID-176 code -> Debian locale folder; English is the catalogues' msgids.
LANGUAGES = {"de": "de", "fr": "fr", "es": "es", "it": "it", "nl": "nl", "pl": "pl", "ru": "ru", "ja": "ja",
             "en": "de"}
BOILERPLATE = {
    "en": ["We use cookies to improve your experience. By continuing you accept our privacy policy.",
           "Copyright 2023 Example Media Ltd. All rights reserved.",
           "Share this article on Facebook, Twitter and LinkedIn.",
           "Home | News | About us | Contact | Login"],
    "de": ["Diese Website verwendet Cookies. Mehr dazu in unserer Datenschutzerklärung.",
           "© 2023 Beispiel Verlag GmbH. Alle Rechte vorbehalten.",
           "Startseite | Aktuelles | Über uns | Kontakt | Impressum"],
    "fr": ["Ce site utilise des cookies pour améliorer votre expérience de navigation.",
           "© 2023 Exemple Médias. Tous droits réservés.",
           "Accueil | Actualités | À propos | Contact | Connexion"],
    "es": ["Este sitio web utiliza cookies para mejorar su experiencia de usuario.",
           "© 2023 Ejemplo Editorial S.L. Todos los derechos reservados.",
           "Inicio | Noticias | Quiénes somos | Contacto"],
    "it": ["Questo sito utilizza cookie tecnici e di profilazione.", "© 2023 Esempio Srl. Tutti i diritti riservati.",
           "Home | Notizie | Chi siamo | Contatti"],
    "nl": ["Deze website gebruikt cookies om uw ervaring te verbeteren.",
           "© 2023 Voorbeeld Uitgevers B.V. Alle rechten voorbehouden.", "Home | Nieuws | Over ons | Contact"],
    "pl": ["Ta strona używa plików cookies w celach statystycznych.",
           "© 2023 Przykład Sp. z o.o. Wszelkie prawa zastrzeżone.", "Strona główna | Aktualności | Kontakt"],
    "ru": ["Этот сайт использует файлы cookies для улучшения работы.", "© 2023 ООО «Пример». Все права защищены.",
           "Главная | Новости | О нас | Контакты"],
    "ja": ["当サイトではクッキー（cookie）を使用しています。", "© 2023 サンプル株式会社 無断転載を禁じます。",
           "ホーム | ニュース | 会社概要 | お問い合わせ"],
}
NEAR_DUP_EDIT_RATES = (0.005, 0.01, 0.02, 0.04, 0.08)
NSFW_PLANT = ["porn", "xxx", "nude", "erotic", "escort", "naked", "hentai"]
KINDS = ("short_doc", "adult_url", "wrong_language", "boilerplate", "dup_paragraph", "repetitive_doc", "nsfw_doc",
         "logo_image", "exact_dup", "near_dup")
EXPECTED_STAGE = {"short_doc": "doc_length", "adult_url": "doc_url", "wrong_language": "lid",
                  "boilerplate": "node_text", "dup_paragraph": "node_dedup", "repetitive_doc": "doc_repetition",
                  "nsfw_doc": "doc_nsfw", "logo_image": "image_url", "exact_dup": "doc_exact_dup",
                  "near_dup": "doc_near_dup"}
_JUNK = re.compile(r"[%$\\|@=]|\.\.\.|--")
_LETTERS = re.compile(r"[^\W\d_]")
_FORMAT = re.compile(r"%[-+ #0-9.]*[lhqjzt]*[sdiufxXcpeEgGo%]|\{[^}]*\}|<[^>]+>|_(?=\w)|&(?=\w)|\\[nt]")


def read_mo(path: Path) -> dict[str, str]:
    """The msgid -> msgstr pairs of a GNU ``.mo`` catalogue (plural forms: the first; no header, no contexts)."""
    data = path.read_bytes()
    if len(data) < 28:
        return {}
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic == 0x950412DE else ">" if magic == 0xDE120495 else None
    if end is None:
        return {}
    _rev, n, o_orig, o_trans = struct.unpack(end + "IIII", data[4:20])
    out = {}
    for i in range(n):
        ln, off = struct.unpack(end + "II", data[o_orig + 8 * i: o_orig + 8 * i + 8])
        lt, ot = struct.unpack(end + "II", data[o_trans + 8 * i: o_trans + 8 * i + 8])
        msgid = data[off: off + ln]
        if not msgid or b"\x04" in msgid:
            continue
        try:
            out[msgid.split(b"\x00")[0].decode("utf-8")] = data[ot: ot + lt].split(b"\x00")[0].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return out


def _clean(msg: str) -> str:
    text = _FORMAT.sub(" ", msg.replace("\n", " "))
    text = re.sub(r"[\"«»“”„`#*]|\(\s*[,;:]*\s*\)|\[\s*[,;:]*\s*\]", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip(" -:,;")


def message_pools(locale_dir: Path = LOCALE_DIR, min_chars: int = 40, per_language: int = 5000,
                  ) -> dict[str, list[str]]:
    """Clean sentences per language from the installed catalogues (sorted, deduplicated, at most ``per_language``).

    Messages with format directives left after cleaning (``%``, ``$``, backslashes) are skipped, and so are
    untranslated ones (msgstr = msgid).
    """
    pools: dict[str, set[str]] = defaultdict(set)
    for lang, folder in LANGUAGES.items():
        for mo in sorted((locale_dir / folder / "LC_MESSAGES").glob("*.mo")):
            if len(pools[lang]) >= per_language:
                break
            for msgid, msgstr in read_mo(mo).items():
                raw = msgid if lang == "en" else msgstr
                if len(raw) < min_chars or (lang != "en" and msgstr == msgid):
                    continue
                text = _clean(raw)
                if len(text) < min_chars or _JUNK.search(text):
                    continue
                if len(_LETTERS.findall(text)) >= 0.7 * (len(text) - text.count(" ")):
                    pools[lang].add(text)
    found = {k: sorted(v)[:per_language] for k, v in pools.items() if len(v) >= 200}
    if len(found) < 3:
        raise DataError(f"too few translated message catalogues under {locale_dir} to build a corpus "
                        f"(found {sorted(found)}); install Debian packages with translations (e.g. coreutils)")
    return found


def _blocked_domains(n: int, rng: random.Random) -> list[str]:
    """``n`` adult domains from datatrove's bundled UT1 blocklist (read from its tarball)."""
    import tarfile

    from datatrove.utils._import_utils import ASSETS_PATH

    with tarfile.open(Path(ASSETS_PATH) / "url_filterblacklistsv0_3_0.tar.gz", "r:gz") as tar:
        fh = tar.extractfile("domains")
        assert fh is not None
        lines = fh.read(8 << 20).decode("utf-8", "replace").splitlines()[:-1]  # the first 8 MiB: ~400k domains
    picks = rng.sample(range(len(lines)), n)
    return [lines[i].strip() for i in sorted(picks)]


def _paragraph(pool: list[str], rng: random.Random, cursor: dict[str, int], lang: str, min_chars: int = 160) -> str:
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < min_chars:
        i = cursor[lang] % len(pool)
        cursor[lang] += 1
        if i == len(pool) - 1:
            rng.shuffle(pool)  # a new pass over the pool: new combinations, no accidental duplicate paragraphs
        parts.append(pool[i].rstrip(".") + ("。" if lang == "ja" else "."))
    return ("" if lang == "ja" else " ").join(parts)


def build_corpus(out: str | Path, n_docs: int = 2000, seed: int = 0, noise_rate: float = 0.04, n_files: int = 4,
                 locale_dir: Path = LOCALE_DIR, per_language: int = 5000) -> dict[str, Any]:
    """Write ``out/input/part-*.jsonl`` (release schema), ``out/planted.json`` and ``out/blocked_domains.txt``.

    Args:
        out: folder to write.
        n_docs: clean base documents (planted copies come on top).
        seed: everything is a function of it (and of the catalogues installed).
        noise_rate: fraction of base documents that get each kind of noise (each kind on its own documents).
        n_files: input files (copies of earlier documents go to the last file, after their originals).
        locale_dir: where the ``.mo`` catalogues are.
        per_language: sentences read per language (fewer: faster, more reuse of sentences).

    Returns:
        ``{"documents": int, "planted": {kind: count}, "languages": [...]}``.
    """
    rng = random.Random(seed)
    pools = message_pools(locale_dir, per_language=per_language)
    for p in pools.values():
        rng.shuffle(p)
    langs = sorted(pools)
    cursor: dict[str, int] = defaultdict(int)
    docs: list[dict[str, Any]] = []
    for i in range(n_docs):
        lang = langs[i % len(langs)]
        paras = [_paragraph(pools[lang], rng, cursor, lang) for _ in range(rng.randint(3, 6))]
        images = [{"img_idx": k, "url": f"https://img.example-{lang}.org/media/{seed}-{i}-{k}.jpg",
                   "sha512": f"{rng.getrandbits(128):032x}"} for k in range(rng.randint(1, 3))]
        docs.append({"id": f"doc-{i:06d}", "lang": lang, "paras": paras, "images": images,
                     "url": f"https://www.example-{lang}.org/page/{i}.html"})
    n_noisy = max(1, int(noise_rate * n_docs))
    order = list(range(n_docs))
    rng.shuffle(order)
    targets = {kind: order[k * n_noisy:(k + 1) * n_noisy] for k, kind in enumerate(KINDS)}
    planted: list[dict[str, Any]] = []
    extra: list[dict[str, Any]] = []
    domains = _blocked_domains(n_noisy, rng)

    for i in targets["short_doc"]:
        docs[i]["paras"] = [docs[i]["paras"][0][:120]]
        planted.append({"kind": "short_doc", "doc_id": docs[i]["id"], "idx": None})
    for j, i in enumerate(targets["adult_url"]):
        docs[i]["url"] = f"https://{domains[j]}/gallery/{i}.html"
        planted.append({"kind": "adult_url", "doc_id": docs[i]["id"], "idx": None})
    for i in targets["wrong_language"]:
        other = rng.choice([x for x in langs if x != docs[i]["lang"]])
        k = rng.randint(0, len(docs[i]["paras"]))
        docs[i]["paras"].insert(k, _paragraph(pools[other], rng, cursor, other))
        docs[i]["planted_para"] = ("wrong_language", k)
    for i in targets["boilerplate"]:
        bp = rng.choice(BOILERPLATE.get(docs[i]["lang"], BOILERPLATE["en"]))
        k = rng.choice([0, len(docs[i]["paras"])])
        docs[i]["paras"].insert(k, bp)
        docs[i]["planted_para"] = ("boilerplate", k)
    for i in targets["dup_paragraph"]:
        src = rng.choice(docs[i]["paras"])
        copy = src if rng.random() < 0.5 else _edit_chars(src, rng, 0.02)
        docs[i]["paras"].append(copy)
        docs[i]["planted_para"] = ("dup_paragraph", len(docs[i]["paras"]) - 1)
    for i in targets["repetitive_doc"]:
        sentence = docs[i]["paras"][0].split(". ")[0].rstrip(".") + "."
        docs[i]["paras"].insert(1, " ".join([sentence] * 12))
        planted.append({"kind": "repetitive_doc", "doc_id": docs[i]["id"], "idx": None})
    for i in targets["nsfw_doc"]:
        words = rng.sample(NSFW_PLANT, rng.randint(2, 3))
        k = rng.randrange(len(docs[i]["paras"]))
        docs[i]["paras"][k] = docs[i]["paras"][k] + " " + " ".join(words)
        planted.append({"kind": "nsfw_doc", "doc_id": docs[i]["id"], "idx": None})
    for i in targets["logo_image"]:
        kw = rng.choice(["logo", "banner", "icon", "button", "avatar"])
        k = len(docs[i]["images"])
        docs[i]["images"].append({"img_idx": k, "url": f"https://www.example-{docs[i]['lang']}.org/static/"
                                                       f"site-{kw}-{i}.png", "sha512": f"{rng.getrandbits(128):032x}"})
        planted.append({"kind": "logo_image", "doc_id": docs[i]["id"], "idx": k})
    for j, i in enumerate(targets["exact_dup"]):
        c = {**docs[i], "id": f"copy-{j:06d}", "url": docs[i]["url"].replace("/page/", "/mirror/")}
        extra.append(c)
        planted.append({"kind": "exact_dup", "doc_id": c["id"], "idx": None, "original": docs[i]["id"]})
    for j, i in enumerate(targets["near_dup"]):
        # edit rates spread the copies over Jaccard ~0.5-0.97, so recall can be read per similarity band
        rate = NEAR_DUP_EDIT_RATES[j % len(NEAR_DUP_EDIT_RATES)]
        paras = [_edit_words(p, rng, rate) for p in docs[i]["paras"]]
        if paras == docs[i]["paras"]:
            paras[0] = _edit_words(paras[0], rng, 1.0 / max(len(paras[0].split(" ")), 1), at_least_one=True)
        c = {**docs[i], "id": f"near-{j:06d}", "url": docs[i]["url"].replace("/page/", "/syndicated/"),
             "paras": paras}
        extra.append(c)
        planted.append({"kind": "near_dup", "doc_id": c["id"], "idx": None, "original": docs[i]["id"],
                        "jaccard": jaccard("\n\n".join(docs[i]["paras"]), "\n\n".join(c["paras"]))})

    records = [_to_record(d, planted) for d in docs] + [_to_record(d, planted) for d in extra]
    root = Path(out)
    (root / "input").mkdir(parents=True, exist_ok=True)
    per = -(-n_docs // n_files)
    for f in range(n_files):
        chunk = records[f * per:(f + 1) * per] + (records[n_docs:] if f == n_files - 1 else [])
        with (root / "input" / f"part-{f:03d}.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk)
    (root / "blocked_domains.txt").write_text("\n".join(domains) + "\n")
    counts = {k: sum(p["kind"] == k for p in planted) for k in KINDS}
    (root / "planted.json").write_text(json.dumps({"seed": seed, "n_docs": len(records), "counts": counts,
                                                   "planted": planted}, indent=1, ensure_ascii=False))
    return {"documents": len(records), "planted": counts, "languages": langs}


def _to_record(d: dict[str, Any], planted: list[dict[str, Any]]) -> dict[str, Any]:
    """Release schema; a planted paragraph's ``text_idx`` is its final position."""
    nodes = [{"text_idx": k, "text": t} for k, t in enumerate(d["paras"])]
    mark = d.get("planted_para")
    if mark and not d["id"].startswith(("copy-", "near-")):
        kind, idx = mark
        planted.append({"kind": kind, "doc_id": d["id"], "idx": idx})
    order = [f"txt_#{k:06d}" for k in range(len(nodes))]
    for im in d["images"]:
        order.insert(min(2 * im["img_idx"] + 1, len(order)), f"img_#{im['img_idx']:06d}")
    return {"id": d["id"], "text": nodes, "images": d["images"], "metadata": {"url": d["url"],
                                                                              "node_order": "|".join(order)}}


def _edit_words(text: str, rng: random.Random, rate: float, at_least_one: bool = False) -> str:
    words = text.split(" ")
    hit = [rng.random() < rate for _ in words]
    if at_least_one and not any(hit):
        hit[rng.randrange(len(words))] = True
    return " ".join((w[::-1] if len(w) > 2 and w[::-1] != w else w + "x") if h else w
                    for w, h in zip(words, hit, strict=True))


def _edit_chars(text: str, rng: random.Random, rate: float) -> str:
    chars = list(text)
    for k in range(len(chars)):
        if chars[k].isalpha() and rng.random() < rate:
            chars[k] = chars[k].swapcase()
    return "".join(chars)


def jaccard(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' shingle sets, as the MinHash stage computes them (5-gram hashes)."""
    from llmlab.data.moscar import MoscarConfig, make_minhash_signer

    signer = make_minhash_signer(MoscarConfig())
    sa, sb = set(signer.get_shingles(a).ravel().tolist()), set(signer.get_shingles(b).ravel().tolist())
    return len(sa & sb) / max(len(sa | sb), 1)


def evaluate(corpus: str | Path, removals: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision and recall of each stage on what was planted for it.

    For a stage: planted = items planted for it; removed = items it removed (documents by id; paragraphs and
    images by (id, idx)); precision = |planted ∩ removed| / |removed|, recall = |planted ∩ removed| / |planted|.
    A stage's false positives are real catalogue text it removed (the base corpus is not noise-free).
    """
    data = json.loads((Path(corpus) / "planted.json").read_text(encoding="utf-8"))
    removed_any = {(r["doc_id"], r["idx"]) for r in removals} | {(r["doc_id"], None) for r in removals
                                                                 if r["level"] == "document"}
    out: dict[str, Any] = {}
    for kind in KINDS:
        stage = EXPECTED_STAGE[kind]
        planted = {(p["doc_id"], p["idx"]) for p in data["planted"] if p["kind"] == kind}
        removed = {(r["doc_id"], r["idx"]) for r in removals if r["stage"] == stage}
        tp = len(planted & removed)
        any_stage = sum(1 for d, i in planted if (d, i) in removed_any or (d, None) in removed_any)
        out[kind] = {"stage": stage, "planted": len(planted), "removed": len(removed), "true_positives": tp,
                     "precision": tp / len(removed) if removed else None,
                     "recall": tp / len(planted) if planted else None,
                     "recall_any_stage": any_stage / len(planted) if planted else None}
    near = [p for p in data["planted"] if p["kind"] == "near_dup"]
    rem_near = {r["doc_id"] for r in removals if r["stage"] == "doc_near_dup"}
    bands = {}
    for lo, hi in ((0.0, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01)):
        ids = [p["doc_id"] for p in near if lo <= p["jaccard"] < hi]
        if ids:
            bands[f"{lo:.1f}-{min(hi, 1.0):.1f}"] = {"planted": len(ids), "recall": sum(d in rem_near for d in ids)
                                                     / len(ids)}
    hi_ids = [p["doc_id"] for p in near if p["jaccard"] >= 0.8]
    out["near_dup"]["recall_by_jaccard"] = bands
    out["near_dup"]["recall_at_jaccard_0.8"] = sum(d in rem_near for d in hi_ids) / len(hi_ids) if hi_ids else None
    return out


__all__ = ["EXPECTED_STAGE", "KINDS", "build_corpus", "evaluate", "message_pools", "read_mo"]
