"""PowerInfer-2's offloading engine: decoding a dReLU model whose FFN weights exceed the memory budget.

Paper: Xue et al., "PowerInfer-2: Fast Large Language Model Inference on a Smartphone" (arXiv 2406.06282).
Implemented:

* §4.3 storage: FFN weights written once in a *neuron-bundle* layout (a neuron's gate row, up row and down
  column contiguous, padded to 4 KiB) so one positioned read serves all three matrices of a neuron cluster
  (:mod:`~llmlab.models.offload.store`). Attention weights, embeddings and the activation predictors stay
  resident.
* §4.2 segmented neuron cache with a byte budget: a hot segment pinned from offline activation profiling
  (global top-M by frequency, optimal for uniform cost) and an LRU cold segment
  (:class:`~llmlab.models.offload.engine.NeuronCache`).
* §4.4 neuron-cluster-level pipeline: misses are grouped into clusters (runs of contiguous active neurons)
  read by a thread pool with ``preadv`` under ``O_DIRECT`` (or buffered + ``posix_fadvise(DONTNEED)``), while
  the compute thread works on clusters already resident; each cluster is computed as its read lands.
* §4.1 polymorphic engine: prefill streams each layer and runs it dense, decode runs predictor-sparse.

Decoding outputs are those of the in-memory :class:`~llmlab.models.sparse_ffn.SparseFFN` (same predictor,
same hot set, same neurons computed): bit-for-bit where floating-point sums are exact (tested on
dyadic-valued weights, where any summation order gives the same float), otherwise equal up to summation
order (~1e-7 relative in float32).

Deviations (deliberate):
* No NPU, no big/little core placement, no offline execution-plan search (phone-specific, §4.5); one CPU
  process and a thread pool. Prefill is dense on the CPU.
* Two-phase loading (gate row first, up/down only for neurons that survive) is not done: with dReLU and a
  predictor the selected neurons are read whole, one bundle each, which is what the bundle layout is for.
* The cache is shared by all layers (one global LRU clock); the paper sizes segments per layer from the
  execution plan.
* Weights are stored in the model's dtype (float32 for the lab models), not INT4 as on the phone.
* Neuron order in the file: neuron-id order by default; ``masks=`` (``bench/offload.py --reorder``) stores
  the pinned neurons first, then a greedy co-activation chain so clusters get longer. That ordering is ours
  (not from the paper) and was measured only on the small models of the tests.
"""

from llmlab.models.offload.engine import (
    DecodeResult,
    NeuronCache,
    OffloadConfig,
    OffloadedFFN,
    OffloadEngine,
    OffloadStats,
    PolymorphicFFN,
    active_ids,
    clusters,
    coactivation_order,
    decode,
    ffn_weights,
    pinned_from_frequency,
    strip_weights,
)
from llmlab.models.offload.lm import offload_lm, polymorphic_lm, profile_frequency, profile_masks
from llmlab.models.offload.store import ALIGN, BundleFile, BundleLayout, aligned_buffer, write_bundles

__all__ = [
    "ALIGN",
    "BundleFile",
    "BundleLayout",
    "DecodeResult",
    "NeuronCache",
    "OffloadConfig",
    "OffloadEngine",
    "OffloadStats",
    "OffloadedFFN",
    "PolymorphicFFN",
    "active_ids",
    "aligned_buffer",
    "clusters",
    "coactivation_order",
    "decode",
    "ffn_weights",
    "offload_lm",
    "pinned_from_frequency",
    "polymorphic_lm",
    "profile_frequency",
    "profile_masks",
    "strip_weights",
    "write_bundles",
]
