"""Magpie: Alignment Data Synthesis from Scratch by Prompting Aligned LLMs with Nothing (Xu et al., arXiv 2406.08464).

An aligned chat model, given only the part of its chat template that precedes a user message (the
*pre-query template*), writes a plausible user query; the query then goes through the normal template
for the response (paper §2, Fig. 2). Official code: magpie-align/magpie (MIT).

- :mod:`~llmlab.data.magpie.templates`: the official per-model templates read as data
  (``model_configs.json``, 34 models), and derivation from a tokenizer's chat template for any other model;
- :mod:`~llmlab.data.magpie.generate`: raw-completion instruction stage, chat response stage, multi-turn
  (Magpie-MT), system-prompt and task (math, code, translation) variants; resumable run folders;
  ShareGPT and OpenAI-messages exports;
- :mod:`~llmlab.data.magpie.sanitize`: the official ``--sanitize`` instruction cleaning;
- :mod:`~llmlab.data.magpie.tagging`: judge tagging (difficulty, quality, task category), safety
  (guard model) and reward-model scores;
- :mod:`~llmlab.data.magpie.filters` (+ :mod:`~llmlab.data.magpie.steps`): the filters as a datatrove
  pipeline (length, repetition, language, ends-with-colon, quality, reward, MinHash near-duplicates),
  on the local executor with N workers or on Ray.

Deviations from the official code (each also in its module): near-duplicates by MinHash instead of
sentence-embedding distance in FAISS; language ID with fastText LID-176 instead of lingua; the judge is a
chat request asking for a JSON object instead of a raw template prefilled with ``{``; two sanitiser bugs
fixed (the ``<b>`` branch discarded its result; ``Answer:`` markers needed a double colon); the MT system
prompt's "Al assistant" typo fixed; the Llama-3.1-405B entry's ``<|starter_header_id|>`` stop-token typo
is read as is (the file is data; its stop ids are right, and the sibling ``<|start_header_id|>`` is a
stop of every other Llama-3 entry). Not done: the de-markdown / flaming-token first-token logits
processors (no backend here takes a logits processor), the preference-data (5 responses + ArmoRM) step.
"""

from llmlab.data.magpie.generate import MagpieConfig, generate, to_messages, to_sharegpt
from llmlab.data.magpie.templates import MagpieTemplate, derive_template, load_model_configs, resolve_template

__all__ = ["MagpieConfig", "MagpieTemplate", "derive_template", "generate", "load_model_configs",
           "resolve_template", "to_messages", "to_sharegpt"]
