"""Segmented neuron cache, cluster-level I/O pipeline and the offloaded FFN (PowerInfer-2 §4.2-§4.4).

Decode (one token): the layer's predictor picks the active neurons (plus the always-computed hot set of the
:class:`~llmlab.models.sparse_ffn.SparseFFN` it mirrors); resident ones are computed at once while the missing
ones are read from the bundle file as *clusters* (runs of contiguous active neuron ids, at most
``max_cluster`` long) by a thread pool, each cluster computed as soon as its read lands. Prefill (several
tokens) streams the whole layer through the same file and computes it densely (the polymorphic engine).

When the file was written with a co-activation order (:func:`coactivation_order`), neuron ids are mapped to
file positions first and clusters are runs of contiguous *positions*: neurons often active together then
share one read. The neurons computed, and so the outputs, are the same in either layout.

Memory: one page-aligned slot pool of ``budget_bytes // bundle_bytes`` neuron bundles. A *hot* segment
(``hot_fraction`` of the slots) is pinned at start with the most frequently active neurons from offline
profiling; the rest is the *cold* segment, exact LRU by last-use step. Reads land directly in their slots
(``preadv`` scatter, ``O_DIRECT``), so no staging copy is made.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from llmlab.core.errors import ConfigError
from llmlab.models.offload.store import BundleFile, aligned_buffer
from llmlab.models.sparse_ffn import GatedFFN, SparseFFN, gated_activation

Mode = Literal["sparse", "dense_stream"]


@dataclass(frozen=True)
class OffloadConfig:
    """Engine settings.

    Attributes:
        budget_bytes: Memory for FFN weights (the neuron cache, or the dense baseline's resident layers and
            staging buffers).
        hot_fraction: Share of the cache slots pinned for profiled-hot neurons (rest: LRU cold segment).
        io_threads: Reader threads (positioned reads release the GIL).
        max_cluster: Longest run of neurons per read (the pipeline's granularity).
        pipeline: Overlap cluster reads with computation on resident clusters; False = read everything a
            layer needs, then compute (the "no pipeline" ablation).
        direct_io: Open the file with ``O_DIRECT`` (falls back to buffered + ``posix_fadvise(DONTNEED)``).
        mode: ``sparse`` (PowerInfer-2) or ``dense_stream`` (baseline: whole layers read from the file per
            token, llama.cpp-mmap style, with as many whole layers kept resident as the budget allows).
        dense_chunk: Neurons per read when streaming a layer densely.
    """

    budget_bytes: int
    hot_fraction: float = 0.5
    io_threads: int = 4
    max_cluster: int = 64
    pipeline: bool = True
    direct_io: bool = True
    mode: Mode = "sparse"
    dense_chunk: int = 512

    def __post_init__(self) -> None:
        if self.budget_bytes <= 0:
            raise ConfigError(f"budget_bytes must be > 0, got {self.budget_bytes}")
        if not 0.0 <= self.hot_fraction <= 1.0:
            raise ConfigError(f"hot_fraction must be in [0, 1], got {self.hot_fraction}")
        if self.io_threads < 1 or self.max_cluster < 1 or self.dense_chunk < 1:
            raise ConfigError("io_threads, max_cluster and dense_chunk must be >= 1")
        if self.mode not in ("sparse", "dense_stream"):
            raise ConfigError(f"unknown mode '{self.mode}'. Available: sparse, dense_stream")


@dataclass
class OffloadStats:
    """Counters since the last :meth:`OffloadEngine.reset_stats`."""

    bytes_read: int = 0
    reads: int = 0
    hits: int = 0
    misses: int = 0
    io_busy_s: float = 0.0  # summed duration of the reads (over threads; may exceed wall time)
    io_wait_s: float = 0.0  # time the compute thread waited for reads
    compute_s: float = 0.0  # time spent computing FFN neurons
    layer_calls: int = 0

    @property
    def hit_rate(self) -> float:
        """Cache hits / neuron lookups (decode only)."""
        n = self.hits + self.misses
        return self.hits / n if n else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Counters plus hit rate."""
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "hit_rate": self.hit_rate}


def clusters(ids: np.ndarray, max_len: int) -> list[tuple[int, int]]:
    """Split sorted neuron ids into runs of consecutive ids, each at most ``max_len`` long.

    Returns:
        ``(position in ids, length)`` per cluster.

    Example:
        >>> clusters(np.array([1, 2, 3, 7, 9, 10]), 2)
        [(0, 2), (2, 1), (3, 1), (4, 2)]
    """
    if ids.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    out = []
    for s, e in zip(np.r_[0, breaks], np.r_[breaks, ids.size], strict=True):
        for a in range(int(s), int(e), max_len):
            out.append((a, min(max_len, int(e) - a)))
    return out


