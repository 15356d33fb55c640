"""Reductions over int or tuple `dim` with `keepdim`."""
from .. import dtypes as D
from ..autograd.function import Function
from ._core import norm_dims, reduce_raw, to_float_dtype

__all__ = ["sum", "mean"]


def _expand_back(g, in_shape, dims, keepdim):
    """Broadcast a reduced gradient back over the reduced dims."""
    if not keepdim and dims:
        shape = tuple(1 if d in dims else n for d, n in enumerate(in_shape))
        g = g.reshape(shape)
    return g.expand(in_shape)


class Sum(Function):
    node_name = "SumBackward1"

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        ctx.args = (x.shape, dims, keepdim)
        if dtype is None:
            dtype = x.dtype if x.dtype.is_floating_point else D.int64
        return reduce_raw("sum", x, dims, keepdim, dtype)[0]

    @staticmethod
    def backward(ctx, g):  # every input element gets the output's gradient
        in_shape, dims, keepdim = ctx.args
        return _expand_back(g, in_shape, dims, keepdim), None, None, None


class Mean(Function):
    node_name = "MeanBackward1"

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        n = 1
        for d in dims:
            n *= x._shape[d]
        ctx.args = (x.shape, dims, keepdim, n)
        dt = dtype or x.dtype
        if not dt.is_floating_point:
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a floating point "
                               f"or complex dtype. Got: {x.dtype.name.capitalize()}")
        return reduce_raw("sum", x, dims, keepdim, dt, post="acc * p", p=(1.0 / n) if n else float("nan"))[0]

    @staticmethod
    def backward(ctx, g):  # d mean = 1/n
        in_shape, dims, keepdim, n = ctx.args
        return _expand_back(g / n, in_shape, dims, keepdim), None, None, None


def sum(input, dim=None, keepdim=False, dtype=None):
    dims = norm_dims(dim, input.ndim)
    return Sum.apply(input, dims, keepdim, D.to_dtype(dtype))


def mean(input, dim=None, keepdim=False, dtype=None):
    dims = norm_dims(dim, input.ndim)
    return Mean.apply(input, dims, keepdim, D.to_dtype(dtype))
