"""Sorting and selection on the device (bitonic network, engine/runtime/sort.py), and sampling
from categorical distributions.

Every sort breaks ties by the original index, so it is always stable (stable=True is free) and
deterministic; NaN orders as the largest value, as in PyTorch.  Values outputs are differentiable:
their gradient is the upstream gradient scattered back to the source positions (a local
scatter/gather pair, so double backward works); index outputs are int64 and non-differentiable.
"""
import collections

import numpy as np

from .. import dtypes as D
from ..autograd.function import Function
from ..random import next_offset
from ..runtime import sort as _rs
from ..tensor import Tensor, empty as _empty, from_numpy_array, make, view_of, wrap_dim
from ._core import contiguous_raw, copy_into
from .creation import fill_raw

__all__ = ["sort", "argsort", "msort", "topk", "kthvalue", "median", "nanmedian", "unique",
           "unique_consecutive", "multinomial", "searchsorted", "bucketize"]

# torch.return_types look-alikes (namedtuples: index or unpack like a tuple, or use .values/.indices)
sort_result = collections.namedtuple("sort", ["values", "indices"])
topk_result = collections.namedtuple("topk", ["values", "indices"])
kthvalue_result = collections.namedtuple("kthvalue", ["values", "indices"])
median_result = collections.namedtuple("median", ["values", "indices"])
nanmedian_result = collections.namedtuple("nanmedian", ["values", "indices"])


def _prod(xs):
    r = 1
    for x in xs:
        r *= x
    return r


def _geom(shape, d):
    """(outer, n, inner) of a contiguous tensor of `shape` around dim d (0-d: one element)."""
    if not shape:
        return 1, 1, 1
    return _prod(shape[:d]), shape[d], _prod(shape[d + 1:])


def _len(x, d):
    return x._shape[d] if x._shape else 1


def _replace_dim(shape, d, m, keep=True):
    if not shape:
        return ()
    if keep:
        return tuple(shape[:d]) + (m,) + tuple(shape[d + 1:])
    return tuple(shape[:d]) + tuple(shape[d + 1:])


def _sorted_rows(x, d, descending):
    """Sort x along d on the device: (keys, idx int32, logP) as padded rows of 2^logP slots."""
    x = contiguous_raw(x)
    dev = x._storage.device
    outer, n, inner = _geom(x._shape, d)
    logP = _rs.log2_ceil(n)
    total = outer * inner << logP
    keys = _empty((total,), x.dtype, dev)
    idx = _empty((total,), D.int32, dev)
    _rs.sort_rows(dev, x._storage.buf, x._offset, keys._storage.buf, idx._storage.buf, outer, n, inner,
                  x.dtype.ctype, x.dtype.itemsize, descending)
    return keys, idx, logP


def _sort_take(x, d, descending, start, m, want_vals=True):
    """Positions start..start+m of x sorted along d: (values or None, int64 indices), contiguous."""
    dev = x._storage.device
    out_shape = _replace_dim(x._shape, d, m)
    vals = _empty(out_shape, x.dtype, dev) if want_vals else None
    inds = _empty(out_shape, D.int64, dev)
    outer, n, inner = _geom(x._shape, d)
    if outer * m * inner == 0:
        return vals, inds
    keys, idx, logP = _sorted_rows(x, d, descending)
    _rs.take(dev, keys._storage.buf, idx._storage.buf, x.dtype.ctype, descending, logP, start, m, outer, inner,
             vals._storage.buf if want_vals else None, 0, inds._storage.buf, 0)
    return vals, inds


def _argsort_raw(x, d, descending):
    return _sort_take(x, d, descending, 0, _len(x, d), want_vals=False)[1]


# ---- scatter / gather along a dim (the backward of selecting by sorted indices) ----------------
def _dim_index(kind, src, idx, d, out_shape):
    dev = src._storage.device
    src = contiguous_raw(src)
    idx = contiguous_raw(idx)
    big_shape = out_shape if kind == "scatter" else src._shape
    outer, n, inner = _geom(big_shape, d)
    m = idx.numel() // max(outer * inner, 1)
    out = _empty(out_shape, src.dtype, dev)
    if kind == "scatter":
        fill_raw(out, 0)
    _rs.dim_index(dev, kind, src.dtype.ctype, src._storage.buf, src._offset, idx._storage.buf, idx._offset,
                  out._storage.buf, 0, outer, m, n, inner)
    return out


class _DimScatter(Function):
    """out = zeros(in_shape); out[..., idx[..., i, ...], ...] = g[..., i, ...] along dim d."""
    node_name = "IndexScatterBackward0"

    @staticmethod
    def forward(ctx, g, idx, d, in_shape):
        ctx.save_for_backward(idx)
        ctx.d, ctx.g_shape = d, g._shape
        return _dim_index("scatter", g, idx, d, tuple(in_shape))

    @staticmethod
    def backward(ctx, gg):
        (idx,) = ctx.saved_tensors
        return _DimGather.apply(gg, idx, ctx.d, ctx.g_shape), None, None, None


