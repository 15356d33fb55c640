"""TrainingMonitor: live curves of any logged scalars, a progress bar with ETA, throttled.

    mon = TrainingMonitor(total=1000)
    mon                                   # display it
    for step in range(1000):
        ...
        mon.log(step, loss=loss, lr=sched.get_last_lr()[0])   # tensors or floats
    mon.flush()

`log()` only appends to lists (tensors are kept as they are; at redraw time the new ones are
stacked on the device and read back in one transfer); the figure and the progress bar are redrawn at most `1 / interval` times a
second, in one `fig.batch_update()`, so a loop of 100 steps/s slows down by well under 3%
(see benchmarks/widgets_bench.py).  Losses (names containing 'loss') share the top plot,
other scalars go to the bottom one.  No clear_output: the same widgets are updated.
"""
import csv
import io
import json
import math
import time

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._util import Throttle, flush_after_cell, fmt

__all__ = ["TrainingMonitor", "ema"]

MAX_POINTS = 2000
COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d"]


def ema(values, alpha):
    """Debiased exponential moving average (TensorBoard's smoothing); alpha in [0, 1)."""
    if alpha <= 0:
        return list(values)
    out, s, w = [], 0.0, 0.0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(v)
            continue
        s = alpha * s + (1 - alpha) * v
        w = alpha * w + (1 - alpha)
        out.append(s / w)
    return out


def _to_float(v):
    if isinstance(v, (int, float)):
        return float(v)
    if hasattr(v, "item"):
        return float(v.item())
    return float(v)


def _is_scalar_tensor(v):
    try:
        from engine import Tensor
    except ImportError:
        return False
    return isinstance(v, Tensor) and v.numel() == 1


