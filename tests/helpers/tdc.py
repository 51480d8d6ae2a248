"""Small TDC-format datasets generated here: RDKit-valid SMILES, amino-acid and nucleotide sequences.

Molecules are random chains of atoms and rings with side groups, kept when RDKit parses them; labels come
from RDKit descriptors (Crippen logP, TPSA), so they are a deterministic function of the molecule — a model can
learn them, and a test oracle can recompute them. Files are written as TDC's ``get_split()`` saved with
``to_csv``: ``tdc/<Name>/{train,valid,test}.csv`` with TDC's column names.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

UNITS = ["C", "C", "C", "N", "O", "c1ccccc1", "C1CC1", "c1ccncc1"]
SIDE = ["", "", "(C)", "(F)", "(Cl)", "(=O)", "(O)", "(N)", "(C#N)"]
AMINO = "ACDEFGHIKLMNPQRSTVWY"
CELL_LINES = ["A549", "MCF7", "HeLa", "HCT116", "K562", "PC-3"]
DISEASES = ["breast cancer", "type 2 diabetes", "asthma", "hypertension", "psoriasis"]
INVALID = ["C1CC", "CC(C"]  # unclosed ring, unclosed branch


def molecules(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct canonical SMILES that RDKit parses."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        parts = []
        for _ in range(rng.randint(2, 6)):
            u = rng.choice(UNITS)
            parts.append(u + (rng.choice(SIDE) if u == "C" else ""))
        mol = Chem.MolFromSmiles("".join(parts))
        if mol is not None:
            out[Chem.MolToSmiles(mol)] = None
    return list(out)


def logp(smiles: str) -> float:
    from rdkit import Chem
    from rdkit.Chem import Crippen

    return float(Crippen.MolLogP(Chem.MolFromSmiles(smiles)))


def tpsa(smiles: str) -> float:
    from rdkit import Chem
    from rdkit.Chem import rdMolDescriptors

    return float(rdMolDescriptors.CalcTPSA(Chem.MolFromSmiles(smiles)))


def _write(folder: Path, header: list[str], rows: list[list[object]], frac: tuple[float, float] = (0.6, 0.2)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    n_train, n_valid = int(frac[0] * len(rows)), int(frac[1] * len(rows))
    splits = {"train": rows[:n_train], "valid": rows[n_train:n_train + n_valid], "test": rows[n_train + n_valid:]}
    for name, part in splits.items():
        with (folder / f"{name}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(part)


def make_tdc(root: Path, n: int = 40, seed: int = 0, invalid: bool = True) -> Path:
    """Write BBB_Martins, Caco2_Wang, DAVIS, GDSC1, Phase1_Trial, miRTarBase and USPTO-50K under ``root/tdc``.

    BBB_Martins labels are ``logP > median``; Caco2_Wang targets are ``-logP / 2``; with ``invalid`` two rows
    of BBB_Martins' train split carry SMILES that RDKit rejects. Returns ``root`` (the ``--data-dir``).
    """
    rng = random.Random(seed)
    mols = molecules(n, seed)
    med = sorted(logp(m) for m in mols)[n // 2]
    tdc = root / "tdc"
    bbb = [[f"d{i}", m, int(logp(m) > med)] for i, m in enumerate(mols)]
    if invalid:
        bbb[1:1] = [[f"bad{j}", s, 0] for j, s in enumerate(INVALID)]
    _write(tdc / "BBB_Martins", ["Drug_ID", "Drug", "Y"], bbb)
    _write(tdc / "Caco2_Wang", ["Drug_ID", "Drug", "Y"], [[f"d{i}", m, round(-logp(m) / 2, 4)]
                                                          for i, m in enumerate(mols)])
    prot = ["".join(rng.choice(AMINO) for _ in range(30)) for _ in range(4)]
    _write(tdc / "DAVIS", ["Drug_ID", "Drug", "Target_ID", "Target", "Y"],
           [[f"d{i}", m, f"p{i % 4}", prot[i % 4], round(10 ** (1 + tpsa(m) / 40), 3)] for i, m in enumerate(mols)])
    _write(tdc / "GDSC1", ["Drug_ID", "Drug", "Cell Line_ID", "Cell Line", "Y"],
           [[f"d{i}", m, CELL_LINES[i % 6], "[0.1, 0.2]", round(logp(m) + i % 6 / 3, 3)] for i, m in enumerate(mols)])
    _write(tdc / "Phase1_Trial", ["Drug_ID", "Drug", "Disease", "Y"],
           [[f"d{i}", m, DISEASES[i % 5], int(tpsa(m) < 40)] for i, m in enumerate(mols)])
    mirna = ["".join(rng.choice("ACGU") for _ in range(22)) for _ in range(n)]
    _write(tdc / "miRTarBase", ["miRNA_ID", "miRNA", "Target_ID", "Target", "Y"],
           [[f"m{i}", mirna[i], f"p{i % 4}", prot[i % 4], int(mirna[i].count("G") > 5)] for i in range(n)])
    _write(tdc / "USPTO-50K", ["input", "output"],
           [[mols[i], f"O.{mols[i]}"] for i in range(n)])  # a toy "reaction": the product and water
    return root