class _DimGather(Function):
    node_name = "IndexGatherBackward0"

    @staticmethod
    def forward(ctx, src, idx, d, out_shape):
        ctx.save_for_backward(idx)
        ctx.d, ctx.src_shape = d, src._shape
        return _dim_index("gather", src, idx, d, tuple(out_shape))

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        return _DimScatter.apply(g, idx, ctx.d, ctx.src_shape), None, None, None


def _save_indices(ctx, x, d, i):
    ctx.mark_non_differentiable(i)
    ctx.set_materialize_grads(False)
    # a fresh view (not the output object itself) keeps the version check without output aliasing
    ctx.save_for_backward(view_of(i, i._shape, i._strides, i._offset))
    ctx.d, ctx.in_shape = d, x._shape


def _values_backward(ctx, gv):
    """One gradient per forward argument (x, d, and three non-tensor options)."""
    if gv is None:
        return None, None, None, None, None
    (i,) = ctx.saved_tensors
    return _DimScatter.apply(gv, i, ctx.d, ctx.in_shape), None, None, None, None


class _Select(Function):
    """(values, indices) of positions start..start+m of the sort of x along d."""

    @staticmethod
    def forward(ctx, x, d, descending, start, m):
        v, i = _sort_take(x, d, descending, start, m)
        _save_indices(ctx, x, d, i)
        return v, i

    @staticmethod
    def backward(ctx, gv, gi=None):
        return _values_backward(ctx, gv)


class _SortFn(_Select):
    node_name = "SortBackward0"


class _TopkFn(_Select):
    node_name = "TopkBackward0"


class _Pick(Function):
    """One element per row of the ascending sort: mode 0 the k-th (0-based), 1 median, 2 nanmedian."""

    @staticmethod
    def forward(ctx, x, d, mode, k, keepdim):
        dev = x._storage.device
        out_shape = _replace_dim(x._shape, d, 1, keepdim)
        vals = _empty(out_shape, x.dtype, dev)
        inds = _empty(out_shape, D.int64, dev)
        outer, n, inner = _geom(x._shape, d)
        if outer * inner:
            keys, idx, logP = _sorted_rows(x, d, False)
            _rs.pick(dev, keys._storage.buf, idx._storage.buf, x.dtype.ctype, logP, n, mode, k, outer * inner,
                     vals._storage.buf, 0, inds._storage.buf, 0)
        _save_indices(ctx, x, d, inds)
        return vals, inds

    @staticmethod
    def backward(ctx, gv, gi=None):
        return _values_backward(ctx, gv)


class _KthvalueFn(_Pick):
    node_name = "KthvalueBackward0"


class _MedianFn(_Pick):
    node_name = "MedianBackward1"


class _NanmedianFn(_Pick):
    node_name = "NanmedianBackward1"


# ---- public ops ------------------------------------------------------------------------------
def _dim(x, dim):
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a Tensor, got {type(x).__name__}")
    return wrap_dim(int(dim), x.ndim)


def sort(input, dim=-1, descending=False, stable=False, *, out=None):
    """(values, indices) sorted along dim; always stable; NaN is the largest value."""
    d = _dim(input, dim)
    v, i = _SortFn.apply(input, d, bool(descending), 0, _len(input, d))
    if out is not None:
        out[0].copy_(v)
        out[1].copy_(i)
        return sort_result(out[0], out[1])
    return sort_result(v, i)


def argsort(input, dim=-1, descending=False, stable=False):
    d = _dim(input, dim)
    return _argsort_raw(input, d, bool(descending))


def msort(input):
    return sort(input, 0).values


def topk(input, k, dim=-1, largest=True, sorted=True, *, out=None):
    """The k largest (smallest) elements along dim, in sorted order, with their indices."""
    d = _dim(input, dim)
    k = int(k)
    if not 0 <= k <= _len(input, d):
        raise RuntimeError("selected index k out of range")
    v, i = _TopkFn.apply(input, d, bool(largest), 0, k)
    return topk_result(v, i)


def kthvalue(input, k, dim=-1, keepdim=False, *, out=None):
    """The k-th smallest element (1-based k) along dim and its index."""
    d = _dim(input, dim)
    k = int(k)
    n = _len(input, d)
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    v, i = _KthvalueFn.apply(input, d, 0, k - 1, bool(keepdim))
    return kthvalue_result(v, i)


