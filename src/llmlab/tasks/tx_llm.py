"""Tx-LLM's TxT prompt format and TDC evaluation protocol, as an open harness for any model.

Paper: "Tx-LLM: A Large Language Model for Therapeutics", Chaves, Wang, Tu et al., 2024 (arXiv 2406.06316).
Implemented: §2's TxT prompt structure (Instructions, Context, Question with the entities inline — SMILES
strings, amino-acid and nucleotide sequences, cell-line and disease names — then Answer, optionally after
few-shot exemplars chosen at random or by Tanimoto nearest neighbours); the three task kinds (binary
classification answered ``(A)``/``(B)``, regression answered as a bin 000–1000 of the train split's range and
parsed back to the original unit, generation answered with a SMILES string); the per-task metrics as TDC's
``Evaluator`` defines them (AUROC = ``roc_auc_score``, AUPRC = ``average_precision_score``, Spearman,
Pearson, MAE, accuracy); and the comparison against the best reported per-task result (:data:`SOTA`).
The fine-tuning recipe (LoRA SFT on the task mixture) is :mod:`llmlab.training.tx_llm`.

Data are TDC datasets in their CSV layout, user-supplied: ``<data-dir>/tdc/<Name>/{train,valid,test}.csv``
(what ``tdc.<group>(name=...).get_split()`` returns, saved with ``to_csv``) or one file
``<data-dir>/tdc/<Name>.csv`` split here. When PyTDC is installed and the machine is online, a missing
dataset is fetched with it into the cache. Every SMILES is canonicalised with RDKit; rows whose SMILES
RDKit cannot parse are dropped and reported (``llmlab txllm check``).

Deviations (each deliberate):
- The Instructions/Context wording is ours: TxT itself was never released (no code, no weights; PaLM-2).
  The structure, the answer encodings and the 0–1000 binning follow the paper's description.
- Binary AUROC/AUPRC from a text reply can only use the hard answer (1 for ``(B)``, 0 for ``(A)``); a
  prediction file may carry a probability instead (``score`` field), and the fine-tuning recipe scores
  binary tasks by the model's probability of ``B`` vs ``A`` — closer to how a ranking metric is meant.
- An unparsable reply is kept, never dropped: it counts as 0.5 (binary), the train median (regression) or
  wrong (generation) in the task metric, and is counted in ``unparsed``.
- A single-file dataset is split here at random (seeded, 70/10/20 as TDC's default fractions) — not TDC's
  own permutation; supply TDC's split files for numbers comparable with the paper.
- "Near SOTA" uses a relative tolerance we chose (``near_sota_tolerance``, default 5%); the paper's exact
  criterion could not be checked here.
"""

from __future__ import annotations

import csv
import logging
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from llmlab.backends.base import Message
from llmlab.core.contracts import Item, Query, Score
from llmlab.core.errors import ConfigError, DataError, MissingExtraError
from llmlab.grading.choices import extract_letter
from llmlab.tasks.base import Task, TaskConfig

log = logging.getLogger(__name__)

Kind = Literal["binary", "regression", "generation"]
Metric = Literal["auroc", "auprc", "spearman", "pearson", "mae", "accuracy"]
EntityType = Literal["smiles", "protein", "nucleotide", "text"]

N_BINS = 1000  # regression answers are integers 0..N_BINS (printed 000..1000)
HIGHER_IS_BETTER: dict[str, bool] = {"auroc": True, "auprc": True, "spearman": True, "pearson": True,
                                     "accuracy": True, "mae": False}

# -- the TxT prompt ------------------------------------------------------------------------------------

PROMPT_TEMPLATE = "Instructions: {instruction}\nContext: {context}\n{exemplars}{question}\nAnswer:"
QUESTION_TEMPLATE = "Question: {stem}\n{entities}{choices}"
BINARY_CHOICES = "(A) {a} (B) {b}\n"
REGRESSION_STEM_SUFFIX = " Answer with an integer from 000 to 1000: the {what}, scaled to the training range."
GENERATION_STEM_SUFFIX = " Answer with a SMILES string."
EXEMPLAR_HEADER = "Examples:\n"


