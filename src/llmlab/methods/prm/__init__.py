r"""Process reward models (PRMs), their training data layouts, and PRM-weighted self-consistency.

Modules: :mod:`.data` (layouts), :mod:`.models` (the PRM interface, LLM-as-PRM, the hf head),
:mod:`.weighted_sc` (the method ``prm_weighted_sc``), :mod:`.prompts`.

Paper: "Improve Mathematical Reasoning in Language Models by Automated Process Supervision", Luo et al.,
2024, arXiv 2406.06592 (OmegaPRM). Implements:

- the PRM interface: :class:`PRM` scores each step of a solution in [0, 1]; kinds: :class:`FunctionPRM`
  (any callable, for tests and plug-ins), :class:`LLMPRM` (an LLM asked to rate each step), and
  :class:`HFPRMHead` (a linear head on a transformers causal LM's hidden state at each step's last token,
  trained with the paper's pointwise soft-label objective, BCE against MC(s), or the hard-label and
  pairwise Bradley–Terry objectives it compares);
- the process-supervision layouts OmegaPRM's labels are read from and written to: Math-APS flat
  (``{solution_prefix, mc_value}`` per state) and tree (``{text, mc_value, children}``), Math-Shepherd
  (steps ended by ``ки`` in ``input``, ``+``/``-`` in ``label``) and PRM800K (``label.steps[].completions
  [].rating``), all into :class:`StepExample` (question, steps, one soft label or ``None`` per step);
- PRM-weighted self-consistency (§4 of the paper): sample N solutions, reduce each one's step scores to a
  solution score (``min``, ``last`` or ``product``), and return the answer with the largest sum of
  solution scores; plain majority vote and best-of-N by PRM score are computed alongside for comparison.

Deliberate deviations:

- The reduction of step scores to a solution score is a parameter. The paper's exact choice was not
  verified here; the default ``min`` follows Math-Shepherd (Lightman et al. use ``product``).
- In a Math-APS tree a node may add several steps at once (a binary-search probe); only the last step of
  each node carries the node's MC label, the others are ``None`` (unlabelled, masked out of the loss).
- PRM800K ratings map to soft labels as 1 → 1.0, 0 (neutral) → 1.0, −1 → 0.0: "not wrong" is the analogue
  of ``MC > 0``.
- The LLM-as-PRM prompt is ours (one call per solution, one "Step i: p" line per step); a step it does not
  rate gets ``default_score`` and is counted in the trace.
"""

from llmlab.methods.prm.data import (
    SHEPHERD_TAG,
    STEP_DELIMITER,
    StepExample,
    flat_to_tree,
    read_math_aps,
    read_math_shepherd,
    read_prm800k,
    sibling_pairs,
    to_math_shepherd,
    to_prm800k,
    tree_to_examples,
    tree_to_flat,
)
from llmlab.methods.prm.models import (
    LLMPRM,
    PRM,
    FunctionPRM,
    HFPRMHead,
    PRMHeadTrainConfig,
    parse_step_scores,
)
from llmlab.methods.prm.prompts import LLM_PRM_PROMPT
from llmlab.methods.prm.weighted_sc import (
    PRMWeightedSC,
    PRMWeightedSCConfig,
    default_extract,
    reduce_steps,
    weighted_vote,
)

__all__ = [
    "LLMPRM",
    "LLM_PRM_PROMPT",
    "PRM",
    "SHEPHERD_TAG",
    "STEP_DELIMITER",
    "FunctionPRM",
    "HFPRMHead",
    "PRMHeadTrainConfig",
    "PRMWeightedSC",
    "PRMWeightedSCConfig",
    "StepExample",
    "default_extract",
    "flat_to_tree",
    "parse_step_scores",
    "read_math_aps",
    "read_math_shepherd",
    "read_prm800k",
    "reduce_steps",
    "sibling_pairs",
    "to_math_shepherd",
    "to_prm800k",
    "tree_to_examples",
    "tree_to_flat",
    "weighted_vote",
]
