"""gather / scatter / index_* / masked_* / nonzero / one_hot / tril / triu, with autograd.

Each op is one index kernel (runtime/index.py): gather-side ops read through an
index (gather, index_select, take), scatter-side ops write through one (scatter,
scatter_add, scatter_reduce, index_add, index_copy, index_fill, one_hot), with
atomics where values accumulate.  Out-of-range indices are clamped in the
kernel and flagged; the flag is then read (a host sync) and raises as PyTorch.
"""
from .. import dtypes as D
from ..autograd.function import Function
from ..runtime import index as _ix
from ..tensor import Tensor, empty, make, wrap_dim
from ._core import broadcast_shapes, device_of, ew, ew_into, expand_raw, sum_to
from .advanced import (IndexOutOfRangeError, _clone_raw, _op, _scalar_for, _tname, _zeros, accumulate_op,
                       nonzero_raw, raise_if_oob, run_inplace)

__all__ = ["gather", "scatter", "scatter_add", "scatter_reduce", "index_select", "index_add", "index_fill",
           "index_copy", "masked_fill", "masked_select", "masked_scatter", "nonzero", "argwhere", "one_hot",
           "tril", "triu", "take", "take_along_dim"]


def _t(x):
    return isinstance(x, Tensor)


def _as1(t):
    """A 0-d tensor viewed as shape (1,)."""
    return make(t._storage, (1,), (1,), t._offset, t.dtype) if t.ndim == 0 else t


def _nd(t):
    return max(t.ndim, 1)


def _oob_runtime(dim, size):
    def msg(k, v):
        return IndexOutOfRangeError(f"index {v} is out of bounds for dimension {dim} with size {size}")
    return msg


def _fill_dims(strides, dim, value=0):
    return tuple(value if d == dim else s for d, s in enumerate(strides))


def _dim_index_check(op, index, allowed=(D.int64, D.int32), msg=None):
    if index.dtype not in allowed:
        raise RuntimeError(msg or f"{op}(): Expected dtype int32/int64 for index")


# ---- gather ----------------------------------------------------------------------------
def _gather_raw(x, dim, index, check=True):
    """x.gather(dim, index) without autograd; x and index of equal rank (>= 1)."""
    dev = device_of([x, index])
    out = empty(index._shape, x.dtype, dev)
    st = x._strides
    _ix.run_index(dev, index._shape, _op(out), _op(x, _fill_dims(st, dim)),
                  [(index._storage, index.dtype.ctype, index._offset, index._strides, x._shape[dim], st[dim])], "g",
                  wrap=False)
    if check and index.numel():
        raise_if_oob(dev, _oob_runtime(dim, x._shape[dim]), index, ("gather", x._shape[dim]))
    return out


class Gather(Function):
    node_name = "GatherBackward0"

    @staticmethod
    def forward(ctx, x, dim, index, check=True):
        ctx.args = (x._shape, dim)
        ctx.save_for_backward(index)
        out = _gather_raw(_as1(x), dim, _as1(index), check)
        return out if index.ndim else make(out._storage, (), (), 0, out.dtype)

    @staticmethod
    def backward(ctx, g):
        shape, dim = ctx.args
        (index,) = ctx.saved_tensors
        z = _zeros(shape, g.dtype, g._storage.device)
        return ScatterAdd.apply(z, dim, index, g, False), None, None, None


def _check_gather_shapes(x, dim, index, what="gather"):
    if _nd(x) != _nd(index):
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    if index.numel():
        xs, js = _as1(x)._shape, _as1(index)._shape
        for d in range(len(xs)):
            if d != dim and js[d] > xs[d]:
                raise RuntimeError(f"Size does not match at dimension {d} expected index {list(index.shape)} to be "
                                   f"no larger than self {list(x.shape)} apart from dimension {dim}")


def gather(input, dim, index, *, sparse_grad=False, out=None):
    _dim_index_check("gather", index)
    d = wrap_dim(dim, _nd(input))
    device_of([input, index])
    _check_gather_shapes(input, d, index)
    r = Gather.apply(input, d, index)
    return _out(r, out)


def _out(r, out):
    if out is None:
        return r
    out.copy_(r)
    return out


