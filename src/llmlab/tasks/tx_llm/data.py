"""TDC datasets in their CSV layout: finding, loading (RDKit-checked), PyTDC fetching, splits, few-shot exemplars."""

from __future__ import annotations

import csv
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from llmlab.core.errors import ConfigError, DataError
from llmlab.tasks.tx_llm.codecs import Binning, _rdkit, canonical_smiles
from llmlab.tasks.tx_llm.prompts import TASKS, TxTask

log = logging.getLogger(__name__)


@dataclass
class TxData:
    """One TDC dataset loaded and checked: rows per split (SMILES canonicalised) and what was dropped."""

    task: TxTask
    splits: dict[str, list[dict[str, str]]]
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (file:line, SMILES RDKit rejects)
    source: str = ""

    def binning(self) -> Binning | None:
        if self.task.kind != "regression":
            return None
        return Binning.fit((float(r[self.task.target]) for r in self.splits["train"]), self.task.log10)


def _read_csv(path: Path, task: TxTask) -> list[tuple[str, dict[str, str]]]:
    """The raw rows of a TDC file, each with its ``file:line`` (columns checked, values untouched)."""
    delim = "\t" if path.suffix == ".tab" else ","
    need = [e.column for e in task.entities] + [task.target]
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delim)
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: TDC file for {task.name} lacks column(s) {missing}; it has "
                            f"{reader.fieldnames} (expected {need})")
        return [(f"{path}:{i}", {k: (v if v is not None else "") for k, v in rec.items() if k is not None})
                for i, rec in enumerate(reader, start=2)]


def _clean(task: TxTask, rows: list[tuple[str, dict[str, str]]],
           invalid: list[tuple[str, str]]) -> list[dict[str, str]]:
    """Canonicalise every SMILES (dropping and reporting the rows RDKit rejects) and check the labels."""
    out: list[dict[str, str]] = []
    for where, raw in rows:
        row = dict(raw)
        bad = None
        for e in task.entities:
            if e.type == "smiles":
                can = canonical_smiles(row[e.column])
                if can is None:
                    bad = row[e.column]
                    break
                row[e.column] = can
        if bad is None and task.kind == "generation":
            parts = [canonical_smiles(p) for p in row[task.target].split(".")]
            if None in parts:
                bad = row[task.target]
            else:
                row[task.target] = ".".join(str(p) for p in parts)
        if bad is not None:
            invalid.append((where, bad))
            continue
        if task.kind != "generation":
            try:
                float(row[task.target])
            except ValueError:
                raise DataError(f"{where}: {task.target} must be a number, got {row[task.target]!r}") from None
        out.append(row)
    return out


