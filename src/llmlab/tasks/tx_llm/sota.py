"""The paper's per-task comparison with the best reported result (SOTA), verified against the paper's own tables.

Source: Tx-LLM, arXiv 2406.06316v1, Appendix Tables A.7 (binary classification) and A.8 (regression and
generation): per TDC dataset the feature type, split method, metric, the SOTA value with its citation, and
Tx-LLM (M)'s value. Every number below is that table's, and :data:`REFERENCES` is the appendix reference list
the SOTA column cites. For datasets of TDC's ADMET, DrugCombo and DTI-DG leaderboards the paper took SOTA
from the leaderboard (§3.3); those values were also found as entries of TDC's leaderboard data
(mims-harvard/tdc2website-flask, ``benchmark/leaderboards.py``, commit d5425bef) — see docs/tx_llm.md.

"Near SOTA" is the paper's rule (§4.1, Figure 3): within 10% of SOTA, on the relative difference
``(value - SOTA) / SOTA``, its sign reversed for MAE and MSE (Table A.6's definition).

Deviations / things not copied:
- The paper's §4.1 counts (22 above + 21 near = 43 of 66; binary 12 + 12, regression 10 + 9) do not all
  follow from its own Tables A.7/A.8 under its stated rule: applied to the tabled Tx-LLM (M) values the rule
  gives binary 12 above (as stated) + 16 near, regression 7 above + 2 near. We implement the stated rule and
  report the mismatch (docs/tx_llm.md) rather than tune a rule to hit the counts.
- TAP, DisGeNET and Protein_SAbDab have no SOTA in the paper (N/A): they are in :data:`NO_SOTA`, not compared.
- The paper's USPTO row is TDC's full ``USPTO`` retrosynthesis set (it excluded USPTO-50K, Table A.1), so it
  is not used for our ``USPTO-50K`` task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from llmlab.tasks.tx_llm.metrics import HIGHER_IS_BETTER
from llmlab.tasks.tx_llm.prompts import Kind, Metric

Feature = Literal["SMILES", "Amino acid", "Nucleotide", "Amino acid + SMILES", "Nucleotide + Amino acid",
                  "SMILES + Text", "Amino acid + Text"]
Split = Literal["scaffold", "random", "cold-start", "combination", "temporal"]

PAPER = "Tx-LLM, arXiv 2406.06316v1"
NEAR_SOTA_TOLERANCE = 0.10  # §4.1 / Figure 3: "near SOTA (defined as within 10% of SOTA)"

#: The metrics each kind of task may use (TDC's evaluator names: roc-auc, pr-auc, accuracy; spearman, pcc, mae,
#: mse; the generation task's set accuracy).
KIND_METRICS: dict[str, frozenset[str]] = {
    "binary": frozenset({"auroc", "auprc", "accuracy"}),
    "regression": frozenset({"spearman", "pearson", "mae", "mse"}),
    "generation": frozenset({"accuracy"}),
}

#: TDC's leaderboard metric per dataset (tdc/metadata.py ``admet_metrics``, ``drugsyn_metrics``,
#: ``dti_dg_metrics`` in mims-harvard/TDC at commit c310c35f; its names roc-auc / pr-auc / pcc written as ours).
TDC_LEADERBOARD_METRICS: dict[str, Metric] = {
    "caco2_wang": "mae", "hia_hou": "auroc", "pgp_broccatelli": "auroc", "bioavailability_ma": "auroc",
    "lipophilicity_astrazeneca": "mae", "solubility_aqsoldb": "mae", "bbb_martins": "auroc", "ppbr_az": "mae",
    "vdss_lombardo": "spearman", "cyp2c9_veith": "auprc", "cyp2d6_veith": "auprc", "cyp3a4_veith": "auprc",
    "cyp2c9_substrate_carbonmangels": "auprc", "cyp3a4_substrate_carbonmangels": "auroc",
    "cyp2d6_substrate_carbonmangels": "auprc", "half_life_obach": "spearman", "clearance_hepatocyte_az": "spearman",
    "clearance_microsome_az": "spearman", "ld50_zhu": "mae", "herg": "auroc", "ames": "auroc", "dili": "auroc",
    "drugcomb_css": "mae", "drugcomb_hsa": "mae", "drugcomb_loewe": "mae", "drugcomb_bliss": "mae",
    "drugcomb_zip": "mae", "bindingdb_patent": "pearson",
}

#: The appendix references the SOTA column cites (numbering of the paper's appendix reference list).
REFERENCES: dict[int, str] = {
    1: "Siramshetty et al. 2021, SLAS Discovery 26:1326 (NCATS PAMPA models)",
    2: "Li & Huang 2022, ADMET property prediction with Oloren ChemEngine (TDC leaderboard)",
    3: "Turon et al. 2023, Nature Communications 14:5736 (ZairaChem; TDC leaderboard)",
    4: "Bera et al. 2022, SimGCN for TDC Benchmarks (TDC leaderboard)",
    5: "Fontenot et al. 2023, Lantern Pharma RADR (TDC leaderboard)",
    6: "Plonka et al. 2021, CYPlebrity, Bioorg. Med. Chem. 46:116388",
    7: "Hu et al. 2019, Pre-training Graph Neural Networks, arXiv 1905.12265 (TDC leaderboard)",
    8: "Plonka et al. 2021, CYPlebrity, Bioorg. Med. Chem. 46:116388",
    9: "Turon et al. 2023, Nature Communications 14:5736 (ZairaChem; TDC leaderboard)",
    10: "Huang et al. 2020, DeepPurpose, Bioinformatics 36:5545 (TDC leaderboard)",
    11: "Alves et al. 2015, Toxicol. Appl. Pharmacol. 284:262 (skin sensitization QSAR)",
    12: "Lagunin et al. 2009, QSAR Comb. Sci. 28:806 (rodent carcinogenicity)",
    13: "Shermukhamedov et al. 2023, arXiv 2309.09355",
    14: "Li et al. 2020, TrimNet, Brief. Bioinform. 22:bbaa266",
    15: "Korotcov et al. 2017, Mol. Pharmaceutics 14:4462",
    16: "Karim et al. 2021, CardioTox net, J. Cheminform. 13:60",
    17: "Liu et al. 2021, Front. Bioinform. 1:693177 (COVID-19 few-shot repurposing)",
    18: "Haneczok & Delijewski 2021, J. Biomed. Inform. 119:103821",
    19: "Li, Cai & He 2017, Learning Graph-Level Representation for Drug Discovery",
    20: "Chen et al. 2020, bioRxiv 2020.06.18.159798 (antibody developability)",
    21: "Raimondi et al. 2021, Bioinformatics 37:2275",
    22: "Wong et al. 2020, MIPDH, ACS Omega 5:17022",
    23: "Gfeller et al. 2023, MixMHCpred2.2, Cell Systems 14:72",
    24: "Motmaen et al. 2023, PNAS 120:e2216697120",
    25: "Weber et al. 2021, TITAN, Bioinformatics 37:i237",
    26: "Fu et al. 2022, HINT, Patterns 3:100445",
    27: "Vu et al. 2019, BCL::Mol2D, J. Comput. Aided Mol. Des. 33:477",
    28: "Yang et al. 2019, Chemprop, J. Chem. Inf. Model. 59:3370 (TDC leaderboard)",
    29: "Boral et al. 2022, bioRxiv 2022.06.29.115436 (TDC leaderboard)",
    30: "Euclia 2023, github.com/euclia/public-models (TDC leaderboard)",
    31: "Boral et al. 2022, bioRxiv 2022.06.29.115436 (TDC leaderboard)",
    32: "Huang et al. 2022, Oloren ChemEngine, ChemRxiv (TDC leaderboard)",
    33: "Probst et al. 2022, DRFP, Digital Discovery 1:91",
    34: "Leenay et al. 2019, Nature Biotechnology 37:1034",
    35: "Kalemati et al. 2023, BiComp-DTA, PLOS Comput. Biol. 19:e1011036",
    36: "Kinnings et al. 2011, J. Chem. Inf. Model. 51:408",
    37: "Wei & Gong 2021, DeepPLA, bioRxiv 2021.12.01.470868",
    38: "Lam et al. 2023, Otter-Knowledge, arXiv 2306.12802 (TDC DTI-DG leaderboard)",
    39: "Pei et al. 2023, Brief. Bioinform. 24:bbad386",
    40: "Lind & Anderson 2019, PLOS ONE 14:e0219774",
    41: "Xia et al. 2018, BMC Bioinformatics 19:486 (TDC DrugCombo leaderboard)",
    42: "Preuer et al. 2017, DeepSynergy, Bioinformatics 34:1538",
    43: "Zheng et al. 2020, J. Chem. Inf. Model. 60:47 (self-corrected transformer)",
}


@dataclass(frozen=True)
class SotaEntry:
    """One row of the paper's per-task comparison (Tables A.7 / A.8).

    Attributes:
        metric: The task's metric, as the paper's table gives it.
        value: The SOTA value the paper compares against.
        kind: ``binary`` | ``regression`` | ``generation``.
        feature: The paper's feature type (Table A.6's grouping).
        split: The paper's split method for the dataset.
        ref: The number of the SOTA's citation in the paper's appendix references (:data:`REFERENCES`).
        txllm: Tx-LLM (M)'s value in the same row (a reference point, not a result of ours).
        table: ``A.7`` or ``A.8``.
        verified: Whether value, metric and split were checked against the paper's table (all rows here are).
    """

    metric: Metric
    value: float
    kind: Kind
    feature: Feature
    split: Split
    ref: int
    txllm: float
    table: str
    verified: bool = True

    @property
    def source(self) -> str:
        """Where the value comes from: the paper's table and the work it cites."""
        return f"{PAPER} Table {self.table}, ref. [{self.ref}] {REFERENCES[self.ref]}"