def take_along_dim(input, indices, dim=None):
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    d = wrap_dim(dim, _nd(input))
    if input.ndim != indices.ndim:
        raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same number of dimensions, "
                           f"but got {input.ndim} dimensions for input, and {indices.ndim} dimensions for indices")
    xs = list(input.shape)
    js = list(indices.shape)
    xs[d] = js[d] = 1
    b = broadcast_shapes(tuple(xs), tuple(js))
    xe = list(b)
    xe[d] = input.shape[d]
    je = list(b)
    je[d] = indices.shape[d]
    return gather(input.expand(tuple(xe)), d, indices.expand(tuple(je)))


# ---- scatter ---------------------------------------------------------------------------
def _scatter_raw(out, dim, index, src, op, check=True, message=None):
    """out (modified in place) .scatter(dim, index, src|scalar) with op store/add/mul/max/min."""
    dev = device_of([out, index] + ([src] if _t(src) else []))
    o1, j1 = _as1(out), _as1(index)
    # src may be larger than index: its leading block is read
    inp = _op(_as1(src)) if _t(src) else ("scalar", out.dtype.ctype, _scalar_for(src, out.dtype))
    ost = o1._strides
    _ix.run_index(dev, j1._shape, _op(o1, _fill_dims(ost, dim)), inp,
                  [(j1._storage, j1.dtype.ctype, j1._offset, j1._strides, o1._shape[dim], ost[dim])], "s", op,
                  wrap=False)
    if check and index.numel():
        raise_if_oob(dev, message or _oob_runtime(dim, o1._shape[dim]))
    return out


def _check_scatter(x, dim, index, src, name="scatter"):
    _dim_index_check(name, index)
    device_of([x, index] + ([src] if _t(src) else []))
    if _nd(x) != _nd(index):
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    if _t(src):
        if _nd(src) != _nd(index):
            raise RuntimeError("Index tensor must have the same number of dimensions as src tensor")
        if src.dtype is not x.dtype:
            raise RuntimeError(f"{name}(): Expected self.dtype to be equal to src.dtype")
    if not index.numel():
        return
    xs, js = _as1(x)._shape, _as1(index)._shape
    ss = _as1(src)._shape if _t(src) else None
    bad = any(d != dim and js[d] > xs[d] for d in range(len(xs)))
    if ss is not None:
        bad = bad or any(js[d] > ss[d] for d in range(len(js)))
        if bad:
            raise RuntimeError(f"Expected index {list(index.shape)} to be no larger than self {list(x.shape)} apart "
                               f"from dimension {dim} and to be no larger size than src {list(src.shape)}")
    elif bad:
        raise RuntimeError(f"Expected index {list(index.shape)} to be no larger than self {list(x.shape)} apart "
                           f"from dimension {dim}")


def _src_grad(g, dim, index, src_shape):
    """gather(g, dim, index), zero-padded up to src's shape when src is larger than index."""
    r = Gather.apply(g, dim, index, False)
    if tuple(r._shape) == tuple(src_shape):
        return r
    from .shape import SliceScatter
    geom = (r._shape, tuple((d, 0, 1) for d in range(len(src_shape))), ())
    return SliceScatter.apply(r, tuple(src_shape), geom)


class Scatter(Function):
    node_name = "ScatterBackward0"

    @staticmethod
    def forward(ctx, x, dim, index, src, reduce, inplace=False):
        ctx.args = (dim, src._shape if _t(src) else None, reduce)
        ctx.save_for_backward(index)
        op = {None: "store", "add": accumulate_op(x.dtype), "multiply": "mul"}[reduce]
        return _finish(x, _scatter_raw(_target(x, inplace), dim, index, src, op), inplace)

    @staticmethod
    def backward(ctx, g):
        dim, sshape, reduce = ctx.args
        (index,) = ctx.saved_tensors
        if reduce == "multiply":
            raise RuntimeError("derivative for aten::scatter is not implemented")
        gx = gs = None
        if ctx.needs_input_grad[0]:
            gx = g if reduce == "add" else Scatter.apply(g, dim, index, 0.0, None)
        if sshape is not None and ctx.needs_input_grad[3]:
            gs = _src_grad(g, dim, index, sshape)
        return gx, None, None, gs, None, None


def scatter(input, dim, index, src=None, value=None, *, reduce=None, out=None):
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter() missing required argument 'src' or 'value'")
    if reduce is not None and reduce not in ("add", "multiply"):
        raise RuntimeError("reduce argument must be either add or multiply.")
    d = wrap_dim(dim, _nd(input))
    _check_scatter(input, d, index, src)
    return _out(Scatter.apply(input, d, index, src, reduce), out)


