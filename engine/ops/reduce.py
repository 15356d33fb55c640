"""Reductions over int or tuple `dim` with `keepdim`, and cumulative scans.

Each op's forward is one generated reduction kernel (runtime/reduction.py) or scan
kernel (runtime/scan.py); its backward formula, in Tensor ops so that double backward
works, sits right below it.
"""
import builtins
import math
from collections import namedtuple

from .. import dtypes as D
from ..autograd.function import Function
from ..runtime import reduction as _redk
from ..runtime import scan as _scank
from ..runtime.elementwise import contiguous_strides
from ..tensor import Tensor, empty, make, wrap_dim
from ._core import norm_dims

__all__ = ["sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "aminmax", "var", "std",
           "var_mean", "std_mean", "logsumexp", "norm", "all", "any", "count_nonzero", "cumsum", "cumprod",
           "nansum", "nanmean"]

_bmax = builtins.max   # this module defines max, min, sum, all and any

_CT_DT = {"float": D.float32, "double": D.float64, "long": D.int64, "int": D.int32, "short": D.int16,
          "char": D.int8, "uchar": D.uint8}


class _ReturnTypes:
    """Named (values, indices) results, like torch.return_types."""

    def __init__(self):
        for name, fields in (("max", "values indices"), ("min", "values indices"), ("aminmax", "min max")):
            cls = namedtuple(name, fields)
            cls.__module__ = "engine.return_types"
            cls.__qualname__ = name
            cls.__repr__ = _rt_repr
            setattr(self, name, cls)


def _rt_repr(self):
    body = ",\n".join(f"{k}={v!r}" for k, v in zip(self._fields, self))
    return f"engine.return_types.{type(self).__name__}(\n{body})"


return_types = _ReturnTypes()


# ---- plumbing ------------------------------------------------------------------------------------
def _acc(dt):
    """Accumulator C type of sums and products."""
    if dt.is_floating_point:
        return "double" if dt is D.float64 else "float"
    return "long"


def _vacc(dt):
    """Accumulator C type of max/min: the value's own type (floats widened from half)."""
    if dt.is_floating_point:
        return "double" if dt is D.float64 else "float"
    return dt.ctype


def _scratch(dev):
    def scratch(n, ct):
        return empty((n,), _CT_DT[ct], dev)
    return scratch


def _reduce(op, x, dims, keepdim, out_dtype, acc, pre="v", post="acc", p=0, with_index=False, aux=None):
    """One reduction kernel over the normalised `dims`: (values, indices or None), no autograd."""
    dev = x._storage.device
    shape = x._shape
    kept = tuple(n for d, n in enumerate(shape) if d not in dims)
    out = empty(kept, out_dtype, dev)
    idx = empty(kept, D.int64, dev) if with_index else None
    _redk.run(dev, op, x, list(dims), out, acc, pre, post, p, idx, _scratch(dev), aux=aux)
    if keepdim and dims:
        ks = tuple(1 if d in dims else n for d, n in enumerate(shape))
        cs = contiguous_strides(ks)
        out = make(out._storage, ks, cs, 0, out.dtype)
        if idx is not None:
            idx = make(idx._storage, ks, cs, 0, D.int64)
    return out, idx


def _numel_of(shape, dims):
    n = 1
    for d in dims:
        n *= shape[d]
    return n


def _keep(t, in_shape, dims, keepdim):
    """t with the reduced dims put back as size 1 (a view)."""
    if keepdim or not dims:
        return t
    return t.reshape(tuple(1 if d in dims else n for d, n in enumerate(in_shape)))


def _expand_back(g, in_shape, dims, keepdim):
    """Broadcast a reduced gradient back over the reduced dims."""
    return _keep(g, in_shape, dims, keepdim).expand(in_shape)


def _cast(x, dtype):
    dtype = D.to_dtype(dtype)
    if dtype is None or dtype is x.dtype:
        return x
    return x.to(dtype)


def _where(c, a, b):
    from .pointwise import where
    return where(c, a, b)