def _median(input, dim, keepdim, mode, fn, result):
    if dim is None:
        if input.numel() == 0:
            from .creation import full
            return full((), float("nan"), dtype=input.dtype, device=input.device)
        flat = input.reshape(-1)
        v, _ = fn.apply(flat, 0, mode, 0, False)
        return v
    d = _dim(input, dim)
    if input.ndim and input._shape[d] == 0:
        raise IndexError(f"median(): Expected reduction dim {d} to have non-zero size.")
    v, i = fn.apply(input, d, mode, 0, bool(keepdim))
    return result(v, i)


def median(input, dim=None, keepdim=False):
    """Lower median (NaN if the row has a NaN); with dim also the index."""
    return _median(input, dim, keepdim, 1, _MedianFn, median_result)


def nanmedian(input, dim=None, keepdim=False):
    """Lower median of the non-NaN values."""
    return _median(input, dim, keepdim, 2, _NanmedianFn, nanmedian_result)


def _flat_raw(x):
    x = contiguous_raw(x)
    return make(x._storage, (x.numel(),), (1,), x._offset, x.dtype)


def _upload_i64(arr, dev):
    return from_numpy_array(np.ascontiguousarray(arr, dtype=np.int64), dev, D.int64)


def _unique_impl(input, sort_first, return_inverse, return_counts, dim):
    if dim is not None:
        if input.ndim == 1 and wrap_dim(dim, 1) == 0:
            dim = None
        else:
            raise NotImplementedError("unique(dim=...) over sub-tensors is not implemented; flatten first or "
                                      "use dim=None")
    dev = input._storage.device
    x = _flat_raw(input.detach())
    n = x.numel()
    if n == 0:
        vals = _empty((0,), input.dtype, dev)
        inv = _empty(input._shape, D.int64, dev)
        counts = _empty((0,), D.int64, dev)
    else:
        if sort_first:
            keys, idx, logP = _sorted_rows(x, 0, False)
            src, soff, src_len = keys, 0, 1 << logP
        else:
            src, soff, src_len = x, x._offset, n
        flags = _empty((n,), D.int32, dev)
        _rs.run_starts(dev, src._storage.buf, soff, n, input.dtype.ctype, flags._storage.buf)
        fl = flags.numpy()  # the output size depends on the data: one sync
        starts = np.flatnonzero(fl)
        u = len(starts)
        st = _upload_i64(starts, dev)
        vals = _empty((u,), input.dtype, dev)
        _rs.dim_index(dev, "gather", input.dtype.ctype, src._storage.buf, soff, st._storage.buf, 0,
                      vals._storage.buf, 0, 1, u, src_len, 1)
        inv = counts = None
        if return_inverse:
            gid = _upload_i64(np.cumsum(fl) - 1, dev)
            if sort_first:
                perm = _empty((n,), D.int64, dev)
                _rs.take(dev, keys._storage.buf, idx._storage.buf, input.dtype.ctype, False, logP, 0, n, 1, 1,
                         None, 0, perm._storage.buf, 0)
                inv = _empty((n,), D.int64, dev)
                _rs.dim_index(dev, "scatter", "long", gid._storage.buf, 0, perm._storage.buf, 0,
                              inv._storage.buf, 0, 1, n, n, 1)
            else:
                inv = gid
            inv = make(inv._storage, input._shape, _contig(input._shape), 0, D.int64)
        if return_counts:
            counts = _upload_i64(np.diff(np.append(starts, n)), dev)
    if not return_inverse and not return_counts:
        return vals
    res = [vals]
    if return_inverse:
        res.append(inv)
    if return_counts:
        res.append(counts)
    return tuple(res)


def _contig(shape):
    from ..runtime.elementwise import contiguous_strides
    return contiguous_strides(tuple(shape))


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """Sorted distinct values (flattened), optionally with inverse indices and counts (syncs once)."""
    return _unique_impl(input, True, return_inverse, return_counts, dim)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """Collapse runs of equal consecutive values (flattened; syncs once)."""
    return _unique_impl(input, False, return_inverse, return_counts, dim)


