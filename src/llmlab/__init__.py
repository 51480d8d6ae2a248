"""llmlab: the systems of the LLM papers of 10-16 June 2024 in one library and CLI.

The public surface is small: :func:`get_model` builds a :class:`~llmlab.backends.base.Model` from a spec
string, and the registry (:mod:`llmlab.core.registry`) resolves methods, tasks and backends by name.
Nothing heavy (torch, transformers) is imported here.
"""

from llmlab.core.errors import LabError

__version__ = "0.1.0"

__all__ = ["LabError", "__version__"]