class ScatterAdd(Function):
    node_name = "ScatterAddBackward0"

    @staticmethod
    def forward(ctx, x, dim, index, src, check=True, inplace=False):
        ctx.args = (dim, src._shape)
        ctx.save_for_backward(index)
        out = _scatter_raw(_target(x, inplace), dim, index, src, accumulate_op(x.dtype), check)
        return _finish(x, out, inplace)

    @staticmethod
    def backward(ctx, g):
        dim, sshape = ctx.args
        (index,) = ctx.saved_tensors
        gs = _src_grad(g, dim, index, sshape) if ctx.needs_input_grad[3] else None
        return g, None, None, gs, None, None


def scatter_add(input, dim, index, src):
    d = wrap_dim(dim, _nd(input))
    _check_scatter(input, d, index, src, "scatter_add")
    return ScatterAdd.apply(input, d, index, src)


_REDUCE_OPS = {"sum": "add", "prod": "mul", "mean": "add", "amax": "max", "amin": "min"}


def _identity(reduce, dt):
    import numpy as np
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    if dt.is_floating_point:
        return float("-inf") if reduce == "amax" else float("inf")
    if dt is D.bool_:
        return 0 if reduce == "amax" else 1
    info = np.iinfo(dt.np)
    return int(info.min) if reduce == "amax" else int(info.max)


def _scatter_reduce_raw(x, dim, index, src, reduce, include_self):
    out = _clone_raw(x)
    dt = x.dtype
    if not include_self:
        _scatter_raw(out, dim, index, _identity(reduce, dt), "store")
    op = _REDUCE_OPS[reduce]
    if dt is D.bool_:
        op = {"add": "or", "mul": "and", "max": "or", "min": "and"}[op]
    _scatter_raw(out, dim, index, src, op, check=include_self)
    count = None
    if reduce == "mean":
        count = _zeros(x._shape, dt, x._storage.device)
        if include_self:
            from .creation import fill_raw
            fill_raw(count, 1)
        _scatter_raw(count, dim, index, 1, accumulate_op(dt), check=False)
        if dt.is_floating_point:
            ew("scatter_mean", "v2 > 0 ? v1 / v2 : v1", [out, count], dt, dt, out=out)
        else:
            ew("scatter_mean", "v2 > 0 ? ((v1 / v2) - (((v1 % v2) != 0) && ((v1 < 0) != (v2 < 0)))) : v1",
               [out, count], dt, dt, out=out)
    return out, count


class ScatterReduce(Function):
    node_name = "ScatterReduceBackward0"

    @staticmethod
    def forward(ctx, x, dim, index, src, reduce, include_self):
        out, count = _scatter_reduce_raw(x, dim, index, src, reduce, include_self)
        ctx.args = (dim, reduce, include_self)
        ctx.save_for_backward(index, x, src, out, count)
        return out

    @staticmethod
    def backward(ctx, g):
        dim, reduce, include_self = ctx.args
        index, x, src, out, count = ctx.saved_tensors
        gx = gs = None
        if reduce == "sum":
            gx = g if include_self else Scatter.apply(g, dim, index, 0.0, None)
            gs = Gather.apply(g, dim, index, False)
        elif reduce == "mean":
            gd = g / count.clamp(min=1)
            gx = gd if include_self else Scatter.apply(gd, dim, index, 0.0, None)
            gs = Gather.apply(gd, dim, index, False)
        elif reduce in ("amax", "amin"):
            # the gradient is shared evenly between every element equal to the result
            val = Gather.apply(out, dim, index, False)
            self_is = (x == out).to(g.dtype)
            if not include_self:
                self_is = Scatter.apply(self_is, dim, index, 0.0, None)
            src_is = (src[tuple(slice(0, n) for n in index.shape)] == val).to(g.dtype)
            cnt = ScatterAdd.apply(self_is, dim, index, src_is, False)
            gd = g / cnt
            gx = self_is * gd
            gs = src_is * Gather.apply(gd, dim, index, False)
        else:
            raise RuntimeError("the derivative for 'scatter_reduce' with reduce='prod' is not implemented in clgrad")
        if gs is not None and tuple(gs.shape) != tuple(src.shape):
            gs = _pad(gs, src.shape)
        return gx, None, None, gs, None, None


