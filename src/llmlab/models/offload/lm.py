"""Putting a whole LM (e.g. :class:`~llmlab.models.samba.SambaLM` with dReLU FFNs) on the offloading engine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from llmlab.core.errors import ConfigError, DataError
from llmlab.models.offload.engine import (
    OffloadConfig,
    OffloadedFFN,
    OffloadEngine,
    PolymorphicFFN,
    active_ids,
    coactivation_order,
    ffn_weights,
    pinned_from_frequency,
    strip_weights,
)
from llmlab.models.offload.store import BundleLayout, write_bundles
from llmlab.models.samba import SambaLM
from llmlab.models.sparse_ffn import GatedFFN, SparseFFN, predictor_metrics, record_activations, train_predictor


def _ffn_owners(model: nn.Module) -> list[nn.Module]:
    """Modules holding a ``.ffn`` GatedFFN (the blocks), in order."""
    owners = [m for m in model.modules() if isinstance(getattr(m, "ffn", None), GatedFFN)]
    if not owners:
        raise ConfigError("the model has no GatedFFN layers (train it with --ffn drelu)")
    return owners


@torch.no_grad()
def profile_masks(sparse_layers: list[SparseFFN], hiddens: list[torch.Tensor]) -> list[np.ndarray]:
    """Offline profiling: which neurons each layer computes (hot set or predicted) for each recorded hidden state.

    Args:
        sparse_layers: Per layer, the SparseFFN (predictor + hot set).
        hiddens: Per layer, pre-FFN hidden states (T, d) of a profiling corpus.

    Returns:
        Per layer, a (T, d_ff) boolean mask.
    """
    out = []
    for sp, h in zip(sparse_layers, hiddens, strict=True):
        m = np.zeros((len(h), sp.perm.numel()), dtype=bool)
        for t, row in enumerate(h):
            m[t, active_ids(sp, row[None])] = True
        out.append(m)
    return out


def profile_frequency(sparse_layers: list[SparseFFN], hiddens: list[torch.Tensor]) -> list[np.ndarray]:
    """Per layer, (d_ff,) frequencies in [0, 1] with which each neuron is computed (see :func:`profile_masks`)."""
    return [m.mean(0) if len(m) else np.zeros(m.shape[1]) for m in profile_masks(sparse_layers, hiddens)]


def offload_lm(model: nn.Module, sparse_layers: list[SparseFFN], path: str | Path, cfg: OffloadConfig,
               frequency: list[np.ndarray] | None = None, align: int = 4096,
               masks: list[np.ndarray] | None = None) -> OffloadEngine:
    """Move ``model``'s FFN weights to a bundle file and run them through an :class:`OffloadEngine` (in place).

    Each block's ``ffn`` becomes an :class:`OffloadedFFN` and the in-memory FFN weights are dropped; attention,
    embeddings and predictors stay resident. Deep-copy the model first to keep an in-memory reference.

    Args:
        model: An LM with ``.ffn`` GatedFFN blocks and ``prefill`` / ``step``.
        sparse_layers: Per layer, its SparseFFN (predictor, hot set) as used in memory.
        path: Where to write the bundle file.
        cfg: Engine settings (budget, pipeline, mode).
        frequency: Offline-profiled per-neuron frequencies for the pinned hot segment (None: nothing pinned).
        align: Bundle alignment in the file (see :func:`~llmlab.models.offload.store.write_bundles`).
        masks: Offline-profiled active masks per layer (:func:`profile_masks`); when given, the file stores
            each layer's neurons in :func:`coactivation_order` (pinned ones first) instead of by id.

    Returns:
        The engine (for stats, ``drop_page_cache`` and ``close``).
    """
    owners = _ffn_owners(model)
    if len(owners) != len(sparse_layers):
        raise ConfigError(f"{len(owners)} FFN layers but {len(sparse_layers)} SparseFFNs")
    act = str(getattr(owners[0], "ffn").act)  # noqa: B009 - typed as Module
    weights = [ffn_weights(sp) for sp in sparse_layers]
    dtype = str(sparse_layers[0].bundle.dtype).removeprefix("torch.")
    d_ff, d = weights[0][0].shape
    lay = BundleLayout(d=int(d), d_ff=int(d_ff), n_layers=len(weights), dtype=dtype, align=align)
    pinned = None
    if frequency is not None and cfg.mode == "sparse":
        pinned = pinned_from_frequency(frequency, int(cfg.hot_fraction * (cfg.budget_bytes // lay.bundle_bytes)))
    order = None
    if masks is not None:
        order = np.stack([coactivation_order(m, (pinned or {}).get(i)) for i, m in enumerate(masks)])
    write_bundles(path, weights, dtype=dtype, align=align, order=order)
    engine = OffloadEngine(path, act, cfg, pinned)
    for i, (blk, sp) in enumerate(zip(owners, sparse_layers, strict=True)):
        blk.ffn = OffloadedFFN(engine, i, strip_weights(sp))
    return engine


def polymorphic_lm(model: nn.Module, sparse_layers: list[SparseFFN]) -> nn.Module:
    """The in-memory reference (in place): dense FFN for prefill, ``sparse_layers`` for one-token decode."""
    owners = _ffn_owners(model)
    for blk, sp in zip(owners, sparse_layers, strict=True):
        blk.ffn = PolymorphicFFN(blk.ffn, sp)  # type: ignore[arg-type]
    return model


def ffn_bytes(model: Any) -> int:
    """Bytes of all GatedFFN weights in ``model``."""
    return sum(p.numel() * p.element_size() for m in model.modules() if isinstance(m, GatedFFN)
               for p in m.parameters())


@dataclass
class LabSparse:
    """A trained ``lab train`` dReLU model with its PowerInfer predictors, hot-set profile and measurements.

    Attributes:
        model: The trained LM (dense FFNs, in memory, eval mode).
        config: Its :class:`~llmlab.training.tiny_lm.TrainConfig`.
        act: FFN activation (``drelu`` or ``relu_gate``).
        layers: Per layer, a :class:`SparseFFN` with the trained predictor (no hot set: the engine's pinned
            segment plays that role).
        frequency: Per layer, (d_ff,) predicted-active frequency on profiling tokens (for the pinned segment).
        masks: Per layer, the (T, d_ff) predicted-active masks those frequencies come from (for reordering).
        predictor: Per layer, recall / precision / densities of the predictor on validation windows.
        exact_zero: Per layer, fraction of exactly-zero FFN activations on the validation windows.
        val: Validation bytes of the model's corpus (prompts come from here).
    """

    model: SambaLM
    config: Any
    act: str
    layers: list[SparseFFN]
    frequency: list[np.ndarray]
    masks: list[np.ndarray]
    predictor: list[dict[str, float]]
    exact_zero: list[float]
    val: torch.Tensor


def sparse_lab_model(model_dir: str | Path, rank: int = 64, pred_steps: int = 300, prof_windows: int = 16,
                     val_windows: int = 4, profile_tokens: int = 1024) -> LabSparse:
    """Load a ``lab train --ffn drelu`` model and fit one activation predictor per layer on its own activations.

    Predictors train on ``prof_windows`` random training-split windows and are scored on ``val_windows``
    validation windows; neuron frequencies for the hot segment are profiled on ``profile_tokens`` of the
    training windows (offline profiling, never the decoded text).

    Raises:
        DataError: When ``model_dir`` lacks ``result.json`` + ``model.pt``.
        ConfigError: When the model's FFN is not ReLU-family and dense.
    """
    from llmlab.training.tiny_lm import TrainConfig, get_batch, load_corpus

    model_dir = Path(model_dir)
    rec_path, weights = model_dir / "result.json", model_dir / "model.pt"
    if not rec_path.exists() or not weights.exists():
        raise DataError(f"{model_dir} has no result.json + model.pt (make one with `llmlab lab train --ffn drelu`)")
    tcfg = TrainConfig.from_dict(json.loads(rec_path.read_text())["config"])
    if tcfg.ffn not in ("drelu", "relu_gate") or tcfg.moe_experts:
        raise ConfigError(f"offloading needs a dense ReLU-family FFN; {model_dir} has ffn={tcfg.ffn} "
                          f"moe_experts={tcfg.moe_experts} (train with --ffn drelu)")
    model = SambaLM(tcfg.model_config())
    model.load_state_dict(torch.load(weights, map_location="cpu"))
    model.eval()
    train_data, val_data = load_corpus(tcfg.corpus, 2_000_000)
    gen = torch.Generator().manual_seed(tcfg.seed + 99)
    prof_x, _ = get_batch(train_data, prof_windows, tcfg.seq_len, gen)
    val_x, _ = get_batch(val_data, val_windows, tcfg.seq_len, gen)
    recs = record_activations(model, [prof_x[i:i + 16] for i in range(0, prof_windows, 16)])
    val_recs = record_activations(model, [val_x])
    layers, metrics, zeros = [], [], []
    for (h, act), (vh, vact), blk in zip(recs, val_recs, model.blocks, strict=True):
        pred = train_predictor(h, act, rank=rank, steps=pred_steps, seed=tcfg.seed)
        metrics.append(predictor_metrics(pred.predict(vh), vact))
        zeros.append(1.0 - vact.float().mean().item())
        layers.append(SparseFFN(blk.ffn, pred))  # type: ignore[arg-type]
    sub = [h[torch.randperm(len(h), generator=gen)[:profile_tokens]] for h, _ in recs]
    masks = profile_masks(layers, sub)
    freq = [m.mean(0) for m in masks]
    return LabSparse(model, tcfg, "drelu" if tcfg.ffn == "drelu" else "relu_gate", layers, freq, masks, metrics,
                     zeros, val_data)


__all__ = ["LabSparse", "ffn_bytes", "offload_lm", "polymorphic_lm", "profile_frequency", "profile_masks",
           "sparse_lab_model"]