@dataclass(frozen=True)
class Entity:
    """One input column of a TDC table, named inline in the question (``Drug SMILES: CCO``)."""

    column: str
    label: str
    type: EntityType


@dataclass(frozen=True)
class TxTask:
    """One TDC dataset as a TxT task.

    Attributes:
        name: TDC dataset name (``BBB_Martins``), also the data folder name.
        group: PyTDC loader class (``ADME``, ``Tox``, ``DTI``, ``DrugRes``, ``MTI``, ``RetroSyn``, ...).
        kind: ``binary`` | ``regression`` | ``generation``.
        metric: TDC's metric for the task.
        instruction: What the model must do.
        context: One or two sentences of background.
        stem: The question before the entities.
        entities: Input columns, in prompt order.
        choices: Meanings of ``(A)`` (label 0) and ``(B)`` (label 1), binary tasks only.
        target: The label column.
        log10: Regression targets are log10-transformed before binning (e.g. Kd in nM).
        what: The regression quantity, named in the answer hint.
    """

    name: str
    group: str
    kind: Kind
    metric: Metric
    instruction: str
    context: str
    stem: str
    entities: tuple[Entity, ...]
    choices: tuple[str, str] = ("", "")
    target: str = "Y"
    log10: bool = False
    what: str = "value"


DRUG = Entity("Drug", "Drug SMILES", "smiles")
_ADMET = "Answer the question about a drug's absorption, distribution, metabolism, excretion or toxicity."

TASKS: dict[str, TxTask] = {t.name: t for t in (
    TxTask("BBB_Martins", "ADME", "binary", "auroc", _ADMET,
           "The blood-brain barrier shields the central nervous system; a drug acting on the brain must cross "
           "it, while others should not.",
           "Does this molecule cross the blood-brain barrier?", (DRUG,),
           ("does not cross the blood-brain barrier", "crosses the blood-brain barrier")),
    TxTask("AMES", "Tox", "binary", "auroc", _ADMET,
           "The Ames test measures whether a compound causes mutations in bacteria, a proxy for carcinogenicity.",
           "Is this molecule mutagenic in the Ames test?", (DRUG,), ("not mutagenic", "mutagenic")),
    TxTask("HIA_Hou", "ADME", "binary", "auroc", _ADMET,
           "Human intestinal absorption decides how much of an oral drug reaches the bloodstream.",
           "Is this molecule absorbed in the human intestine?", (DRUG,), ("not absorbed", "absorbed")),
    TxTask("CYP3A4_Veith", "ADME", "binary", "auprc", _ADMET,
           "CYP3A4 metabolises about half of marketed drugs; inhibiting it causes drug-drug interactions.",
           "Does this molecule inhibit CYP3A4?", (DRUG,), ("does not inhibit CYP3A4", "inhibits CYP3A4")),
    TxTask("Caco2_Wang", "ADME", "regression", "mae", _ADMET,
           "Caco-2 cell permeability approximates how well a drug passes the intestinal wall.",
           "What is the Caco-2 permeability of this molecule?", (DRUG,), what="log permeability"),
    TxTask("Lipophilicity_AstraZeneca", "ADME", "regression", "mae", _ADMET,
           "Lipophilicity (octanol/water distribution, logD) affects solubility, permeability and clearance.",
           "What is the lipophilicity of this molecule?", (DRUG,), what="logD"),
    TxTask("Solubility_AqSolDB", "ADME", "regression", "mae", _ADMET,
           "Aqueous solubility limits how much drug can be absorbed.",
           "What is the aqueous solubility of this molecule?", (DRUG,), what="log solubility (mol/L)"),
    TxTask("Half_Life_Obach", "ADME", "regression", "spearman", _ADMET,
           "The half-life is the time for the plasma concentration of a drug to halve.",
           "What is the half-life of this molecule?", (DRUG,), what="half-life (hours)"),
    TxTask("DAVIS", "DTI", "regression", "pearson",
           "Answer the question about the binding of a drug to a protein target.",
           "Binding affinity (Kd) measures how tightly a small molecule binds a kinase; lower Kd is tighter.",
           "What is the binding affinity of this drug to this target?",
           (DRUG, Entity("Target", "Target amino acid sequence", "protein")), log10=True, what="log10 Kd (nM)"),
    TxTask("GDSC1", "DrugRes", "regression", "pearson",
           "Answer the question about a drug's effect on a cancer cell line.",
           "The half-maximal inhibitory concentration (IC50) measures how much drug kills half of the cells.",
           "What is the IC50 of this drug on this cell line?",
           (DRUG, Entity("Cell Line_ID", "Cell line", "text")), what="log IC50"),
    TxTask("Phase1_Trial", "TrialOutcome", "binary", "auroc",
           "Answer the question about the outcome of a clinical trial.",
           "Phase 1 trials test the safety of a drug in a small group of people with a given condition.",
           "Will this drug pass a phase 1 trial for this disease?",
           (DRUG, Entity("Disease", "Disease", "text")), ("fails phase 1", "passes phase 1")),
    TxTask("miRTarBase", "MTI", "binary", "auroc",
           "Answer the question about the interaction of a microRNA with a protein-coding gene.",
           "A microRNA silences a gene by pairing with its messenger RNA.",
           "Does this microRNA target this protein?",
           (Entity("miRNA", "microRNA nucleotide sequence", "nucleotide"),
            Entity("Target", "Target amino acid sequence", "protein")), ("no interaction", "interacts")),
    TxTask("USPTO-50K", "RetroSyn", "generation", "accuracy",
           "Answer the question about a chemical reaction.",
           "Retrosynthesis finds reactants from which a product molecule can be made in one step.",
           "Which reactants give this product? Separate several reactants with '.'.",
           (Entity("input", "Product SMILES", "smiles"),), target="output"),
)}


