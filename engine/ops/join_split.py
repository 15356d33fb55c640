"""Joining and splitting: cat / stack (and the h/v/d/column stacks, atleast_nd), split / chunk /
tensor_split / unbind (views, with one backward that joins the gradients: as a view where the pieces
lie adjacent in one buffer, see adjacent_view).  Re-exported by shape.py, whose views they build on."""
import numbers

from .. import dtypes as D
from ..autograd.function import Function
from ..autograd.grad_mode import state as _state
from ..tensor import Tensor, empty, make, view_of, wrap_dim
from ._core import copy_into, device_of
from .shape import narrow, reshape, select


def _common(ts):
    """The device all of `ts` are on (else torch's error) and their promoted dtype."""
    dt = ts[0].dtype
    for x in ts[1:]:
        dt = D.promote_types(dt, x.dtype)
    return device_of(ts), dt


class Cat(Function):
    node_name = "CatBackward0"

    @staticmethod
    def forward(ctx, dim, *ts):
        dev, dt = _common(ts)
        ref = ts[0]
        sizes = [x._shape[dim] for x in ts]
        ctx.sizes, ctx.dim = sizes, dim
        shape = list(ref._shape)
        shape[dim] = sum(sizes)
        out = empty(tuple(shape), dt, dev)
        pos = 0
        for x, n in zip(ts, sizes):
            if n:
                sub = make(out._storage, x._shape, out._strides, out._offset + pos * out._strides[dim], dt)
                copy_into(sub, x)
            pos += n
        return out

    @staticmethod
    def backward(ctx, g):
        res = [None]
        pos = 0
        for n, need in zip(ctx.sizes, ctx.needs_input_grad[1:]):
            res.append(narrow(g, ctx.dim, pos, n) if need else None)
            pos += n
        return tuple(res)


def _check_cat(tensors, d, name="torch.cat"):
    ref = tensors[0]
    nd = ref.ndim
    for i, x in enumerate(tensors):
        if x.ndim != nd:
            raise RuntimeError(f"Tensors must have same number of dimensions: got {nd} and {x.ndim}")
        for j in range(nd):
            if j != d and x._shape[j] != ref._shape[j]:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. Expected size "
                                   f"{ref._shape[j]} but got size {x._shape[j]} for tensor number {i} in the list.")


def cat(tensors, dim=0, out=None):
    if isinstance(tensors, Tensor):
        raise TypeError("cat(): argument 'tensors' must be tuple of Tensors, not Tensor")
    tensors = list(tensors)
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    for i, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type(x).__name__}")
        if x.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    # legacy: 1-D empty tensors are skipped
    keep = [x for x in tensors if not (x.ndim == 1 and x._shape[0] == 0)] or tensors[:1]
    d = wrap_dim(dim, keep[0].ndim)
    _check_cat(keep, d)
    r = Cat.apply(d, *keep)
    if out is not None:
        out.copy_(r)
        return out
    return r


concat = concatenate = cat


class Stack(Function):
    node_name = "StackBackward0"

    @staticmethod
    def forward(ctx, dim, *ts):
        dev, dt = _common(ts)
        ctx.dim = dim
        s0 = ts[0]._shape
        shape = s0[:dim] + (len(ts),) + s0[dim:]
        out = empty(shape, dt, dev)
        st = out._strides
        sub_st = st[:dim] + st[dim + 1:]
        for i, x in enumerate(ts):
            copy_into(make(out._storage, s0, sub_st, i * st[dim], dt), x)
        return out

    @staticmethod
    def backward(ctx, g):
        return (None,) + tuple(select(g, ctx.dim, i) if need else None
                               for i, need in enumerate(ctx.needs_input_grad[1:]))


def stack(tensors, dim=0, out=None):
    if isinstance(tensors, Tensor):
        raise TypeError("stack(): argument 'tensors' must be tuple of Tensors, not Tensor")
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    s0 = tensors[0].shape
    for i, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type(x).__name__}")
        if x.shape != s0:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(s0)} at entry 0 and "
                               f"{list(x.shape)} at entry {i}")
    d = wrap_dim(dim, len(s0) + 1)
    r = Stack.apply(d, *tensors)
    if out is not None:
        out.copy_(r)
        return out
    return r


def hstack(tensors):
    tensors = [atleast_1d(x) for x in tensors]
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([atleast_2d(x) for x in tensors], 0)


def dstack(tensors):
    return cat([atleast_3d(x) for x in tensors], 2)


def column_stack(tensors):
    return hstack([reshape(x, (-1, 1)) if x.ndim <= 1 else x for x in tensors])


def atleast_1d(*xs):
    if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
        return tuple(atleast_1d(x) for x in xs[0])
    if len(xs) > 1:
        return tuple(atleast_1d(x) for x in xs)
    x = xs[0]
    return reshape(x, (1,)) if x.ndim == 0 else x


def atleast_2d(*xs):
    if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
        return tuple(atleast_2d(x) for x in xs[0])
    if len(xs) > 1:
        return tuple(atleast_2d(x) for x in xs)
    x = xs[0]
    return reshape(x, (1,) * (2 - x.ndim) + x.shape) if x.ndim < 2 else x


