"""ShiftAddLLM: post-training multiplication-less reparameterisation of LLM weights.

Paper: You et al., "ShiftAddLLM: Accelerating Pretrained LLMs via Post-Training Multiplication-Less
Reparameterization" (arXiv 2406.05981, NeurIPS 2024). Implemented here:

* §3.1 binary-coding quantization (BCQ) ``w ≈ Σ_i α_i b_i`` with group-wise scales ``α`` and binary
  planes ``b_i ∈ {-1, +1}``: greedy initialisation and the alternating optimisation of the scales
  (least squares given the planes) and the planes (nearest codeword given the scales);
  :func:`bcq_quantize`.
* Power-of-two scales (the "shift" in shift-and-add): additive powers-of-two rounding of every α with
  ``apot_terms`` signed powers of two (``apot_terms=1``: each α is exactly one power of two);
  :func:`apot_round`.
* §3.2 multi-objective optimisation: BCQ (weight objective) inside a GPTQ/OBS column-by-column loop
  that pushes each column's quantization error onto the columns not yet quantized (output-activation
  objective, with ``H = 2 X Xᵀ`` from calibration inputs); :func:`obs_quantize`.
* §3.3 automated bit allocation: per-layer sensitivity ``||Ŵ||_F · std(Ŵ)²`` with ``Ŵ = W / diag(L)``
  (``L`` the upper Cholesky factor of ``H⁻¹``), more bits to the more sensitive layers under an
  average-bit budget; :func:`sensitivity_score`, :func:`allocate_bits`.
* The LUT-GEMV of LUT-GEMM / ShiftAddLLM's kernel: for every 8-activation chunk the 256 signed sums are
  built once per input (by recursive doubling: additions only), then each output row is table lookups
  and adds per bit-plane, scaled per group; :func:`lut_gemv_ref` (plain reference) and
  :func:`lut_gemv` / :class:`LUTWeight` (a numba kernel over tiles of 32 rows in
  :mod:`llmlab.models.shiftadd.lut_kernels`, or a vectorised torch fallback).
* Baselines at the same bits and group size: RTN (asymmetric min-max, round to nearest) and GPTQ (the
  same OBS loop with the uniform quantizer).

Weight layouts: a ``nn.Linear`` weight ``W`` is ``(N, K)`` (out, in).

* ``layout="row"`` (LUT-GEMM / the official "Lat." family): a group is ``group_size`` consecutive input
  columns of one output row, so the scales are ``(q, N, K/g)`` and the planes ``(q, N, K)``, packed along K
  into ``(q, N, K/8)`` bytes (bit j of byte c is the sign of column ``8c + j``; 1 means +1). This is the
  layout the LUT kernel runs.
* ``layout="column"`` (the official "Acc." mode, "column-wise scaling"): a group is ``group_size``
  consecutive rows of one input column; the OBS loop fits each column's scales on its current,
  already-compensated values. Scales ``(q, N/g, K)``. RTN and GPTQ always use row groups.

Deliberate deviations from the official code (GATECH-EIC/ShiftAddLLM):

* Row layout: the OBS loop fits a group's scales when it reaches the group's first column, on the
  already-compensated weights (as GPTQ's static groups); the official Lat. mode shares α over 8-column
  blocks instead. ``act_order`` is not offered because it would break the contiguity of LUT groups.
* The α step is the exact least-squares solution (float64, batched pseudo-inverse) warm-started at the
  current α, which keeps α's component in the null space of ``BᵀB``: in small groups (g = 8) planes can
  coincide and a plain solve would merge their scales for good. The official loop takes q steps of
  conjugate gradient from the current α (the same point in exact arithmetic). Every group returns the best
  (α, B) of its trajectory, so the error is non-increasing by construction.
* The nearest-codeword step uses ``torch.searchsorted`` on the sorted 2^q codewords (the official
  hand-written binary search, "BST", is the same assignment).
* With power-of-two scales the greedy init is left unrounded (as official) and only returned after
  rounding; each α step is fitted to the APoT grid by coordinate descent on the exact error for the
  current planes (candidates: the powers of two just below and above each term), and a second trajectory
  rounds each α on its own as the official ``additive_power_of_2`` does; each group keeps the best either
  met. The stored scales are always exact APoT values and the planes optimal for them. Against the
  official ``bcq.quantize`` / ``quantize_shift`` on the same weights the error is never higher in the
  860-configuration grid of ``tests/parity/test_shiftadd_bcq_official.py``.
* Bit allocation weighs layers by their parameter counts when it checks the average-bit budget; the
  official ``opt_analysis.py`` repeats fc1/fc2 four times in a ranking by proportions, which is the
  same idea for OPT's 4x FFN only.
* Quantization is sequential over the linear layers (each layer's calibration inputs come from the
  model whose earlier layers are already quantized), as GPTQ; embeddings and the output head are kept
  in full precision (``skip``).
* The LUT kernel multiplies by α in floating point; with power-of-two α this is an exponent add (a
  shift), which we do not emulate bit-exactly.

Package layout (the submodules; every public name is re-exported here):

* :mod:`~llmlab.models.shiftadd.config`: :class:`QuantConfig`, ``METHODS``.
* :mod:`~llmlab.models.shiftadd.bcq`: binary-coding quantization, power-of-two scales, :class:`BCQWeight`,
  plane packing.
* :mod:`~llmlab.models.shiftadd.gptq`: the RTN quantizer and the OBS/GPTQ column loop with error
  compensation (row and column layouts).
* :mod:`~llmlab.models.shiftadd.allocation`: sensitivity scores and bit allocation.
* :mod:`~llmlab.models.shiftadd.lut`: the LUT GEMV (plain reference, torch and numba fast paths);
  :mod:`~llmlab.models.shiftadd.lut_kernels` holds the numba kernels and is imported only when numba is.
* :mod:`~llmlab.models.shiftadd.quantize`: whole models (Hessians, sequential quantization, reports).
* :mod:`~llmlab.models.shiftadd.cli`: ``llmlab lab quantize`` and the quality-ladder experiment.
"""

from __future__ import annotations

from llmlab.models.shiftadd.allocation import allocate_bits, average_bits, sensitivity_score
from llmlab.models.shiftadd.bcq import (
    BCQWeight,
    apot_round,
    bcq_quantize,
    nearest_codeword,
    nearest_codeword_bruteforce,
    pack_planes,
    unpack_planes,
)
from llmlab.models.shiftadd.config import METHODS, Method, QuantConfig
from llmlab.models.shiftadd.gptq import obs_quantize, rtn_apply, rtn_params
from llmlab.models.shiftadd.lut import LUTWeight, build_lut, lut_gemv, lut_gemv_ref
from llmlab.models.shiftadd.quantize import QuantReport, collect_hessians, linear_layers, quantize_model

__all__ = [
    "METHODS",
    "BCQWeight",
    "LUTWeight",
    "Method",
    "QuantConfig",
    "QuantReport",
    "allocate_bits",
    "apot_round",
    "average_bits",
    "bcq_quantize",
    "build_lut",
    "collect_hessians",
    "linear_layers",
    "lut_gemv",
    "lut_gemv_ref",
    "nearest_codeword",
    "nearest_codeword_bruteforce",
    "obs_quantize",
    "pack_planes",
    "quantize_model",
    "rtn_apply",
    "rtn_params",
    "sensitivity_score",
    "unpack_planes",
]