# ---- sum / mean / prod ---------------------------------------------------------------------------
class Sum(Function):
    node_name = "SumBackward1"

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        ctx.args = (x.shape, dims, keepdim)
        if dtype is None:
            dtype = x.dtype if x.dtype.is_floating_point else D.int64
        return _reduce("sum", x, dims, keepdim, dtype, _acc(x.dtype))[0]

    @staticmethod
    def backward(ctx, g):  # every input element gets the output's gradient
        in_shape, dims, keepdim = ctx.args
        return _expand_back(g, in_shape, dims, keepdim), None, None, None


class Mean(Function):
    node_name = "MeanBackward1"

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        n = _numel_of(x._shape, dims)
        ctx.args = (x.shape, dims, keepdim, n)
        dt = dtype or x.dtype
        return _reduce("sum", x, dims, keepdim, dt, _acc(x.dtype), post="acc * p",
                       p=(1.0 / n) if n else float("nan"))[0]

    @staticmethod
    def backward(ctx, g):  # d mean = 1/n
        in_shape, dims, keepdim, n = ctx.args
        return _expand_back(g / n if n else g * float("nan"), in_shape, dims, keepdim), None, None, None


class SumAll(Sum):
    node_name = "SumBackward0"


class MeanAll(Mean):
    node_name = "MeanBackward0"


def sum(input, dim=None, keepdim=False, *, dtype=None, out=None):
    dims = norm_dims(dim, input.ndim)
    dtype = D.to_dtype(dtype)
    return _out((Sum if dim is not None else SumAll).apply(_cast(input, dtype), dims, keepdim, dtype), out)


def mean(input, dim=None, keepdim=False, *, dtype=None, out=None):
    dims = norm_dims(dim, input.ndim)
    dtype = D.to_dtype(dtype)
    dt = dtype or input.dtype
    if not dt.is_floating_point:
        raise RuntimeError(f"mean(): could not infer output dtype. {'Input' if dtype is None else 'Optional'} "
                           f"dtype must be either a floating point or complex dtype. Got: "
                           f"{dt.name.capitalize()}")
    return _out((Mean if dim is not None else MeanAll).apply(_cast(input, dtype), dims, keepdim, None), out)


class NanSum(Function):
    node_name = "NansumBackward0"

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.save_for_backward(x)
        ctx.args = (dims, keepdim)
        acc = _acc(x.dtype)
        return _reduce("sum", x, dims, keepdim, x.dtype, acc, pre=f"(v != v) ? ({acc})0 : v")[0]

    @staticmethod
    def backward(ctx, g):  # every non-NaN element gets the output's gradient
        from .pointwise import isnan
        (x,) = ctx.saved_tensors
        dims, keepdim = ctx.args
        return _expand_back(g, x.shape, dims, keepdim) * isnan(x).logical_not(), None, None


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    dtype = D.to_dtype(dtype)
    if not input.dtype.is_floating_point and (dtype is None or not dtype.is_floating_point):
        return sum(input, dim, keepdim, dtype=dtype)
    return NanSum.apply(_cast(input, dtype), norm_dims(dim, input.ndim), keepdim)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    from .pointwise import isnan
    if not input.dtype.is_floating_point:
        return mean(input, dim, keepdim, dtype=dtype)
    ok = ~isnan(input)
    return nansum(input, dim, keepdim, dtype=dtype) / ok.sum(dim, keepdim)


class Prod(Function):
    node_name = "ProdBackward1"

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype=None):
        ctx.save_for_backward(x)
        ctx.args = (dims, keepdim)
        dt = dtype or (x.dtype if x.dtype.is_floating_point else D.int64)
        return _reduce("prod", x, dims, keepdim, dt, _acc(x.dtype))[0]

    @staticmethod
    def backward(ctx, g):
        # d prod / d x_i = prod of the others: prod/x_i without zeros; with one zero in the
        # row only the zero gets the product of the rest; with two or more, nothing does
        (x,) = ctx.saved_tensors
        dims, keepdim = ctx.args
        if x.ndim == 0:
            return g, None, None, None
        gk = _keep(g, x.shape, dims, keepdim)
        zero = x == 0
        nz = zero.sum(dims, keepdim=True)
        xs = _where(zero, 1.0, x)
        p_nz = Prod.apply(xs, dims, True)
        gx = _where(nz == 0, p_nz / xs, _where((nz == 1) & zero, p_nz, 0.0))
        return gk * gx, None, None, None