@dataclass(frozen=True)
class SotaEntry:
    """The best per-task result the paper compares against.

    Attributes:
        metric: The metric (as :data:`TASKS`' ``metric``).
        value: The best reported value.
        source: Where it comes from.
        verified: Whether we checked it against the paper's table in this project (False: recalled from the
            TDC leaderboards, not checked — do not quote it as the paper's number).
    """

    metric: Metric
    value: float
    source: str
    verified: bool = False


# The paper's comparison column (Table of per-task results, arXiv 2406.06316) could not be read here: the
# values below are the TDC ADMET-group leaderboard tops as we recall them, every one marked unverified.
SOTA: dict[str, SotaEntry] = {
    "BBB_Martins": SotaEntry("auroc", 0.916, "TDC ADMET leaderboard (recalled)"),
    "AMES": SotaEntry("auroc", 0.871, "TDC ADMET leaderboard (recalled)"),
    "HIA_Hou": SotaEntry("auroc", 0.989, "TDC ADMET leaderboard (recalled)"),
    "CYP3A4_Veith": SotaEntry("auprc", 0.916, "TDC ADMET leaderboard (recalled)"),
    "Caco2_Wang": SotaEntry("mae", 0.276, "TDC ADMET leaderboard (recalled)"),
    "Lipophilicity_AstraZeneca": SotaEntry("mae", 0.467, "TDC ADMET leaderboard (recalled)"),
    "Solubility_AqSolDB": SotaEntry("mae", 0.761, "TDC ADMET leaderboard (recalled)"),
    "Half_Life_Obach": SotaEntry("spearman", 0.562, "TDC ADMET leaderboard (recalled)"),
}


def compare_to_sota(task: str, value: float | None, tolerance: float = 0.05) -> dict[str, Any] | None:
    """Where ``value`` stands against the best reported result of ``task``.

    Args:
        task: TDC dataset name.
        value: Our metric value (``None``: undefined, e.g. one class only).
        tolerance: Relative margin within which a worse value still counts as ``near``.

    Returns:
        ``{sota, verified, source, delta, status}`` with ``status`` one of ``above`` (better than SOTA),
        ``near`` (worse by at most ``tolerance`` relative), ``below``; ``None`` when there is no entry.

    Example:
        >>> compare_to_sota("Caco2_Wang", 0.25)["status"], compare_to_sota("Caco2_Wang", 0.28)["status"]
        ('above', 'near')
    """
    ref = SOTA.get(task)
    if ref is None:
        return None
    out: dict[str, Any] = {"sota": ref.value, "metric": ref.metric, "verified": ref.verified, "source": ref.source}
    if value is None:
        return {**out, "delta": None, "status": "undefined"}
    better = HIGHER_IS_BETTER[ref.metric]
    delta = value - ref.value
    if (delta > 0) == better and delta != 0:
        status = "above"
    elif abs(delta) <= tolerance * abs(ref.value):
        status = "near"
    else:
        status = "below"
    return {**out, "delta": delta, "status": status}