def _b(metric: Metric, value: float, ref: int, txllm: float, feature: Feature = "SMILES",
       split: Split = "scaffold") -> SotaEntry:
    return SotaEntry(metric, value, "binary", feature, split, ref, txllm, "A.7")


def _r(metric: Metric, value: float, ref: int, txllm: float, feature: Feature = "SMILES",
       split: Split = "scaffold", kind: Kind = "regression") -> SotaEntry:
    return SotaEntry(metric, value, kind, feature, split, ref, txllm, "A.8")


_AA: Feature = "Amino acid"
_NUC: Feature = "Nucleotide"
_AAS: Feature = "Amino acid + SMILES"
_ST: Feature = "SMILES + Text"

#: The paper's comparison, keyed by TDC dataset name (rows of Tables A.7 and A.8 in the paper's order).
SOTA: dict[str, SotaEntry] = {
    # Table A.7 — binary classification
    "PAMPA_NCATS": _b("auroc", 0.900, 1, 0.668),
    "HIA_Hou": _b("auroc", 0.988, 2, 0.990),
    "Pgp_Broccatelli": _b("auroc", 0.935, 3, 0.939),
    "Bioavailability_Ma": _b("auroc", 0.748, 4, 0.702),
    "BBB_Martins": _b("auroc", 0.915, 5, 0.882),
    "CYP2C19_Veith": _b("auroc", 0.890, 6, 0.895),
    "CYP2D6_Veith": _b("auprc", 0.739, 7, 0.659),
    "CYP3A4_Veith": _b("auprc", 0.904, 7, 0.840),
    "CYP1A2_Veith": _b("auprc", 0.900, 8, 0.914),
    "CYP2C9_Veith": _b("auprc", 0.839, 7, 0.788),
    "CYP2C9_Substrate_CarbonMangels": _b("auprc", 0.441, 9, 0.436),
    "CYP2D6_Substrate_CarbonMangels": _b("auprc", 0.736, 7, 0.600),
    "CYP3A4_Substrate_CarbonMangels": _b("auroc", 0.662, 10, 0.647),
    "hERG": _b("auroc", 0.874, 4, 0.909),
    "AMES": _b("auroc", 0.871, 3, 0.786),
    "DILI": _b("auroc", 0.925, 3, 0.882),
    "Skin_Reaction": _b("auroc", 0.840, 11, 0.615),
    "Carcinogens_Lagunin": _b("accuracy", 0.770, 12, 0.786),
    "Tox21": _b("auroc", 0.961, 13, 0.882),
    "ClinTox": _b("auroc", 0.948, 14, 0.863),
    "herg_central": _b("auroc", 0.860, 15, 0.888),
    "hERG_Karim": _b("accuracy", 0.770, 16, 0.745),
    "ToxCast": _b("auroc", 0.777, 14, 0.792),
    "SARSCoV2_Vitro_Touret": _b("auroc", 0.640, 17, 0.601),
    "SARSCoV2_3CLPro_Diamond": _b("auroc", 0.800, 18, 0.712),
    "HIV": _b("auroc", 0.851, 19, 0.732),
    "SAbDab_Chen": _b("auprc", 0.510, 20, 0.473, _AA, "random"),
    "HuRI": _b("auprc", 0.724, 21, 0.753, _AA, "cold-start"),
    "miRTarBase": _b("accuracy", 0.804, 22, 0.799, "Nucleotide + Amino acid", "random"),
    "MHC1_IEDB-IMGT_Nielsen": _b("auroc", 0.986, 23, 0.907, _AA, "random"),
    "MHC2_IEDB_Jensen": _b("auroc", 0.940, 24, 0.863, _AA, "random"),
    "weber": _b("auroc", 0.870, 25, 0.743, _AA, "cold-start"),
    "phase1": _b("auroc", 0.576, 26, 0.667, _ST, "cold-start"),
    "phase2": _b("auroc", 0.645, 26, 0.676, _ST, "cold-start"),
    "phase3": _b("auroc", 0.723, 26, 0.728, _ST, "cold-start"),
    "butkiewicz": _b("auroc", 0.840, 27, 0.566, "SMILES", "random"),
    # Table A.8 — regression and generation
    "Caco2_Wang": _r("mae", 0.285, 2, 0.432),
    "Lipophilicity_AstraZeneca": _r("mae", 0.467, 28, 0.587),
    "Solubility_AqSolDB": _r("mae", 0.761, 28, 0.987),
    "PPBR_AZ": _r("mae", 7.788, 28, 9.108),
    "VDss_Lombardo": _r("spearman", 0.627, 29, 0.609),
    "Half_Life_Obach": _r("spearman", 0.547, 30, 0.448),
    "Clearance_Hepatocyte_AZ": _r("spearman", 0.440, 31, 0.385),
    "Clearance_Microsome_AZ": _r("spearman", 0.625, 2, 0.413),
    "LD50_Zhu": _r("mae", 0.552, 32, 0.618),
    "USPTO_Yields": _r("pearson", 0.361, 33, 0.070, "SMILES", "random"),
    "Buchwald-Hartwig": _r("pearson", 0.786, 33, 0.905, "SMILES", "random"),
    "Leenay": _r("spearman", 0.740, 34, 0.083, _NUC, "random"),
    "BindingDB_Kd": _r("pearson", 0.712, 35, 0.391, _AAS, "cold-start"),
    "BindingDB_IC50": _r("spearman", 0.637, 36, 0.311, _AAS, "cold-start"),
    "BindingDB_Ki": _r("pearson", 0.840, 37, 0.726, _AAS, "cold-start"),
    "BindingDB_Patent": _r("pearson", 0.588, 38, 0.531, _AAS, "temporal"),
    "DAVIS": _r("mse", 0.219, 39, 0.704, _AAS, "cold-start"),
    "KIBA": _r("mse", 0.154, 39, 0.548, _AAS, "cold-start"),
    "GDSC1": _r("pearson", 0.860, 40, 0.887, _ST, "random"),
    "GDSC2": _r("pearson", 0.860, 40, 0.900, _ST, "random"),
    "DrugComb_CSS": _r("mae", 16.858, 41, 14.057, _ST, "combination"),
    "OncoPolyPharmacology": _r("pearson", 0.730, 42, 0.552, _ST, "combination"),
    "DrugComb_HSA": _r("mae", 4.453, 41, 4.118, _ST, "combination"),
    "DrugComb_Loewe": _r("mae", 9.184, 41, 17.381, _ST, "combination"),
    "DrugComb_Bliss": _r("mae", 4.560, 41, 4.104, _ST, "combination"),
    "DrugComb_ZIP": _r("mae", 4.027, 41, 3.777, _ST, "combination"),
    "USPTO": _r("accuracy", 0.415, 43, 0.239, "SMILES", "random", kind="generation"),
}