def tdc_random_split(rows: Sequence[Any], seed: int = 42,
                     frac: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> dict[str, list[Any]]:
    """TDC's random split (``get_split()``'s default), for a dataset supplied as one file.

    Test rows are drawn first with ``seed``, then valid rows from the rest with seed 1; train is what remains,
    in file order. The draws are pandas' ``DataFrame.sample`` (as TDC's), so with pandas installed the split is
    TDC's own; without pandas a seeded shuffle with the same sizes is used (then it is not TDC's split).
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the crag/compare extras
        idx = list(range(len(rows)))
        random.Random(seed).shuffle(idx)
        n_test = round(frac[2] * len(rows))
        n_valid = round(frac[1] / (1 - frac[2]) * (len(rows) - n_test))
        test, valid = idx[:n_test], idx[n_test:n_test + n_valid]
        train = sorted(set(idx) - set(test) - set(valid))
        return {"train": [rows[i] for i in train], "valid": [rows[i] for i in valid], "test": [rows[i] for i in test]}
    df = pd.DataFrame({"i": range(len(rows))})
    test = df.sample(frac=frac[2], replace=False, random_state=seed)
    rest = df[~df.index.isin(test.index)]
    valid = rest.sample(frac=frac[1] / (1 - frac[2]), replace=False, random_state=1)
    train = rest[~rest.index.isin(valid.index)]
    return {name: [rows[i] for i in part["i"].tolist()]
            for name, part in (("train", train), ("valid", valid), ("test", test))}


def find_tdc_files(name: str, data_dir: str | None) -> tuple[str, dict[str, Path]] | None:
    """The split files (or one whole file under ``"all"``) of TDC dataset ``name``, or ``None``."""
    from llmlab.core.data import cache_dir, candidate_dirs

    dirs = candidate_dirs(data_dir) if data_dir is not None else [*candidate_dirs(None), cache_dir()]
    for d in dirs:
        folder = d / "tdc" / name
        splits = {s: folder / f"{s}.csv" for s in ("train", "valid", "test")}
        if all(p.exists() for p in splits.values()):
            return str(folder), splits
        for cand in (d / "tdc" / f"{name}.csv", d / "tdc" / f"{name}.tab", d / "tdc" / f"{name.lower()}.tab"):
            if cand.exists():
                return str(cand), {"all": cand}
    return None


PYTDC_MODULES = {"ADME": "tdc.single_pred", "Tox": "tdc.single_pred", "HTS": "tdc.single_pred",
                 "RetroSyn": "tdc.generation"}  # every other group is in tdc.multi_pred


def fetch_with_pytdc(task: TxTask) -> Path | None:
    """Fetch ``task`` with PyTDC into the cache as split CSVs; ``None`` when PyTDC is absent or offline."""
    from llmlab.core.data import cache_dir, is_offline

    if is_offline():
        return None
    import importlib

    try:
        pred = importlib.import_module(PYTDC_MODULES.get(task.group, "tdc.multi_pred"))
    except ImportError:
        return None
    loader = getattr(pred, task.group, None)
    if loader is None:
        return None
    folder = cache_dir() / "tdc" / task.name
    folder.mkdir(parents=True, exist_ok=True)
    try:
        split = loader(name=task.name, path=str(folder / "raw")).get_split()
    except Exception as exc:  # PyTDC raises anything on network trouble; say what, once
        raise DataError(f"PyTDC could not fetch {task.name} ({type(exc).__name__}: {exc}); pass --data-dir DIR "
                        f"holding tdc/{task.name}/{{train,valid,test}}.csv") from None
    for s, df in split.items():
        df.to_csv(folder / f"{s}.csv", index=False)
    return folder


def load_tdc(name: str, data_dir: str | None = None, seed: int = 42) -> TxData:
    """Load and check the TDC dataset ``name`` (see the module docstring for the layout).

    Raises:
        ConfigError: ``name`` is not a task of :data:`TASKS`.
        DataError: No file found (and PyTDC unavailable), a missing column, or a bad label.
    """
    if name not in TASKS:
        raise ConfigError(f"unknown Tx-LLM task '{name}'. Available: {', '.join(TASKS)}")
    task = TASKS[name]
    found = find_tdc_files(name, data_dir)
    if found is None and data_dir is None:
        folder = fetch_with_pytdc(task)
        found = find_tdc_files(name, None) if folder is not None else None
    if found is None:
        raise DataError(f"TDC data for {name} not found; pass --data-dir DIR holding "
                        f"tdc/{name}/{{train,valid,test}}.csv (TDC's get_split() saved with to_csv) "
                        "or install PyTDC on a machine that is online")
    where, files = found
    invalid: list[tuple[str, str]] = []
    if "all" in files:
        raw = tdc_random_split(_read_csv(files["all"], task), seed)
        splits = {s: _clean(task, raw[s], invalid) for s in ("train", "valid", "test")}
    else:
        splits = {s: _clean(task, _read_csv(p, task), invalid) for s, p in files.items()}
    if not splits["train"] and task.kind == "regression":
        raise DataError(f"{where}: the train split of {name} is empty (its range fixes the answer bins)")
    if invalid:
        log.warning("%s: %d row(s) with SMILES RDKit cannot parse were dropped (first: %s)", name, len(invalid),
                    invalid[0][0])
    return TxData(task, splits, invalid, where)


# -- few-shot exemplars ----------------------------------------------------------------------------------

def _fingerprint(smiles: str) -> Any:
    return _morgan().GetFingerprint(_rdkit().MolFromSmiles(smiles))


@lru_cache(maxsize=1)
def _morgan() -> Any:
    _rdkit()
    from rdkit.Chem import rdFingerprintGenerator

    return rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)


def select_exemplars(task: TxTask, row: Mapping[str, str], pool: Sequence[Mapping[str, str]], k: int,
                     selector: Literal["random", "tanimoto"] = "random", seed: int = 0) -> list[Mapping[str, str]]:
    """``k`` training rows to show before ``row``: random (seeded per row) or the nearest by Tanimoto similarity.

    Tanimoto uses Morgan fingerprints (radius 2, 2048 bits) of the first SMILES entity; a task without one
    falls back to random. The row itself is never its own exemplar.
    """
    if k <= 0 or not pool:
        return []
    cands = [p for p in pool if p is not row and dict(p) != dict(row)]
    smiles_col = next((e.column for e in task.entities if e.type == "smiles"), None)
    if selector == "tanimoto" and smiles_col is not None:
        from rdkit import DataStructs

        fps = _pool_fps(tuple(p[smiles_col] for p in cands))
        sims = DataStructs.BulkTanimotoSimilarity(_fingerprint(row[smiles_col]), list(fps))
        order = sorted(range(len(cands)), key=lambda i: (-sims[i], i))
        return [cands[i] for i in order[:k]]
    rng = random.Random(f"{seed}:{task.name}:{sorted(row.items())}")
    return rng.sample(cands, min(k, len(cands)))


@lru_cache(maxsize=8)
def _pool_fps(smiles: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(_fingerprint(s) for s in smiles)