# -- entities and answers ------------------------------------------------------------------------------

def _rdkit() -> Any:
    try:
        from rdkit import Chem, RDLogger
    except ImportError as exc:
        raise MissingExtraError("rdkit", "txllm", "SMILES canonicalisation") from exc
    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]
    return Chem


@lru_cache(maxsize=65536)
def canonical_smiles(smiles: str) -> str | None:
    """RDKit's canonical SMILES of ``smiles``, or ``None`` when RDKit cannot parse it.

    Example:
        >>> canonical_smiles("OCC"), canonical_smiles("C1CC")
        ('CCO', None)
    """
    chem = _rdkit()
    s = smiles.strip()
    mol = chem.MolFromSmiles(s) if s else None
    return None if mol is None else str(chem.MolToSmiles(mol))


def same_molecules(a: str | None, b: str | None) -> bool:
    """Whether two SMILES denote the same set of molecules (canonical, order of '.' parts ignored)."""
    if a is None or b is None:
        return False
    parts_a = [canonical_smiles(p) for p in a.split(".")]
    parts_b = [canonical_smiles(p) for p in b.split(".")]
    if None in parts_a or None in parts_b:
        return False
    return sorted(map(str, parts_a)) == sorted(map(str, parts_b))


@dataclass(frozen=True)
class Binning:
    """The invertible map between a regression target and its 0..1000 answer bin (train-split range).

    Example:
        >>> b = Binning(0.0, 10.0)
        >>> b.to_bin(2.5), b.from_bin(250), b.to_bin(99.0)
        (250, 2.5, 1000)
    """

    lo: float
    hi: float
    log10: bool = False

    @staticmethod
    def fit(values: Iterable[float], log10: bool = False) -> Binning:
        vals = [_transform(v, log10) for v in values]
        if not vals:
            raise DataError("a regression task needs training values to fix its bin range")
        return Binning(min(vals), max(vals), log10)

    def to_bin(self, y: float) -> int:
        t = _transform(y, self.log10)
        if self.hi <= self.lo:
            return 0
        return int(min(N_BINS, max(0, round((t - self.lo) / (self.hi - self.lo) * N_BINS))))

    def from_bin(self, b: float) -> float:
        """The value (in the transformed unit) at the centre of bin ``b``."""
        return self.lo + min(N_BINS, max(0.0, b)) / N_BINS * (self.hi - self.lo)

    def unit(self, y: float) -> float:
        """``y`` in the unit metrics are computed in (log10 for ``log10`` tasks)."""
        return _transform(y, self.log10)


def _transform(y: float, log10: bool) -> float:
    if not log10:
        return float(y)
    if y <= 0:
        raise DataError(f"a log10 regression target must be > 0, got {y}")
    return math.log10(y)


def format_bin(b: int) -> str:
    """``7 -> '007'``, ``1000 -> '1000'`` (the paper's 000–1000 answers)."""
    return f"{b:03d}"


_INT = re.compile(r"(?<![\d.])(\d{1,4})(?![\d.])")


def parse_bin(text: str | None) -> int | None:
    """The first integer 0..1000 of a reply (after ``Answer:`` when present), or ``None``.

    Example:
        >>> parse_bin("Answer: 042"), parse_bin("about 1200"), parse_bin("no idea")
        (42, None, None)
    """
    if text is None:
        return None
    tail = text.rsplit("Answer:", 1)[-1]
    for m in _INT.finditer(tail):
        v = int(m.group(1))
        if 0 <= v <= N_BINS:
            return v
    return None


