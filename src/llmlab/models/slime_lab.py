"""SliME's "less is more" at toy scale: accuracy vs the number of selected local tokens.

Paper: Zhang et al., "Beyond LLaVA-HD" (arXiv 2406.08487), §3.3 (text-guided selection of local tokens) and
§3.4 (alternating training). A mechanism test, not a reproduction of SliME: nothing here is CLIP, Vicuna or
the SMR data. The registry's ``slime_less_is_more`` experiment (``llmlab lab experiment slime_less_is_more``).

The task (built here, rendered with numpy): a 64×64 RGB image is an 8×8 grid of 8-px cells; four cells hold
a 5×7-pixel digit (four distinct digits, four distinct colours: red, green, blue, yellow) on a noisy black
background. The question is ``what colour is D`` for one of the four digits; the answer is its colour.
The colours are visible at any resolution, but which blob is the D is not: the global view (box-downsampled
4× to 16×16, shown at 32×32) blurs the digits to 1-2 pixels, so the answer depends on fine local detail.

The model, all built from configs here (HF_HUB_OFFLINE=1, nothing downloaded):

* vision encoder: a 2-layer ViT (patch 4, width 32) on the global view (16×16: 16 patch tokens) and the
  four 32×32 crops (64 patch tokens each; one cell = 2×2 patches). Stand-in for CLIP: it is pretrained
  first to name each cell's digit and colour, then frozen (the official vision tower is frozen too).
* connector: :class:`llmlab.models.slime.SliMEConnector` with global grid 4 (16 global tokens: the
  mixture of the MLP and the 16-query resampler) and local grid 4 (each crop's 64 patch tokens compressed to
  16 queries, the official 576 → 144 ratio), spatial merge: the 64 local tokens are one per cell, in raster
  order; the selector's text is the question's token embeddings (the ``<image>`` placeholder removed).
* LM: a 2-layer ``LlamaForCausalLM`` (width 64, tied embeddings, word-level vocabulary of 24 tokens).
  Stand-in for the pretrained LLM: it is first trained on a text-only version of the task, where each
  cell is one input vector (the sum of its digit's and colour's word embeddings, or the ``.`` embedding when
  empty), so that, as in LLaVA, the adapters later learn to produce tokens in the LLM's word-embedding space.

Training follows :data:`llmlab.models.slime.SLIME_STAGES` with the LM frozen in stages 1a, 1b, 2 (as the
official ``tune_mm_mlp_adapter``) and trained in stage 3 (top-p 0.95 selection with noise). Learning rates
and step counts are ours (toy scale). Evaluation: held-out images, the answer is the arg-max over the four
colour words; the local tokens kept are chosen by the text-guided selector (``keep = k``, top scores, order
kept), by a random choice of k, or by top-p 0.95 (its mean count reported). Selection recall@k is whether the
target digit's cell token (its index in the spatial raster) is among the kept tokens.

Deviations: the stages' data is this one task (the official pretraining stages use LLaVA-558K captions,
the SFT stage ShareGPT4V + SMR); the "pretrained" ViT and LM are trained here on the toy task's own
distribution (their stand-in pretraining is part of the experiment's budget).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from llmlab.models._deps import require_torch

# 5x7 digit bitmaps (rows top to bottom, '#' = ink); our own glyphs
DIGITS_5X7 = (
    (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
)
COLOURS = {"red": (1.0, 0.15, 0.15), "green": (0.15, 0.9, 0.15), "blue": (0.25, 0.35, 1.0),
           "yellow": (1.0, 0.9, 0.1)}
COLOUR_NAMES = tuple(COLOURS)
VOCAB = ("<pad>", "<image>", ",", ".", "what", "colour", "is", "?", *[str(d) for d in range(10)], *COLOUR_NAMES,
         "<eos>", "<unk>")
TOK = {w: i for i, w in enumerate(VOCAB)}
CLAIM = ("less is more: the text-guided selector keeps accuracy with a fraction of the local tokens "
         "(at k = 8 of 64, within 0.05 of all 64 and above a random choice of 8), and local detail is needed "
         "(all local tokens beat the global view alone by > 0.3)")


def _torch() -> Any:
    return require_torch("the SliME experiment")


@dataclass
class ToyConfig:
    """Sizes and budget of the experiment (toy learning rates and step counts, ours)."""

    image: int = 64
    cell: int = 8
    n_digits: int = 4
    view: int = 32
    patch: int = 4
    global_down: int = 4
    d_vis: int = 32
    vit_layers: int = 2
    hidden: int = 64
    lm_layers: int = 2
    heads: int = 4
    local_grid: int = 4
    batch: int = 32
    n_train: int = 2000
    steps_vit: int = 150
    steps_lm: int = 600
    steps_1a: int = 60
    steps_1b: int = 60
    steps_2: int = 500
    steps_3: int = 300
    lr_vit: float = 3e-3
    lr_lm: float = 3e-3
    lr_adapter: float = 5e-3
    lr_full: float = 1e-3
    n_eval: int = 400
    keeps: tuple[int, ...] = (0, 1, 2, 4, 8, 16, 32, 64)

    @property
    def cells(self) -> int:
        return self.image // self.cell


def render(rng: Any, cfg: ToyConfig) -> tuple[Any, list[tuple[int, int, int]]]:
    """One image (3, 64, 64) float32 and its digits ``[(digit, colour index, cell index), ...]``."""
    import numpy as np

    n = cfg.cells
    img = np.abs(rng.normal(0.0, 0.06, size=(3, cfg.image, cfg.image))).astype(np.float32)
    cells = rng.choice(n * n, size=cfg.n_digits, replace=False)
    digits = rng.choice(10, size=cfg.n_digits, replace=False)
    colours = rng.permutation(len(COLOURS))[:cfg.n_digits]
    out = []
    for cell, d, c in zip(cells.tolist(), digits.tolist(), colours.tolist(), strict=True):
        r0 = (cell // n) * cfg.cell  # the glyph sits at a fixed place in its cell (rows 0-6, columns 1-5)
        c0 = (cell % n) * cfg.cell + 1
        ink = np.array([[ch == "#" for ch in row] for row in DIGITS_5X7[d]], dtype=np.float32)  # (7, 5)
        rgb = np.array(COLOURS[COLOUR_NAMES[c]], dtype=np.float32)[:, None, None] * (0.8 + 0.2 * rng.random())
        patch = img[:, r0:r0 + 7, c0:c0 + 5]
        img[:, r0:r0 + 7, c0:c0 + 5] = patch * (1 - ink) + rgb * ink
        out.append((d, c, cell))
    return np.clip(img, 0.0, 1.0), out


def views(imgs: Any, cfg: ToyConfig) -> tuple[Any, Any]:
    """(B, 3, 64, 64) images -> the global view (B, 3, 16, 16) (box-downsampled 4×) and crops (B, 4, 3, 32, 32)."""
    torch = _torch()
    x = torch.as_tensor(imgs)
    g = torch.nn.functional.avg_pool2d(x, cfg.global_down)
    v = cfg.view
    n = cfg.image // v
    crops = [x[:, :, r * v:(r + 1) * v, c * v:(c + 1) * v] for r in range(n) for c in range(n)]
    return g, torch.stack(crops, dim=1)


def dataset(rng: Any, cfg: ToyConfig, n: int) -> dict[str, Any]:
    """``n`` rendered samples: views, per-cell digit/colour maps, question digit, answer colour, target cell."""
    import numpy as np

    torch = _torch()
    imgs, cell_digit, cell_colour, q, a, tcell = [], [], [], [], [], []
    n_cells = cfg.cells * cfg.cells
    for _ in range(n):
        img, ds = render(rng, cfg)
        imgs.append(img)
        cd = np.full(n_cells, 10)
        cc = np.full(n_cells, len(COLOURS))
        for d, c, cell in ds:
            cd[cell], cc[cell] = d, c
        cell_digit.append(cd)
        cell_colour.append(cc)
        j = int(rng.integers(0, len(ds)))
        q.append(ds[j][0])
        a.append(ds[j][1])
        tcell.append(ds[j][2])
    g, crops = views(np.stack(imgs), cfg)
    return {"global": g, "crops": crops, "cell_digit": torch.as_tensor(np.stack(cell_digit)),
            "cell_colour": torch.as_tensor(np.stack(cell_colour)), "digit": torch.as_tensor(q),
            "colour": torch.as_tensor(a), "cell": torch.as_tensor(tcell)}


def take(data: dict[str, Any], idx: Any) -> dict[str, Any]:
    """Rows ``idx`` of every field of a :func:`dataset` (or of its cached features)."""
    return {k: v[idx] for k, v in data.items()}


def cell_labels(b: dict[str, Any], cfg: ToyConfig) -> tuple[Any, Any, Any]:
    """Labels for the ViT's stand-in pretraining.

    Returns the crops' (B, 4, 16) digit (10 = none) and colour (4 = none) of each of their 4×4 cells, and the
    global view's (B, 16, 4) multi-hot colours present in each global patch (2×2 cells).
    """
    torch = _torch()
    n, half = cfg.cells, cfg.cells // 2
    cd = b["cell_digit"].view(-1, n, n)
    cc = b["cell_colour"].view(-1, n, n)
    digits = [cd[:, r * half:(r + 1) * half, c * half:(c + 1) * half].flatten(1) for r in range(2) for c in range(2)]
    colours = [cc[:, r * half:(r + 1) * half, c * half:(c + 1) * half].flatten(1) for r in range(2) for c in range(2)]
    onehot = torch.nn.functional.one_hot(cc, len(COLOURS) + 1)[..., :len(COLOURS)].float()  # (B, 8, 8, 4)
    side = cfg.image // cfg.global_down // cfg.patch  # 4
    k = n // side
    glob = onehot.view(-1, side, k, side, k, len(COLOURS)).amax(dim=(2, 4)).flatten(1, 2)  # (B, 16, 4)
    return torch.stack(digits, 1), torch.stack(colours, 1), glob


def pool_cells(z: Any, cfg: ToyConfig) -> Any:
    """Crop patch features (B, 4, 64, d) -> per-cell means (B, 4, 16, d) (each cell is 2×2 patches)."""
    b, n, _, d = z.shape
    side, half = cfg.view // cfg.patch, cfg.cells // 2
    k = side // half
    return z.view(b, n, half, k, half, k, d).mean(dim=(3, 5)).flatten(2, 3)


def build_vit(cfg: ToyConfig) -> Any:
    """The tiny ViT: (N, 3, S, S) -> (N, (S/4)², d_vis), with one learned position table per input size."""
    torch = _torch()
    nn = torch.nn

    class TinyViT(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            n_local = (cfg.view // cfg.patch) ** 2
            n_global = (cfg.image // cfg.global_down // cfg.patch) ** 2
            self.embed = nn.Conv2d(3, cfg.d_vis, cfg.patch, cfg.patch)
            self.pos = nn.ParameterDict({str(n_local): nn.Parameter(torch.randn(n_local, cfg.d_vis) * 0.02),
                                         str(n_global): nn.Parameter(torch.randn(n_global, cfg.d_vis) * 0.02)})
            layer = nn.TransformerEncoderLayer(cfg.d_vis, cfg.heads, 2 * cfg.d_vis, dropout=0.0, batch_first=True,
                                               norm_first=True)
            self.blocks = nn.TransformerEncoder(layer, cfg.vit_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(cfg.d_vis)

        def forward(self, x: Any) -> Any:
            z = self.embed(x).flatten(2).transpose(1, 2)  # (N, L, d)
            return self.norm(self.blocks(z + self.pos[str(z.shape[1])]))

    return TinyViT()


def build_lm(cfg: ToyConfig) -> Any:
    """The tiny LM, built from a config (no download)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import LlamaConfig, LlamaForCausalLM

    conf = LlamaConfig(vocab_size=len(VOCAB), hidden_size=cfg.hidden, intermediate_size=2 * cfg.hidden,
                       num_hidden_layers=cfg.lm_layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
                       max_position_embeddings=256, tie_word_embeddings=True, pad_token_id=TOK["<pad>"],
                       bos_token_id=None, eos_token_id=TOK["<eos>"])
    return LlamaForCausalLM(conf)


