"""Helpers shared by the widgets: tensor summaries, number formatting, colours, throttling.

Everything here is pure Python + numpy and reads tensors only through the engine's public
API (`detach().numpy()`), so the widget models can be tested without a browser.
"""
import math
import time
from pathlib import Path

import numpy as np

STATIC = Path(__file__).parent / "static"

# tensors up to this many elements are shown value by value
SMALL = 16
HIST_BINS = 20
HEAT = 16


def to_numpy(t):
    """A host copy of a tensor (engine Tensor, numpy array, or Python number)."""
    if t is None:
        return None
    if isinstance(t, np.ndarray):
        return t
    if hasattr(t, "detach"):
        return t.detach().numpy()
    return np.asarray(t)


def num(x):
    """A JSON-safe float: None for nan/inf (JSON has no NaN), else float."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def fmt(x, digits=4):
    """Short deterministic text for a number ('nan', 'inf', '1.234e-05', '0.5')."""
    if x is None:
        return "-"
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.{digits}g}"
    return f"{x:.{max(digits - 1, 1)}e}"


def fmt_shape(shape):
    if shape is None:
        return "?"
    return "(" + ", ".join(str(int(s)) for s in shape) + ")" if len(shape) != 1 else f"({int(shape[0])},)"


def summary(t, detail=False):
    """Summary statistics of a tensor as a JSON-safe dict.

    keys: shape, numel, mean, std, min, max, rms, norm, nan, inf (counts), finite (bool),
    values (flat list, only for <= SMALL elements); with detail=True also `hist`
    {counts, lo, hi} over the finite values and `heat` (a <= 16x16 block-mean matrix of
    the tensor viewed as 2-D)."""
    a = to_numpy(t)
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    out = {"shape": list(a.shape), "numel": int(a.size)}
    if a.size == 0:
        out.update(finite=True, nan=0, inf=0)
        return out
    fin = np.isfinite(a)
    nfin = int(fin.sum())
    out["nan"] = int(np.isnan(a).sum())
    out["inf"] = int(a.size - nfin - out["nan"])
    out["finite"] = nfin == a.size
    f = a[fin] if nfin != a.size else a.ravel()
    if f.size:
        sq = float(np.dot(f, f)) if f.ndim == 1 else float((f * f).sum())
        out.update(mean=num(f.mean()), std=num(f.std()), min=num(f.min()), max=num(f.max()),
                   rms=num(math.sqrt(sq / f.size)), norm=num(math.sqrt(sq)))
    if a.size <= SMALL:
        out["values"] = [num(v) for v in a.ravel()]
    if detail:
        out.update(detail_of(a, fin, f))
    return out


def detail_of(a, fin=None, f=None):
    """Histogram and heatmap data of an array (see summary)."""
    a = np.asarray(a, dtype=np.float64)
    if fin is None:
        fin = np.isfinite(a)
        f = a[fin]
    out = {}
    if f.size:
        lo, hi = float(f.min()), float(f.max())
        if hi <= lo:
            hi = lo + 1.0
        counts, _ = np.histogram(f, bins=HIST_BINS, range=(lo, hi))
        out["hist"] = {"counts": [int(c) for c in counts], "lo": lo, "hi": hi}
    m = np.where(fin, a, 0.0)
    if m.ndim == 0:
        m = m.reshape(1, 1)
    elif m.ndim == 1:
        m = m.reshape(1, -1)
    else:
        m = m.reshape(-1, m.shape[-1])
    r, c = m.shape
    br, bc = max(1, math.ceil(r / HEAT)), max(1, math.ceil(c / HEAT))
    ri, ci = np.arange(0, r, br), np.arange(0, c, bc)
    # block sums with reduceat, divided by the block sizes (the last blocks may be smaller)
    sums = np.add.reduceat(np.add.reduceat(m, ri, axis=0), ci, axis=1)
    cnt = np.outer(np.diff(np.append(ri, r)), np.diff(np.append(ci, c)))
    out["heat"] = [[num(v) for v in row] for row in (sums / cnt).tolist()]
    return out


def describe(s):
    """One line of text for a summary dict (deterministic)."""
    if not s:
        return "-"
    if "values" in s and s["numel"] <= 6:
        vals = ", ".join(fmt(v) if v is not None else "nan" for v in s["values"])
        return f"[{vals}]"
    parts = [f"mean={fmt(s.get('mean'))}", f"std={fmt(s.get('std'))}", f"min={fmt(s.get('min'))}",
             f"max={fmt(s.get('max'))}"]
    if not s.get("finite", True):
        parts.append(f"nan={s['nan']} inf={s['inf']}")
    return " ".join(parts)


# ---- colours -------------------------------------------------------------------------
# a perceptual blue -> green -> yellow ramp (our own stops, viridis-like)
_RAMP = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
RED = "#e11d48"
GREY = "#9ca3af"


def ramp(t):
    """Colour for t in [0, 1] as '#rrggbb'."""
    t = min(max(float(t), 0.0), 1.0) * (len(_RAMP) - 1)
    i = min(int(t), len(_RAMP) - 2)
    u = t - i
    c = [round(a + (b - a) * u) for a, b in zip(_RAMP[i], _RAMP[i + 1])]
    return "#%02x%02x%02x" % tuple(c)


def log_scale(values):
    """(lo, hi) of log10 of the positive finite values, or None."""
    logs = [math.log10(v) for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not logs:
        return None
    return min(logs), max(logs)


def log_colour(v, rng):
    if v is None or rng is None:
        return GREY
    if not math.isfinite(v):
        return RED
    if v <= 0:
        return ramp(0.0)
    lo, hi = rng
    return ramp(0.5 if hi <= lo else (math.log10(v) - lo) / (hi - lo))


class Throttle:
    """Call `fn` at most once per `interval` seconds; `flush()` forces a pending call.

    `__call__()` returns True when it ran fn.  `calls` counts the runs (tests read it)."""

    def __init__(self, fn, interval=0.25, clock=time.monotonic):
        self.fn = fn
        self.interval = interval
        self.clock = clock
        self.last = -math.inf
        self.pending = False
        self.calls = 0

    def __call__(self):
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self.pending = False
            self.calls += 1
            self.fn()
            return True
        self.pending = True
        return False

    def flush(self):
        if self.pending:
            self.pending = False
            self.last = self.clock()
            self.calls += 1
            self.fn()


# ---- flush live widgets when a notebook cell finishes ------------------------------------
_LIVE = None


def flush_after_cell(widget):
    """Make IPython call widget.flush() after each cell (so the last throttled points show).

    One post_run_cell callback serves every live widget; widgets are held weakly."""
    global _LIVE
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None:
        return
    if _LIVE is None:
        import weakref
        _LIVE = weakref.WeakSet()

        def flush_all(*args, **kwargs):
            for w in list(_LIVE):
                try:
                    w.flush()
                except Exception:  # noqa: BLE001 - a closed widget must not break the shell
                    _LIVE.discard(w)
        ip.events.register("post_run_cell", flush_all)
    _LIVE.add(widget)
