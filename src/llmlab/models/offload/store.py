"""Neuron-bundle weight file: each FFN neuron's gate row, up row and down column stored contiguously.

One bundle holds ``3 * d`` values, padded to a multiple of ``align`` bytes (default :data:`ALIGN`) so that
every bundle (and every run of contiguous bundles) can be read with ``O_DIRECT`` into aligned memory: one
positioned read serves the three matrices of a whole neuron cluster (PowerInfer-2 §4.3, "bundle" storage).

Layout: layer ``l``, file position ``p`` starts at byte ``(l * d_ff + p) * bundle_bytes``. A JSON side file
(``<path>.json``) records ``d``, ``d_ff``, ``n_layers``, dtype and ``bundle_bytes``. Positions are neuron ids
unless the file was written with an ``order`` (neurons placed by co-activation, so that neurons often active
together are adjacent and one read serves them); the order is then kept in ``<path>.order.npy`` and
:attr:`BundleFile.position` maps a neuron id to its position.
"""

from __future__ import annotations

import json
import mmap
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llmlab.core.errors import ConfigError, DataError

ALIGN = 4096  # O_DIRECT alignment of offsets, lengths and buffers (page size; multiple of any block size)


@dataclass(frozen=True)
class BundleLayout:
    """Geometry of a bundle file."""

    d: int
    d_ff: int
    n_layers: int
    dtype: str  # numpy dtype name, e.g. "float32"
    align: int = ALIGN  # bundle size multiple; >= the device's logical block size for O_DIRECT
    reordered: bool = False  # neurons stored in the order of <path>.order.npy, not by id

    @property
    def itemsize(self) -> int:
        """Bytes per value."""
        return int(np.dtype(self.dtype).itemsize)

    @property
    def bundle_elems(self) -> int:
        """Values per padded bundle (gate row, up row, down column, then padding)."""
        return self.bundle_bytes // self.itemsize

    @property
    def bundle_bytes(self) -> int:
        """Bytes per neuron bundle, rounded up to :attr:`align`."""
        raw = 3 * self.d * self.itemsize
        return -(-raw // self.align) * self.align

    @property
    def layer_bytes(self) -> int:
        """Bytes of one layer's FFN in the file."""
        return self.d_ff * self.bundle_bytes

    def offset(self, layer: int, neuron: int) -> int:
        """Byte offset of a neuron's bundle."""
        return (layer * self.d_ff + neuron) * self.bundle_bytes


def aligned_buffer(nbytes: int) -> mmap.mmap:
    """Anonymous page-aligned memory of ``nbytes`` (rounded up to :data:`ALIGN`), as O_DIRECT requires."""
    return mmap.mmap(-1, max(-(-nbytes // ALIGN) * ALIGN, ALIGN))


def write_bundles(path: str | Path, layers: list[tuple[Any, Any, Any]], dtype: str = "float32",
                  align: int = ALIGN, order: Any = None) -> BundleLayout:
    """Write FFN weights in the bundle layout and drop the written pages from the OS cache.

    Args:
        path: Output file.
        layers: Per layer ``(w_gate (d_ff, d), w_up (d_ff, d), w_down (d, d_ff))`` arrays or tensors (the
            ``nn.Linear`` weight shapes).
        dtype: Storage dtype.
        align: Bundle size multiple. 4096 (page) suits every device; 512 wastes less padding for small
            ``d`` and still works with ``O_DIRECT`` on devices with 512-byte logical blocks.
        order: Optional ``(n_layers, d_ff)`` permutations: file position ``p`` of layer ``l`` holds neuron
            ``order[l][p]`` (e.g. from :func:`~llmlab.models.offload.engine.coactivation_order`).

    Returns:
        The layout (also written to ``<path>.json``).

    Raises:
        ConfigError: When the layers' shapes differ or ``order`` is not one permutation per layer.
    """
    path = Path(path)
    arrs = [tuple(_np(w, dtype) for w in ws) for ws in layers]
    if not arrs:
        raise ConfigError("write_bundles needs at least one layer")
    d_ff, d = arrs[0][0].shape
    for g, u, dn in arrs:
        if g.shape != (d_ff, d) or u.shape != (d_ff, d) or dn.shape != (d, d_ff):
            raise ConfigError(f"all layers must have gate/up ({d_ff}, {d}) and down ({d}, {d_ff})")
    if align < 512 or align & (align - 1):
        raise ConfigError(f"align must be a power of two >= 512, got {align}")
    perm = None
    if order is not None:
        perm = np.asarray(order, dtype=np.int64)
        if perm.shape != (len(arrs), d_ff) or not all(np.array_equal(np.sort(r), np.arange(d_ff)) for r in perm):
            raise ConfigError(f"order must hold one permutation of range({d_ff}) per layer ({len(arrs)} layers)")
    lay = BundleLayout(d=int(d), d_ff=int(d_ff), n_layers=len(arrs), dtype=str(np.dtype(dtype)), align=align,
                       reordered=perm is not None)
    path.parent.mkdir(parents=True, exist_ok=True)
    order_file = Path(str(path) + ".order.npy")
    if perm is not None:
        np.save(order_file, perm)
    else:
        order_file.unlink(missing_ok=True)
    with open(path, "wb") as f:
        for i, (g, u, dn) in enumerate(arrs):
            block = np.zeros((d_ff, lay.bundle_elems), dtype=dtype)  # (d_ff, padded 3d)
            block[:, :d], block[:, d:2 * d], block[:, 2 * d:3 * d] = g, u, dn.T
            f.write((block if perm is None else block[perm[i]]).tobytes())
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    Path(str(path) + ".json").write_text(json.dumps(asdict(lay)))
    return lay


class BundleFile:
    """Positioned reads of bundle runs, bypassing the page cache (``O_DIRECT``) where the filesystem allows.

    Where ``O_DIRECT`` is refused (e.g. tmpfs) the file is opened buffered and :meth:`drop_cache` must be
    called before each measured run (``posix_fadvise(DONTNEED)``); :attr:`direct` tells which.
    """

    def __init__(self, path: str | Path, direct: bool = True) -> None:
        self.path = Path(path)
        meta = Path(str(self.path) + ".json")
        if not self.path.exists() or not meta.exists():
            raise DataError(f"no bundle file at {self.path} (write it with write_bundles first)")
        self.layout = BundleLayout(**json.loads(meta.read_text()))
        self.order: np.ndarray | None = None  # (n_layers, d_ff): position -> neuron id
        self.position: np.ndarray | None = None  # (n_layers, d_ff): neuron id -> position
        if self.layout.reordered:
            self.order = np.load(str(self.path) + ".order.npy")
            self.position = np.argsort(self.order, axis=1)
        self.direct = False
        if direct and hasattr(os, "O_DIRECT"):
            try:
                self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECT)
                self.direct = True
            except OSError:
                self.fd = os.open(self.path, os.O_RDONLY)
        else:
            self.fd = os.open(self.path, os.O_RDONLY)

    def drop_cache(self) -> None:
        """Evict this file's pages from the OS page cache (so buffered reads really hit the disk)."""
        os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)

    def read_into(self, layer: int, start: int, bufs: list[memoryview]) -> int:
        """Read contiguous bundles from ``(layer, start)`` (a file position) into ``bufs`` (whole bundles each).

        One ``preadv`` scatters the run into (possibly non-contiguous) aligned slots. Returns bytes read.

        Raises:
            DataError: On a short read (truncated file).
        """
        off = self.layout.offset(layer, start)
        want = sum(len(b) for b in bufs)
        got = 0
        while got < want:  # preadv may return short; continue from where it stopped
            n = os.preadv(self.fd, _skip(bufs, got), off + got)
            if n <= 0:
                raise DataError(f"short read from {self.path} at {off + got}")
            got += n
        return got

    def close(self) -> None:
        """Close the file descriptor."""
        os.close(self.fd)


def _np(w: Any, dtype: str) -> np.ndarray:
    """A numpy copy of an array or (CPU or not) torch tensor."""
    if hasattr(w, "detach"):
        w = w.detach().cpu().numpy()
    return np.asarray(w, dtype=dtype)


def _skip(bufs: list[memoryview], nbytes: int) -> list[memoryview]:
    """``bufs`` with the first ``nbytes`` consumed (for continuing a short ``preadv``)."""
    if nbytes == 0:
        return bufs
    out, left = [], nbytes
    for b in bufs:
        if left >= len(b):
            left -= len(b)
            continue
        out.append(b[left:])
        left = 0
    return out


__all__ = ["ALIGN", "BundleFile", "BundleLayout", "aligned_buffer", "write_bundles"]
