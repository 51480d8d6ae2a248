"""ShiftAddLLM (arXiv 2406.05981): the quantization config shared by every quantizer of the package."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from llmlab.core.errors import ConfigError, MissingExtraError

Method = Literal["rtn", "gptq", "bcq", "shiftadd"]
METHODS: tuple[str, ...] = ("rtn", "gptq", "bcq", "shiftadd")


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("torch", "torch", "ShiftAddLLM quantization") from exc
    return torch


@dataclass
class QuantConfig:
    """How to quantize one linear layer (or every linear layer of a model).

    Attributes:
        method: ``rtn`` | ``gptq`` (uniform grid; GPTQ adds OBS compensation) | ``bcq`` (binary coding,
            alternating, no compensation) | ``shiftadd`` (BCQ + power-of-two scales + OBS compensation).
        bits: Bits per weight (``q`` binary planes for BCQ; ``2^bits`` levels for RTN/GPTQ).
        group_size: Weights per scale group; ``-1`` means a whole row (``layout="row"``) or column
            (``layout="column"``). Multiple of 8 for the LUT.
        layout: ``row``: a group is ``group_size`` consecutive input columns of one output row (LUT-GEMM /
            "Lat." layout, runs in the LUT kernel); ``column``: a group is ``group_size`` consecutive rows
            of one input column, fitted when the OBS loop reaches that column (the official "Acc." mode).
            Binary methods only; RTN/GPTQ always use row groups.
        rounds: Alternating BCQ rounds (0: greedy only).
        apot_terms: Signed powers of two per scale for ``shiftadd`` (the official default is 3).
        percdamp: Hessian damping, a fraction of the mean diagonal.
        blocksize: Columns per lazy-update block of the OBS loop (rounded up to a multiple of the group).
        skip: Substrings of module names that are not quantized (the output head).
    """

    method: Method = "shiftadd"
    bits: int = 3
    group_size: int = 128
    layout: Literal["row", "column"] = "row"
    rounds: int = 10
    apot_terms: int = 3
    percdamp: float = 0.01
    blocksize: int = 128
    skip: tuple[str, ...] = ("head",)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown quantization method {self.method!r}; choose one of {', '.join(METHODS)}")
        if not 1 <= self.bits <= 8:
            raise ConfigError(f"bits must be in 1..8, got {self.bits}")
        if self.group_size != -1 and self.group_size < 1:
            raise ConfigError(f"group_size must be -1 or positive, got {self.group_size}")
        if self.layout not in ("row", "column"):
            raise ConfigError(f"layout must be 'row' or 'column', got {self.layout!r}")
        if self.rounds < 0 or self.apot_terms < 1:
            raise ConfigError("rounds must be >= 0 and apot_terms >= 1")

    def group_for(self, k: int, what: str = "input columns") -> int:
        """The effective group size along a dimension of length ``k``."""
        g = k if self.group_size == -1 else min(self.group_size, k)
        if k % g:
            raise ConfigError(f"group_size {g} does not divide the layer's {k} {what}; pick a divisor")
        return g
