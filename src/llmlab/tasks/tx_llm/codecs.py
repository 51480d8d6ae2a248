"""Answer encodings of the TxT tasks: RDKit SMILES canonicalisation, the 0–1000 regression bins, reply parsing."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from llmlab.core.errors import DataError, MissingExtraError
from llmlab.grading.choices import extract_letter

N_BINS = 1000  # regression answers are integers 0..N_BINS (printed 000..1000)


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


_WORD = re.compile(r"[A-Z]?[a-z]*")  # "I", "The", "a": English that RDKit would also read as atoms


def parse_smiles(text: str | None) -> str | None:
    """The SMILES a reply answers with (after ``Answer:``), canonicalised part by part, or ``None``.

    The first token RDKit parses wins, except that a plain word ("I", "Cl") is taken only when no other token
    parses — "I think CCO" answers ``CCO``, not iodine.

    Example:
        >>> parse_smiles("Answer: I think OCC"), parse_smiles("Cl"), parse_smiles("no idea")
        ('CCO', 'Cl', None)
    """
    if text is None:
        return None
    found: list[str] = []
    for tok in text.rsplit("Answer:", 1)[-1].split():
        tok = tok.strip("`'\",;")
        parts = [canonical_smiles(p) for p in tok.split(".")] if tok else [None]
        if all(p is not None for p in parts):
            if not _WORD.fullmatch(tok):
                return ".".join(str(p) for p in parts)
            found.append(".".join(str(p) for p in parts))
    return found[0] if found else None


def binary_label(y: str | float) -> int:
    v = float(y)
    if v not in (0.0, 1.0):
        raise DataError(f"a binary label must be 0 or 1, got {y!r}")
    return int(v)