def _hms(s):
    if s is None or not math.isfinite(s):
        return "?"
    s = int(round(s))
    h, r = divmod(s, 3600)
    m, sec = divmod(r, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class TrainingMonitor(W.VBox):
    """TrainingMonitor(total=None, title='training', smoothing=0.6, log_y=False, interval=0.25,
                       height=360, clock=time.monotonic)

    .log(step, **scalars) / mon(step, **scalars): record scalars (floats or 1-element tensors,
        read back together at the next redraw)
    .flush(): redraw now if anything is pending; .history: {name: [(step, value)]}
    .to_csv(path=None), .to_json(path=None): export (the text is returned when path is None)
    Usable as a context manager (`with TrainingMonitor(total=n) as mon:`): displays itself
    in IPython if not yet displayed, flushes on exit.  `redraws` counts redraws."""

    def __init__(self, total=None, title="training", smoothing=0.6, log_y=False, interval=0.25, height=360,
                 clock=time.monotonic):
        self.total = total
        self.title = title
        self.clock = clock
        self._raw = {}          # name -> [steps], [values (float or tensor)]
        self._floats = {}       # name -> converted prefix length
        self._names = []
        self._steps_seen = 0
        self._last_step = None
        self._t0 = None
        self._step0 = None
        self._displayed = False
        self._drawn_names = []
        self._rows = set()
        self._ema_cache = {}
        self.redraws = 0
        self._throttle = Throttle(self._redraw, interval, clock)
        self.smooth = W.FloatSlider(value=smoothing, min=0.0, max=0.99, step=0.01, description="smoothing",
                                    continuous_update=False, readout_format=".2f")
        self.logy = W.ToggleButton(value=log_y, description="log y", tooltip="logarithmic loss axis")
        self.progress = W.HTML(value=self._progress_html())
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.65, 0.35])
        fig.update_layout(height=height, margin=dict(l=50, r=10, t=30, b=30), title=dict(text=title, x=0.01),
                          legend=dict(orientation="h", y=1.08, x=0.3), template="plotly_white", uirevision="keep")
        fig.update_yaxes(type="log" if log_y else "linear", row=1, col=1)
        self.fig = go.FigureWidget(fig)
        self.smooth.observe(lambda ch: self._redraw_now(), names="value")
        self.logy.observe(self._on_log, names="value")
        super().__init__([self.progress, W.HBox([self.smooth, self.logy]), self.fig])

    # ---- logging ----------------------------------------------------------------------------
    def log(self, step=None, **scalars):
        """Record scalars at `step` (default: the previous step + 1)."""
        if step is None:
            step = 0 if self._last_step is None else self._last_step + 1
        now = self.clock()
        if self._t0 is None:
            self._t0, self._step0 = now, step
            flush_after_cell(self)
        self._last_step = step
        self._steps_seen += 1
        for k, v in scalars.items():
            if v is None:
                continue
            r = self._raw.get(k)
            if r is None:
                r = self._raw[k] = ([], [])
                self._floats[k] = 0
                self._names.append(k)
            r[0].append(step)
            r[1].append(v)
        self._throttle()

    __call__ = log

    def flush(self):
        """Draw everything logged so far (if anything is pending)."""
        self._throttle.flush()

    def _redraw_now(self):
        self._throttle.last = self.clock()
        self._throttle.pending = False
        self._throttle.calls += 1
        self._redraw()

    # ---- data ---------------------------------------------------------------------------------
    def _convert(self):
        """Turn the values logged since the last redraw into floats; the tensors among them
        are stacked on the device and read back in one transfer (not one .item() each)."""
        slots, tensors = [], []
        for k, (steps, vals) in self._raw.items():
            for j in range(self._floats[k], len(vals)):
                v = vals[j]
                if isinstance(v, (int, float)):
                    vals[j] = float(v)
                elif _is_scalar_tensor(v):
                    slots.append((vals, j))
                    tensors.append(v)
                else:
                    vals[j] = _to_float(v)
            self._floats[k] = len(vals)
        if not tensors:
            return
        try:
            import engine
            dt = engine.float64 if any(t.dtype == engine.float64 for t in tensors) else engine.float32
            with engine.no_grad():
                host = engine.stack([t.detach().reshape(()).to(dt) for t in tensors]).tolist()
        except Exception:  # noqa: BLE001 - mixed devices or a foreign tensor type: one by one
            host = [_to_float(t) for t in tensors]
        for (vals, j), x in zip(slots, host):
            vals[j] = float(x)

    @property
    def history(self):
        """{name: [(step, value), ...]} with floats."""
        self._convert()
        return {k: list(zip(s, v)) for k, (s, v) in self._raw.items()}

    @property
    def names(self):
        return list(self._names)

    def rate(self):
        """Steps per second since the first log (None before two logs)."""
        if self._t0 is None or self._last_step is None:
            return None
        dt = self.clock() - self._t0
        n = self._last_step - self._step0
        return n / dt if dt > 0 and n > 0 else None

    def eta(self):
        r = self.rate()
        if self.total is None or not r:
            return None
        return max(0.0, (self.total - 1 - self._last_step) / r)

    # ---- drawing ------------------------------------------------------------------------------
    def _progress_html(self):
        step = self._last_step
        parts = []
        pct = None
        if self.total:
            done = 0 if step is None else step + 1
            pct = min(100.0, 100.0 * done / self.total)
            parts.append(f"{done}/{self.total}")
        elif step is not None:
            parts.append(f"step {step}")
        r = self.rate()
        if r:
            parts.append(f"{r:.1f} it/s")
        if self.total and r:
            parts.append(f"ETA {_hms(self.eta())}")
        for k in self._names[:4]:
            v = self._raw[k][1][-1] if self._raw[k][1] else None
            parts.append(f"{k} {fmt(_to_float(v)) if v is not None else '-'}")
        bar = ""
        if pct is not None:
            bar = (f'<div style="flex:0 0 240px;height:10px;background:#e5e7eb;border-radius:5px;overflow:hidden">'
                   f'<div class="clg-progress" style="width:{pct:.1f}%;height:100%;background:#2563eb"></div></div>')
        text = " · ".join(parts) if parts else "waiting for the first log()"
        return (f'<div style="display:flex;gap:10px;align-items:center;font-family:ui-monospace,monospace;'
                f'font-size:12px">{bar}<span>{text}</span></div>')

    def _redraw(self):
        self.redraws += 1
        self._convert()
        a = self.smooth.value
        with self.fig.batch_update():
            for k in self._names:
                if k not in self._drawn_names:
                    self._add_traces(k)
            for i, k in enumerate(self._drawn_names):
                steps, vals = self._raw[k]
                # at most MAX_POINTS points; the EMA runs on the strided series with
                # alpha**stride, so its time constant in steps stays the same
                stride = max(1, math.ceil(len(vals) / MAX_POINTS))
                xs = np.asarray(steps[::stride], dtype=np.float64)
                raw = np.asarray(vals[::stride], dtype=np.float64)
                raw[~np.isfinite(raw)] = np.nan
                sm = self._smoothed(k, raw, a ** stride if a > 0 else 0.0, stride)
                tr_raw, tr_sm = self.fig.data[2 * i], self.fig.data[2 * i + 1]
                tr_raw.x, tr_raw.y = xs, raw
                tr_sm.x, tr_sm.y = xs, sm
                tr_raw.visible = a > 0
        self.progress.value = self._progress_html()

    def _smoothed(self, k, raw, alpha, stride):
        """EMA of a series, continued from the previous redraw when only points were added."""
        c = self._ema_cache.get(k)
        if c is None or c["alpha"] != alpha or c["stride"] != stride or c["n"] > len(raw):
            c = self._ema_cache[k] = {"alpha": alpha, "stride": stride, "n": 0, "s": 0.0, "w": 0.0, "out": []}
        s, w, out = c["s"], c["w"], c["out"]
        for v in raw[c["n"]:].tolist():
            if alpha <= 0 or not math.isfinite(v):
                out.append(v)
                continue
            s = alpha * s + (1 - alpha) * v
            w = alpha * w + (1 - alpha)
            out.append(s / w)
        c["s"], c["w"], c["n"] = s, w, len(raw)
        return np.asarray(out, dtype=np.float64)

    def _add_traces(self, k):
        c = COLOURS[len(self._drawn_names) % len(COLOURS)]
        row = 1 if "loss" in k.lower() else 2
        self.fig.add_scatter(x=[], y=[], mode="lines", line=dict(color=c, width=1), opacity=0.3, name=k + " (raw)",
                             legendgroup=k, showlegend=False, hoverinfo="skip", row=row, col=1)
        self.fig.add_scatter(x=[], y=[], mode="lines", line=dict(color=c, width=2), name=k, legendgroup=k,
                             row=row, col=1)
        self._drawn_names.append(k)
        self._rows.add(row)
        self._set_domains()

    def _set_domains(self):
        """Give the plot area to the rows in use: losses on top, other scalars below."""
        lay = self.fig.layout
        top, bottom = 1 in self._rows, 2 in self._rows
        lay.xaxis.visible = lay.yaxis.visible = top
        lay.xaxis2.visible = lay.yaxis2.visible = bottom
        lay.xaxis.showticklabels = not bottom
        if top and not bottom:
            lay.yaxis.domain, lay.yaxis2.domain = (0.0, 1.0), (0.0, 0.0)
        elif bottom and not top:
            lay.yaxis.domain, lay.yaxis2.domain = (1.0, 1.0), (0.0, 1.0)
        else:
            lay.yaxis.domain, lay.yaxis2.domain = (0.389, 1.0), (0.0, 0.329)

    def _on_log(self, change):
        self.fig.update_yaxes(type="log" if change["new"] else "linear", row=1, col=1)

    # ---- export -------------------------------------------------------------------------------
    def to_csv(self, path=None):
        """CSV with a `step` column and one column per scalar (empty where not logged)."""
        h = self.history
        rows = {}
        for k, pts in h.items():
            for s, v in pts:
                rows.setdefault(s, {})[k] = v
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["step"] + self._names)
        for s in sorted(rows):
            w.writerow([s] + [repr(rows[s][k]) if k in rows[s] else "" for k in self._names])
        text = buf.getvalue()
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text

    def to_json(self, path=None):
        """JSON: {"total": n, "history": {name: [[step, value], ...]}} (non-finite as null)."""
        h = {k: [[s, v if math.isfinite(v) else None] for s, v in pts] for k, pts in self.history.items()}
        text = json.dumps({"total": self.total, "history": h})
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text

    # ---- protocols ----------------------------------------------------------------------------
    def __enter__(self):
        if not self._displayed:
            try:
                from IPython import get_ipython
                from IPython.display import display
                if get_ipython() is not None:
                    display(self)
            except ImportError:
                pass
        return self

    def __exit__(self, *exc):
        self.flush()
        return False

    def __repr__(self):
        tot = f", total={self.total}" if self.total is not None else ""
        return f"TrainingMonitor(scalars={self._names!r}, logged={self._steps_seen}{tot})"

    def _repr_mimebundle_(self, **kwargs):
        self._displayed = True
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, tuple):
            data = (dict(data[0]), data[1])
            data[0]["text/plain"] = repr(self)
        elif data is not None:
            data = dict(data)
            data["text/plain"] = repr(self)
        return data