class NeuronCache:
    """Slot pool with a pinned hot segment and an exact-LRU cold segment, under a byte budget.

    Neurons are addressed by file position (the neuron id unless the file is reordered).

    Args:
        file: The bundle file (its layout sizes the slots).
        n_slots: Slots (bundles) in the pool.
        pinned: Per layer, file positions to pin (at most the hot segment's size in total).
    """

    def __init__(self, file: BundleFile, n_slots: int, pinned: dict[int, np.ndarray]) -> None:
        lay = file.layout
        self.layout = lay
        self.n_slots = n_slots
        self._buf = aligned_buffer(n_slots * lay.bundle_bytes)
        self.pool = np.frombuffer(self._buf, dtype=lay.dtype, count=n_slots * lay.bundle_elems).reshape(
            n_slots, lay.bundle_elems)  # (slots, padded 3d)
        self.tensor = torch.from_numpy(self.pool)
        self.views = [memoryview(self._buf)[i * lay.bundle_bytes:(i + 1) * lay.bundle_bytes] for i in range(n_slots)]
        self.where = np.full((lay.n_layers, lay.d_ff), -1, dtype=np.int64)  # (layer, position) -> slot
        self.owner = np.full((n_slots, 2), -1, dtype=np.int64)  # slot -> (layer, position)
        self.last_used = np.full(n_slots, -1, dtype=np.int64)  # LRU clock; free slots first
        self.is_pinned = np.zeros(n_slots, dtype=bool)
        self.clock = 0
        self.preload_bytes = 0
        slot = 0
        for layer in sorted(pinned):
            ids = np.unique(np.asarray(pinned[layer], dtype=np.int64))
            if slot + ids.size > n_slots:
                raise ConfigError(f"pinned neurons ({slot + ids.size}) exceed the cache's {n_slots} slots")
            slots = np.arange(slot, slot + ids.size)
            self._assign(layer, ids, slots)
            self.is_pinned[slots] = True
            for pos, length in clusters(ids, 1 << 30):  # one read per run of the pinned set
                self.preload_bytes += file.read_into(layer, int(ids[pos]),
                                                     [self.views[s] for s in slots[pos:pos + length]])
            slot += ids.size
        self.n_pinned = slot

    def _assign(self, layer: int, ids: np.ndarray, slots: np.ndarray) -> None:
        old = self.owner[slots]
        had = old[:, 0] >= 0
        self.where[old[had, 0], old[had, 1]] = -1
        self.where[layer, ids] = slots
        self.owner[slots, 0], self.owner[slots, 1] = layer, ids

    def lookup(self, layer: int, ids: np.ndarray) -> np.ndarray:
        """Slot of each neuron (-1 when not resident); marks the resident ones as used now."""
        self.clock += 1
        slots = self.where[layer, ids]
        self.last_used[slots[slots >= 0]] = self.clock
        return slots

    def allocate(self, layer: int, ids: np.ndarray) -> np.ndarray:
        """Evict the least recently used unpinned slots (not used in this step) and give them to ``ids``.

        Raises:
            ConfigError: When the cold segment cannot hold one layer's missing neurons.
        """
        k = ids.size
        if k == 0:
            return np.zeros(0, dtype=np.int64)
        age = np.where(self.is_pinned | (self.last_used == self.clock), np.iinfo(np.int64).max, self.last_used)
        free = int((age != np.iinfo(np.int64).max).sum())
        if free < k:
            raise ConfigError(f"cache budget too small: a layer step needs {k} cold slots, {free} available "
                              "(raise --budget or lower hot_fraction)")
        slots = np.argpartition(age, k - 1)[:k] if k < age.size else np.arange(age.size)
        self._assign(layer, ids, slots)
        self.last_used[slots] = self.clock
        return slots