class ProdAll(Prod):
    node_name = "ProdBackward0"


def prod(input, dim=None, keepdim=False, *, dtype=None):
    dtype = D.to_dtype(dtype)
    input = _cast(input, dtype)
    if dim is None:
        return ProdAll.apply(input, tuple(range(input.ndim)), False, dtype)
    if isinstance(dim, (tuple, list)):
        raise TypeError("prod(): argument 'dim' must be int, not tuple")
    return Prod.apply(input, norm_dims(dim, input.ndim), keepdim, dtype)


# ---- max / min family ----------------------------------------------------------------------------
class Amax(Function):
    node_name = "AmaxBackward0"

    @staticmethod
    def forward(ctx, x, dims, keepdim, is_max):
        out = _reduce("max" if is_max else "min", x, dims, keepdim, x.dtype, _vacc(x.dtype))[0]
        ctx.save_for_backward(x, out)
        ctx.args = (dims, keepdim)
        return out

    @staticmethod
    def backward(ctx, g):  # split evenly among the elements equal to the result
        x, out = ctx.saved_tensors
        dims, keepdim = ctx.args
        mask = x == _keep(out, x.shape, dims, keepdim)
        cnt = mask.sum(dims, keepdim=True)
        return _keep(g, x.shape, dims, keepdim) * mask / cnt, None, None, None


class Amin(Amax):
    node_name = "AminBackward0"


class MaxAll(Amax):
    node_name = "MaxBackward1"


class MinAll(Amax):
    node_name = "MinBackward1"


class MaxDim(Function):
    node_name = "MaxBackward0"

    @staticmethod
    def forward(ctx, x, dim, keepdim, is_max):
        dims = (dim,) if x.ndim else ()
        v, i = _reduce("max" if is_max else "min", x, dims, keepdim, x.dtype, _vacc(x.dtype), with_index=True)
        ctx.idx = i
        ctx.args = (x.shape, dim, keepdim)
        ctx.mark_non_differentiable(i)
        return v, i

    @staticmethod
    def backward(ctx, g, _gi):  # the gradient goes to the selected index
        return _index_backward(g, ctx.idx, *ctx.args), None, None, None


class MinDim(MaxDim):
    node_name = "MinBackward0"


def _index_backward(g, idx, shape, dim, keepdim):
    if len(shape) == 0:
        return g
    from .creation import arange
    if not keepdim:
        g = g.unsqueeze(dim)
        idx = idx.unsqueeze(dim)
    K = shape[dim]
    ar = arange(K, device=g.device).reshape(tuple(K if d == dim else 1 for d in range(len(shape))))
    return _where(ar == idx, g, 0.0)


def _check_nonempty(name, x, dims, all_dims, exc=RuntimeError):
    if x.numel() != 0:
        return
    if all_dims:
        if name in ("argmax", "argmin"):
            raise IndexError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
        raise exc(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
                  "reduction dim with the 'dim' argument.")
    for d in dims:
        if x._shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")


def _maxmin(name, is_max, input, dim, keepdim, other):
    if other is not None or isinstance(dim, Tensor):
        from .pointwise import maximum, minimum
        o = other if other is not None else dim
        return maximum(input, o) if is_max else minimum(input, o)
    if dim is None:
        if keepdim:
            raise TypeError(f"{name}() received an invalid combination of arguments - got keepdim without dim")
        _check_nonempty(name, input, (), True)
        return (MaxAll if is_max else MinAll).apply(input, tuple(range(input.ndim)), False, is_max)
    if isinstance(dim, (tuple, list)):
        raise TypeError(f"{name}() received an invalid combination of arguments - got (Tensor, tuple), but "
                        "expected one of: (Tensor input), (Tensor input, Tensor other), "
                        "(Tensor input, int dim, bool keepdim = False)")
    d = wrap_dim(dim, input.ndim)
    if input.ndim:
        _check_nonempty(name, input, (d,), False)
    v, i = (MaxDim if is_max else MinDim).apply(input, d, keepdim, is_max)
    return getattr(return_types, name)(v, i)


