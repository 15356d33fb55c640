"""softmax and log_softmax along one dim.

Forward and backward are one fused kernel each (runtime/rows.py): per row the max and sum of
exp (online on GPUs), then the write; one work-group per long row, one work-item per short row.
Under create_graph the backward is the same formula in Tensor ops, so double backward works.
"""
from .. import dtypes as D
from ..autograd import grad_mode as _gm
from ..autograd.function import Function
from ..runtime import rows as _rows
from ..tensor import Tensor, empty, wrap_dim

__all__ = ["softmax", "log_softmax"]


# rows at least this long, and fewer than half as many as compute units, take the split path on
# GPUs.  H200 (NVIDIA OpenCL): (8, 50257) fused 83 us, split 198 us (three launches of Python);
# (8, 262144) fused 375 us, split 201 us; (1, 2^20) fused 1448 us, split 185 us.
_SPLIT_K = 1 << 17


def _fused(x, dim, log):
    dev = x._storage.device
    acc = "double" if x.dtype is D.float64 else "float"
    if _split_rows(x, dim):
        return _split(x, dim, log, acc)
    out = empty(x._shape, x.dtype, dev)
    _rows.softmax_fwd(dev, x, dim if x.ndim else 0, out, log)
    return out


def _split_rows(y, dim):
    """Few long rows on a GPU: one work-group per row would leave the device idle."""
    dev = y._storage.device
    K = y._shape[dim] if y.ndim else 1
    return not dev.is_cpu and K >= _SPLIT_K and y.numel() // K * 2 < dev.compute_units


def _fused_bwd(y, g, dim, log):
    """One kernel: dx = y * (g - sum(g*y)) or g - exp(y) * sum(g) per row."""
    if g.dtype is not y.dtype:
        g = g.to(y.dtype)
    dx = empty(y._shape, y.dtype, y._storage.device)
    _rows.softmax_bwd(y._storage.device, y, g, dim if y.ndim else 0, dx, log)
    return dx


def _split(x, dim, log, acc):
    """Few long rows on a GPU: the row max and log-sum-exp as multi-group reductions, then
    one elementwise pass (one work-group per row would leave most of the device idle)."""
    from ._core import ew
    from .reduce import _CT_DT, _reduce
    mx = _reduce("max", x, (dim,), False, _CT_DT[acc], acc)[0]
    lse = _reduce("sum", x, (dim,), True, _CT_DT[acc], acc, pre="exp(v - a)", post="a + log(acc)", aux=mx)[0]
    return ew("log_softmax_fin" if log else "softmax_fin", "v1 - v2" if log else "exp(v1 - v2)", [x, lse],
              x.dtype, _CT_DT[acc])


class Softmax(Function):
    node_name = "SoftmaxBackward0"

    @staticmethod
    def forward(ctx, x, dim):
        out = _fused(x, dim, False)
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, g):  # dx = y * (g - sum(g * y))
        (y,) = ctx.saved_tensors
        if not _gm.is_grad_enabled() and not _split_rows(y, ctx.dim):
            return _fused_bwd(y, g, ctx.dim, False), None
        return y * (g - (g * y).sum(ctx.dim, keepdim=True)), None


class LogSoftmax(Function):
    node_name = "LogSoftmaxBackward0"

    @staticmethod
    def forward(ctx, x, dim):
        out = _fused(x, dim, True)
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, g):  # dx = g - exp(y) * sum(g)
        (y,) = ctx.saved_tensors
        if not _gm.is_grad_enabled() and not _split_rows(y, ctx.dim):
            return _fused_bwd(y, g, ctx.dim, True), None
        return g - y.exp() * g.sum(ctx.dim, keepdim=True), None


def _prep(name, input, dim, dtype):
    if dim is None:
        raise TypeError(f"{name}() missing 1 required positional argument: 'dim'")
    if dtype is not None:
        dt = D.to_dtype(dtype)
        if dt is not input.dtype:
            input = input.to(dt)
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"\"{name}_lastdim_kernel_impl\" not implemented for "
                                  f"'{_TORCH_NAME.get(input.dtype.name, input.dtype.name)}'")
    return input, wrap_dim(dim, input.ndim)


_TORCH_NAME = {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def softmax(input, dim=None, dtype=None):
    x, d = _prep("softmax", input, dim, dtype)
    return Softmax.apply(x, d)


def log_softmax(input, dim=None, dtype=None):
    x, d = _prep("log_softmax", input, dim, dtype)
    return LogSoftmax.apply(x, d)


Tensor.softmax = softmax
Tensor.log_softmax = log_softmax