#: Datasets of the paper's tables without a SOTA ("N/A" in Table A.8): never compared.
NO_SOTA: frozenset[str] = frozenset({"TAP", "DisGeNET", "Protein_SAbDab"})

#: Our catalogue names for TDC datasets the paper names otherwise (``Phase1_Trial`` is TDC's ``phase1``).
ALIASES: dict[str, str] = {"phase1_trial": "phase1"}

_BY_KEY = {k.lower(): k for k in SOTA}


def sota_name(task: str) -> str | None:
    """The key of :data:`SOTA` for a TDC dataset name (case-insensitive; spaces as ``_``; :data:`ALIASES`).

    Example:
        >>> sota_name("Phase1_Trial"), sota_name("bbb martins"), sota_name("USPTO-50K")
        ('phase1', 'BBB_Martins', None)
    """
    key = task.strip().lower().replace(" ", "_")
    return _BY_KEY.get(ALIASES.get(key, key))


def sota_entry(task: str) -> SotaEntry | None:
    """The paper's row for a TDC dataset name (as :func:`sota_name`), ``None`` when it has no SOTA."""
    name = sota_name(task)
    return None if name is None else SOTA[name]


def relative_difference(metric: Metric, value: float, sota: float) -> float:
    """``(value - SOTA) / SOTA``, the sign reversed for MAE/MSE (Table A.6): > 0 means better than SOTA.

    Example:
        >>> round(relative_difference("auroc", 0.667, 0.576), 3), round(relative_difference("mae", 4.118, 4.453), 3)
        (0.158, 0.075)
    """
    rel = (value - sota) / abs(sota)
    return rel if HIGHER_IS_BETTER[metric] else -rel