def max(input, dim=None, keepdim=False, *, other=None, out=None):
    return _out(_maxmin("max", True, input, dim, keepdim, other), out)


def min(input, dim=None, keepdim=False, *, other=None, out=None):
    return _out(_maxmin("min", False, input, dim, keepdim, other), out)


def _amaxmin(name, is_max, input, dim, keepdim):
    dims = norm_dims(dim, input.ndim)
    all_dims = dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0)
    _check_nonempty(name, input, dims, all_dims)
    return (Amax if is_max else Amin).apply(input, dims, keepdim, is_max)


def amax(input, dim=(), keepdim=False, *, out=None):
    return _out(_amaxmin("amax", True, input, dim, keepdim), out)


def amin(input, dim=(), keepdim=False, *, out=None):
    return _out(_amaxmin("amin", False, input, dim, keepdim), out)


class Aminmax(Function):
    node_name = "AminmaxBackward0"

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        lo = _reduce("min", x, dims, keepdim, x.dtype, _vacc(x.dtype))[0]
        hi = _reduce("max", x, dims, keepdim, x.dtype, _vacc(x.dtype))[0]
        ctx.save_for_backward(x, lo, hi)
        ctx.args = (dims, keepdim)
        return lo, hi

    @staticmethod
    def backward(ctx, glo, ghi):  # each split evenly among the elements equal to it
        x, lo, hi = ctx.saved_tensors
        dims, keepdim = ctx.args
        gx = None
        for g, r in ((glo, lo), (ghi, hi)):
            mask = x == _keep(r, x.shape, dims, keepdim)
            t = _keep(g, x.shape, dims, keepdim) * mask / mask.sum(dims, keepdim=True)
            gx = t if gx is None else gx + t
        return gx, None, None


def aminmax(input, *, dim=None, keepdim=False):
    if dim is None:
        _check_nonempty("aminmax", input, (), True)
        dims = tuple(range(input.ndim))
    else:
        dims = norm_dims(dim, input.ndim)
        _check_nonempty("aminmax", input, dims, False)
    return return_types.aminmax(*Aminmax.apply(input, dims, keepdim))


def _arg(name, is_max, input, dim, keepdim):
    if input.dtype is D.bool_:
        raise RuntimeError(f'"{name}_cpu" not implemented for \'Bool\'')
    if dim is None:
        _check_nonempty(name, input, (), True)
        dims = tuple(range(input.ndim))
    else:
        dims = (wrap_dim(dim, input.ndim),) if input.ndim else ()
        _check_nonempty(name, input, dims, False)
    i = _reduce("max" if is_max else "min", input, dims, keepdim, input.dtype, _vacc(input.dtype),
                with_index=True)[1]
    if dim is None and keepdim:
        i = i.reshape((1,) * input.ndim)
    return i