def question_ids(digits: Any) -> Any:
    """(B,) digits -> (B, 5) token ids of ``<image> what colour is D`` (the answer is the next token)."""
    torch = _torch()
    head = torch.tensor([TOK["<image>"], TOK["what"], TOK["colour"], TOK["is"]])
    d = torch.tensor([TOK[str(int(x))] for x in digits])
    return torch.cat([head.expand(len(digits), -1), d[:, None]], dim=1)


def colour_logits(lm: Any, embeds: Any, mask: Any) -> Any:
    """Logits (B, 4) of the colour words at each sequence's last real position."""
    torch = _torch()
    out = lm(inputs_embeds=embeds, attention_mask=mask).logits  # (B, L, V)
    last = mask.sum(1) - 1
    ids = torch.tensor([TOK[c] for c in COLOUR_NAMES])
    return out[torch.arange(out.shape[0]), last][:, ids]


class Toy:
    """The experiment's model: the ViT (frozen after its pretraining), the SliME connector and the tiny LM."""

    def __init__(self, cfg: ToyConfig, seed: int) -> None:
        torch = _torch()
        from llmlab.models.slime import SliMEConfig, SliMEConnector

        torch.manual_seed(seed)
        self.cfg = cfg
        self.vit = build_vit(cfg)
        self.lm = build_lm(cfg)
        self.conn = SliMEConnector(SliMEConfig(mm_dim=cfg.d_vis, hidden=cfg.hidden,
                                               global_grid=cfg.image // cfg.global_down // cfg.patch,
                                               local_grid=cfg.local_grid, num_heads=cfg.heads, top_p=0.95))

    def embed(self, ids: Any) -> Any:
        return self.lm.get_input_embeddings()(ids)

    def features(self, b: dict[str, Any]) -> dict[str, Any]:
        """ViT features: ``global`` (B, 16, d) and ``crops`` (B, 4, 64, d)."""
        crops = b["crops"]
        n = crops.shape[0]
        return {"global": self.vit(b["global"]), "crops": self.vit(crops.flatten(0, 1)).view(n, crops.shape[1], -1,
                                                                                          self.cfg.d_vis)}

    def logits(self, b: dict[str, Any], f: dict[str, Any], keep: int | None = None, policy: str = "text",
               rng: Any = None) -> tuple[Any, list[Any]]:
        """Colour logits (B, 4) and the kept local indices per sample, from cached features ``f``.

        ``policy``: ``text`` (the selector), ``random`` (``keep`` random tokens, order kept) or ``all``.
        ``keep=0`` drops the local tokens (the global view and the separator only).
        """
        torch = _torch()
        from llmlab.models.slime import splice_image_tokens

        ids = question_ids(b["digit"].tolist())
        emb = self.embed(ids)  # (B, 6, H)
        text, tmask = emb[:, 1:], torch.ones(ids.shape[0], ids.shape[1] - 1, dtype=torch.bool)
        sep = self.embed(torch.tensor(TOK[","]))
        select = policy == "text" and keep != 0
        out = self.conn(f["global"], f["crops"], text, tmask, sep, crop_grid=(2, 2), keep=keep, select=select)
        branches = self.conn.cfg.branches
        tokens, kept = [], []
        n_glob = f["global"].shape[1]
        for i, t in enumerate(out.tokens):
            loc, sel = out.local_tokens[i], out.selections[i]
            if loc is None:  # the global branch only
                tokens.append(t)
                kept.append(torch.empty(0, dtype=torch.long))
                continue
            if keep == 0:
                idx = torch.empty(0, dtype=torch.long)
            elif sel is not None:
                idx = sel.indices
            elif policy == "random" and keep is not None:
                idx = torch.as_tensor(sorted(rng.choice(loc.shape[0], size=min(keep, loc.shape[0]), replace=False)))
            else:
                idx = torch.arange(loc.shape[0])
            kept.append(idx)
            tokens.append(loc[idx] if branches == "local" else torch.cat([t[:n_glob + 1], loc[idx]]))
        embeds, am, _ = splice_image_tokens(emb, [0] * len(tokens), tokens)
        return colour_logits(self.lm, embeds, am), kept


