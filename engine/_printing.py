"""PyTorch-style repr: `tensor([[1., 2.]], device='cl:1', grad_fn=<AddBackward0>)`.

A port of torch/_tensor_str.py's formatting rules (precision, int mode, scientific
mode, column alignment, summarisation with '...', suffix wrapping) over a host
copy of the tensor; dtypes print as `engine.<name>`.
"""
import math

import numpy as np

from . import dtypes as D


class _Opts:
    precision = 4
    threshold = 1000
    edgeitems = 3
    linewidth = 80
    sci_mode = None


PRINT_OPTS = _Opts()


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None):
    """As torch.set_printoptions: profile 'default', 'short' or 'full', or single options."""
    if profile is not None:
        if profile == "default":
            PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems, PRINT_OPTS.linewidth = 4, 1000, 3, 80
        elif profile == "short":
            PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems, PRINT_OPTS.linewidth = 2, 1000, 2, 80
        elif profile == "full":
            PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems, PRINT_OPTS.linewidth = (
                4, math.inf, 3, 80)
    if precision is not None:
        PRINT_OPTS.precision = precision
    if threshold is not None:
        PRINT_OPTS.threshold = threshold
    if edgeitems is not None:
        PRINT_OPTS.edgeitems = edgeitems
    if linewidth is not None:
        PRINT_OPTS.linewidth = linewidth
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions():
    return {"precision": PRINT_OPTS.precision, "threshold": PRINT_OPTS.threshold,
            "edgeitems": PRINT_OPTS.edgeitems, "linewidth": PRINT_OPTS.linewidth, "sci_mode": PRINT_OPTS.sci_mode}


class _Formatter:
    def __init__(self, a, floating):
        self.floating_dtype = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        p = PRINT_OPTS.precision
        flat = a.reshape(-1)
        if not floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(_fmt_plain(v)))
        else:
            vals = flat.astype(np.float64)
            nz = vals[np.isfinite(vals) & (vals != 0)]
            if nz.size == 0:
                pass
            else:
                absv = np.abs(nz)
                vmin, vmax = float(absv.min()), float(absv.max())
                self.int_mode = bool(np.all(nz == np.ceil(nz)))
                if self.int_mode:
                    if vmax / vmin > 1000.0 or vmax > 1.0e8:
                        self.sci_mode = True
                        self.max_width = max(len(f"{v:.{p}e}") for v in nz.tolist())
                    else:
                        self.max_width = max(len(f"{v:.0f}") + 1 for v in nz.tolist())
                else:
                    if vmax / vmin > 1000.0 or vmax > 1.0e8 or vmin < 1.0e-4:
                        self.sci_mode = True
                        self.max_width = max(len(f"{v:.{p}e}") for v in nz.tolist())
                    else:
                        self.max_width = max(len(f"{v:.{p}f}") for v in nz.tolist())
        if PRINT_OPTS.sci_mode is not None:
            self.sci_mode = PRINT_OPTS.sci_mode

    def width(self):
        return self.max_width

    def format(self, value):
        p = PRINT_OPTS.precision
        if self.floating_dtype:
            value = float(value)
            if self.sci_mode:
                ret = f"{value:{self.max_width}.{p}e}"
            elif self.int_mode:
                ret = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    ret += "."
            else:
                ret = f"{value:.{p}f}"
        else:
            ret = _fmt_plain(value)
        return (self.max_width - len(ret)) * " " + ret


def _fmt_plain(v):
    return str(bool(v)) if isinstance(v, (bool, np.bool_)) else f"{v}"


def _vector_str(a, indent, summarize, fmt, cut):
    element_length = fmt.width() + 2
    per_line = max(1, int(math.floor((PRINT_OPTS.linewidth - indent) / element_length)))
    e = PRINT_OPTS.edgeitems
    if summarize and not e:
        data = ["..."]
    elif summarize and cut[0]:
        data = [fmt.format(v) for v in a[:e].tolist()] + [" ..."] + [fmt.format(v) for v in a[-e:].tolist()]
    else:
        data = [fmt.format(v) for v in a.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _tensor_str_with_formatter(a, indent, summarize, fmt, cut):
    """a: the (already summarised) data; cut[d]: whether dim d was cut to its edges."""
    dim = a.ndim
    if dim == 0:
        return fmt.format(a.item())
    if dim == 1:
        return _vector_str(a, indent, summarize, fmt, cut)
    e = PRINT_OPTS.edgeitems
    sub = cut[1:]
    if summarize and cut[0]:
        slices = ([_tensor_str_with_formatter(a[i], indent + 1, summarize, fmt, sub) for i in range(e)] + ["..."]
                  + [_tensor_str_with_formatter(a[i], indent + 1, summarize, fmt, sub)
                     for i in range(a.shape[0] - e, a.shape[0])])
    else:
        slices = [_tensor_str_with_formatter(a[i], indent + 1, summarize, fmt, sub) for i in range(a.shape[0])]
    return "[" + ("," + "\n" * (dim - 1) + " " * (indent + 1)).join(slices) + "]"


def _host_data(t):
    """(numpy data, summarize, cut): only the edges of a summarised tensor leave the device."""
    from .tensor import to_numpy
    e = PRINT_OPTS.edgeitems
    summarize = t.numel() > PRINT_OPTS.threshold
    if not summarize or not e:
        return to_numpy(t), summarize, (False,) * t.ndim
    from .autograd.grad_mode import no_grad
    from .ops.shape import cat, narrow
    cut = tuple(n > 2 * e for n in t.shape)
    with no_grad():
        for d, c in enumerate(cut):
            if c:
                n = t.shape[d]
                t = cat([narrow(t, d, 0, e), narrow(t, d, n - e, e)], d)
    return to_numpy(t), summarize, cut


def _tensor_str(t, indent):
    if t.numel() == 0:
        return "[]"
    a, summarize, cut = _host_data(t)
    if t.dtype is D.float16:
        a = a.astype(np.float32)
    fmt = _Formatter(a, t.dtype.is_floating_point)
    return _tensor_str_with_formatter(a, indent, summarize, fmt, cut)


def _add_suffixes(tensor_str, suffixes, indent, force_newline=False):
    tensor_strs = [tensor_str]
    last_line_len = len(tensor_str) - tensor_str.rfind("\n") + 1
    for suffix in suffixes:
        suffix_len = len(suffix)
        if force_newline or last_line_len + suffix_len + 2 > PRINT_OPTS.linewidth:
            tensor_strs.append(",\n" + " " * indent + suffix)
            last_line_len = indent + suffix_len
            force_newline = False
        else:
            tensor_strs.append(", " + suffix)
            last_line_len += suffix_len + 2
    tensor_strs.append(")")
    return "".join(tensor_strs)


def tensor_repr(t, name="tensor", tensor_contents=None):
    from .runtime.device import default_device
    prefix = name + "("
    indent = len(prefix)
    suffixes = []
    if t._storage.device is not default_device():
        suffixes.append(f"device='cl:{t._storage.device.index}'")
    default = D.get_default_dtype()
    if t.numel() == 0:
        if t.ndim != 1:
            suffixes.append(f"size={tuple(t.shape)}")
        if t.dtype is not default:
            suffixes.append(f"dtype=engine.{t.dtype.name}")
        body = "[]"
    else:
        if not PRINT_OPTS.edgeitems:
            suffixes.append(f"size={tuple(t.shape)}")
        if t.dtype not in (default, D.int64, D.bool_):
            suffixes.append(f"dtype=engine.{t.dtype.name}")
        body = tensor_contents if tensor_contents is not None else _tensor_str(t, indent)
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._rg:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
