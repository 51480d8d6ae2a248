"""Tx-LLM's TxT prompt format and TDC evaluation protocol, as an open harness for any model.

Paper: "Tx-LLM: A Large Language Model for Therapeutics", Chaves, Wang, Tu et al., 2024 (arXiv 2406.06316).
Implemented: §2's TxT prompt structure (Instructions, Context, Question with the entities inline — SMILES
strings, amino-acid and nucleotide sequences, cell-line and disease names — then Answer, optionally after
few-shot exemplars chosen at random or by Tanimoto nearest neighbours); the three task kinds (binary
classification answered ``(A)``/``(B)``, regression answered as a bin 000–1000 of the train split's range and
parsed back to the original unit, generation answered with a SMILES string); the per-task metrics as TDC's
``Evaluator`` defines them (AUROC = ``roc_auc_score``, AUPRC = ``average_precision_score``, Spearman,
Pearson, MAE, MSE, accuracy); and the paper's comparison against the best reported per-task result
(:data:`SOTA`: the paper's Tables A.7/A.8, every value checked against them; "near" = within 10%, §4.1).
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
- A single-file dataset is split as TDC's ``get_split()`` does by default (random, seed 42, 70/10/20: the same
  pandas draws); without pandas a seeded shuffle of the same sizes stands in (not TDC's split). Rows RDKit
  rejects are dropped after the split, so the other rows land where TDC puts them.
- The SOTA table is the paper's (:mod:`llmlab.tasks.tx_llm.sota`); its "near SOTA" rule (within 10% relative)
  is implemented as stated, although the paper's own §4.1 counts do not all follow from its tables under that
  rule (see that module). DAVIS is scored by MSE and miRTarBase by accuracy, the paper's metrics for them.
"""

from llmlab.tasks.tx_llm.codecs import (
    N_BINS,
    Binning,
    binary_label,
    canonical_smiles,
    format_bin,
    parse_bin,
    parse_binary,
    parse_smiles,
    same_molecules,
)
from llmlab.tasks.tx_llm.data import TxData, find_tdc_files, load_tdc, select_exemplars, tdc_random_split
from llmlab.tasks.tx_llm.metrics import (
    HIGHER_IS_BETTER,
    accuracy,
    auprc,
    auroc,
    mae,
    median,
    mse,
    pearson,
    spearman,
    task_metric,
)
from llmlab.tasks.tx_llm.prompts import TASKS, Entity, TxTask, format_answer, format_prompt, format_question
from llmlab.tasks.tx_llm.sota import (
    NEAR_SOTA_TOLERANCE,
    NO_SOTA,
    REFERENCES,
    SOTA,
    TDC_LEADERBOARD_METRICS,
    SotaEntry,
    classify,
    compare_to_sota,
    relative_difference,
    sota_entry,
    sota_name,
)
from llmlab.tasks.tx_llm.task import TxLLM, TxLLMConfig

__all__ = [
    "HIGHER_IS_BETTER",
    "NEAR_SOTA_TOLERANCE",
    "NO_SOTA",
    "N_BINS",
    "REFERENCES",
    "SOTA",
    "TASKS",
    "TDC_LEADERBOARD_METRICS",
    "Binning",
    "Entity",
    "SotaEntry",
    "TxData",
    "TxLLM",
    "TxLLMConfig",
    "TxTask",
    "accuracy",
    "auprc",
    "auroc",
    "binary_label",
    "canonical_smiles",
    "classify",
    "compare_to_sota",
    "find_tdc_files",
    "format_answer",
    "format_bin",
    "format_prompt",
    "format_question",
    "load_tdc",
    "mae",
    "median",
    "mse",
    "parse_bin",
    "parse_binary",
    "parse_smiles",
    "pearson",
    "relative_difference",
    "same_molecules",
    "select_exemplars",
    "sota_entry",
    "sota_name",
    "spearman",
    "task_metric",
    "tdc_random_split",
]