def parse_binary(text: str | None) -> str | None:
    """``A`` or ``B`` from a reply (``(B)``, ``Answer: B``, ``B``), or ``None``."""
    if text is None:
        return None
    got = extract_letter(text, "AB")
    if got is not None:
        return got
    m = re.search(r"\(([AB])\)", text)
    return m.group(1) if m else None


def parse_smiles(text: str | None) -> str | None:
    """The first token of a reply (after ``Answer:``) that RDKit parses, canonicalised part by part."""
    if text is None:
        return None
    for tok in text.rsplit("Answer:", 1)[-1].split():
        tok = tok.strip("`'\",;")
        parts = [canonical_smiles(p) for p in tok.split(".")] if tok else [None]
        if all(p is not None for p in parts):
            return ".".join(str(p) for p in parts)
    return None


# -- prompts -------------------------------------------------------------------------------------------

def format_question(task: TxTask, row: Mapping[str, str]) -> str:
    """The Question block: stem, the entities inline, and the choices of a binary task."""
    stem = task.stem
    if task.kind == "regression":
        stem += REGRESSION_STEM_SUFFIX.format(what=task.what)
    elif task.kind == "generation":
        stem += GENERATION_STEM_SUFFIX
    entities = "".join(f"{e.label}: {row[e.column]}\n" for e in task.entities)
    choices = BINARY_CHOICES.format(a=task.choices[0], b=task.choices[1]) if task.kind == "binary" else ""
    return QUESTION_TEMPLATE.format(stem=stem, entities=entities, choices=choices).rstrip("\n")


def format_answer(task: TxTask, row: Mapping[str, str], binning: Binning | None = None) -> str:
    """The reference answer text: ``(A)``/``(B)``, a bin ``000``–``1000``, or the target SMILES."""
    y = row[task.target]
    if task.kind == "binary":
        return "(B)" if _label(y) == 1 else "(A)"
    if task.kind == "regression":
        if binning is None:
            raise ConfigError("a regression answer needs the task's Binning")
        return format_bin(binning.to_bin(float(y)))
    return str(y)


def format_prompt(task: TxTask, row: Mapping[str, str], exemplars: Sequence[Mapping[str, str]] = (),
                  binning: Binning | None = None) -> str:
    r"""The TxT prompt of one row: Instructions, Context, optional exemplars, Question, ``Answer:``.

    Example:
        >>> p = format_prompt(TASKS["BBB_Martins"], {"Drug": "CCO", "Y": "1"})
        >>> p.splitlines()[0].startswith("Instructions:"), p.endswith("Drug SMILES: CCO\nAnswer:")
        (True, True)
    """
    shots = ""
    if exemplars:
        shots = EXEMPLAR_HEADER + "".join(
            f"{format_question(task, ex)}\nAnswer: {format_answer(task, ex, binning)}\n\n" for ex in exemplars)
    return PROMPT_TEMPLATE.format(instruction=task.instruction, context=task.context, exemplars=shots,
                                  question=format_question(task, row))


def _label(y: str | float) -> int:
    v = float(y)
    if v not in (0.0, 1.0):
        raise DataError(f"a binary label must be 0 or 1, got {y!r}")
    return int(v)


# -- data ----------------------------------------------------------------------------------------------

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


def _read_csv(path: Path, task: TxTask, invalid: list[tuple[str, str]]) -> list[dict[str, str]]:
    delim = "\t" if path.suffix == ".tab" else ","
    need = [e.column for e in task.entities] + [task.target]
    rows: list[dict[str, str]] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delim)
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: TDC file for {task.name} lacks column(s) {missing}; it has "
                            f"{reader.fieldnames} (expected {need})")
        for i, rec in enumerate(reader, start=2):
            row = {k: (v if v is not None else "") for k, v in rec.items() if k is not None}
            ok = True
            for e in task.entities:
                if e.type == "smiles":
                    can = canonical_smiles(row[e.column])
                    if can is None:
                        invalid.append((f"{path}:{i}", row[e.column]))
                        ok = False
                        break
                    row[e.column] = can
            if not ok:
                continue
            if task.kind == "generation":
                parts = [canonical_smiles(p) for p in row[task.target].split(".")]
                if None in parts:
                    invalid.append((f"{path}:{i}", row[task.target]))
                    continue
                row[task.target] = ".".join(str(p) for p in parts)
            else:
                try:
                    float(row[task.target])
                except ValueError:
                    raise DataError(f"{path}:{i}: {task.target} must be a number, got {row[task.target]!r}") from None
            rows.append(row)
    return rows


