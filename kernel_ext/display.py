"""Rich (text/html) display of Tensors and Modules in notebooks.

The plain-text repr stays engine's own (`tensor([...], grad_fn=<AddBackward0>)`); these
functions only feed IPython's text/html formatter:

- `tensor_html(t)`: shape, dtype, device, requires_grad / grad_fn, min/max/mean/std over the
  finite values, NaN and Inf counts, and an inline SVG heatmap (2-D) or histogram (other ranks).
  Statistics take one device read (the whole tensor up to HOST_LIMIT elements, else the
  reductions stacked into one small tensor plus one strided sample for the picture).
- `module_html(m)`: a table of submodules with their output shapes from the last call (recorded
  by a global forward hook while the extension is loaded), parameter counts and totals, and
  the torch-style repr.
"""
import html
import math
import weakref

import numpy as np

HOST_LIMIT = 1 << 22        # tensors up to this many elements are read to the host once
HEATMAP_MAX = 32            # heatmap cells per side
HIST_BINS = 30
SAMPLE = 1 << 16            # elements sampled for the histogram of a large tensor
MODULE_ROWS = 200           # submodule rows shown before "... more"

_esc = html.escape


# ---- statistics -------------------------------------------------------------------------------
def tensor_stats(t):
    """dict(numel, finite, nan, inf, min, max, mean, std, sample, sampled) for a Tensor.

    min/max/mean/std are over the finite values (std unbiased, as Tensor.std); `sample` is a
    float64 numpy array for the picture (the whole tensor, or a strided subsample when
    `sampled` is True).  Non-floating dtypes are converted to float64."""
    import engine
    t = t.detach()
    n = t.numel()
    out = {"numel": n, "nan": 0, "inf": 0, "finite": 0, "min": math.nan, "max": math.nan,
           "mean": math.nan, "std": math.nan, "sample": np.zeros(t.shape if n == 0 else (0,)), "sampled": False}
    if n == 0:
        return out
    if n <= HOST_LIMIT:
        a = np.asarray(t.numpy(), dtype=np.float64)
        fin = np.isfinite(a)
        nan = int(np.isnan(a).sum())
        vals = a[fin]
        out.update(nan=nan, inf=int(a.size - fin.sum() - nan), finite=int(vals.size), sample=a)
        if vals.size:
            out.update(min=float(vals.min()), max=float(vals.max()), mean=float(vals.mean()),
                       std=float(vals.std(ddof=1)) if vals.size > 1 else math.nan)
        return out
    # large: the reductions on the device, one read of 7 numbers
    with engine.no_grad():
        fp64 = _has_fp64(t)
        x = t.double() if fp64 else t.float()
        fin = x.isfinite()
        cnt = fin.sum()
        zero = engine.zeros((), dtype=x.dtype, device=x.device)
        s = engine.where(fin, x, zero).sum()
        mean = s / cnt.clamp(min=1)
        var = (engine.where(fin, x - mean, zero) ** 2).sum() / (cnt - 1).clamp(min=1)
        mn = engine.where(fin, x, engine.full((), math.inf, dtype=x.dtype, device=x.device)).min()
        mx = engine.where(fin, x, engine.full((), -math.inf, dtype=x.dtype, device=x.device)).max()
        nan = x.isnan().sum()
        vals = engine.stack([cnt.to(x.dtype), nan.to(x.dtype), mn, mx, mean, var.sqrt(), s]).numpy()
    cnt, nan = int(vals[0]), int(vals[1])
    out.update(finite=cnt, nan=nan, inf=n - cnt - nan, sampled=True)
    if cnt:
        out.update(min=float(vals[2]), max=float(vals[3]), mean=float(vals[4]),
                   std=float(vals[5]) if cnt > 1 else math.nan)
    out["sample"] = _sample(t)
    return out


def _has_fp64(t):
    import engine
    return any(d["fp64"] for d in engine.devices() if d["device"] == str(t.device))