def argmax(input, dim=None, keepdim=False):
    return _arg("argmax", True, input, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return _arg("argmin", False, input, dim, keepdim)


# ---- var / std -----------------------------------------------------------------------------------
def _var_forward(ctx, x, dims, correction, keepdim, is_std, with_mean):
    n = _numel_of(x._shape, dims)
    acc = _acc(x.dtype)
    # two passes: the row mean (into an aux vector), then the mean squared deviation
    m = _reduce("sum", x, dims, False, _CT_DT[acc], acc, post="acc * p", p=(1.0 / n) if n else float("nan"))[0]
    dof = _bmax(0.0, n - correction)
    p = 1.0 / dof if dof > 0 else float("inf")
    out = _reduce("sum", x, dims, keepdim, x.dtype, acc, pre="(v - a) * (v - a)",
                  post="sqrt(acc * p)" if is_std else "acc * p", p=p, aux=m)[0]
    ctx.save_for_backward(x, out if is_std else None)
    ctx.args = (dims, keepdim, n - correction, is_std, n)
    if not with_mean:
        return out
    if m.dtype is not x.dtype:
        m = _reduce("sum", m, (), False, x.dtype, acc)[0]      # a cast
    if keepdim and dims:
        ks = tuple(1 if d in dims else k for d, k in enumerate(x._shape))
        m = make(m._storage, ks, contiguous_strides(ks), m._offset, m.dtype)
    return out, m


def _var_backward(ctx, g, gm=None):
    # d var = 2 (x - mean) / (n - correction); d std = d var / (2 std); d mean = 1 / n
    x, out = ctx.saved_tensors
    dims, keepdim, dof, is_std, n = ctx.args
    gk = _keep(g, x.shape, dims, keepdim)
    if is_std:
        ok = _keep(out, x.shape, dims, keepdim)
        gk = _where(ok == 0, 0.0, gk / (ok * 2))
    scale = 2.0 / dof if dof != 0 else math.inf
    gx = gk * scale * (x - x.mean(dims, keepdim=True))
    if gm is not None:
        gx = gx + _keep(gm, x.shape, dims, keepdim) * ((1.0 / n) if n else math.nan)
    return gx, None, None, None, None


class Var(Function):
    node_name = "VarBackward0"

    @staticmethod
    def forward(ctx, x, dims, correction, keepdim, is_std):
        return _var_forward(ctx, x, dims, correction, keepdim, is_std, False)

    @staticmethod
    def backward(ctx, g):
        return _var_backward(ctx, g)


class Std(Var):
    node_name = "StdBackward0"


class VarMean(Function):
    node_name = "VarMeanBackward0"

    @staticmethod
    def forward(ctx, x, dims, correction, keepdim, is_std):
        return _var_forward(ctx, x, dims, correction, keepdim, is_std, True)

    @staticmethod
    def backward(ctx, g, gm):
        return _var_backward(ctx, g, gm)


class StdMean(VarMean):
    node_name = "StdMeanBackward0"


def _var_args(name, input, dim, unbiased, correction):
    if isinstance(dim, bool):  # var(input, unbiased)
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError(f"{name}() received an invalid combination of arguments - got both 'unbiased' and "
                        "'correction'")
    if correction is None:
        correction = 0 if unbiased is False else 1
    if not input.dtype.is_floating_point:
        raise RuntimeError("std and var only support floating point and complex dtypes")
    return norm_dims(dim, input.ndim), correction


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
    dims, c = _var_args("var", input, dim, unbiased, correction)
    return _out(Var.apply(input, dims, c, keepdim, False), out)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
    dims, c = _var_args("std", input, dim, unbiased, correction)
    return _out(Std.apply(input, dims, c, keepdim, True), out)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    dims, c = _var_args("var_mean", input, dim, unbiased, correction)
    return VarMean.apply(input, dims, c, keepdim, False)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    dims, c = _var_args("std_mean", input, dim, unbiased, correction)
    return StdMean.apply(input, dims, c, keepdim, True)


# ---- logsumexp -----------------------------------------------------------------------------------
class LogSumExp(Function):
    node_name = "LogsumexpBackward0"

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        acc = _acc(x.dtype)
        mx = _reduce("max", x, dims, False, _CT_DT[acc], acc)[0]
        a = f"(isinf(a) ? ({acc})0 : a)"   # an infinite max shifts by 0, as torch does
        out = _reduce("sum", x, dims, keepdim, x.dtype, acc, pre=f"exp(v - {a})", post=f"log(acc) + {a}",
                      aux=mx)[0]
        ctx.save_for_backward(x, out)
        ctx.args = (dims, keepdim)
        return out

    @staticmethod
    def backward(ctx, g):  # d lse = softmax(x)
        x, out = ctx.saved_tensors
        dims, keepdim = ctx.args
        from .pointwise import exp
        return _keep(g, x.shape, dims, keepdim) * exp(x - _keep(out, x.shape, dims, keepdim)), None, None


def logsumexp(input, dim=None, keepdim=False, *, out=None):
    if not input.dtype.is_floating_point:
        input = input.to(D.get_default_dtype())
    return _out(LogSumExp.apply(input, norm_dims(dim, input.ndim), keepdim), out)


# ---- norm ----------------------------------------------------------------------------------------
class Norm(Function):
    node_name = "LinalgVectorNormBackward0"

    @staticmethod
    def forward(ctx, x, p, dims, keepdim):
        acc = _acc(x.dtype)
        if p == 2:
            r = _reduce("sum", x, dims, keepdim, x.dtype, acc, pre="v * v", post="sqrt(acc)")
        elif p == 1:
            r = _reduce("sum", x, dims, keepdim, x.dtype, acc, pre="fabs(v)")
        elif p == math.inf:
            r = _reduce("max", x, dims, keepdim, x.dtype, acc, pre="fabs(v)")
        elif p == -math.inf:
            r = _reduce("min", x, dims, keepdim, x.dtype, acc, pre="fabs(v)")
        elif p == 0:
            r = _reduce("sum", x, dims, keepdim, x.dtype, acc, pre="(v != 0)")
        else:
            r = _reduce("sum", x, dims, keepdim, x.dtype, acc, pre="pow(fabs(v), p)",
                        post=f"pow(acc, ({acc})1 / p)", p=p)
        out = r[0]
        ctx.save_for_backward(x, out)
        ctx.args = (p, dims, keepdim)
        return out

    @staticmethod
    def backward(ctx, g):
        from .pointwise import sign
        x, out = ctx.saved_tensors
        p, dims, keepdim = ctx.args
        gk = _keep(g, x.shape, dims, keepdim)
        nk = _keep(out, x.shape, dims, keepdim)
        if p == 0:
            gx = gk * 0.0 * x
        elif p == 1:
            gx = gk * sign(x)
        elif p == 2:  # x / |x|, and 0 for a zero vector
            gx = x * _where(nk == 0, 0.0, gk / nk)
        elif math.isinf(p):  # split among the elements of largest (smallest) magnitude
            mask = x.abs() == nk
            gx = gk * sign(x) * mask / mask.sum(dims, keepdim=True)
        else:  # sign(x) |x|^(p-1) / |x|_p^(p-1)
            ax = x.abs()
            sx = sign(x) * ax ** (p - 1)
            if p < 1:
                sx = _where(x == 0, 0.0, sx)
            gx = sx * _where(nk == 0, 0.0, gk / nk ** (p - 1))
        return gx, None, None, None


def norm(input, p="fro", dim=None, keepdim=False, out=None, dtype=None):
    if isinstance(p, str):
        if p == "fro" and isinstance(dim, (tuple, list)) and len(dim) > 2:
            raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(map(str, dim))}")
        if p == "fro":
            p = 2
        elif p == "nuc":
            raise NotImplementedError("norm(p='nuc') (the nuclear norm) is not supported")
        else:
            raise RuntimeError(f"norm(): unsupported p {p!r}")
    input = _cast(input, dtype)
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
                           f"{input.dtype.name.capitalize()}")
    p = float(p)
    dims = norm_dims(dim, input.ndim)
    if p < 0 or math.isinf(p):
        if input.numel() == 0 and (dim is None or (isinstance(dim, (tuple, list)) and not dim)):
            raise RuntimeError("linalg.vector_norm cannot compute the inf norm on an empty tensor because "
                               "the operation does not have an identity")
        for d in dims:
            if input._shape[d] == 0:
                raise RuntimeError(f"linalg.vector_norm cannot compute the inf norm on the dimension {d}because "
                                   "this dimension is empty and the operation does not have an identity")
    return _out(Norm.apply(input, p, dims, keepdim), out)


