"""``tg.autograd``: the ops under the official module name (``tg.autograd.StringBasedFunction`` ...)."""

from __future__ import annotations

from llmlab.methods.textgrad.functions import (
    Aggregate,
    FormattedLLMCall,
    Function,
    LLMCall,
    StringBasedFunction,
    Sum,
    sum,
)
from llmlab.methods.textgrad.loss import Module

__all__ = ["Aggregate", "FormattedLLMCall", "Function", "LLMCall", "Module", "StringBasedFunction", "Sum", "sum"]