def _sample(t):
    """A strided subsample (one device read): ~HEATMAP_MAX^2 for 2-D, else up to SAMPLE elements."""
    import engine
    with engine.no_grad():
        if t.dim() == 2:
            r, c = t.shape
            v = t[::max(1, -(-r // HEATMAP_MAX)), ::max(1, -(-c // HEATMAP_MAX))]
        else:
            flat = t.reshape(-1)
            v = flat[::max(1, -(-flat.numel() // SAMPLE))]
        return np.asarray(v.numpy(), dtype=np.float64)


# ---- formatting helpers ----------------------------------------------------------------------
def fmt_num(v):
    if v is None:
        return ""
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if v != v:
        return "nan"
    if v in (math.inf, -math.inf):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        return f"{v:.4e}"
    return f"{v:.4g}"


def shape_str(shape):
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


_VIRIDIS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
_DIVERGING = [(33, 102, 172), (146, 197, 222), (247, 247, 247), (244, 165, 130), (178, 24, 43)]


def _lerp_color(stops, f):
    f = min(max(f, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(f), len(stops) - 2)
    w = f - i
    c = [round(a + (b - a) * w) for a, b in zip(stops[i], stops[i + 1])]
    return "#%02x%02x%02x" % tuple(c)


def _heatmap_svg(a, lo, hi):
    """Inline SVG of a 2-D array, at most HEATMAP_MAX cells a side (strided)."""
    r, c = a.shape
    a = a[::max(1, -(-r // HEATMAP_MAX)), ::max(1, -(-c // HEATMAP_MAX))]
    r, c = a.shape
    cell = max(3, min(16, 256 // max(r, c)))
    diverging = lo < 0 < hi
    span = max(abs(lo), abs(hi)) if diverging else (hi - lo)
    parts = []
    for i in range(r):
        j = 0
        while j < c:
            v = a[i, j]
            if v != v:
                col = "#ff00ff"
            elif math.isinf(v):
                col = "#000000"
            elif span == 0 or span != span:
                col = _lerp_color(_VIRIDIS, 0.5)
            elif diverging:
                col = _lerp_color(_DIVERGING, 0.5 + v / (2 * span))
            else:
                col = _lerp_color(_VIRIDIS, (v - lo) / span)
            k = j + 1   # merge a run of equal colours into one rect
            while k < c and a[i, k] == v:
                k += 1
            parts.append(f'<rect x="{j * cell}" y="{i * cell}" width="{(k - j) * cell}" height="{cell}" '
                         f'fill="{col}"/>')
            j = k
    w, h = c * cell, r * cell
    legend = "blue &lt; 0 &lt; red" if diverging else "dark = low, yellow = high"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="clgrad-heatmap" width="{w}" height="{h}" '
            f'viewBox="0 0 {w} {h}" shape-rendering="crispEdges"><title>heatmap ({legend}; magenta NaN, '
            f'black Inf)</title>{"".join(parts)}</svg>')


def _histogram_svg(a, lo, hi):
    vals = a[np.isfinite(a)].ravel()
    if vals.size == 0:
        return ""
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, _ = np.histogram(vals, bins=HIST_BINS, range=(lo, hi))
    w, h, bw = 240, 80, 240 / HIST_BINS
    top = counts.max() or 1
    bars = []
    for i, n in enumerate(counts):
        bh = 0 if n == 0 else max(1, round(h * n / top))
        bars.append(f'<rect x="{i * bw:.1f}" y="{h - bh}" width="{bw - 1:.1f}" height="{bh}" fill="#4c78a8">'
                    f'<title>{int(n)}</title></rect>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="clgrad-histogram" width="{w}" height="{h + 14}" '
            f'viewBox="0 0 {w} {h + 14}"><title>histogram of finite values</title>{"".join(bars)}'
            f'<text x="0" y="{h + 12}" font-size="10" fill="#666">{_esc(fmt_num(lo))}</text>'
            f'<text x="{w}" y="{h + 12}" font-size="10" fill="#666" text-anchor="end">{_esc(fmt_num(hi))}</text>'
            f'</svg>')


_TD = 'style="text-align:left;padding:1px 8px 1px 0;font-family:monospace"'
_TH = 'style="text-align:left;padding:1px 8px 1px 0;font-weight:normal;color:#666"'


def _kv_table(rows):
    body = "".join(f"<tr><th {_TH}>{_esc(k)}</th><td {_TD}>{_esc(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="clgrad-props" style="border-collapse:collapse;margin:0">{body}</table>'


# ---- Tensor -----------------------------------------------------------------------------------
def tensor_html(t):
    """The HTML summary of a Tensor (see the module doc)."""
    st = tensor_stats(t)
    grad = "requires_grad" if t.requires_grad else "no grad"
    if t.grad_fn is not None:
        grad = f"grad_fn={t.grad_fn.name()}"
    elif t.requires_grad:
        grad = "leaf, requires_grad"
    kind = type(t).__name__
    rows = [("shape", shape_str(t.shape)), ("dtype", t.dtype.name), ("device", str(t.device)), ("autograd", grad)]
    if st["numel"]:
        rows += [("min", fmt_num(st["min"])), ("max", fmt_num(st["max"])), ("mean", fmt_num(st["mean"])),
                 ("std", fmt_num(st["std"]))]
    rows += [("NaN", st["nan"]), ("Inf", st["inf"])]
    if t.requires_grad and t.grad_fn is None and t.grad is not None:
        rows.append(("grad", f"{shape_str(t.grad.shape)} (set)"))
    pic = ""
    a = st["sample"]
    if st["finite"]:
        if t.dim() == 2 and a.ndim == 2 and a.size:
            pic = _heatmap_svg(a, st["min"], st["max"])
        elif a.size > 1:
            pic = _histogram_svg(a, st["min"], st["max"])
    note = " (picture from a strided sample)" if st["sampled"] else ""
    warn = ""
    if st["nan"] or st["inf"]:
        warn = (f'<div style="color:#b00020">{st["nan"]:,} NaN, {st["inf"]:,} Inf of {st["numel"]:,} '
                f'elements</div>')
    rep = _esc(repr(t))
    open_ = " open" if st["numel"] <= 64 else ""
    return (f'<div class="clgrad-tensor" style="font-size:12px">'
            f'<div style="font-weight:bold">{_esc(kind)} {_esc(shape_str(t.shape))} {_esc(t.dtype.name)} '
            f'{_esc(str(t.device))}{_esc(note)}</div>{warn}'
            f'<div style="display:flex;gap:16px;align-items:flex-start">{_kv_table(rows)}<div>{pic}</div></div>'
            f'<details{open_}><summary>values</summary><pre style="margin:2px 0">{rep}</pre></details></div>')


# ---- Module -----------------------------------------------------------------------------------
_shapes = {}     # id(module) -> [weakref to the module, its last output's shape or description]
_hook = [None]


def describe_output(out):
    """'[2, 3]' for a tensor, '([2, 3], [2])' for a tuple, 'dict(a=[2])', else the type name."""
    import engine
    if isinstance(out, engine.Tensor):
        return shape_str(out.shape)
    if isinstance(out, (tuple, list)):
        inner = ", ".join(describe_output(o) for o in out[:8]) + (", ..." if len(out) > 8 else "")
        return f"({inner})" if isinstance(out, tuple) else f"[{inner}]"
    if isinstance(out, dict):
        return "dict(" + ", ".join(f"{k}={describe_output(v)}" for k, v in list(out.items())[:8]) + ")"
    return type(out).__name__


def _forget(key):
    return lambda ref: _shapes.pop(key, None)


def _record_shape(module, args, output, _tensor=[None]):
    # runs after every module call while the extension is loaded: keep it cheap (~1 us)
    # (a weakref per module, made once; tensors keep their Size, described when shown)
    if _tensor[0] is None:
        import engine
        _tensor[0] = engine.Tensor
    desc = output.shape if isinstance(output, _tensor[0]) else None
    e = _shapes.get(id(module))
    if e is None or e[0]() is not module:
        try:
            e = _shapes[id(module)] = [weakref.ref(module, _forget(id(module))), None]
        except TypeError:  # not weak-referenceable
            return
    e[1] = desc if desc is not None else describe_output(output)


# only watches: engine.compile may skip it on replayed calls (the shapes do not change between them)
_record_shape._clgrad_observer = True


def start_shape_recording():
    """Record every module's last output shape (a global forward hook)."""
    if _hook[0] is None:
        from engine.nn.modules.module import register_module_forward_hook
        _hook[0] = register_module_forward_hook(_record_shape)


def stop_shape_recording():
    if _hook[0] is not None:
        _hook[0].remove()
        _hook[0] = None


def output_shape(module):
    """The recorded output description of `module`'s last call, or None."""
    e = _shapes.get(id(module))
    if e is None or e[0]() is not module or e[1] is None:
        return None
    return e[1] if isinstance(e[1], str) else shape_str(e[1])


def module_rows(m):
    """[(name, type, output, own params, own trainable, depth)] for m and its submodules."""
    rows = []
    for name, sub in m.named_modules():
        own = list(sub.parameters(recurse=False))
        rows.append((name or "(root)", type(sub).__name__, output_shape(sub) or "",
                     sum(p.numel() for p in own), sum(p.numel() for p in own if p.requires_grad),
                     0 if not name else name.count(".") + 1))
    return rows


def module_totals(m):
    ps = list(m.parameters())
    total = sum(p.numel() for p in ps)
    trainable = sum(p.numel() for p in ps if p.requires_grad)
    nbytes = sum(p.numel() * p.dtype.itemsize for p in ps)
    bufs = sum(b.numel() * b.dtype.itemsize for b in m.buffers())
    return {"params": total, "trainable": trainable, "non_trainable": total - trainable, "param_bytes": nbytes,
            "buffer_bytes": bufs}


def _mb(n):
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def module_html(m):
    """The HTML summary of a Module (see the module doc)."""
    rows = module_rows(m)
    tot = module_totals(m)
    td = 'style="text-align:left;padding:1px 10px 1px 0;font-family:monospace;white-space:nowrap"'
    tdr = 'style="text-align:right;padding:1px 10px 1px 0;font-family:monospace"'
    head = ("<tr>" + "".join(f"<th {_TH}>{h}</th>" for h in ("Module", "Type", "Output shape", "Params")) + "</tr>")
    body = []
    for name, typ, outp, own, _tr, depth in rows[:MODULE_ROWS]:
        pad = "&nbsp;" * (2 * depth)
        body.append(f"<tr><td {td}>{pad}{_esc(name)}</td><td {td}>{_esc(typ)}</td><td {td}>{_esc(outp)}</td>"
                    f"<td {tdr}>{own:,}</td></tr>")
    if len(rows) > MODULE_ROWS:
        body.append(f'<tr><td {td} colspan="4">... {len(rows) - MODULE_ROWS} more submodules</td></tr>')
    foot = (f'<div style="margin:4px 0">Total params: <b>{tot["params"]:,}</b> &middot; trainable: '
            f'{tot["trainable"]:,} &middot; non-trainable: {tot["non_trainable"]:,} &middot; parameters '
            f'{_mb(tot["param_bytes"])}, buffers {_mb(tot["buffer_bytes"])}</div>')
    return (f'<div class="clgrad-module" style="font-size:12px"><div style="font-weight:bold">'
            f'{_esc(type(m).__name__)}</div><table class="clgrad-modules" style="border-collapse:collapse">'
            f'{head}{"".join(body)}</table>{foot}'
            f'<details><summary>repr</summary><pre style="margin:2px 0">{_esc(repr(m))}</pre></details></div>')


def module_text(m):
    """A plain-text version of module_html's table (used by magics outside Jupyter)."""
    rows = module_rows(m)
    tot = module_totals(m)
    table = [("Module", "Type", "Output shape", "Params")] + [
        ("  " * d + n, t, o, f"{p:,}") for n, t, o, p, _tr, d in rows]
    w = [max(len(r[i]) for r in table) for i in range(4)]
    lines = ["  ".join(c.rjust(w[i]) if i == 3 else c.ljust(w[i]) for i, c in enumerate(r)) for r in table]
    lines.append(f"Total params: {tot['params']:,} (trainable {tot['trainable']:,})")
    return "\n".join(lines)