def _pad(t, shape):
    from .shape import SliceScatter
    geom = (t._shape, tuple((d, 0, 1) for d in range(len(shape))), ())
    return SliceScatter.apply(t, tuple(shape), geom)


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    if reduce not in _REDUCE_OPS:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    d = wrap_dim(dim, _nd(input))
    _check_scatter(input, d, index, src, "scatter_reduce")
    return ScatterReduce.apply(input, d, index, src, reduce, bool(include_self))


# ---- index_select / index_add / index_copy / index_fill ------------------------------------
def _vector_index(index, op, msg):
    if index.ndim > 1:
        raise IndexError(msg)
    return index


def _select_geometry(x, dim, index):
    """Iteration shape and operands of x.index_select(dim, index) for x of rank >= 1."""
    shape = tuple(index.numel() if d == dim else n for d, n in enumerate(x._shape))
    i1 = _as1(index)
    ist = tuple(i1._strides[0] if d == dim else 0 for d in range(x.ndim))
    return shape, (i1._storage, i1.dtype.ctype, i1._offset, ist, x._shape[dim], x._strides[dim])


def _index_select_raw(x, dim, index, check=True):
    dev = device_of([x, index])
    x1 = _as1(x)
    shape, iop = _select_geometry(x1, dim, index)
    out = empty(shape, x.dtype, dev)
    _ix.run_index(dev, shape, _op(out), _op(x1, _fill_dims(x1._strides, dim)), [iop], "g", wrap=False)
    if check and index.numel():
        raise_if_oob(dev, lambda k, v: IndexError("index out of range in self"), index, ("select", x1._shape[dim]))
    if x.ndim == 0:
        return make(out._storage, (), (), 0, out.dtype)
    return out


class IndexSelect(Function):
    node_name = "IndexSelectBackward0"

    @staticmethod
    def forward(ctx, x, dim, index, check=True):
        ctx.args = (x._shape, dim)
        ctx.save_for_backward(index)
        return _index_select_raw(x, dim, index, check)

    @staticmethod
    def backward(ctx, g):
        shape, dim = ctx.args
        (index,) = ctx.saved_tensors
        z = _zeros(shape, g.dtype, g._storage.device)
        return IndexAdd.apply(z, dim, index, g, 1, False), None, None, None


def index_select(input, dim, index, *, out=None):
    if index.dtype not in (D.int64, D.int32):
        raise RuntimeError("index_select(): Expected dtype int32 or int64 for index")
    _vector_index(index, "index_select", "index_select(): Index is supposed to be a vector")
    device_of([input, index])
    d = wrap_dim(dim, _nd(input))
    if input.ndim == 0 and index.numel() != 1:
        raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {index.numel()} value(s)")
    return _out(IndexSelect.apply(input, d, index), out)


def _index_scatter_raw(out, dim, index, src, op, check=True, message=None, wrap=False):
    """out[..., index[i], ...] (op)= src[..., i, ...] along dim (src a Tensor shaped like out but with
    len(index) at dim, or a scalar)."""
    dev = device_of([out, index] + ([src] if _t(src) else []))
    o1 = _as1(out)
    shape, iop = _select_geometry(o1, dim, index)
    if _t(src):
        s1 = _as1(src).reshape(shape) if src._shape != shape else src
        inp = _op(s1)
    else:
        inp = ("scalar", out.dtype.ctype, _scalar_for(src, out.dtype))
    _ix.run_index(dev, shape, _op(o1, _fill_dims(o1._strides, dim)), inp, [iop], "s", op, wrap=wrap)
    if check and index.numel():
        raise_if_oob(dev, message or _oob_runtime(dim, o1._shape[dim]))
    return out


def _check_index_source(x, dim, index, source, name):
    if index.dtype not in (D.int64, D.int32):
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index but got: {_tname(index.dtype)}")
    if index.ndim > 1:
        raise IndexError(f"{name}(): Index is supposed to be a vector")
    device_of([x, index, source])
    n = source._shape[dim] if source.ndim else 1
    if index.numel() != n:
        if name == "index_copy_":
            raise IndexError(f"index_copy_(): Number of indices ({index.numel()}) should be equal to "
                             f"source.size(dim) ({n})")
        raise RuntimeError(f"{name}(): Number of indices ({index.numel()}) should be equal to source.size(dim): "
                           f"({n}), for dim: {dim}")
    if _nd(source) != _nd(x) or any(a != b for d, (a, b) in enumerate(zip(_as1(x)._shape, _as1(source)._shape))
                                    if d != dim):
        if source.ndim or x.numel() != 1:
            raise RuntimeError(f"source tensor shape must match self tensor shape, excluding the specified "
                               f"dimension. Got self.shape = {list(x.shape)} source.shape = {list(source.shape)}")