def atleast_3d(*xs):
    if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
        return tuple(atleast_3d(x) for x in xs[0])
    if len(xs) > 1:
        return tuple(atleast_3d(x) for x in xs)
    x = xs[0]
    if x.ndim == 0:
        return reshape(x, (1, 1, 1))
    if x.ndim == 1:
        return reshape(x, (1, x.shape[0], 1))
    if x.ndim == 2:
        return reshape(x, x.shape + (1,))
    return x


# ---- splitting: multi-output views ---------------------------------------------------------
class Split(Function):
    node_name = "SplitBackward0"

    @staticmethod
    def forward(ctx, x, sizes, d):
        ctx.d = d
        return _split_views(x, sizes, d)

    @staticmethod
    def backward(ctx, *grads):
        joined = None if _state.enabled else adjacent_view(grads, ctx.d)
        return (joined if joined is not None else cat(grads, ctx.d)), None, None


def adjacent_view(parts, d):
    """One view of the storage of `parts` whose consecutive slices along dim d they are, if they are
    exactly that (one storage and dtype, equal strides, each starting where the previous ends, and
    the whole not overlapping itself); else None.  Gradients written in place by a fused kernel (the
    attention backward's dq/dk/dv into one buffer) then join without the copy a cat makes."""
    p0 = parts[0]
    if not isinstance(p0, Tensor):
        return None
    st, sto, nd = p0._strides, p0._storage, p0.ndim
    off = p0._offset
    for p in parts:
        if not isinstance(p, Tensor) or p._storage is not sto or p._strides != st or p.dtype is not p0.dtype or \
                p._offset != off or p.ndim != nd:
            return None
        off += p._shape[d] * st[d]
    shape = list(p0._shape)
    shape[d] = sum(p._shape[d] for p in parts)
    if any(p._shape[:d] + p._shape[d + 1:] != p0._shape[:d] + p0._shape[d + 1:] for p in parts):
        return None
    span = 1
    for s, n in sorted((s, n) for s, n in zip(st, shape) if n > 1):
        if s < span:   # overlaps itself
            return None
        span = s * n
    return make(sto, tuple(shape), st, p0._offset, p0.dtype)


class SplitWithSizes(Split):
    node_name = "SplitWithSizesBackward0"


def _split_views(x, sizes, d):
    out = []
    pos = 0
    st = x._strides
    for s in sizes:
        shape = x._shape[:d] + (s,) + x._shape[d + 1:]
        out.append(view_of(x, shape, st, x._offset + pos * st[d]))
        pos += s
    return tuple(out)


def split(x, split_size_or_sections, dim=0):
    if x.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = wrap_dim(dim, x.ndim)
    n = x._shape[d]
    if isinstance(split_size_or_sections, numbers.Integral):
        s = int(split_size_or_sections)
        if s < 0:
            raise RuntimeError(f"split expects split_size be non-negative, but got split_size={s}")
        if s == 0 and n:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
        sizes = [min(s, n - i) for i in range(0, n, s)] if s and n else [0]
        cls = Split
    else:
        sizes = [int(v) for v in split_size_or_sections]
        if sum(sizes) != n or any(v < 0 for v in sizes):
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size "
                               f"at dimension {d}), but got split_sizes={sizes}")
        cls = SplitWithSizes
    if x._rg and _state.enabled:
        return cls.apply(x, tuple(sizes), d)
    return _split_views(x, sizes, d)


def chunk(x, chunks, dim=0):
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    if x.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    d = wrap_dim(dim, x.ndim)
    n = x._shape[d]
    size = -(-n // chunks)
    if n == 0:
        return split(x, [0] * chunks, d) if chunks > 1 else split(x, [0], d)
    return split(x, size, d)


def tensor_split(x, indices_or_sections, dim=0):
    d = wrap_dim(dim, x.ndim)
    n = x._shape[d]
    if isinstance(indices_or_sections, numbers.Integral):
        k = int(indices_or_sections)
        if k <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {k}")
        q, r = divmod(n, k)
        sizes = [q + 1] * r + [q] * (k - r)
    else:
        idx = [int(i) for i in indices_or_sections]
        bounds = [0] + [min(max(i if i >= 0 else i + n, 0), n) for i in idx] + [n]
        sizes = []
        for a, b in zip(bounds, bounds[1:]):
            sizes.append(max(b - a, 0))
        # later bounds below earlier ones give empty pieces starting at the earlier bound
    out = []
    pos = 0
    for s in sizes:
        out.append(narrow(x, d, pos, s))
        pos += s
    return tuple(out)


class Unbind(Function):
    node_name = "UnbindBackward0"

    @staticmethod
    def forward(ctx, x, d):
        ctx.d = d
        return _unbind_views(x, d)

    @staticmethod
    def backward(ctx, *grads):
        return stack(grads, ctx.d), None


def _unbind_views(x, d):
    shape = x._shape[:d] + x._shape[d + 1:]
    st = x._strides[:d] + x._strides[d + 1:]
    return tuple(view_of(x, shape, st, x._offset + i * x._strides[d]) for i in range(x._shape[d]))


def unbind(x, dim=0):
    if x.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = wrap_dim(dim, x.ndim)
    if x._rg and _state.enabled and x._shape[d]:
        return Unbind.apply(x, d)
    return _unbind_views(x, d)
