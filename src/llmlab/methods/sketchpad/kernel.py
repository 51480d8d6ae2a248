"""The Sketchpad notebook: the planner's code runs in :func:`llmlab.sandbox.run`, images come back as PNG files.

The official agent runs every action in one live Jupyter kernel. Here each action is one sandboxed run of
:data:`HARNESS`, a small notebook emulator that:

1. loads the request's images as ``image_1``, ``image_2``, ... (PIL, RGB) and puts ``tools.py``
   (``find_perpendicular_intersection``, ``find_parallel_intersection``) on the path, star-imported;
2. replays the earlier cells of the dialogue with output discarded, so variables and state carry over as
   in a kernel (cells that were killed, e.g. by the timeout, are not replayed);
3. runs the new cell with Jupyter's display rules: ``display(obj)`` of a PIL image or a matplotlib
   figure, ``plt.show()`` (every open figure) and a cell's last expression (an image is shown, another
   value is printed as its ``repr``) each become a PNG, in order with the printed text;
4. writes ``_sketchpad/outputs.json`` (the ordered text and image events) and the PNGs, which come back
   through ``sandbox.run(..., keep=...)``.

Deviations from a live kernel: the replay re-executes earlier cells, so side effects happen again and
unseeded randomness (``spring_layout`` without a seed) may differ between turns; this keeps every turn a
fresh, limited, network-less sandbox and lets many dialogues run at once without kernel servers.
The per-cell timeout covers the replay too (a dialogue of slow cells gets slower each turn).
Images larger than ``max_side`` pixels on a side are scaled down, and at most ``max_images`` per cell
are returned (the text says how many were left out).
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from llmlab import sandbox

OUT_DIR = "_sketchpad"

TOOLS_PY = '''"""Geometry helpers of the Sketchpad notebook (names as in the official tools)."""
import numpy as np


def find_perpendicular_intersection(A, B, C):
    """The point E on line BC with AE perpendicular to BC."""
    A, B, C = (np.asarray(p, dtype=float) for p in (A, B, C))
    d = C - B
    t = np.dot(A - B, d) / np.dot(d, d)
    return (B + t * d).tolist()


def find_parallel_intersection(A, B, C):
    """A point E with AE parallel to BC and as long as BC."""
    A, B, C = (np.asarray(p, dtype=float) for p in (A, B, C))
    return (A + (C - B)).tolist()
'''

HARNESS = r'''
import ast, io, json, os, sys, traceback, types

OUT = "_sketchpad"
CFG = json.load(open(os.path.join(OUT, "config.json")))
events = []
state = {"capture": False, "n_images": 0, "dropped": 0}


class _Tee(io.TextIOBase):
    def write(self, s):
        if state["capture"] and s:
            if events and events[-1]["type"] == "text":
                events[-1]["text"] += s
            else:
                events.append({"type": "text", "text": s})
        return len(s)


sys.stdout = sys.stderr = _Tee()
os.environ.setdefault("MPLBACKEND", "Agg")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as _plt
except Exception:
    _plt = None
try:
    from PIL import Image
except Exception:
    Image = None


def _emit_png(data):
    if not state["capture"]:
        return
    if state["n_images"] >= CFG["max_images"]:
        state["dropped"] += 1
        return
    name = "img_%d.png" % state["n_images"]
    with open(os.path.join(OUT, name), "wb") as fh:
        fh.write(data)
    events.append({"type": "image", "file": name, "bytes": len(data)})
    state["n_images"] += 1


def _pil_png(img):
    img = img.copy()
    side = CFG["max_side"]
    if max(img.size) > side:
        img.thumbnail((side, side))
    if img.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _fig_png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=CFG["dpi"], bbox_inches="tight")
    buf.seek(0)
    data = buf.getvalue()
    if Image is not None:
        im = Image.open(io.BytesIO(data))
        if max(im.size) > CFG["max_side"]:
            data = _pil_png(im)
    return data


def _is_fig(obj):
    return _plt is not None and isinstance(obj, matplotlib.figure.Figure)


def display(*objs, **_kw):
    for obj in objs:
        if Image is not None and isinstance(obj, Image.Image):
            _emit_png(_pil_png(obj))
        elif _is_fig(obj):
            _emit_png(_fig_png(obj))
        elif hasattr(obj, "image") and Image is not None and isinstance(getattr(obj, "image"), Image.Image):
            _emit_png(_pil_png(obj.image))
        else:
            print(repr(obj))


def _show(*_a, **_kw):
    if _plt is None:
        return
    for num in list(_plt.get_fignums()):
        fig = _plt.figure(num)
        if state["capture"]:
            _emit_png(_fig_png(fig))
    _plt.close("all")


if _plt is not None:
    _plt.show = _show
# `from IPython.display import display` must give this display, whether IPython is installed or not;
# IPython is imported only when a cell asks for it (it takes about a second).
import builtins
_orig_import = builtins.__import__


def _ipython_display():
    try:
        _orig_import("IPython.display")
    except ImportError:
        _ipy = types.ModuleType("IPython")
        _ipy_display = types.ModuleType("IPython.display")
        _ipy.display = _ipy_display
        _ipy.get_ipython = lambda: None
        sys.modules["IPython"] = _ipy
        sys.modules["IPython.display"] = _ipy_display
    sys.modules["IPython.display"].display = display


def _import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name.split(".")[0] == "IPython" and "IPython.display" not in sys.modules:
        _ipython_display()
    return _orig_import(name, globals, locals, fromlist, level)


builtins.__import__ = _import

G = {"__name__": "__main__", "display": display}
if Image is not None:
    G["Image"] = Image
sys.path.insert(0, os.getcwd())
exec("from tools import *", G)
for i, path in enumerate(CFG["images"], 1):
    G["image_%d" % i] = Image.open(path).convert("RGB")


def _run_cell(src, name, capture):
    state["capture"] = capture
    tree = ast.parse(src, filename=name)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, name, "exec"), G)
    if last is not None:
        value = eval(compile(last, name, "eval"), G)
        if value is not None and capture:
            display(value)


for k, src in enumerate(CFG["replay"]):
    try:
        _run_cell(src, "<cell %d>" % k, False)
    except BaseException:
        pass
    if _plt is not None:
        _plt.close("all")

code = 0
name = "<cell %d>" % len(CFG["replay"])
try:
    _run_cell(CFG["cell"], name, True)
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
except BaseException as exc:
    code = 1
    tb = traceback.extract_tb(exc.__traceback__)
    tb = [fr for fr in tb if fr.filename.startswith("<cell")] or tb[-1:]
    lines = CFG["cell"].splitlines()
    out = ["Traceback (most recent call last):"]
    for fr in tb:
        out.append('  File "%s", line %s, in %s' % (fr.filename, fr.lineno, fr.name))
        if fr.filename == name and fr.lineno and 0 < fr.lineno <= len(lines):
            out.append("    " + lines[fr.lineno - 1].strip())
    out.extend(traceback.format_exception_only(type(exc), exc))
    print("\n".join(s.rstrip("\n") for s in out))
finally:
    state["capture"] = True
    if state["dropped"]:
        print("[%d more image(s) not shown: at most %d per cell]" % (state["dropped"], CFG["max_images"]))
    with open(os.path.join(OUT, "outputs.json"), "w") as fh:
        json.dump({"exit_code": code, "events": events}, fh)
sys.stdout.flush()
os._exit(code)
'''


@dataclass
class Execution:
    """What running one cell gave.

    Attributes:
        exit_code: 0 on success; 1 for an exception in the cell; the sandbox's code when it was killed.
        events: The cell's output in order: ``{"type": "text", "text": ...}`` and
            ``{"type": "image", "png": bytes}``.
        timed_out: The cell ran past the timeout and was killed.
        killed_by: Why the sandbox stopped it (timeout, memory, output limit), else ``None``.
        wall_s: Seconds the sandboxed run took.
    """

    exit_code: int
    events: list[dict[str, Any]] = field(default_factory=list)
    timed_out: bool = False
    killed_by: str | None = None
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def text(self) -> str:
        """The printed output (images left out)."""
        return "".join(e["text"] for e in self.events if e["type"] == "text")

    @property
    def images(self) -> list[bytes]:
        return [e["png"] for e in self.events if e["type"] == "image"]


class SketchpadKernel:
    r"""One dialogue's notebook: the request's images plus every cell run so far.

    Args:
        images: The request's images (PNG/JPEG bytes), loaded as ``image_1`` ... in every cell.
        timeout: Wall-clock seconds per cell.
        memory: Address-space limit per process, bytes (``None``: unlimited).
        max_images: Images returned per cell.
        max_side: Longest side, in pixels, of a returned image (larger ones are scaled down).
        dpi: Resolution matplotlib figures are rendered at.

    Example:
        >>> from llmlab.core.concurrency import run_sync
        >>> k = SketchpadKernel()
        >>> run_sync(k.execute("x = 6 * 7")).ok, run_sync(k.execute("print(x)")).text
        (True, '42\\n')
    """

    def __init__(self, images: list[bytes] | None = None, *, timeout: float = 60.0, memory: int | None = 4 << 30,
                 max_images: int = 8, max_side: int = 1024, dpi: int = 100) -> None:
        self.images = list(images) if images is not None else []
        self.timeout = timeout
        self.memory = memory
        self.max_images = max_images
        self.max_side = max_side
        self.dpi = dpi
        self.cells: list[str] = []  # cells that ran to their end (with or without an exception)

    async def execute(self, code: str) -> Execution:
        """Run ``code`` as the next cell and return its output."""
        image_files = {f"inputs/image_{i}.png": data for i, data in enumerate(self.images, 1)}
        cfg = {"images": list(image_files), "replay": self.cells, "cell": code, "max_images": self.max_images,
               "max_side": self.max_side, "dpi": self.dpi}
        files: dict[str, str | bytes] = {"harness.py": HARNESS, "tools.py": TOOLS_PY,
                                         f"{OUT_DIR}/config.json": json.dumps(cfg), **image_files}
        keep = (f"{OUT_DIR}/outputs.json", *(f"{OUT_DIR}/img_{i}.png" for i in range(self.max_images)))
        limits = sandbox.Limits(memory=self.memory, output=16 << 20)
        result = await sandbox.run(files, [sys.executable, "harness.py"], timeout=self.timeout, limits=limits,
                                   env={**sandbox.python_env(), "MPLBACKEND": "Agg"}, keep=keep)
        raw = result.files.get(f"{OUT_DIR}/outputs.json")
        if result.killed_by is not None or raw is None:
            why = (f"timed out after {self.timeout:g}s" if result.timed_out
                   else f"stopped by the sandbox ({result.killed_by})" if result.killed_by
                   else "the notebook did not report its output")
            tail = (result.stdout + result.stderr).strip()[-2000:]
            text = f"Execution {why}." + (f"\n{tail}" if tail else "")
            exit_code = result.exit_code if result.exit_code not in (None, 0) else 1
            assert exit_code is not None
            return Execution(exit_code, [{"type": "text", "text": text}], result.timed_out, result.killed_by,
                             result.wall_s)
        self.cells.append(code)
        report = json.loads(raw)
        events: list[dict[str, Any]] = []
        for ev in report["events"]:
            if ev["type"] == "image":
                data = result.files.get(f"{OUT_DIR}/{ev['file']}", b"")
                if len(data) != ev["bytes"]:
                    note = f"[an image of {ev['bytes']} bytes was too large to return]\n"
                    events.append({"type": "text", "text": note})
                    continue
                events.append({"type": "image", "png": data})
            else:
                events.append({"type": "text", "text": ev["text"]})
        return Execution(int(report["exit_code"]), events, False, None, result.wall_s)


def decode_data_url(url: str) -> bytes | None:
    """The bytes of a ``data:image/...;base64,`` URL (``None`` for a remote URL)."""
    if not url.startswith("data:"):
        return None
    head, _, payload = url.partition(",")
    if not head.endswith(";base64"):
        return None
    try:
        return base64.b64decode(payload)
    except ValueError:
        return None
