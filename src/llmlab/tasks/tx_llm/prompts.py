"""The TxT prompt of Tx-LLM (arXiv 2406.06316, §2): templates, the TDC task catalogue, prompt formatting.

Instructions, Context, Question (entities inline), Answer — the wording is ours (TxT was never released).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from llmlab.core.errors import ConfigError
from llmlab.tasks.tx_llm.codecs import Binning, binary_label, format_bin

Kind = Literal["binary", "regression", "generation"]
Metric = Literal["auroc", "auprc", "spearman", "pearson", "mae", "mse", "accuracy"]
EntityType = Literal["smiles", "protein", "nucleotide", "text"]

N_BINS = 1000  # regression answers are integers 0..N_BINS (printed 000..1000)

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
_SUBSTRATE_METRICS: tuple[tuple[str, Metric], ...] = (("CYP2C9", "auprc"), ("CYP2D6", "auprc"), ("CYP3A4", "auroc"))
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
    # the rest of TDC's ADMET benchmark group (TDC's leaderboard metric each; the SOTA rows of sota.py)
    TxTask("Pgp_Broccatelli", "ADME", "binary", "auroc", _ADMET,
           "P-glycoprotein pumps drugs out of cells; inhibiting it changes a drug's absorption and brain exposure.",
           "Does this molecule inhibit P-glycoprotein?", (DRUG,),
           ("does not inhibit P-glycoprotein", "inhibits P-glycoprotein")),
    TxTask("Bioavailability_Ma", "ADME", "binary", "auroc", _ADMET,
           "Oral bioavailability is the fraction of an oral dose that reaches the circulation unchanged.",
           "Is this molecule orally bioavailable?", (DRUG,), ("not orally bioavailable", "orally bioavailable")),
    TxTask("PPBR_AZ", "ADME", "regression", "mae", _ADMET,
           "Plasma protein binding is the share of a drug bound to blood proteins; only the unbound drug acts.",
           "What is the plasma protein binding rate of this molecule?", (DRUG,), what="percentage bound"),
    TxTask("VDss_Lombardo", "ADME", "regression", "spearman", _ADMET,
           "The volume of distribution at steady state relates the amount of drug in the body to its plasma "
           "concentration.",
           "What is the volume of distribution of this molecule?", (DRUG,), what="volume of distribution (L/kg)"),
    *(TxTask(f"{cyp}_Veith", "ADME", "binary", "auprc", _ADMET,
             f"{cyp} is a liver enzyme that metabolises many drugs; inhibiting it causes drug-drug interactions.",
             f"Does this molecule inhibit {cyp}?", (DRUG,), (f"does not inhibit {cyp}", f"inhibits {cyp}"))
      for cyp in ("CYP2C9", "CYP2D6")),
    *(TxTask(f"{cyp}_Substrate_CarbonMangels", "ADME", "binary", metric, _ADMET,
             f"A substrate of {cyp} is metabolised by this liver enzyme, which shapes its clearance.",
             f"Is this molecule a substrate of {cyp}?", (DRUG,), (f"not a {cyp} substrate", f"a {cyp} substrate"))
      for cyp, metric in _SUBSTRATE_METRICS),
    TxTask("Clearance_Hepatocyte_AZ", "ADME", "regression", "spearman", _ADMET,
           "Hepatocyte clearance measures how fast liver cells remove a drug.",
           "What is the hepatocyte clearance of this molecule?", (DRUG,),
           what="hepatocyte clearance (uL/min/10^6 cells)"),
    TxTask("Clearance_Microsome_AZ", "ADME", "regression", "spearman", _ADMET,
           "Microsomal clearance measures how fast liver microsome enzymes metabolise a drug.",
           "What is the microsomal clearance of this molecule?", (DRUG,), what="microsomal clearance (mL/min/g)"),
    TxTask("LD50_Zhu", "Tox", "regression", "mae", _ADMET,
           "The LD50 is the dose that kills half of the animals given it, a measure of acute toxicity.",
           "What is the acute toxicity (LD50) of this molecule?", (DRUG,), what="LD50 (-log mol/kg)"),
    TxTask("hERG", "Tox", "binary", "auroc", _ADMET,
           "Blocking the hERG potassium channel of the heart can cause fatal arrhythmia.",
           "Does this molecule block the hERG channel?", (DRUG,), ("does not block hERG", "blocks hERG")),
    TxTask("DILI", "Tox", "binary", "auroc", _ADMET,
           "Drug-induced liver injury is a leading cause of drugs being withdrawn.",
           "Can this molecule cause liver injury?", (DRUG,), ("does not cause liver injury", "causes liver injury")),
    TxTask("DAVIS", "DTI", "regression", "mse",
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
    TxTask("miRTarBase", "MTI", "binary", "accuracy",
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
        return "(B)" if binary_label(y) == 1 else "(A)"
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
        >>> p.splitlines()[0].startswith("Instructions:"), p.endswith("(B) crosses the blood-brain barrier\nAnswer:")
        (True, True)
    """
    shots = ""
    if exemplars:
        shots = EXEMPLAR_HEADER + "".join(
            f"{format_question(task, ex)}\nAnswer: {format_answer(task, ex, binning)}\n\n" for ex in exemplars)
    return PROMPT_TEMPLATE.format(instruction=task.instruction, context=task.context, exemplars=shots,
                                  question=format_question(task, row))
