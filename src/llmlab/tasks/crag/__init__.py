"""CRAG — Comprehensive RAG Benchmark (Yang et al., arXiv:2406.04744; NeurIPS 2024 D&B; facebookresearch/CRAG).

Spec: ``evaluation.md`` §5. Implements

- Items from CRAG JSONL(.bz2) rows (:mod:`~llmlab.tasks.crag.task`): query, query time, the search results
  (5 pages for tasks 1/2) with HTML → text through selectolax (:mod:`~llmlab.tasks.crag.html`), question
  type, domain, dynamism; alternative answers parsed from ``alt_ans``/``alternative_answers``.
- The official automatic evaluation (:mod:`~llmlab.tasks.crag.scoring`): 75-token Llama-2 trim, "i don't
  know" → missing, exact match and false-premise ("invalid") short-circuits, then the judge role with the
  official instruction structure and in-context examples (our wording, :mod:`~llmlab.tasks.crag.prompts`),
  last-JSON-block parse; score = accuracy − hallucination, with per-type / per-domain / per-dynamism tables.
- The mock API as an OpenAI-style tool set over its 38 endpoints (:mod:`~llmlab.tasks.crag.api`) and a
  local server over user-supplied KG files (:mod:`~llmlab.tasks.crag.server`; all five domains).
- The paper's baselines: LLM-only is this task's own prompt (``--method direct``); LLM + pages and LLM +
  pages + mock API are the methods ``crag_rag`` and ``crag_rag_api`` (:mod:`llmlab.methods.crag_rag`).

Deviations from the official ``local_evaluation.py`` (each a documented bug; see
:mod:`~llmlab.tasks.crag.scoring`): gold answers are a list (the script iterates the answer's characters);
alternative answers count by default (``-t use_alternative_answers=false`` for the answer alone); the
lower-cased prediction exists before the "i don't know" check; any judge model (not only names with
"chat"). A judge call that fails after retries counts as not correct, as officially, and is reported in
``judge_errors``.
"""

from __future__ import annotations

from llmlab.tasks.crag.api import ENDPOINTS, call_endpoint, crag_tools, request_body
from llmlab.tasks.crag.html import html_to_text
from llmlab.tasks.crag.scoring import (
    Verdict,
    crag_report,
    evaluate_prediction,
    load_tokenizer,
    parse_judge_response,
    trim_prediction,
)
from llmlab.tasks.crag.task import CRAG, CRAGConfig, parse_alternatives, read_rows

__all__ = [
    "CRAG",
    "ENDPOINTS",
    "CRAGConfig",
    "Verdict",
    "call_endpoint",
    "crag_report",
    "crag_tools",
    "evaluate_prediction",
    "html_to_text",
    "load_tokenizer",
    "parse_alternatives",
    "parse_judge_response",
    "read_rows",
    "request_body",
    "trim_prediction",
]