def _adamw(params: Any, lr: float) -> Any:
    torch = _torch()
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


def _cosine(opt: Any, steps: int) -> Any:
    torch = _torch()
    warm = max(steps // 20, 1)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0)))))


def _steps(n: int, what: str) -> Any:
    """A progress bar over ``n`` steps (stderr; tqdm comes with transformers)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a transformers dependency
        return range(n)

    return tqdm(range(n), desc=f"slime {what}", leave=False, mininterval=2.0, file=sys.stderr)


def _step(opt: Any, sch: Any, loss: Any) -> float:
    opt.zero_grad()
    loss.backward()
    opt.step()
    sch.step()
    return float(loss.detach())


def pretrain_vit(toy: Toy, data: dict[str, Any], rng: Any, steps: int) -> list[float]:
    """The CLIP stand-in: name each crop cell's digit (on digit cells) and colour, and each global patch's colours.

    The heads read the mean of a cell's 2×2 patch features; they are discarded afterwards.
    """
    torch = _torch()
    F = torch.nn.functional
    cfg = toy.cfg
    heads = torch.nn.ModuleList([torch.nn.Linear(cfg.d_vis, 10), torch.nn.Linear(cfg.d_vis, len(COLOURS) + 1),
                                 torch.nn.Linear(cfg.d_vis, len(COLOURS))])
    opt = _adamw([*toy.vit.parameters(), *heads.parameters()], cfg.lr_vit)
    sch = _cosine(opt, steps)
    hist = []
    for _ in _steps(steps, "vit (CLIP stand-in)"):
        b = take(data, torch.as_tensor(rng.integers(0, cfg.n_train, size=max(cfg.batch // 2, 1))))
        dl, cl, gl = cell_labels(b, cfg)
        f = toy.features(b)
        z = pool_cells(f["crops"], cfg)  # (B, 4, 16, d)
        has = dl < 10
        loss = F.cross_entropy(heads[0](z[has]), dl[has]) + F.cross_entropy(heads[1](z).flatten(0, 2), cl.flatten()) \
            + F.binary_cross_entropy_with_logits(heads[2](f["global"]), gl)
        hist.append(_step(opt, sch, loss))
    toy.vit.requires_grad_(False)
    toy.vit.eval()
    return hist


def pretrain_lm(toy: Toy, data: dict[str, Any], rng: Any, steps: int) -> list[float]:
    """The LLM stand-in: the text-only task (each cell = its digit + colour word embeddings, '.' if empty)."""
    torch = _torch()
    from llmlab.models.slime import splice_image_tokens

    cfg = toy.cfg
    opt = _adamw(toy.lm.parameters(), cfg.lr_lm)
    sch = _cosine(opt, steps)
    hist = []
    dig_ids = torch.tensor([TOK[str(d)] for d in range(10)] + [TOK["."]])
    col_ids = torch.tensor([TOK[c] for c in COLOUR_NAMES])
    for s in _steps(steps, "lm (text-only stand-in)"):
        b = take(data, torch.as_tensor(rng.integers(0, cfg.n_train, size=cfg.batch)))
        cd, cc = b["cell_digit"], b["cell_colour"]
        has = cc < len(COLOURS)
        e = toy.embed(dig_ids[cd]) + toy.embed(col_ids[cc.clamp_max(len(COLOURS) - 1)]) * has[..., None]
        # a curriculum over context length: all digit cells and a random share of the empty ones (in order),
        # the share's ceiling rising from 0 to 1 over the first half of the steps
        frac = float(rng.random()) * min(1.0, 2.0 * s / steps)
        keep = [torch.nonzero(has[i] | torch.as_tensor(rng.random(has.shape[1]) < frac)).flatten()
                for i in range(len(has))]
        ids = question_ids(b["digit"].tolist())
        embeds, am, _ = splice_image_tokens(toy.embed(ids), [0] * len(ids), [e[i, k] for i, k in enumerate(keep)])
        hist.append(_step(opt, sch, torch.nn.functional.cross_entropy(colour_logits(toy.lm, embeds, am), b["colour"])))
    return hist


def train_stages(toy: Toy, data: dict[str, Any], feats: dict[str, Any], rng: Any, cfg: ToyConfig,
                 stages: Any = None) -> dict[str, list[float]]:
    """SliME's alternating recipe (:data:`SLIME_STAGES`) on the task, with toy learning rates and steps."""
    torch = _torch()
    from llmlab.models.slime import SLIME_STAGES, apply_stage

    steps = {"1a_global_mlp": cfg.steps_1a, "1b_global_attn": cfg.steps_1b, "2_local": cfg.steps_2,
             "3_full": cfg.steps_3}
    hist: dict[str, list[float]] = {}
    for stage in stages if stages is not None else SLIME_STAGES:
        n = steps[stage.name]
        params = apply_stage(toy.conn, stage, toy.lm)
        opt = _adamw(params, cfg.lr_full if "llm" in stage.trainable else cfg.lr_adapter)
        sch = _cosine(opt, n)
        toy.conn.train()
        toy.lm.train()
        h = []
        for _ in _steps(n, f"stage {stage.name}"):
            idx = torch.as_tensor(rng.integers(0, cfg.n_train, size=cfg.batch))
            b, f = take(data, idx), take(feats, idx)
            logits, _ = toy.logits(b, f)
            h.append(_step(opt, sch, torch.nn.functional.cross_entropy(logits, b["colour"])))
        hist[stage.name] = h
    toy.conn.eval()
    toy.lm.eval()
    return hist


def evaluate(toy: Toy, cfg: ToyConfig, seed: int) -> dict[str, Any]:
    """Accuracy and selection recall vs k for the text-guided and the random choice, and top-p 0.95."""
    import numpy as np

    torch = _torch()
    b = dataset(np.random.default_rng(10_000 + seed), cfg, cfg.n_eval)
    res: dict[str, Any] = {"text": {}, "random": {}, "recall_text": {}, "recall_random": {}}

    def score(logits: Any, kept: list[Any]) -> tuple[float, float]:
        acc = float((logits.argmax(-1) == b["colour"]).float().mean())
        rec = float(np.mean([int(t) in set(ix.tolist()) for t, ix in zip(b["cell"], kept, strict=True)]))
        return acc, rec

    with torch.no_grad():
        f = toy.features(b)
        for k in cfg.keeps:
            for policy in ("text", "random"):
                acc, rec = score(*toy.logits(b, f, keep=k, policy=policy, rng=np.random.default_rng(seed + k)))
                res[policy][str(k)] = acc
                res[f"recall_{policy}"][str(k)] = rec
        toy.conn.selector.top_p = 0.95
        logits, kept = toy.logits(b, f, keep=None, policy="text")
        acc, rec = score(logits, kept)
        res["top_p_0.95"] = {"accuracy": acc, "recall": rec, "mean_kept": float(np.mean([len(ix) for ix in kept]))}
        branches = toy.conn.cfg.branches
        toy.conn.cfg.branches = "local"
        res["local_only_all"] = score(*toy.logits(b, f, keep=None, policy="all"))[0]
        toy.conn.cfg.branches = branches
    return res


def run(quick: bool = False, seed: int = 0, cfg: ToyConfig | None = None) -> dict[str, Any]:
    """Train (ViT and LM stand-ins, then the four SliME stages) and evaluate; returns the full record."""
    import numpy as np

    torch = _torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is ~30x faster than two on a loaded 2-core machine
    try:
        # ``quick`` changes nothing: the default budget already is ~1.5 CPU minutes (one thread); fewer steps
        # leave the stand-in LM on its plateau (measured), which would make the run meaningless
        cfg = cfg if cfg is not None else ToyConfig()
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        data = dataset(rng, cfg, cfg.n_train)
        toy = Toy(cfg, seed)
        hist = {"vit": pretrain_vit(toy, data, rng, cfg.steps_vit),
                "lm_text": pretrain_lm(toy, data, rng, cfg.steps_lm)}
        with torch.no_grad():
            feats = toy.features(data)  # the frozen encoder's features, computed once
        hist.update(train_stages(toy, data, feats, rng, cfg))
        ev = evaluate(toy, cfg, seed)
        gate = toy.conn.mixture.last_gates
        return {"config": asdict(cfg), "history": hist, "eval": ev, "train_seconds": time.perf_counter() - t0,
                "mean_gate_mlp": float(gate[..., 0].mean()) if gate is not None else None}
    finally:
        torch.set_num_threads(threads)


def experiment_slime_less_is_more(quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """The registry's ``slime_less_is_more`` experiment (``llmlab lab experiment slime_less_is_more``).

    ``claim_direction_holds``: accuracy with the selector's 8 of 64 local tokens is within 0.05 of all 64
    and above 8 random ones, and all local tokens beat the global view alone (k = 0) by more than 0.3.
    """
    res = run(quick=quick, seed=seed)
    ev = res["eval"]
    text, rnd = ev["text"], ev["random"]
    measured = {f"acc_text_k{k}": v for k, v in text.items()}
    measured |= {f"acc_random_k{k}": v for k, v in rnd.items()}
    tp = ev["top_p_0.95"]
    measured |= {"acc_top_p_0.95": tp["accuracy"], "mean_kept_top_p_0.95": tp["mean_kept"],
                 "recall_text_k1": ev["recall_text"]["1"], "recall_text_k8": ev["recall_text"]["8"],
                 "recall_random_k8": ev["recall_random"]["8"], "acc_local_only_all": ev["local_only_all"]}
    holds = bool(text["8"] >= text["64"] - 0.05 and text["8"] > rnd["8"] and text["64"] > text["0"] + 0.3)
    return {"experiment": "slime_less_is_more", "claim": CLAIM, "runs": {"slime": {"keeps": list(text)}},
            "measured": measured, "claim_direction_holds": holds, "result": res}


def plot_less_is_more(res: dict[str, Any], path: Any) -> None:
    """Accuracy and selection recall vs the number of kept local tokens (the doc's figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = res["result"]["eval"] if "result" in res else res["eval"]
    ks = [int(k) for k in ev["text"]]
    xs = [max(k, 0.5) for k in ks]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot(xs, list(ev["text"].values()), "o-", label="text-guided selector (SliME)")
    axes[0].plot(xs, list(ev["random"].values()), "s--", label="random k")
    tp = ev["top_p_0.95"]
    axes[0].plot([tp["mean_kept"]], [tp["accuracy"]], "*", ms=12, label="top-p 0.95")
    axes[0].axhline(0.25, color="grey", lw=0.8, ls=":", label="chance")
    axes[0].set_ylabel("accuracy")
    axes[1].plot(xs, list(ev["recall_text"].values()), "o-", label="text-guided selector")
    axes[1].plot(xs, list(ev["recall_random"].values()), "s--", label="random k")
    axes[1].set_ylabel("target cell's token kept")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, ["0"] + [str(k) for k in ks[1:]])
        ax.set_xlabel("local tokens kept (of 64)")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8)
    fig.suptitle("SliME toy: accuracy vs selected local tokens")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["CLAIM", "ToyConfig", "dataset", "experiment_slime_less_is_more", "plot_less_is_more", "render", "run",
           "views"]
