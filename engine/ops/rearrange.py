"""Copies that rearrange elements: repeat / tile, flip / roll, diag / diag_embed.  Re-exported by
shape.py."""
import numbers

from ..autograd.function import Function
from ..runtime.elementwise import contiguous_strides
from ..tensor import empty, make, wrap_dim
from ._core import contiguous_raw, copy_into
from .shape import Contiguous, _diag_geom, _geom_view, _sizes, clone, diagonal, diagonal_fn, reshape


# ---- repeat / tile ------------------------------------------------------------------------
class Repeat(Function):
    node_name = "RepeatBackward0"

    @staticmethod
    def forward(ctx, x, sizes):
        ctx.args = (x._shape, sizes)
        xs_shape = (1,) * (len(sizes) - x.ndim) + x._shape
        xs = make(x._storage, xs_shape, (0,) * (len(sizes) - x.ndim) + x._strides, x._offset, x.dtype)
        # an interleaved (r, n) broadcast view, copied once
        inter_shape, inter_st = [], []
        for r, n, s in zip(sizes, xs_shape, xs._strides):
            inter_shape += [r, n]
            inter_st += [0, s]
        out_shape = tuple(r * n for r, n in zip(sizes, xs_shape))
        out = empty(out_shape, x.dtype, x._storage.device)
        if out.numel():
            src = make(x._storage, tuple(inter_shape), tuple(inter_st), x._offset, x.dtype)
            dst = make(out._storage, tuple(inter_shape), contiguous_strides(tuple(inter_shape)), 0, x.dtype)
            copy_into(dst, src)
        return out

    @staticmethod
    def backward(ctx, g):
        in_shape, sizes = ctx.args
        lead = len(sizes) - len(in_shape)
        xs_shape = (1,) * lead + tuple(in_shape)
        inter = []
        for r, n in zip(sizes, xs_shape):
            inter += [r, n]
        r = reshape(g, tuple(inter)).sum(dim=tuple(range(0, 2 * len(sizes), 2)))
        return reshape(r, in_shape), None


def repeat(x, *sizes):
    sizes = _sizes(sizes)
    if len(sizes) < x.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of "
                           "tensor")
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(sizes)}: {list(sizes)}")
    return Repeat.apply(x, sizes)


def tile(x, dims):
    dims = _sizes((dims,)) if not isinstance(dims, numbers.Integral) else (int(dims),)
    if len(dims) < x.ndim:
        dims = (1,) * (x.ndim - len(dims)) + dims
    return repeat(x, dims)


# ---- flip / roll ----------------------------------------------------------------------------
class Flip(Function):
    node_name = "FlipBackward0"

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        off = x._offset
        st = list(x._strides)
        for d in dims:
            if x._shape[d] > 0:
                off += (x._shape[d] - 1) * st[d]
            st[d] = -st[d]
        out = empty(x._shape, x.dtype, x._storage.device)
        if out.numel():
            copy_into(out, make(x._storage, x._shape, tuple(st), off, x.dtype))
        return out

    @staticmethod
    def backward(ctx, g):
        return flip(g, ctx.dims), None


def flip(x, *dims, **kw):
    if "dims" in kw:
        dims = (kw.pop("dims"),)
    dims = _sizes(dims)
    nd = x.ndim
    ds = tuple(wrap_dim(d, nd) for d in dims) if nd else ()
    if len(set(ds)) != len(ds):
        raise RuntimeError(f"dims has duplicates, original flip dims size={len(ds)}, but unique flip dims "
                           f"size={len(set(ds))}")
    return Flip.apply(x, ds)


def fliplr(x):
    if x.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(x, 1)


def flipud(x):
    if x.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(x, 0)


def _roll_raw(x, shifts, dims):
    out = x
    for s, d in zip(shifts, dims):
        n = out._shape[d]
        if n == 0:
            continue
        s %= n
        if s == 0:
            continue
        src = out
        out = empty(src._shape, src.dtype, src._storage.device)
        st, ost = src._strides, out._strides

        def part(t, tst, start, length):
            shape = t._shape[:d] + (length,) + t._shape[d + 1:]
            return make(t._storage, shape, tst, t._offset + start * tst[d], t.dtype)
        copy_into(part(out, ost, s, n - s), part(src, st, 0, n - s))
        copy_into(part(out, ost, 0, s), part(src, st, n - s, s))
    if out is x:
        out = contiguous_raw(x) if not x.is_contiguous() else Contiguous.forward(None, x)
    return out


class Roll(Function):
    node_name = "RollBackward0"

    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.args = (shifts, dims)
        if dims is None:
            flat = contiguous_raw(x)
            flat = make(flat._storage, (x.numel(),), (1,), flat._offset, x.dtype)
            r = _roll_raw(flat, shifts, (0,))
            return make(r._storage, x._shape, contiguous_strides(x._shape), r._offset, x.dtype)
        return _roll_raw(x, shifts, dims)

    @staticmethod
    def backward(ctx, g):
        shifts, dims = ctx.args
        return roll(g, tuple(-s for s in shifts), dims), None, None


def roll(x, shifts, dims=None):
    shifts = (shifts,) if isinstance(shifts, numbers.Integral) else tuple(int(s) for s in shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:0")
        return Roll.apply(x, shifts, None)
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    dims = tuple(wrap_dim(d, x.ndim) for d in dims)
    return Roll.apply(x, shifts, dims)


# ---- diag ------------------------------------------------------------------------------
class DiagEmbed(Function):
    node_name = "DiagEmbedBackward0"

    @staticmethod
    def forward(ctx, x, offset, d1, d2):
        ctx.args = (offset, d1, d2)
        n = x._shape[-1] + abs(offset)
        shape = list(x._shape[:-1])
        for d in sorted((d1, d2)):
            shape.insert(d, n)
        from .creation import fill_raw
        z = fill_raw(empty(tuple(shape), x.dtype, x._storage.device), 0)
        s, st, off = _geom_view(z, _diag_geom(z, offset, d1, d2))
        copy_into(make(z._storage, s, st, off, z.dtype), x)
        return z

    @staticmethod
    def backward(ctx, g):
        offset, d1, d2 = ctx.args
        return diagonal(g, offset, d1, d2), None, None, None


def diag_embed(x, offset=0, dim1=-2, dim2=-1):
    nd = x.ndim + 1
    d1, d2 = wrap_dim(dim1, nd), wrap_dim(dim2, nd)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return DiagEmbed.apply(x, offset, d1, d2)


def diag(x, diagonal=0):
    if x.ndim == 1:
        return DiagEmbed.apply(x, diagonal, 0, 1)
    if x.ndim == 2:
        return clone(diagonal_fn(x, diagonal))
    raise RuntimeError("diag(): Supports 1D or 2D tensors. Got " + f"{x.ndim}D")
