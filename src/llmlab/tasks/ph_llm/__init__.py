"""PH-LLM's three evaluations: professional exams, case-study rubric judging, and PRO prediction.

Paper: "Towards a Personal Health Large Language Model" (Cosentino, Belyaeva, Liu et al., 2024; arXiv
2406.06474; Nature Medicine 2025 as "A personal health large language model for sleep and fitness
coaching"). The model is Gemini Ultra 1.0 fine-tuned (proprietary); what is open is the evaluation
protocol, the rubric and the released ratings (Google-Health/consumer-health-research, folder ``phllm/``,
Apache-2.0; dataset ``ph-llm`` here). This package implements:

* :mod:`~llmlab.tasks.ph_llm.mcq` — the multiple-choice exams (sleep medicine, fitness): the official prompt
  structures (direct instruction, chain of thought with two exemplars, step-back principles) and the
  official ``<answer>(X)</answer>`` answer parsing; self-consistency comes from the ``self_consistency``
  method (paper: CoT + 5-sample self-consistency).
* :mod:`~llmlab.tasks.ph_llm.rubric` — the case-study rubric: the paper's 15 principles, the sections of
  each vertical (sleep: insights, etiology, recommendations; fitness: training load, sleep, health metrics,
  assessment), a judge-role task that rates one section on every principle with a 5-point Likert scale.
* :mod:`~llmlab.tasks.ph_llm.agreement` — the agreement analysis between raters: quadratic-weighted
  Gwet's AC2 per rater pair (Extended Data Fig. 3), contingency tables (Extended Data Figs. 4 and 6), the
  AutoEval raters against their training expert and the other experts, and model rankings by experts
  vs by AutoEval (Extended Data Figs. 7, 8), on the released ratings.
* :mod:`~llmlab.tasks.ph_llm.pro` — patient-reported-outcome prediction from wearables: a synthetic
  wearable generator with known feature-outcome links, a text encoding for an LM, the paper's adapter
  (daily features → per-feature mean and variance, z-scored → MLP → soft tokens prefixed to a frozen LM),
  and logistic-regression / gradient-boosting baselines, compared by AUROC.

Deliberate deviations (each repeated where it applies):

- Prompt wording is ours; the structure (instruction line naming the domain and the option labels, the
  exemplar layout, ``<answer></answer>`` tags) follows the official ``mcq_prompt_lib.py``; the exemplar
  questions are our own.
- Official bugs not copied: the official parser only accepts ``(A)``–``(E)`` although options go to
  ``(F)``; a reply with no tagged answer is returned as a dict and then silently counted wrong — here it is
  counted wrong *and* reported as ``unparsed``; the fitness reader filters on ``difficulty == 'None'``
  with ``isin`` on a string (pandas reads ``None`` as NaN) — here a missing difficulty is ``None``;
  questions whose text lacks the option lines are shown without their options — here they are appended.
- Self-consistency ties: the official notebook falls back to likelihood scoring of the options; the
  ``self_consistency`` method breaks ties by the first-seen answer (no logprob access is assumed).
- AC2 bootstrap CIs are plain percentile bootstraps over rated items (official: its own bootstrap
  helper); point estimates equal ``irrCAC`` (checked in ``tests/parity/test_ph_llm_irrcac.py``).
- PRO: the paper's data (real Fitbit users, PROMIS surveys) is not public; the experiment uses our
  synthetic generator and a tiny LM at CPU scale, so only the direction of the paper's finding is tested.
"""

from __future__ import annotations

from llmlab.tasks.ph_llm.mcq import PHLLMExam
from llmlab.tasks.ph_llm.rubric import PHLLMCaseStudy

__all__ = ["PHLLMCaseStudy", "PHLLMExam"]