class IndexAdd(Function):
    node_name = "IndexAddBackward0"

    @staticmethod
    def forward(ctx, x, dim, index, source, alpha, check=True, inplace=False):
        ctx.args = (dim, alpha, source._shape)
        ctx.save_for_backward(index)
        src = source
        if alpha != 1:
            src = ew("index_add_alpha", "v1 * v2", [source, _scalar_for(alpha, x.dtype)], x.dtype, x.dtype)
        out = _index_scatter_raw(_target(x, inplace), dim, index, src, accumulate_op(x.dtype), check)
        return _finish(x, out, inplace)

    @staticmethod
    def backward(ctx, g):
        dim, alpha, sshape = ctx.args
        (index,) = ctx.saved_tensors
        gs = None
        if ctx.needs_input_grad[3]:
            gs = IndexSelect.apply(g, dim, index, False)
            if alpha != 1:
                gs = gs * alpha
            if tuple(gs._shape) != tuple(sshape):
                gs = gs.reshape(sshape)
        return g, None, None, gs, None, None, None


def index_add(input, dim, index, source, *, alpha=1, out=None):
    d = wrap_dim(dim, _nd(input))
    _check_index_source(input, d, index, source, "index_add_")
    if source.dtype is not input.dtype:
        raise RuntimeError(f"index_add_(): self ({_tname(input.dtype)}) and source ({_tname(source.dtype)}) must "
                           "have the same scalar type")
    return _out(IndexAdd.apply(input, d, index, source, alpha), out)


class IndexCopy(Function):
    node_name = "IndexCopyBackward0"

    @staticmethod
    def forward(ctx, x, dim, index, source, inplace=False):
        ctx.args = (dim, source._shape)
        ctx.save_for_backward(index)
        n = _as1(x)._shape[dim]
        out = _index_scatter_raw(_target(x, inplace), dim, index, source, "store",
                                 message=lambda k, v: IndexError(
                                     f"index_copy_(): index {v} is out of bounds for dimension {dim} with size {n}"))
        return _finish(x, out, inplace)

    @staticmethod
    def backward(ctx, g):
        dim, sshape = ctx.args
        (index,) = ctx.saved_tensors
        gx = gs = None
        if ctx.needs_input_grad[0]:
            gx = IndexFill.apply(g, dim, index, 0.0, False)
        if ctx.needs_input_grad[3]:
            gs = IndexSelect.apply(g, dim, index, False)
            if tuple(gs._shape) != tuple(sshape):
                gs = gs.reshape(sshape)
        return gx, None, None, gs, None


def _check_index_copy(input, dim, index, source):
    d = wrap_dim(dim, _nd(input))
    _check_index_source(input, d, index, source, "index_copy_")
    if source.dtype is not input.dtype:
        raise RuntimeError(f"index_copy_(): self and source expected to have the same dtype, but got (self) "
                           f"{_tname(input.dtype)} and (source) {_tname(source.dtype)}")
    return d


def index_copy(input, dim, index, source):
    return IndexCopy.apply(input, _check_index_copy(input, dim, index, source), index, source)


class IndexFill(Function):
    node_name = "IndexFillBackward0"

    @staticmethod
    def forward(ctx, x, dim, index, value, check=True, inplace=False):
        ctx.args = (dim,)
        ctx.save_for_backward(index)
        v = value
        if _t(value):  # a 0-d tensor: read on the device through zero strides
            v = value if value.dtype is x.dtype else value.to(x.dtype)
            shape, _ = _select_geometry(_as1(x), dim, index)
            v = make(v._storage, shape, (0,) * len(shape), v._offset, v.dtype)
        n = _as1(x)._shape[dim]
        out = _index_scatter_raw(_target(x, inplace), dim, index, v, "store", check,
                                 message=lambda k, val: IndexError(
                                     f"index {val} is out of bounds for dimension {dim} with size {n}"), wrap=True)
        return _finish(x, out, inplace)

    @staticmethod
    def backward(ctx, g):
        (dim,) = ctx.args
        (index,) = ctx.saved_tensors
        gx = IndexFill.apply(g, dim, index, 0.0, False)
        gv = None
        if ctx.needs_input_grad[3]:
            gv = (g - gx).sum()
        return gx, None, None, gv, None, None


