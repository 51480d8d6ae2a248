"""Test of Time: A Benchmark for Evaluating LLMs on Temporal Reasoning (Fatemi et al., arXiv:2406.09170).

Implements
- **ToT-Arithmetic** (§3.2 of the paper; spec ``evaluation.md`` §7.3): the 1850-question test split, seven
  categories (``add_subtract``, ``compare``, ``multi_op``, ``schedule``, ``trick``, ``duration``,
  ``timezone``). Labels are Python-dict literals parsed with :func:`ast.literal_eval` (never ``eval``).
  A prediction is correct iff EVERY label key matches after normalisation: numbers compare as floats
  (``'1307'`` == ``1307`` == ``1307.0``), strings case- and whitespace-insensitively, ``unordered_list`` as
  a set, ``ordered_list`` as a list. Reports overall, per-category and per-answer-format accuracy.
- **ToT-Semantic** (§3.1): a seeded generator (:func:`generate_semantic`) of anonymised temporal
  knowledge graphs — a random graph from one of seven families, each edge turned into one or more facts
  ``"E{i} was the R{j} of E{k} from YYYY to YYYY."`` — and the eight question types of the paper with
  exactly computed answers; :class:`ToTSemantic` evaluates a generated (or the official HF) file.

Deviations and choices (each deliberate)
- No official code exists (the paper points to the HF dataset only). The ToT-Semantic generator is a
  re-implementation from the paper's description: the graph-family names (ER, SBM, BA, SFN, star,
  complete, AWE), the relation semantics (at most one holder of relation R of entity E at any year — the
  paper's "consistent" facts) and the sorting-type names (``shuffle``, ``start_time``,
  ``target_and_start_time``, ``relation_and_start_time``) are our reading of it, not verified against
  the authors' generator. AWE is realised as the edge set of a random anonymous walk.
- Questions whose answer is not unique (time ties, an entity holding the same role twice where the
  question assumes once) are rejected and redrawn, as the paper requires.
- Answer parsing (no official parser): the last ``{...}`` block of the reply that contains the label's
  keys, read as JSON, then as a Python literal, then key-by-key with a lenient regex (models often
  write ``"answer": 352 BC`` unquoted, as some ToT prompts literally ask). Times ``H:MM[:SS]`` are
  compared with a zero-padded hour; ``compare`` questions that misspell the key as ``unorered_list`` in
  their format example (50 rows) accept that key as an alias.
- Prompt wording for ToT-Semantic is ours (the official prompt text is not public outside the HF rows).

Predictions file for ``llmlab score tot_arithmetic --predictions F`` (JSONL, one object per line):
``{"question": str, "question_type": str, "label": str (the dataset's literal), "prediction": str}``;
``id`` is optional. For ``tot_semantic`` the same plus ``prompt``. ``prediction`` is the model's raw text
(its JSON answer is parsed) or a bare label dict.

Package layout (the submodules; every public name is re-exported here):

* :mod:`~llmlab.tasks.test_of_time.answers`: answer parsing and normalisation, label parsing.
* :mod:`~llmlab.tasks.test_of_time.base`: the task base shared by both tasks (loading, scoring, reports).
* :mod:`~llmlab.tasks.test_of_time.arithmetic`: :class:`ToTArithmetic`.
* :mod:`~llmlab.tasks.test_of_time.semantic`: the ToT-Semantic generator and :class:`ToTSemantic`.
* :mod:`~llmlab.tasks.test_of_time.prompts`: the ToT-Semantic prompt and fact templates.
"""

from __future__ import annotations

from llmlab.tasks.test_of_time.answers import (
    KEY_ALIASES,
    canonical_answer,
    normalize_semantic,
    normalize_value,
    parse_answer,
    parse_label,
)
from llmlab.tasks.test_of_time.arithmetic import ARITHMETIC_CATEGORIES, ToTArithmetic
from llmlab.tasks.test_of_time.base import ToTConfig
from llmlab.tasks.test_of_time.prompts import FACT_TEMPLATE, SEMANTIC_PROMPT
from llmlab.tasks.test_of_time.semantic import (
    GRAPH_GENERATORS,
    QUESTION_TYPES,
    SORTING_TYPES,
    Fact,
    GraphKind,
    QuestionType,
    SemanticGenConfig,
    SortingType,
    ToTSemantic,
    generate_semantic,
)

__all__ = [
    "ARITHMETIC_CATEGORIES",
    "FACT_TEMPLATE",
    "GRAPH_GENERATORS",
    "KEY_ALIASES",
    "QUESTION_TYPES",
    "SEMANTIC_PROMPT",
    "SORTING_TYPES",
    "Fact",
    "GraphKind",
    "QuestionType",
    "SemanticGenConfig",
    "SortingType",
    "ToTArithmetic",
    "ToTConfig",
    "ToTSemantic",
    "canonical_answer",
    "generate_semantic",
    "normalize_semantic",
    "normalize_value",
    "parse_answer",
    "parse_label",
]
