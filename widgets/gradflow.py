"""GradientFlow: per-parameter gradient norms, update-to-data ratios and activation stats.

    flow = GradientFlow(model, optimizer=opt, every=10)
    flow                      # display: bars for the latest sample, lines over steps
    ... train ...
    flow.history[-1]['grad_norm']['fc1.weight']
    flow.detach()             # removes every hook

Public hooks only: a forward pre-hook on the model counts steps (forward passes with grad
enabled); on a sampled step, each parameter's post-accumulate-grad hook takes the norm of
its gradient on the device, forward hooks on the leaf modules take activation stats on the
device, and the optimizer's step pre/post hooks (or a wrapper of `optimizer.step` when it
has none) snapshot the parameters and take ||Δp|| / ||p||.  Everything sampled in a step is
read back in one transfer (`stack(...).tolist()`), when the step completes (optimizer step,
next forward, or reading `.history`).
"""
import math
import time

import ipywidgets as W
import plotly.graph_objects as go
from plotly.subplots import make_subplots

import engine

from ._util import Throttle, flush_after_cell, fmt

__all__ = ["GradientFlow"]

VANISH = 1e-7
EXPLODE = 1e3
RELU_TYPES = {"ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "CELU", "ELU", "GELU", "SiLU", "Mish"}
SAT_TYPES = {"Tanh": (-0.99, 0.99), "Sigmoid": (0.01, 0.99), "Hardtanh": (-0.99, 0.99), "Softsign": (-0.99, 0.99)}
MAX_LINES = 12


def _norm(t):
    """The 2-norm of a tensor, on the device (a 0-d tensor)."""
    return t.norm()


class GradientFlow(W.VBox):
    """GradientFlow(module, optimizer=None, every=1, vanish=1e-7, explode=1e3, interval=0.5,
                    height=520, clock=time.monotonic)

    .history   list of {'step', 'grad_norm': {param: float}, 'ratio': {param: float},
               'act': {module path: {'mean', 'std', 'zero', ['dead' | 'sat']}}}
    .warnings  list of warning strings (also shown in a banner)
    .detach()  remove every hook; .flush() redraw now"""

    def __init__(self, module, optimizer=None, every=1, vanish=VANISH, explode=EXPLODE, interval=0.5,
                 height=520, clock=time.monotonic):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.module = module
        self.optimizer = optimizer
        self.every = int(every)
        self.vanish, self.explode = vanish, explode
        self.history = _History(self)
        self.warnings = []
        self.steps = 0            # forward passes counted
        self._sampling = False
        self._pending = None      # the sampled step being collected
        self._snap = None         # parameter copies taken before optimizer.step on sampled steps
        self._handles = []
        self._step_wrapped = None
        self.params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._pname = {id(p): n for n, p in self.params}
        self._handles.append(module.register_forward_pre_hook(self._on_forward))
        for _, p in self.params:
            self._handles.append(p.register_post_accumulate_grad_hook(self._on_grad))
        for path, m in module.named_modules():
            if path and not any(True for _ in m.children()):
                self._handles.append(m.register_forward_hook(self._act_hook(path, type(m).__name__)))
        if optimizer is not None:
            if hasattr(optimizer, "register_step_pre_hook") and hasattr(optimizer, "register_step_post_hook"):
                self._handles.append(optimizer.register_step_pre_hook(self._before_step))
                self._handles.append(optimizer.register_step_post_hook(self._after_step))
            else:  # an optimizer without step hooks: wrap its step on the instance
                orig = optimizer.step

                def step(*a, **k):
                    self._before_step(optimizer, a, k)
                    r = orig(*a, **k)
                    self._after_step(optimizer, a, k)
                    return r
                optimizer.step = step
                self._step_wrapped = orig
        self.redraws = 0
        self._throttle = Throttle(self._redraw, interval, clock)
        self.banner = W.HTML(value="")
        fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.09, vertical_spacing=0.16,
                            subplot_titles=("gradient norm (latest)", "update / data ratio (latest)",
                                            "gradient norm over steps", "activations (latest)"))
        fig.update_layout(height=height, margin=dict(l=50, r=10, t=40, b=40), template="plotly_white",
                          showlegend=False, uirevision="keep", bargap=0.15)
        fig.update_yaxes(type="log", row=1, col=1)
        fig.update_yaxes(type="log", row=1, col=2)
        fig.update_yaxes(type="log", row=2, col=1)
        fig.update_yaxes(range=[0, 1], row=2, col=2)
        fig.add_bar(x=[], y=[], marker_color="#2563eb", name="grad norm", row=1, col=1)
        fig.add_bar(x=[], y=[], marker_color="#16a34a", name="update/data", row=1, col=2)
        fig.add_bar(x=[], y=[], marker_color="#dc2626", name="zero / dead fraction", row=2, col=2)
        fig.add_bar(x=[], y=[], marker_color="#ea580c", name="saturated fraction", row=2, col=2)
        self._line_names = [n for n, _ in _spread(self.params, MAX_LINES)]
        for n in self._line_names:
            fig.add_scatter(x=[], y=[], mode="lines", name=n, row=2, col=1)
        self.fig = go.FigureWidget(fig)
        super().__init__([self.banner, self.fig])
        flush_after_cell(self)

    # ---- hooks --------------------------------------------------------------------------------
    def _on_forward(self, module, args):
        if not engine.is_grad_enabled():
            return None
        self._finish()
        self.steps += 1
        self._sampling = (self.steps - 1) % self.every == 0
        if self._sampling:
            self._pending = {"step": self.steps - 1, "grad": {}, "ratio": {}, "act": {}}
        return None

    def _on_grad(self, p):
        if self._pending is None or p.grad is None:
            return
        # the norm stays on the device; accumulation twice overwrites with the total's norm
        self._pending["grad"][self._pname[id(p)]] = _norm(p.grad.detach())

    def _act_hook(self, path, typ):
        def hook(module, args, out):
            if self._pending is None or not isinstance(out, engine.Tensor) \
                    or not out.is_floating_point() or out.numel() == 0:
                return None
            with engine.no_grad():
                # few kernels per module: counts are summed on the device as float32 and
                # divided by the (host-known) element counts after the one readback
                y = out.detach()
                n = y.numel()
                std, mean = engine.std_mean(y) if n > 1 else (y.reshape(()) * 0, y.reshape(()))
                st = {"mean": (mean, 1), "std": (std, 1), "zero": ((y == 0).sum(dtype=engine.float32), n)}
                if typ in RELU_TYPES and y.ndim >= 1:
                    # a unit (last dim) is dead when it is <= 0 for every sample of the batch
                    f = y.shape[-1]
                    st["dead"] = ((y.reshape(-1, f).amax(0) <= 0).sum(dtype=engine.float32), f)
                elif typ in SAT_TYPES:
                    lo, hi = SAT_TYPES[typ]
                    mid, half = (lo + hi) / 2, (hi - lo) / 2
                    st["sat"] = (((y - mid).abs() >= half).sum(dtype=engine.float32), n)
            self._pending["act"][path] = st
            return None
        return hook

    def _before_step(self, opt, args, kwargs):
        if not self._sampling:
            return None
        self._snap = None
        with engine.no_grad():
            self._snap = {n: p.detach().clone() for n, p in self.params if p.grad is not None}
        return None

    def _after_step(self, opt, args, kwargs):
        snap, self._snap = self._snap, None
        if not self._sampling or not snap:
            return
        pp = dict(self.params)
        ratios = {}
        with engine.no_grad():
            for n, old in snap.items():
                p = pp[n].detach()
                ratios[n] = _norm(p - old) / (_norm(p) + 1e-12)
        if self._pending is not None:
            self._pending["ratio"].update(ratios)
            self._finish()
        elif self.history._items and self.history._items[-1]["step"] == self.steps - 1:
            # the sample was already read (history accessed before the step): add the ratios
            with engine.no_grad():
                host = engine.stack([v.reshape(()).float() for v in ratios.values()]).tolist()
            last = self.history._items[-1]
            last["ratio"].update(zip(ratios, host))
            last["ratio"] = {n: last["ratio"][n] for n, _ in self.params if n in last["ratio"]}
            self._throttle()
        self._sampling = False

    # ---- collection ---------------------------------------------------------------------------
    def _finish(self):
        """Read the pending sample back (one transfer) into history."""
        pend, self._pending = self._pending, None
        if not pend or not (pend["grad"] or pend["act"] or pend["ratio"]):
            return
        keys, vals = [], []
        for n, v in pend["grad"].items():
            keys.append(("grad_norm", n, None))
            vals.append(v)
        for n, v in pend["ratio"].items():
            keys.append(("ratio", n, None))
            vals.append(v)
        for path, st in pend["act"].items():
            for k, (v, div) in st.items():
                keys.append(("act", path, (k, div)))
                vals.append(v)
        with engine.no_grad():
            host = engine.stack([v.reshape(()) if v.dtype == engine.float32 else v.reshape(()).float()
                                 for v in vals]).tolist()
        rec = {"step": pend["step"], "grad_norm": {}, "ratio": {}, "act": {}}
        for (kind, name, sub), x in zip(keys, host):
            if kind == "act":
                rec["act"].setdefault(name, {})[sub[0]] = x / sub[1]
            else:
                rec[kind][name] = x
        # parameters in the module's order (the hooks fire in backward order)
        for k in ("grad_norm", "ratio"):
            rec[k] = {n: rec[k][n] for n, _ in self.params if n in rec[k]}
        self.history._append(rec)
        self._check(rec)
        self._throttle()

    def _check(self, rec):
        s = rec["step"]
        for kind, test in (("vanishing", lambda v: v < self.vanish), ("exploding", lambda v: v > self.explode),
                           ("non-finite", lambda v: not math.isfinite(v))):
            bad = [(n, v) for n, v in rec["grad_norm"].items()
                   if (math.isfinite(v) and test(v)) or (kind == "non-finite" and test(v))]
            if not bad:
                continue
            names = ", ".join(f"{n} ({fmt(v)})" for n, v in bad[:3]) + (f" and {len(bad) - 3} more"
                                                                          if len(bad) > 3 else "")
            limit = {"vanishing": f"< {self.vanish:g}", "exploding": f"> {self.explode:g}",
                     "non-finite": "nan/inf"}[kind]
            self.warnings.append(f"step {s}: {kind} gradient norm {limit} in {names}")

    def sample(self):
        """Finish the pending sample now (normally done at the optimizer step or next forward)."""
        self._finish()
        return self.history[-1] if len(self.history) else None

    # ---- drawing ------------------------------------------------------------------------------
    def flush(self):
        self._finish()
        self._throttle.flush()

    def _redraw(self):
        self.redraws += 1
        h = self.history._items
        if not h:
            return
        last = h[-1]
        with self.fig.batch_update():
            names = [n for n, _ in self.params]
            d = self.fig.data
            gn = last["grad_norm"]
            d[0].x = [n for n in names if n in gn]
            d[0].y = [_pos(gn[n]) for n in names if n in gn]
            d[0].marker.color = [_bar_colour(gn[n], self.vanish, self.explode) for n in names if n in gn]
            rt = next((r["ratio"] for r in reversed(h) if r["ratio"]), {})
            d[1].x = [n for n in names if n in rt]
            d[1].y = [_pos(rt[n]) for n in names if n in rt]
            act = last["act"]
            paths = list(act)
            d[2].x = paths
            d[2].y = [act[p].get("dead", act[p]["zero"]) for p in paths]
            d[3].x = paths
            d[3].y = [act[p].get("sat", 0.0) for p in paths]
            for i, n in enumerate(self._line_names):
                pts = [(r["step"], r["grad_norm"][n]) for r in h if n in r["grad_norm"]]
                d[4 + i].x = [s for s, _ in pts]
                d[4 + i].y = [_pos(v) for _, v in pts]
        if self.warnings:
            last_w = self.warnings[-3:]
            self.banner.value = ('<div style="background:#fef2f2;color:#991b1b;border:1px solid #fecaca;'
                                 'border-radius:4px;padding:4px 8px;font-size:12px">⚠ '
                                 + "<br>⚠ ".join(_esc(w) for w in last_w)
                                 + (f" <i>({len(self.warnings)} warnings)</i>" if len(self.warnings) > 3 else "")
                                 + "</div>")

    # ---- lifecycle ----------------------------------------------------------------------------
    def detach(self):
        """Remove every hook this widget installed (and restore a wrapped optimizer.step)."""
        self._finish()
        for h in self._handles:
            h.remove()
        self._handles = []
        if self._step_wrapped is not None:
            try:
                del self.optimizer.step
            except AttributeError:
                self.optimizer.step = self._step_wrapped
            self._step_wrapped = None

    @property
    def attached(self):
        return bool(self._handles)

    def __repr__(self):
        return (f"GradientFlow(params={len(self.params)}, every={self.every}, samples={len(self.history._items)}, "
                f"warnings={len(self.warnings)})")

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, tuple):
            data = (dict(data[0]), data[1])
            data[0]["text/plain"] = repr(self)
        elif data is not None:
            data = dict(data)
            data["text/plain"] = repr(self)
        return data


class _History:
    """A list of sample records that first finishes the pending sample when read."""

    def __init__(self, owner):
        self._owner = owner
        self._items = []

    def _append(self, rec):
        self._items.append(rec)

    def _sync(self):
        if self._owner._pending is not None:
            self._owner._finish()

    def __len__(self):
        self._sync()
        return len(self._items)

    def __getitem__(self, i):
        self._sync()
        return self._items[i]

    def __iter__(self):
        self._sync()
        return iter(list(self._items))

    def __repr__(self):
        return f"<GradientFlow history: {len(self._items)} samples>"


def _spread(items, k):
    if len(items) <= k:
        return list(items)
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def _pos(v):
    return v if v is not None and math.isfinite(v) and v > 0 else None


def _bar_colour(v, lo, hi):
    if not math.isfinite(v) or v > hi:
        return "#dc2626"
    if v < lo:
        return "#9ca3af"
    return "#2563eb"


def _esc(t):
    return t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
