"""Fused layer-norm kernels (used by engine.nn.functional.layer_norm).

The input is viewed as M contiguous rows of K elements (K = prod(normalized_shape)).
Forward, one kernel: per row mean, then the centred sum of squares (two passes over the row:
as accurate as Welford), rstd = rsqrt(var + eps), then y = (x - mean) * rstd [* w] [+ b];
mean and rstd (M,) are kept for the backward.
Backward dx, one kernel: per row a = mean(g*w), b = mean(g*w * xhat), then
    dx = rstd * (g*w - a - xhat * b)
dw = sum_rows(g * xhat) and db = sum_rows(g): one column kernel over blocks of rows (work-item per
(column, block)), plus a tiny pass summing the blocks when there are several.
One work-group per long row, one work-item per short row, 4-wide aligned loads on GPUs
(runtime/rows.py, where the generators and the roofline figures live).
"""
from .. import dtypes as D
from ..runtime import layer_norm as _ln
from ..tensor import empty
from ._core import contiguous_raw
from .creation import fill_raw

__all__ = []


def layer_norm_fwd(x, M, K, weight, bias, eps):
    """x: contiguous; returns (y with x's shape, mean (M,), rstd (M,)).  One kernel."""
    dev = x._storage.device
    y = empty(x._shape, x.dtype, dev)
    mean = empty((M,), x.dtype, dev)
    rstd = empty((M,), x.dtype, dev)
    if M == 0 or K == 0:
        return y, mean, rstd
    _ln.ln_fwd(dev, x, M, K, weight, bias, y, mean, rstd, eps)
    return y, mean, rstd


def layer_norm_bwd(g, x, M, K, pshape, weight, mean, rstd, need_dx, need_w, need_b):
    """(dx, dw, db) (each None where not needed); x, weight contiguous.  One dx kernel, one column
    kernel for dw and db together (plus a tiny second pass when the rows are split into blocks)."""
    dev = x._storage.device
    g = contiguous_raw(g)
    if g.dtype is not x.dtype:
        g = g.to(x.dtype)
    dx = dw = db = None
    if need_dx:
        dx = empty(x._shape, x.dtype, dev)
        if M and K:
            _ln.ln_bwd_dx(dev, g, x, M, K, weight, mean, rstd, dx)
    if need_w or need_b:
        dw = empty(pshape, x.dtype, dev) if need_w else None
        db = empty(pshape, x.dtype, dev) if need_b else None
        if K:
            if M:
                _ln.ln_bwd_wb(dev, g, x, M, K, mean, rstd, dw, db, lambda n, ct: empty(
                    (n,), D.float64 if ct == "double" else D.float32, dev))
            else:
                for t in (dw, db):
                    if t is not None:
                        fill_raw(t, 0)
    return dx, dw, db