def _check_index_fill(input, dim, index, value):
    if index.dtype not in (D.int64, D.int32):
        raise RuntimeError("index_fill_(): Expected dtype int64 for index.")
    if index.ndim > 1:
        raise RuntimeError("Index has to be a vector/scalar")
    if _t(value) and value.ndim:
        raise RuntimeError(f"index_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                           f"{value.ndim} dimension(s).")
    device_of([input, index] + ([value] if _t(value) else []))
    return wrap_dim(dim, _nd(input))


def index_fill(input, dim, index, value):
    return IndexFill.apply(input, _check_index_fill(input, dim, index, value), index, value)


# ---- masked ---------------------------------------------------------------------------
_TORCH_NAMES = {"float32": "float", "float64": "double", "uint8": "unsigned char", "int8": "signed char",
                "int16": "short int", "int32": "int", "int64": "long int", "float16": "c10::Half"}


def _check_mask(mask, name="masked_fill_"):
    if not _t(mask) or mask.dtype is not D.bool_:
        got = _TORCH_NAMES.get(mask.dtype.name, mask.dtype.name) if _t(mask) else type(mask).__name__
        raise RuntimeError(f"{name} only supports boolean masks, but got mask with dtype {got}")


class MaskedFill(Function):
    node_name = "MaskedFillBackward0"

    @staticmethod
    def forward(ctx, x, mask, value, inplace=False):
        ctx.save_for_backward(mask)
        ctx.shapes = (x._shape, value._shape if _t(value) else None)
        dt = x.dtype
        v = value if _t(value) else _scalar_for(value, dt)
        if not inplace:
            return ew("masked_fill", "(v2 != 0) ? v3 : v1", [x, mask, v], dt, dt)
        if _t(v) and v._storage is x._storage:
            v = _clone_raw(v)
        ew_into("masked_fill", "(v2 != 0) ? v3 : v1", x, [x, mask, v], dt)
        x._storage.version += 1
        return x

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        xshape, vshape = ctx.shapes
        gx = gv = None
        if ctx.needs_input_grad[0]:
            gx = sum_to(MaskedFill.apply(g, mask, 0.0), xshape)
        if vshape is not None and ctx.needs_input_grad[2]:
            from .pointwise import logical_not
            gv = MaskedFill.apply(g, logical_not(mask), 0.0).sum().reshape(vshape)
        return gx, None, gv, None


def _masked_value(input, mask, value):
    _check_mask(mask)
    if _t(value):
        if value.ndim:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s).")
        device_of([input, mask, value])
        if value.dtype is not input.dtype:
            value = value.to(input.dtype)
    else:
        device_of([input, mask])
    return value


def masked_fill(input, mask, value):
    return MaskedFill.apply(input, mask, _masked_value(input, mask, value))


def masked_fill_(input, mask, value):
    value = _masked_value(input, mask, value)
    if broadcast_shapes(input._shape, mask._shape) != input._shape:
        raise RuntimeError(f"output with shape {list(input.shape)} doesn't match the broadcast shape "
                           f"{list(broadcast_shapes(input._shape, mask._shape))}")
    return run_inplace(MaskedFill, input, mask, value, others=(value,))


def masked_select(input, mask):
    if not _t(mask) or mask.dtype is not D.bool_:
        raise RuntimeError("masked_select: expected BoolTensor for mask")
    device_of([input, mask])
    shape = broadcast_shapes(input._shape, mask._shape)
    from .advanced import Index, _Adv
    m = expand_raw(mask, shape)
    coords = nonzero_raw(m)
    x = input if input._shape == shape else input.expand(shape)
    if not shape:
        x = x.reshape(1)
        coords = empty((coords._shape[0], 1), D.int64, coords._storage.device)
        from .creation import fill_raw
        fill_raw(coords, 0)
        shape = (1,)
    from .advanced import _column
    adv = _Adv(shape, tuple(range(len(shape))), [_column(coords, j) for j in range(len(shape))], False)
    return Index.apply(x, None, adv)