def classify(metric: Metric, value: float, sota: float, tolerance: float = NEAR_SOTA_TOLERANCE) -> str:
    """``above`` (better than SOTA), ``near`` (not better, within ``tolerance`` relative) or ``below``.

    Example:
        >>> classify("auroc", 0.99, 0.988), classify("auroc", 0.882, 0.915), classify("mae", 0.432, 0.285)
        ('above', 'near', 'below')
    """
    rel = relative_difference(metric, value, sota)
    if rel > 0:
        return "above"
    return "near" if rel >= -tolerance - 1e-12 else "below"


def compare_to_sota(task: str, value: float | None, tolerance: float = NEAR_SOTA_TOLERANCE,
                    metric: Metric | None = None) -> dict[str, Any] | None:
    """Where ``value`` stands against the paper's SOTA for ``task``.

    Args:
        task: TDC dataset name (or a catalogue alias such as ``Phase1_Trial``).
        value: Our metric value (``None``: undefined, e.g. one class only).
        tolerance: Relative margin of "near" (the paper's 10% by default).
        metric: The metric ``value`` is in; when it is not the paper's metric for the task the status is
            ``incomparable`` (no verdict across metrics).

    Returns:
        ``{sota, metric, split, verified, source, txllm, delta, relative, status}`` with ``status`` one of
        ``above``, ``near``, ``below``, ``undefined`` or ``incomparable``; ``None`` when the paper has no SOTA.

    Example:
        >>> compare_to_sota("Caco2_Wang", 0.25)["status"], compare_to_sota("Caco2_Wang", 0.31)["status"]
        ('above', 'near')
    """
    ref = sota_entry(task)
    if ref is None:
        return None
    out: dict[str, Any] = {"sota": ref.value, "metric": ref.metric, "split": ref.split, "verified": ref.verified,
                           "source": ref.source, "txllm": ref.txllm}
    if metric is not None and metric != ref.metric:
        return {**out, "delta": None, "relative": None, "status": "incomparable"}
    if value is None:
        return {**out, "delta": None, "relative": None, "status": "undefined"}
    return {**out, "delta": value - ref.value, "relative": relative_difference(ref.metric, value, ref.value),
            "status": classify(ref.metric, value, ref.value, tolerance)}


__all__ = ["ALIASES", "KIND_METRICS", "NEAR_SOTA_TOLERANCE", "NO_SOTA", "REFERENCES", "SOTA",
           "TDC_LEADERBOARD_METRICS", "SotaEntry", "classify", "compare_to_sota", "relative_difference",
           "sota_entry", "sota_name"]