# ---- logical reductions --------------------------------------------------------------------------
def _logical(name, input, dim, keepdim):
    dims = norm_dims(dim, input.ndim)
    od = D.uint8 if input.dtype is D.uint8 else D.bool_
    pre = "(xv != 0)" if name == "any" else "(xv == 0)"
    post = "(acc != 0)" if name == "any" else "(acc == 0)"
    return _reduce("sum", input, dims, keepdim, od, "long", pre=pre, post=post)[0]


def all(input, dim=None, keepdim=False, *, out=None):
    return _out(_logical("all", input, dim, keepdim), out)


def any(input, dim=None, keepdim=False, *, out=None):
    return _out(_logical("any", input, dim, keepdim), out)


def count_nonzero(input, dim=None):
    dims = norm_dims(dim, input.ndim)
    return _reduce("sum", input, dims, False, D.int64, "long", pre="(xv != 0)")[0]


# ---- cumulative ----------------------------------------------------------------------------------
def _scan(op, x, dim, out_dtype, reverse):
    dev = x._storage.device
    out = empty(x._shape, out_dtype, dev)
    _scank.run(dev, op, x, dim, out, _acc(x.dtype), reverse, _scratch(dev))
    return out


class Cumsum(Function):
    node_name = "CumsumBackward0"

    @staticmethod
    def forward(ctx, x, dim, reverse, dtype=None):
        ctx.args = (dim, reverse)
        dt = dtype or (x.dtype if x.dtype.is_floating_point else D.int64)
        return _scan("sum", x, dim, dt, reverse)

    @staticmethod
    def backward(ctx, g):  # the gradient of a cumsum is the reversed cumsum of g
        dim, reverse = ctx.args
        return Cumsum.apply(g, dim, not reverse), None, None, None