class OffloadEngine:
    """Reads FFN neurons from a bundle file under a memory budget and computes them.

    Args:
        path: Bundle file written by :func:`~llmlab.models.offload.store.write_bundles`.
        act: FFN activation (``drelu`` for TurboSparse models).
        cfg: Engine settings.
        pinned: Per layer, the hot neuron ids to pin (e.g. from :func:`pinned_from_frequency`); sparse mode only.
    """

    def __init__(self, path: str | Path, act: str, cfg: OffloadConfig,
                 pinned: dict[int, np.ndarray] | None = None) -> None:
        self.cfg = cfg
        self.act = act
        self.file = BundleFile(path, direct=cfg.direct_io)
        self.position = self.file.position  # neuron id -> file position (None: the identity)
        lay = self.layout = self.file.layout
        self.d = lay.d
        self.pool = ThreadPoolExecutor(cfg.io_threads, thread_name_prefix="offload-io")
        self.stats = OffloadStats()
        self.resident: dict[int, torch.Tensor] = {}
        depth = cfg.io_threads + 1  # staging buffers for streamed reads (double buffering and then some)
        chunk = min(cfg.dense_chunk, lay.d_ff)
        self._stage = [aligned_buffer(chunk * lay.bundle_bytes) for _ in range(depth)]
        staging = depth * chunk * lay.bundle_bytes
        if cfg.mode == "dense_stream":
            n_res = max(0, (cfg.budget_bytes - staging) // lay.layer_bytes)
            for layer in range(min(n_res, lay.n_layers)):  # llama.cpp-style: what fits stays mapped
                buf = aligned_buffer(lay.layer_bytes)
                self.file.read_into(layer, 0, [memoryview(buf)[:lay.layer_bytes]])
                self.resident[layer] = torch.from_numpy(np.frombuffer(
                    buf, dtype=lay.dtype, count=lay.d_ff * lay.bundle_elems).reshape(lay.d_ff, lay.bundle_elems))
            self.cache: NeuronCache | None = None
        else:
            n_slots = cfg.budget_bytes // lay.bundle_bytes
            n_hot = int(cfg.hot_fraction * n_slots)
            pin = {k: self.positions(k, np.asarray(v, dtype=np.int64)) for k, v in (pinned or {}).items()}
            if sum(np.asarray(v).size for v in pin.values()) > n_hot:
                raise ConfigError(f"{sum(np.asarray(v).size for v in pin.values())} pinned neurons exceed the hot "
                                  f"segment ({n_hot} slots); use pinned_from_frequency(freq, engine_hot_slots)")
            self.cache = NeuronCache(self.file, n_slots, pin)
        self.staging_bytes = staging

    @staticmethod
    def hot_slots(cfg: OffloadConfig, path: str | Path) -> int:
        """Size of the hot segment (slots) an engine with ``cfg`` on ``path`` will have."""
        lay = BundleFile(path, direct=False)
        n = int(cfg.hot_fraction * (cfg.budget_bytes // lay.layout.bundle_bytes))
        lay.close()
        return n

    def positions(self, layer: int, ids: np.ndarray) -> np.ndarray:
        """Sorted file positions of neuron ``ids`` of ``layer`` (the ids themselves unless the file is reordered)."""
        return ids if self.position is None else np.sort(self.position[layer][ids])

    def reset_stats(self) -> None:
        """Zero the counters."""
        self.stats = OffloadStats()

    def drop_page_cache(self) -> None:
        """Evict the bundle file from the OS page cache (call before each measured run)."""
        self.file.drop_cache()

    def _compute(self, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        d = self.d
        t0 = time.perf_counter()
        a = gated_activation(self.act, x @ rows[:, :d].T, x @ rows[:, d:2 * d].T)  # (T, k)
        y = a @ rows[:, 2 * d:3 * d]  # (T, d)
        self.stats.compute_s += time.perf_counter() - t0
        return y

    def _timed_read(self, layer: int, start: int, bufs: list[memoryview]) -> tuple[int, float]:
        t0 = time.perf_counter()
        n = self.file.read_into(layer, start, bufs)
        return n, time.perf_counter() - t0

    def _collect(self, fut: Future[tuple[int, float]]) -> None:
        t0 = time.perf_counter()
        n, busy = fut.result()
        self.stats.io_wait_s += time.perf_counter() - t0
        self.stats.bytes_read += n
        self.stats.io_busy_s += busy
        self.stats.reads += 1

    def ffn_sparse(self, layer: int, x: torch.Tensor, ids: np.ndarray) -> torch.Tensor:
        """FFN output of one token computing only neurons ``ids`` (sorted, original numbering).

        Args:
            layer: Layer index in the file.
            x: (1, d) input.
            ids: Active neuron ids.

        Returns:
            (1, d).
        """
        if self.cache is None:
            raise ConfigError("ffn_sparse needs mode='sparse'")
        st, cache = self.stats, self.cache
        st.layer_calls += 1
        ids = self.positions(layer, ids)  # from here on: file positions
        slots = cache.lookup(layer, ids)
        hit = slots >= 0
        miss_ids = ids[~hit]
        st.hits += int(hit.sum())
        st.misses += int(miss_ids.size)
        new_slots = cache.allocate(layer, miss_ids)
        runs = clusters(miss_ids, self.cfg.max_cluster)
        futs = [self.pool.submit(self._timed_read, layer, int(miss_ids[p]),
                                 [cache.views[s] for s in new_slots[p:p + n]]) for p, n in runs]
        if not self.cfg.pipeline:
            for f in futs:
                self._collect(f)
        y = self._compute(x, cache.tensor.index_select(0, torch.from_numpy(slots[hit]))) if hit.any() \
            else x.new_zeros(x.shape)
        parts = []
        for (p, n), f in zip(runs, futs, strict=True):  # in submission order: a deterministic sum
            if self.cfg.pipeline:
                self._collect(f)
            parts.append(self._compute(x, cache.tensor.index_select(0, torch.from_numpy(new_slots[p:p + n]))))
        for part in parts:
            y = y + part
        return y

    def ffn_dense(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """Dense FFN output of (T, d) inputs, streaming the layer from the file (unless resident)."""
        st, lay = self.stats, self.layout
        st.layer_calls += 1
        if layer in self.resident:
            return self._compute(x, self.resident[layer])
        chunk = len(self._stage[0]) // lay.bundle_bytes
        starts = list(range(0, lay.d_ff, chunk))
        bb = lay.bundle_bytes

        def submit(i: int) -> Future[tuple[int, float]]:
            s = starts[i]
            n = min(chunk, lay.d_ff - s)
            buf = self._stage[i % len(self._stage)]
            return self.pool.submit(self._timed_read, layer, s, [memoryview(buf)[:n * bb]])  # one iovec

        depth = len(self._stage) if self.cfg.pipeline else 1
        futs = {i: submit(i) for i in range(min(depth, len(starts)))}
        y = x.new_zeros(x.shape)
        for i, s in enumerate(starts):
            self._collect(futs.pop(i))
            n = min(chunk, lay.d_ff - s)
            rows = torch.from_numpy(np.frombuffer(self._stage[i % len(self._stage)], dtype=lay.dtype,
                                                  count=n * lay.bundle_elems).reshape(n, lay.bundle_elems))
            part = self._compute(x, rows)
            if i + depth < len(starts):  # the buffer just computed is free again
                futs[i + depth] = submit(i + depth)
            y = y + part
        return y

    def close(self) -> None:
        """Stop the reader threads and close the file."""
        self.pool.shutdown(wait=True)
        self.file.close()


def pinned_from_frequency(freq: list[np.ndarray] | list[torch.Tensor], n_hot: int) -> dict[int, np.ndarray]:
    """The ``n_hot`` most frequently active (layer, neuron) pairs over all layers (uniform cost: greedy = optimal).

    Args:
        freq: Per layer, per-neuron activation frequency from offline profiling.
        n_hot: Hot-segment slots.

    Returns:
        Per layer, sorted neuron ids to pin.
    """
    f = np.concatenate([np.asarray(v, dtype=np.float64) for v in freq])
    sizes = [len(v) for v in freq]
    top = np.argsort(-f, kind="stable")[:n_hot]
    layer_of = np.repeat(np.arange(len(freq)), sizes)
    base = np.r_[0, np.cumsum(sizes)[:-1]]
    out: dict[int, np.ndarray] = {}
    for layer in range(len(freq)):
        sel = top[layer_of[top] == layer]
        if sel.size:
            out[layer] = np.sort(sel - base[layer])
    return out


def coactivation_order(masks: np.ndarray, first: np.ndarray | None = None) -> np.ndarray:
    """A file order of one layer's neurons that puts neurons often active together next to each other.

    ``first`` (e.g. the layer's pinned hot set, read once at start) comes first as one block; the rest is a
    greedy nearest-neighbour chain on co-activation counts over the profiled tokens: start from the most
    frequent unplaced neuron, repeatedly append the unplaced neuron most often active together with the last
    one, and restart from the most frequent unplaced neuron when none co-activates. Each adjacent pair that is
    missed together in a token saves one read, so the chain greedily maximises reads saved.

    Args:
        masks: (T, d_ff) profiled active masks (the predictor's, since it decides what is read).
        first: Neuron ids to place first (sorted), or None.

    Returns:
        (d_ff,) permutation: position -> neuron id.

    Example:
        >>> m = np.array([[1, 0, 1, 0], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=bool)
        >>> coactivation_order(m).tolist()
        [0, 2, 1, 3]
    """
    m = np.asarray(masks, dtype=np.float32)
    n = m.shape[1]
    co = m.T @ m  # (d_ff, d_ff) co-activation counts
    freq = np.diag(co).copy()
    np.fill_diagonal(co, -1.0)
    placed = np.zeros(n, dtype=bool)
    out: list[int] = []
    if first is not None and len(first):
        head = np.unique(np.asarray(first, dtype=np.int64))
        out.extend(head.tolist())
        placed[head] = True
        co[:, head] = -1.0
    cur = -1
    while len(out) < n:
        restart = cur < 0 or co[cur].max() <= 0  # then: the most frequent unplaced neuron
        cur = int(np.argmax(np.where(placed, -1.0, freq))) if restart else int(np.argmax(co[cur]))
        out.append(cur)
        placed[cur] = True
        co[:, cur] = -1.0
    return np.asarray(out, dtype=np.int64)


def active_ids(sparse: SparseFFN, x: torch.Tensor) -> np.ndarray:
    """Neurons :class:`SparseFFN` computes for one token: its hot set plus the predicted cold ones (sorted ids)."""
    if sparse.predictor is None:
        raise ConfigError("active_ids needs a SparseFFN with a predictor")
    cold = sparse.predictor(x.reshape(1, -1))[0, sparse.cold_orig] > sparse.predictor.threshold
    ids = torch.cat([sparse.perm[: sparse.n_hot], sparse.cold_orig[cold]])
    return np.sort(ids.numpy())


def ffn_weights(sparse: SparseFFN) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(w_gate, w_up, w_down)`` in the original neuron order, recovered from a SparseFFN's bundle."""
    b = torch.empty_like(sparse.bundle)
    b[sparse.perm] = sparse.bundle
    return b[:, 0], b[:, 1], b[:, 2].T


class PolymorphicFFN(nn.Module):
    """In-memory reference of the offloaded FFN: dense for several tokens (prefill), SparseFFN for one (decode)."""

    def __init__(self, ffn: GatedFFN, sparse: SparseFFN) -> None:
        super().__init__()
        self.ffn, self.sparse = ffn, sparse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.reshape(-1, x.shape[-1]).shape[0] > 1:
            return self.ffn(x)
        return self.sparse(x)


class OffloadedFFN(nn.Module):
    """Drop-in FFN whose weights live in the bundle file; predictor (and hot set) from a :class:`SparseFFN`.

    Args:
        engine: The shared engine.
        layer: This FFN's layer index in the file.
        sparse: Supplies the predictor, threshold and always-computed hot set (its weights are not used; drop
            them with :func:`strip_weights` to free the memory).
    """

    def __init__(self, engine: OffloadEngine, layer: int, sparse: SparseFFN) -> None:
        super().__init__()
        self.engine, self.layer, self.sparse = engine, layer, sparse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        xf = x.reshape(-1, shape[-1])  # (T, d)
        if xf.shape[0] > 1 or self.engine.cfg.mode == "dense_stream":
            return self.engine.ffn_dense(self.layer, xf).reshape(shape)
        return self.engine.ffn_sparse(self.layer, xf, active_ids(self.sparse, xf)).reshape(shape)


def strip_weights(sparse: SparseFFN) -> SparseFFN:
    """Release a SparseFFN's weight bundle (keeps predictor, permutation and hot count)."""
    sparse.bundle = torch.zeros(0, dtype=sparse.bundle.dtype)
    return sparse


@dataclass
class DecodeResult:
    """Tokens and timings of :func:`decode`."""

    tokens: list[int]
    prefill_s: float
    decode_s: float
    logits: list[torch.Tensor] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        """Decode tokens per second (prefill excluded)."""
        return (len(self.tokens) / self.decode_s) if self.decode_s > 0 else 0.0


@torch.no_grad()
def decode(model: Any, prompt: list[int], n_tokens: int, keep_logits: bool = False) -> DecodeResult:
    """Greedy decode ``n_tokens`` after a prompt with a model exposing ``prefill`` / ``step`` (e.g. SambaLM)."""
    t0 = time.perf_counter()
    logits, caches = model.prefill(torch.tensor([prompt]))
    last = logits[:, -1]
    t1 = time.perf_counter()
    toks, kept = [], []
    for _ in range(n_tokens):
        tok = int(last.argmax(-1))
        toks.append(tok)
        last = model.step(torch.tensor([tok]), caches)
        if keep_logits:
            kept.append(last[0].clone())
    return DecodeResult(toks, t1 - t0, time.perf_counter() - t1, kept)


__all__ = [
    "DecodeResult",
    "NeuronCache",
    "OffloadConfig",
    "OffloadEngine",
    "OffloadStats",
    "OffloadedFFN",
    "PolymorphicFFN",
    "active_ids",
    "clusters",
    "coactivation_order",
    "decode",
    "ffn_weights",
    "pinned_from_frequency",
    "strip_weights",
]
