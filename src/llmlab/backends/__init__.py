"""Backends (openai-compatible, hf, mock) and the Model wrapper stack every method talks to."""

from llmlab.backends.base import (
    Backend,
    Capabilities,
    GenerateRequest,
    GenerateResponse,
    Message,
    Usage,
    make_backend,
)
from llmlab.backends.model import Model, get_model

__all__ = [
    "Backend",
    "Capabilities",
    "GenerateRequest",
    "GenerateResponse",
    "Message",
    "Model",
    "Usage",
    "get_model",
    "make_backend",
]