def multinomial(input, num_samples, replacement=False, *, generator=None, out=None):
    """Category indices drawn from the rows of `input` (non-negative weights, need not sum to 1).

    With replacement: inverse-CDF search of a 53-bit uniform per sample.  Without: the exponential
    race (keys p / E, E ~ Exp(1); the num_samples largest keys), which gives sequential sampling's
    distribution.  The input check (negative / inf / nan, zero rows) syncs once, as PyTorch's."""
    if input.ndim not in (1, 2):
        raise RuntimeError(f"prob_dist must be 1 or 2 dim, got {input.ndim}")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{input.dtype.name.capitalize()}")
    ns = int(num_samples)
    if ns <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    n = input._shape[-1]
    if not replacement and ns > n:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    dev = input._storage.device
    B = input._shape[0] if input.ndim == 2 else 1
    out_shape = (B, ns) if input.ndim == 2 else (ns,)
    res = _empty(out_shape, D.int64, dev)
    if B == 0:
        return res
    if n == 0:
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    if n >= 2 ** 31:
        raise RuntimeError("number of categories cannot exceed 2^24")
    pct = input.dtype.ctype
    adt = D.float64 if dev.fp64 else D.float32
    act = adt.ctype
    if input.ndim == 2:
        ps0, ps1 = input._strides
    else:
        ps0, ps1 = 0, input._strides[0]
    cdf = _empty((B * n,), adt, dev)
    status = _empty((2 * B,), D.int32, dev)
    pbuf, poff = input._storage.buf, input._offset
    _rs.mn_prep(dev, pct, act, pbuf, poff, ps0, ps1, n, B, cdf._storage.buf, status._storage.buf)
    st = status.numpy()
    if (st[0::2] == 1).any():
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if (st[0::2] == 2).any():
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and (st[1::2] < ns).any():
        raise RuntimeError("invalid multinomial distribution (with replacement=False, not enough non-negative "
                           "category to sample)")
    if replacement:
        seed, off = next_offset((B * ns + 1) // 2, generator)
        _rs.mn_draw(dev, pct, act, cdf._storage.buf, n, B, ns, res._storage.buf, 0, seed, off)
    else:
        del cdf
        keys = _empty((B, n), adt, dev)
        seed, off = next_offset((B * n + 3) // 4, generator)
        _rs.mn_keys(dev, pct, act, pbuf, poff, ps0, ps1, n, B, keys._storage.buf, seed, off)
        _, idx = _sort_take(keys, 1, True, 0, ns, want_vals=False)
        res = make(idx._storage, out_shape, _contig(out_shape), 0, D.int64)
    if out is not None:
        out.copy_(res)
        return out
    return res


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None, out=None):
    """Insertion points of `input` in the (last dim of) `sorted_sequence` (binary search per value)."""
    seq = sorted_sequence
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, got side of left "
                               "while right was True")
        right = side == "right"
    if seq.ndim == 0:
        raise RuntimeError("torch.searchsorted(): boundaries tensor should have positive dimension, but got 0 "
                           "dimension")
    dev = seq._storage.device
    if not isinstance(input, Tensor):
        from .creation import tensor
        input = tensor(input, device=dev)
    per_row = seq.ndim > 1
    if per_row and (input.ndim != seq.ndim or tuple(seq._shape[:-1]) != tuple(input._shape[:-1])):
        raise RuntimeError(f"torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 "
                           f"dimensions of boundaries tensor and input value tensor must match, but we got "
                           f"boundaries tensor {list(seq._shape)} and input value tensor {list(input._shape)}")
    dt = D.promote_types(seq.dtype, input.dtype)
    seq = seq.detach()
    input = input.detach()
    if seq.dtype is not dt:
        seq = seq.to(dt)
    if input.dtype is not dt:
        input = input.to(dt)
    seq = contiguous_raw(seq)
    v = contiguous_raw(input)
    M = seq._shape[-1]
    K = v._shape[-1] if v.ndim else 1
    res = _empty(v._shape, D.int64, dev)
    srt = None
    if sorter is not None:
        if tuple(sorter._shape) != tuple(seq._shape):
            raise RuntimeError("torch.searchsorted(): boundary and sorter must have the same size, but got "
                               f"boundary tensor {list(seq._shape)} and got sorter tensor {list(sorter._shape)}")
        srt = contiguous_raw(sorter.to(D.int64) if sorter.dtype is not D.int64 else sorter)
    _rs.search_sorted(dev, dt.ctype, seq._storage.buf, seq._offset, srt._storage.buf if srt is not None else None,
                      srt._offset if srt is not None else 0, v._storage.buf, v._offset, res._storage.buf,
                      v.numel(), M, K, per_row, bool(right))
    if out_int32:
        r32 = _empty(res._shape, D.int32, dev)
        copy_into(r32, res)
        res = r32
    if out is not None:
        out.copy_(res)
        return out
    return res


def bucketize(input, boundaries, *, out_int32=False, right=False, out=None):
    if boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right, out=out)


def _m_sort(self, dim=-1, descending=False, stable=False):
    return sort(self, dim, descending, stable)


def _m_unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
    return unique(self, sorted, return_inverse, return_counts, dim)


for _n, _f in (("sort", _m_sort), ("argsort", argsort), ("msort", msort), ("topk", topk),
               ("kthvalue", kthvalue), ("median", median), ("nanmedian", nanmedian), ("unique", _m_unique),
               ("unique_consecutive", unique_consecutive), ("multinomial", multinomial)):
    setattr(Tensor, _n, _f)