def masked_scatter(input, mask, source):
    if not _t(mask) or mask.dtype is not D.bool_:
        raise RuntimeError("masked_scatter_ only supports boolean masks, but got mask with dtype "
                           + (_TORCH_NAMES.get(mask.dtype.name, mask.dtype.name) if _t(mask) else "?"))
    device_of([input, mask, source])
    shape = broadcast_shapes(input._shape, mask._shape)
    x = input if input._shape == shape else input.expand(shape)
    m = expand_raw(mask, shape)
    from .advanced import IndexPut, _Adv, _column
    if not shape:
        x, m, shape = x.reshape(1), make(m._storage, (1,), (0,), m._offset, m.dtype), (1,)
    coords = nonzero_raw(m)
    cnt = coords._shape[0]
    if cnt > source.numel():
        raise RuntimeError("Number of elements of source < number of ones in mask")
    adv = _Adv(shape, tuple(range(len(shape))), [_column(coords, j) for j in range(len(shape))], False)
    vals = source.reshape(-1)[:cnt]
    if vals.dtype is not x.dtype:
        raise RuntimeError(f"masked_scatter_: expected self and source to have same dtypes but got "
                           f"{_tname(x.dtype)} and {_tname(source.dtype)}")
    r = IndexPut.apply(x, vals, None, adv, False)
    return r.reshape(()) if not input.shape and not mask.shape else r


# ---- nonzero / one_hot ----------------------------------------------------------------
def nonzero(input, *, out=None, as_tuple=False):
    c = nonzero_raw(input)
    if as_tuple:
        if input.ndim == 0:
            from .creation import fill_raw
            return (fill_raw(empty((c._shape[0],), D.int64, c._storage.device), 0),)
        from .advanced import _column
        return tuple(_column(c, j) for j in range(input.ndim))
    return _out(c, out)


def argwhere(input):
    return nonzero_raw(input)


def one_hot(tensor, num_classes=-1):
    if not _t(tensor) or tensor.dtype is not D.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    dev = tensor._storage.device
    if num_classes == -1:
        if tensor.numel() == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        from ._core import reduce_raw
        mx = reduce_raw("max", tensor, tuple(range(tensor.ndim)), False, D.int64)[0]
        num_classes = int(mx.item()) + 1
        if num_classes <= 0:
            raise RuntimeError("Class values must be non-negative.")
    elif num_classes < -1:
        raise RuntimeError("num_classes should be positive or -1")
    C = int(num_classes)
    shape = tensor._shape + (C,)
    out = _zeros(shape, D.int64, dev)
    if tensor.numel():
        t1 = _as1(tensor)
        ost = out._strides[:-1] if tensor.ndim else (0,)

        def msg(k, v):
            if v < 0:
                return IndexOutOfRangeError("Class values must be non-negative.")
            return IndexOutOfRangeError("Class values must be smaller than num_classes.")
        _ix.run_index(dev, t1._shape, (out._storage, "long", 0, ost), ("scalar", "long", 1),
                      [(t1._storage, "long", t1._offset, t1._strides, C, 1)], "s", "store", wrap=False)
        raise_if_oob(dev, msg)
    return out


# ---- tril / triu ------------------------------------------------------------------------
class Tri(Function):
    @staticmethod
    def forward(ctx, x, k, upper, inplace=False):
        ctx.args = (k, upper)
        out = x if inplace else empty(x._shape, x.dtype, x._storage.device)
        _ix.run_tri(x._storage.device, x._shape, _op(out), _op(x), k, upper)
        if inplace:
            x._storage.version += 1
        return out

    @staticmethod
    def backward(ctx, g):
        k, upper = ctx.args
        return (Triu if upper else Tril).apply(g, k, upper), None, None, None


class Tril(Tri):
    node_name = "TrilBackward0"


class Triu(Tri):
    node_name = "TriuBackward0"


def _tri(x, diagonal, upper):
    if x.ndim < 2:
        raise RuntimeError(f"{'triu' if upper else 'tril'}: input tensor must have at least 2 dimensions")
    return (Triu if upper else Tril).apply(x, int(diagonal), upper)


def tril(input, diagonal=0, *, out=None):
    return _out(_tri(input, diagonal, False), out)


def triu(input, diagonal=0, *, out=None):
    return _out(_tri(input, diagonal, True), out)


