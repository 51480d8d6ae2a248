"""Husky (Kim, Paranjape, Khot, Hajishirzi; arXiv 2406.06469): a unified open-source language agent.

The loop and its deviations from the official code are documented in :mod:`llmlab.methods.husky.agent`;
prompts (official structure, our wording) in :mod:`llmlab.methods.husky.prompts`; the search expert's
retrievers (local BM25, a web-search adapter) in :mod:`llmlab.methods.husky.search`.
"""

from llmlab.methods.husky.agent import Action, Husky, HuskyConfig, Step, extract_answer, history_text, parse_action
from llmlab.methods.husky.search import (
    BM25Retriever,
    CachedRetriever,
    Document,
    NoSearch,
    Retriever,
    SerpAPISearch,
    WebSearch,
    load_documents,
)

__all__ = [
    "Action",
    "BM25Retriever",
    "CachedRetriever",
    "Document",
    "Husky",
    "HuskyConfig",
    "NoSearch",
    "Retriever",
    "SerpAPISearch",
    "Step",
    "WebSearch",
    "extract_answer",
    "history_text",
    "load_documents",
    "parse_action",
]
