"""PyTorch-style repr: `tensor([[1., 2.]], device='cl:0', grad_fn=<AddBackward0>)`."""
import numpy as np

from . import dtypes as D

_opts = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None):
    if profile == "default":
        _opts.update(precision=4, threshold=1000, edgeitems=3, linewidth=80)
    elif profile == "full":
        _opts.update(threshold=float("inf"))
    for k, v in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                 ("linewidth", linewidth)):
        if v is not None:
            _opts[k] = v
    _opts["sci_mode"] = sci_mode


def _float_formatter(a):
    finite = a[np.isfinite(a)]
    p = _opts["precision"]
    if finite.size == 0:
        return lambda v: _special(v) or "", 0
    amax, amin = np.abs(finite).max(), np.abs(finite).min()
    ints = np.all(finite == np.round(finite))
    sci = _opts["sci_mode"]
    if sci is None:
        sci = amax >= 1e8 or (amin < 1e-4 and amin != 0) or (amin != 0 and amax / amin > 1000 and not ints)
    if ints and not sci:
        def f(v):
            return _special(v) or f"{v:.0f}."
    elif sci:
        def f(v):
            return _special(v) or f"{v:.{p}e}"
    else:
        def f(v):
            return _special(v) or f"{v:.{p}f}"
    return f, 0


def _special(v):
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def _format(a, dtype):
    if dtype is D.bool_:
        fmt = lambda v: "True" if v else "False"  # noqa: E731
    elif dtype.is_floating_point:
        fmt, _ = _float_formatter(a.astype(np.float64).ravel())
    else:
        fmt = str
    summarize = a.size > _opts["threshold"]
    items = a.ravel()
    if summarize:
        e = _opts["edgeitems"]
        items = np.concatenate([_edges(a, e).ravel()])
    width = max((len(fmt(v)) for v in items), default=1)
    return _nested(a, fmt, width, 1, summarize, _opts["edgeitems"])


def _edges(a, e):
    if a.ndim == 0:
        return a
    if a.shape[0] > 2 * e:
        a = np.concatenate([a[:e], a[-e:]])
    return np.stack([_edges(x, e) for x in a]) if a.ndim > 1 else a


def _nested(a, fmt, width, indent, summarize, e):
    if a.ndim == 0:
        return fmt(a.item())
    if a.ndim == 1:
        vals = [fmt(v).rjust(width) for v in a]
        if summarize and len(vals) > 2 * e:
            vals = vals[:e] + ["..."] + vals[-e:]
        per_line = max(1, (_opts["linewidth"] - indent - 1) // (width + 2))
        lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
        return "[" + (",\n" + " " * (indent + 6)).join(lines) + "]" if False else "[" + \
            (",\n" + " " * indent).join(lines) + "]"
    rows = list(a)
    parts = [_nested(r, fmt, width, indent + 1, summarize, e) for r in rows]
    if summarize and len(parts) > 2 * e:
        parts = parts[:e] + ["..."] + parts[-e:]
    sep = "," + "\n" * (a.ndim - 1) + " " * indent
    return "[" + sep.join(parts) + "]"


def tensor_repr(t, name="tensor"):
    from .tensor import to_numpy
    a = to_numpy(t)
    pad = " " * (len(name) + 1)
    body = _format(a, t.dtype).replace("\n", "\n" + pad)
    suffix = []
    from .runtime.device import default_device
    if t._storage.device is not default_device():
        suffix.append(f"device='cl:{t._storage.device.index}'")
    if t.numel() == 0 and t.ndim != 1:
        body = "[]"
        suffix.append(f"size={tuple(t.shape)}")
    if t.dtype not in (D.float32, D.int64, D.bool_) or (t.dtype is D.float32 and D.get_default_dtype() is not D.float32):
        suffix.append(f"dtype=engine.{t.dtype.name}")
    if t.grad_fn is not None:
        suffix.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._rg:
        suffix.append("requires_grad=True")
    tail = "".join(", " + s for s in suffix)
    return f"{name}({body}{tail})"