def _tri_(x, diagonal, upper):
    if x.ndim < 2:
        raise RuntimeError(f"{'triu' if upper else 'tril'}: input tensor must have at least 2 dimensions")
    return run_inplace(Triu if upper else Tril, x, int(diagonal), upper)


# ---- take -----------------------------------------------------------------------------
def take(input, index):
    _dim_index_check("take", index, msg="take(): Expected a long tensor for index, but got "
                     + _tname(index.dtype))
    device_of([input, index])
    n = input.numel()
    flat = input.reshape(-1)
    from .advanced import Index, _Adv
    adv = _Adv((n,), (0,), [index], True, message=lambda k, v: IndexError(
        f"out of range: tried to access index {v} on a tensor of {n} elements."))
    return Index.apply(flat, None, adv)


# ---- in-place variants and Tensor methods ------------------------------------------------
def _target(x, inplace):
    """Where an op writes: x itself (in place) or a fresh copy of x."""
    return x if inplace else _clone_raw(x)


def _finish(x, out, inplace):
    if inplace:
        x._storage.version += 1
    return out


def _unalias(x, src):
    """A source that shares x's memory is read from a copy (in-place ops write x while reading it)."""
    return _clone_raw(src) if _t(src) and src._storage is x._storage else src


def scatter_(self, dim, index, src=None, value=None, *, reduce=None):
    if src is None:
        src = value
    if reduce is not None and reduce not in ("add", "multiply"):
        raise RuntimeError("reduce argument must be either add or multiply.")
    d = wrap_dim(dim, _nd(self))
    _check_scatter(self, d, index, src)
    return run_inplace(Scatter, self, d, index, _unalias(self, src), reduce, others=(src,))


def scatter_add_(self, dim, index, src):
    d = wrap_dim(dim, _nd(self))
    _check_scatter(self, d, index, src, "scatter_add")
    return run_inplace(ScatterAdd, self, d, index, _unalias(self, src), True, others=(src,))


def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True):
    from .convert import inplace  # the backward of amax/amin needs the old values: computed out of place
    return inplace(self, lambda t, s: scatter_reduce(t, dim, index, s, reduce, include_self=include_self), src)


def index_add_(self, dim, index, source, *, alpha=1):
    d = wrap_dim(dim, _nd(self))
    _check_index_source(self, d, index, source, "index_add_")
    if source.dtype is not self.dtype:
        raise RuntimeError(f"index_add_(): self ({_tname(self.dtype)}) and source ({_tname(source.dtype)}) must "
                           "have the same scalar type")
    return run_inplace(IndexAdd, self, d, index, _unalias(self, source), alpha, True, others=(source,))


def index_copy_(self, dim, index, source):
    d = _check_index_copy(self, dim, index, source)
    return run_inplace(IndexCopy, self, d, index, _unalias(self, source), others=(source,))


def index_fill_(self, dim, index, value):
    d = _check_index_fill(self, dim, index, value)
    return run_inplace(IndexFill, self, d, index, value, True, others=(value,))


def masked_scatter_(self, mask, source):
    from .convert import inplace
    if broadcast_shapes(self._shape, mask._shape) != self._shape:
        raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                           f"{list(broadcast_shapes(self._shape, mask._shape))}")
    return inplace(self, masked_scatter, mask, source)


_METHODS = {
    "gather": gather, "scatter": scatter, "scatter_": scatter_, "scatter_add": scatter_add,
    "scatter_add_": scatter_add_, "scatter_reduce": scatter_reduce, "scatter_reduce_": scatter_reduce_,
    "index_select": index_select, "index_add": index_add, "index_add_": index_add_, "index_copy": index_copy,
    "index_copy_": index_copy_, "index_fill": index_fill, "index_fill_": index_fill_,
    "masked_fill": masked_fill, "masked_fill_": masked_fill_, "masked_select": masked_select,
    "masked_scatter": masked_scatter, "masked_scatter_": masked_scatter_, "nonzero": nonzero,
    "argwhere": argwhere, "tril": tril, "triu": triu, "take": take, "take_along_dim": take_along_dim,
    "tril_": lambda self, diagonal=0: _tri_(self, diagonal, False),
    "triu_": lambda self, diagonal=0: _tri_(self, diagonal, True),
}
for _n, _f in _METHODS.items():
    setattr(Tensor, _n, _f)