def cumsum(input, dim, *, dtype=None, out=None):
    dtype = D.to_dtype(dtype)
    input = _cast(input, dtype)
    d = wrap_dim(dim, input.ndim)
    return _out(Cumsum.apply(input, d, False, dtype), out)


class Cumprod(Function):
    node_name = "CumprodBackward0"

    @staticmethod
    def forward(ctx, x, dim, dtype=None):
        dt = dtype or (x.dtype if x.dtype.is_floating_point else D.int64)
        out = _scan("prod", x, dim, dt, False)
        ctx.save_for_backward(x, out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, g):
        # grad_k = sum_{j>=k} g_j prod_{i<=j, i!=k} x_i.  Before a row's first zero z that is
        # revcumsum(g*out)_k / x_k over j < z; at z it is sum_{j>=z} g_j cumprod(x with x_z=1)_j;
        # after z it is 0.
        x, out = ctx.saved_tensors
        dim = ctx.dim
        if x.ndim == 0:
            return g, None, None
        zero = x == 0
        c = Cumsum.apply(zero, dim, False)          # zeros up to and including i
        before = c == 0
        first = zero & (c == 1)
        ga = Cumsum.apply(_where(before, g * out, 0.0), dim, True) / _where(before, x, 1.0)
        cy = Cumprod.apply(_where(first, 1.0, x), dim)
        gz = _where(c >= 1, g * cy, 0.0).sum(dim, keepdim=True)
        return _where(before, ga, _where(first, gz, 0.0)), None, None


def cumprod(input, dim, *, dtype=None, out=None):
    dtype = D.to_dtype(dtype)
    input = _cast(input, dtype)
    d = wrap_dim(dim, input.ndim)
    return _out(Cumprod.apply(input, d, dtype), out)


def _out(r, out):
    if out is None:
        return r
    if isinstance(r, tuple):
        for o, v in zip(out, r):
            _out(v, o)
        return out
    from .convert import copy_
    if tuple(out.shape) != tuple(r.shape):
        raise RuntimeError(f"out= tensor has shape {list(out.shape)}, expected {list(r.shape)}")
    copy_(out, r)
    return out


# ---- Tensor methods ------------------------------------------------------------------------------
def _inplace(fn):
    def m(self, *args, **kwargs):
        from .convert import inplace
        return inplace(self, fn, *args, **kwargs)
    return m


for _n in ("sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "aminmax", "var", "std",
           "logsumexp", "norm", "all", "any", "count_nonzero", "cumsum", "cumprod", "nansum", "nanmean"):
    setattr(Tensor, _n, globals()[_n])
Tensor.cumsum_ = _inplace(cumsum)
Tensor.cumprod_ = _inplace(cumprod)