def random_split(rows: list[dict[str, str]], seed: int = 42,
                 frac: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> dict[str, list[dict[str, str]]]:
    """Seeded random train/valid/test split (TDC's default fractions; not TDC's own permutation)."""
    idx = list(range(len(rows)))
    random.Random(seed).shuffle(idx)
    n_train, n_valid = int(frac[0] * len(rows)), int(frac[1] * len(rows))
    parts = (idx[:n_train], idx[n_train:n_train + n_valid], idx[n_train + n_valid:])
    return {name: [rows[i] for i in part] for name, part in zip(("train", "valid", "test"), parts, strict=True)}


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
        splits = random_split(_read_csv(files["all"], task, invalid), seed)
    else:
        splits = {s: _read_csv(p, task, invalid) for s, p in files.items()}
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


# -- metrics (as TDC's Evaluator) ----------------------------------------------------------------------

def _ranks(x: Sequence[float]) -> list[float]:
    """Average ranks (1-based), ties sharing their mean rank (scipy's ``rankdata`` default)."""
    order = sorted(range(len(x)), key=lambda i: x[i])
    ranks = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for t in range(i, j + 1):
            ranks[order[t]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def auroc(y: Sequence[int], score: Sequence[float]) -> float | None:
    """Area under the ROC curve (= sklearn ``roc_auc_score``); ``None`` with one class only."""
    pos = sum(1 for v in y if v == 1)
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return None
    r = _ranks(score)
    return (sum(r[i] for i, v in enumerate(y) if v == 1) - pos * (pos + 1) / 2) / (pos * neg)


def auprc(y: Sequence[int], score: Sequence[float]) -> float | None:
    """Average precision (= sklearn ``average_precision_score``, TDC's 'pr-auc'); ``None`` without positives."""
    pos = sum(1 for v in y if v == 1)
    if pos == 0:
        return None
    order = sorted(range(len(y)), key=lambda i: -score[i])
    ap, tp, prev_recall, i = 0.0, 0, 0.0, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and score[order[j + 1]] == score[order[i]]:
            j += 1
        tp += sum(1 for t in range(i, j + 1) if y[order[t]] == 1)
        recall, precision = tp / pos, tp / (j + 1)
        ap += (recall - prev_recall) * precision
        prev_recall = recall
        i = j + 1
    return ap


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation; ``None`` when either side is constant."""
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ (= scipy ``spearmanr``: Pearson of average ranks)."""
    return pearson(_ranks(x), _ranks(y))


def mae(y: Sequence[float], pred: Sequence[float]) -> float | None:
    """Mean absolute error."""
    return sum(abs(a - b) for a, b in zip(y, pred, strict=True)) / len(y) if y else None


def task_metric(metric: Metric, y: Sequence[float], pred: Sequence[float]) -> float | None:
    """The TDC metric of one task from labels/targets ``y`` and predictions (scores, values or 0/1 hits)."""
    if metric == "accuracy":
        return sum(pred) / len(pred) if pred else None
    if metric == "auroc":
        return auroc([int(v) for v in y], pred)
    if metric == "auprc":
        return auprc([int(v) for v in y], pred)
    if metric == "spearman":
        return spearman(y, pred)
    if metric == "pearson":
        return pearson(y, pred)
    return mae(y, pred)


# -- the task ------------------------------------------------------------------------------------------

class TxLLMConfig(TaskConfig):
    """Options of the Tx-LLM task.

    Args:
        data_dir: Folder holding ``tdc/<Name>/...`` (default: the usual search order, then PyTDC).
        tasks: TDC datasets to evaluate (default: every one of :data:`TASKS` found locally).
        split: ``test`` (default), ``valid`` or ``train``.
        shots: Few-shot exemplars from the train split (0: zero-shot).
        shot_selector: ``random`` or ``tanimoto`` (nearest neighbours by Morgan-fingerprint similarity).
        max_per_task: Keep at most this many items per task (the first ones).
        seed: Seed of the exemplar choice and of a single-file split.
        near_sota_tolerance: Relative margin for "near SOTA".
        system: An optional system message.
    """

    tasks: list[str] | None = None
    split: Literal["test", "valid", "train"] = "test"
    shots: int = 0
    shot_selector: Literal["random", "tanimoto"] = "random"
    max_per_task: int | None = None
    seed: int = 0
    near_sota_tolerance: float = 0.05
    system: str | None = None


class TxLLM(Task):
    r"""TDC tasks in the TxT prompt format, scored per task with TDC's metric and compared with SOTA.

    Example:
        >>> task = TxLLM()
        >>> item = Item("BBB_Martins-0", "...", "B", {"task": "BBB_Martins", "kind": "binary", "y": 1.0})
        >>> task.score(item, "Answer: (B)").correct
        True
    """

    name = "tx_llm"
    Config = TxLLMConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.loaded: dict[str, TxData] = {}

    @property
    def cfg(self) -> TxLLMConfig:
        assert isinstance(self.config, TxLLMConfig)
        return self.config

    def _names(self) -> list[str]:
        if self.cfg.tasks is not None:
            unknown = [t for t in self.cfg.tasks if t not in TASKS]
            if unknown:
                raise ConfigError(f"unknown Tx-LLM task(s) {unknown}. Available: {', '.join(TASKS)}")
            return list(self.cfg.tasks)
        found = [n for n in TASKS if find_tdc_files(n, self.cfg.data_dir) is not None]
        if not found:
            raise DataError("no TDC data found for any Tx-LLM task; pass --data-dir DIR holding "
                            "tdc/<Name>/{train,valid,test}.csv, or -p tasks=[BBB_Martins] with PyTDC installed")
        return found

    def items(self) -> Iterable[Item]:
        for name in self._names():
            data = self.loaded.get(name) or load_tdc(name, self.cfg.data_dir, seed=42)
            self.loaded[name] = data
            task, binning = data.task, data.binning()
            rows = data.splits[self.cfg.split]
            if self.cfg.max_per_task is not None:
                rows = rows[: self.cfg.max_per_task]
            median = _median([binning.unit(float(r[task.target])) for r in data.splits["train"]]) if binning else None
            for i, row in enumerate(rows):
                shots = select_exemplars(task, row, data.splits["train"], self.cfg.shots, self.cfg.shot_selector,
                                         self.cfg.seed)
                text = format_prompt(task, row, shots, binning)
                meta: dict[str, Any] = {"task": name, "kind": task.kind}
                if task.kind == "binary":
                    target: Any = format_answer(task, row)[1]
                    meta["y"] = float(_label(row[task.target]))
                elif task.kind == "regression":
                    assert binning is not None
                    target = binning.to_bin(float(row[task.target]))
                    meta.update(y=binning.unit(float(row[task.target])), lo=binning.lo, hi=binning.hi,
                                fallback=median)
                else:
                    target = row[task.target]
                yield Item(f"{name}-{i}", text, target, meta)

    def prompt(self, item: Item) -> Query:
        kind = item.metadata["kind"]
        extract = {"binary": parse_binary, "regression": lambda t: _opt_str(parse_bin(t)),
                   "generation": parse_smiles}[kind]
        msgs = (Message("system", self.cfg.system),) if self.cfg.system is not None else ()
        return Query((*msgs, Message("user", item.input)), extract=extract,
                     metadata={"id": item.id, "task": item.metadata["task"], "kind": kind})

    def score(self, item: Item, answer: str | None) -> Score:
        kind, meta = item.metadata["kind"], item.metadata
        details: dict[str, Any] = {"task": meta["task"], "kind": kind, "y": meta.get("y")}
        if kind == "regression":
            details["fallback"] = meta.get("fallback")
        if kind == "binary":
            prob = _as_prob(answer)
            letter = None if prob is not None else parse_binary(answer)
            pred = prob if prob is not None else (None if letter is None else float(letter == "B"))
            details["pred"] = pred
            if pred is None:
                return Score(0.0, correct=False, extracted=None, details=details)
            ok = (pred >= 0.5) == (meta["y"] == 1.0)
            return Score(float(ok), correct=ok, extracted=letter if letter else f"{pred:.4f}", details=details)
        if kind == "regression":
            b = parse_bin(answer)
            if b is None:
                details["pred"] = None
                return Score(0.0, correct=None, extracted=None, details=details)
            binning = Binning(meta["lo"], meta["hi"])
            details["pred"] = binning.from_bin(b)
            return Score(1.0 - abs(b - int(item.target)) / N_BINS, correct=b == int(item.target),
                         extracted=format_bin(b), details=details)
        got = parse_smiles(answer)
        ok = same_molecules(got, str(item.target))
        details["pred"] = float(ok)
        return Score(float(ok), correct=ok, extracted=got, details=details)

    def item_from_record(self, record: Mapping[str, Any], where: str) -> tuple[Item, str]:
        """``{id, prediction | score}``: ``id`` is an item id of these settings (``BBB_Martins-3``)."""
        items = getattr(self, "_by_id", None)
        if items is None:
            items = self._by_id = {it.id: it for it in self.items()}
        key, pred = record.get("id"), record.get("score", record.get("prediction"))
        if not isinstance(key, str) or key not in items or pred is None:
            raise DataError(f"{where}: a Tx-LLM prediction line needs an 'id' of the loaded tasks (e.g. "
                            f"{next(iter(items), 'BBB_Martins-0')!r}) and a 'prediction' (or a binary 'score')")
        return items[key], str(pred)

    def aggregate(self, scores: Sequence[Score]) -> dict[str, Any]:
        out = super().aggregate(scores)
        by_task: dict[str, list[Score]] = {}
        for s in scores:
            by_task.setdefault(s.details.get("task", "?"), []).append(s)
        tasks: dict[str, Any] = {}
        for name, ss in by_task.items():
            spec = TASKS.get(name)
            if spec is None:
                continue
            ys = [1.0] * len(ss) if spec.kind == "generation" else [float(s.details["y"]) for s in ss]
            preds = [_pred_or_fallback(s, spec.kind) for s in ss]
            value = task_metric(spec.metric, ys, preds)
            tasks[name] = {"metric": spec.metric, "value": value, "n": len(ss),
                           "unparsed": sum(1 for s in ss if s.details.get("pred") is None),
                           "vs_sota": compare_to_sota(name, value, self.cfg.near_sota_tolerance)}
        out["tasks"] = tasks
        out["metric_by_task"] = {k: v["value"] for k, v in tasks.items() if v["value"] is not None}
        cmp = [v["vs_sota"] for v in tasks.values() if v["vs_sota"] is not None]
        out["vs_sota"] = {st: sum(1 for c in cmp if c["status"] == st) for st in ("above", "near", "below")}
        out["vs_sota"]["compared"] = len(cmp)
        out["vs_sota"]["sota_verified"] = sum(1 for c in cmp if c["verified"])
        invalid = sum(len(d.invalid) for d in self.loaded.values())
        if self.loaded:
            out["invalid_smiles_dropped"] = invalid
        return out


def _pred_or_fallback(s: Score, kind: str) -> float:
    """A score's prediction; an unparsed reply is kept as uninformative, never dropped.

    Binary: 0.5; regression: the train median (``fallback``); generation: wrong (0).
    """
    p = s.details.get("pred")
    if p is not None:
        return float(p)
    if kind == "regression" and s.details.get("fallback") is not None:
        return float(s.details["fallback"])
    return 0.5 if kind == "binary" else 0.0


def _median(vals: Sequence[float]) -> float:
    v = sorted(vals)
    n = len(v)
    if n == 0:
        return 0.0
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def _opt_str(v: int | None) -> str | None:
    return None if v is None else format_bin(v)


def _as_prob(answer: str | None) -> float | None:
    """A bare probability (a prediction file's binary ``score``), else ``None``."""
    if answer is None:
        return None
    try:
        p = float(answer)
    except ValueError:
        return None
    return p if 0.0 <= p <= 1.0 else None
