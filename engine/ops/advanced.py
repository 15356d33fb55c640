"""Advanced indexing (integer tensors, lists, boolean masks): reading and assigning.

An index tuple (Ellipsis already expanded by indexing.py) is split into
- a basic part (ints, slices, None): a strided view geometry of x (`geom`, as
  indexing.basic_geometry gives it), and
- an `_Adv`: index tensors on some dims of that view (masks become the columns
  of their nonzero()), broadcast together, whose result dims go where the first
  of them was if they are adjacent, else first (NumPy/PyTorch rules).

Reading is one gather kernel (runtime/index.py) over the result; its backward
scatters the gradient back with atomic adds (`IndexAccum`).  Assignment is one
scatter kernel.  Index tensors on the device are bounds-checked in the kernel
(clamped, flagged; the flag is read afterwards, a host sync); lists and numpy
arrays are checked on the host and need no sync; indices already checked (masks,
backward passes) skip the check.
"""
import numbers
import weakref

import numpy as np

from .. import dtypes as D
from ..autograd.function import Function
from ..runtime import index as _ix
from ..runtime import launch as _launch
from ..tensor import Tensor, empty, from_numpy_array, make
from ._core import broadcast_shapes, copy_into, device_of, ew_into, expand_raw, state, sum_to
from .creation import _flat, _tensors_to_lists

__all__ = ["index_put", "index_put_"]


class IndexOutOfRangeError(IndexError, RuntimeError):
    """An out-of-range index where PyTorch raises RuntimeError: catchable as either."""


# ---- kernel plumbing ---------------------------------------------------------------
def _op(t, strides=None, off=None):
    return (t._storage, t.dtype.ctype, t._offset if off is None else off, t._strides if strides is None else strides)


def _check_index_dtype(t):
    if t.dtype is not D.int64 and t.dtype is not D.int32:
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")


# Index tensors a flag read found in range: Storage -> (version, {(offset, shape, strides, key)}).  The
# same unchanged index tensor used again against the same bound (a training loop's fixed targets, an
# embedding's token batch reused) skips the read, a blocking host sync (~15-50 us of PoCL wake-up, and
# the enqueuing thread waits for the queue to drain).  Every in-place write bumps Storage.version, which
# drops the entry; an index kernel never reads out of range whatever the memo says (it sets the flag).
_VERIFIED = weakref.WeakKeyDictionary()


def _verified_key(index, key):
    return (index._offset, index._shape, index._strides, key)


def index_verified(index, key):
    """Has a flag read found this index view in range for `key` at its storage's current version?"""
    e = _VERIFIED.get(index._storage)
    return e is not None and e[0] == index._storage.version and _verified_key(index, key) in e[1]


def raise_if_oob(dev, message, index=None, key=None):
    """Read the device's index-error flag (a sync); raise `message(which, value)` if it was set.

    index, key: the one index tensor the kernel just checked, and what it was checked against (the
    op and the bound, e.g. ("ce", C, ignore_index)); a later call with the same unchanged tensor and key
    skips the read (not while engine.compile traces: a replay gets new data)."""
    memo = index is not None and key is not None and _launch._REC[0] is None
    if memo and index_verified(index, key):
        return
    r = _ix.check_errors(dev, message)
    if r is not None:
        raise message(*r)
    if memo:
        st = index._storage
        e = _VERIFIED.get(st)
        if e is None or e[0] != st.version:
            e = _VERIFIED[st] = (st.version, set())
        if len(e[1]) < 64:
            e[1].add(_verified_key(index, key))


def upload_index(arr, dev):
    return from_numpy_array(np.ascontiguousarray(arr, dtype=np.int64), dev, D.int64)


def nonzero_raw(x):
    """(count, ndim) int64 coordinates of the nonzero elements of x (one host sync for the count)."""
    dev = x._storage.device
    xs = x if x.ndim else make(x._storage, (1,), (1,), x._offset, x.dtype)
    R = xs.ndim
    n = xs.numel()
    if n == 0:
        return empty((0, x.ndim), D.int64, dev)
    xd = (xs._storage, xs.dtype.ctype, xs._offset, xs._strides, xs._shape)
    total, st = _ix.nonzero_count(dev, xd, R, lambda m: empty((m,), D.int64, dev))
    out = empty((total, R), D.int64, dev)
    if total:
        _ix.nonzero_write(dev, xd, R, st, out)
    if x.ndim == 0:
        return empty((total, 0), D.int64, dev)
    return out


def _column(c, j):
    """Column j of a (count, k) coordinates tensor, as a 1-D view."""
    return make(c._storage, (c._shape[0],), (c._strides[0],), c._offset + j * c._strides[1], D.int64)


# ---- index geometry ----------------------------------------------------------------
class _Adv:
    """Index tensors on dims `pos` of a view of shape `vshape`; the result layout."""
    __slots__ = ("vshape", "pos", "idx", "bshape", "out_shape", "vmap", "bmap", "checked", "message")

    def __init__(self, vshape, pos, idx, checked, message=None):
        self.vshape, self.pos, self.idx, self.checked = tuple(vshape), tuple(pos), list(idx), checked
        self.message = message
        try:
            b = broadcast_shapes(*[t._shape for t in idx])
        except RuntimeError:
            raise IndexError("shape mismatch: indexing tensors could not be broadcast together with shapes "
                             + ", ".join(str(list(t._shape)) for t in idx)) from None
        self.bshape = b
        nd = len(vshape)
        rest = [d for d in range(nd) if d not in pos]
        adjacent = list(pos) == list(range(pos[0], pos[0] + len(pos)))
        vmap, bmap = [], []
        if adjacent:
            before = [d for d in rest if d < pos[0]]
            after = [d for d in rest if d > pos[-1]]
            vmap = before + [None] * len(b) + after
            bmap = [None] * len(before) + list(range(len(b))) + [None] * len(after)
        else:
            vmap = [None] * len(b) + rest
            bmap = list(range(len(b))) + [None] * len(rest)
        self.vmap, self.bmap = vmap, bmap
        self.out_shape = tuple(b[bi] if bi is not None else vshape[vi] for vi, bi in zip(vmap, bmap))

    def side_strides(self, vstrides):
        return tuple(vstrides[v] if v is not None else 0 for v in self.vmap)

    def idx_ops(self, vstrides):
        ops = []
        for p, t in zip(self.pos, self.idx):
            e = expand_raw(t, self.bshape)
            st = tuple(e._strides[b] if b is not None else 0 for b in self.bmap)
            ops.append((t._storage, t.dtype.ctype, t._offset, st, self.vshape[p], vstrides[p]))
        return ops

    def raise_oob(self, dev):
        if self.checked:
            raise_if_oob(dev, self.message or self._message)

    def _message(self, k, v):
        n = self.vshape[self.pos[k]]
        if n == 0:
            return IndexError("index is out of bounds for dimension with size 0")
        return IndexError(f"index {v} is out of bounds for dimension {k} with size {n}")


def _view(t, geom):
    """(shape, strides, offset) of t indexed by the basic geometry (None: t itself)."""
    if geom is None:
        return t._shape, t._strides, t._offset
    from .shape import _geom_view
    return _geom_view(t, geom)


def _gather_into(out, x, geom, adv):
    """out (contiguous, adv.out_shape) = x[geom][adv]."""
    dev = x._storage.device
    _, vst, voff = _view(x, geom)
    _ix.run_index(dev, adv.out_shape, _op(out), _op(x, adv.side_strides(vst), voff), adv.idx_ops(vst), "g")


def _scatter_into(t, geom, adv, value, op):
    """t[geom][adv] (op)= value; value: a Tensor of t's dtype broadcastable to the result, or a scalar."""
    dev = t._storage.device
    _, vst, voff = _view(t, geom)
    if isinstance(value, Tensor):
        v = expand_raw(value, adv.out_shape)
        inp = _op(v)
    else:
        inp = ("scalar", t.dtype.ctype, _scalar_for(value, t.dtype))
    _ix.run_index(dev, adv.out_shape, _op(t, adv.side_strides(vst), voff), inp, adv.idx_ops(vst), "s", op)


def _scalar_for(v, dt):
    if isinstance(v, Tensor):
        v = v.item()
    if dt is D.bool_:
        return 1 if v else 0
    if dt.is_floating_point:
        return float(v)
    return int(v)


def accumulate_op(dt):
    return "or" if dt is D.bool_ else "add"


def _basic_assign(t, geom, value, accumulate):
    shape, st, off = _view(t, geom)
    tv = make(t._storage, shape, st, off, t.dtype)
    if accumulate:
        if isinstance(value, Tensor):
            ew_into("index_put_acc", "v1 + v2", tv, [tv, value], t.dtype)
        else:
            ew_into("index_put_acc", "v1 + v2", tv, [tv, _scalar_for(value, t.dtype)], t.dtype)
    else:
        copy_into(tv, value if isinstance(value, Tensor) else _scalar_for(value, t.dtype))


def _zeros(shape, dtype, dev):
    from .creation import fill_raw
    return fill_raw(empty(shape, dtype, dev), 0)


def _clone_raw(x):
    out = empty(x._shape, x.dtype, x._storage.device)
    copy_into(out, x)
    return out


# ---- autograd Functions -----------------------------------------------------------
class Index(Function):
    """x[geom][adv]: a gather; backward scatters (accumulating) into zeros."""
    node_name = "IndexBackward0"

    @staticmethod
    def forward(ctx, x, geom, adv):
        ctx.args = (x._shape, geom, adv)
        out = empty(adv.out_shape, x.dtype, x._storage.device)
        _gather_into(out, x, geom, adv)
        adv.raise_oob(x._storage.device)
        return out

    @staticmethod
    def backward(ctx, g):
        shape, geom, adv = ctx.args
        return IndexAccum.apply(g, shape, geom, _trusted(adv)), None, None


class IndexAccum(Function):
    """zeros(shape)[geom][adv] += g (repeated indices accumulate)."""
    node_name = "IndexPutBackward0"

    @staticmethod
    def forward(ctx, g, shape, geom, adv):
        ctx.args = (geom, adv)
        z = _zeros(shape, g.dtype, g._storage.device)
        _scatter_into(z, geom, adv, g, accumulate_op(g.dtype))
        adv.raise_oob(g._storage.device)
        return z

    @staticmethod
    def backward(ctx, gg):
        geom, adv = ctx.args
        return Index.apply(gg, geom, adv), None, None, None


def _trusted(adv):
    if not adv.checked:
        return adv
    a = _Adv.__new__(_Adv)
    for s in _Adv.__slots__:
        setattr(a, s, getattr(adv, s))
    a.checked = False
    return a


def _take(g, geom, adv):
    """g[geom][adv] with autograd (the value-gradient of an assignment)."""
    if adv is not None:
        return Index.apply(g, geom, adv)
    if geom is None:
        return g
    from .shape import SliceView
    return SliceView.apply(g, geom)


class IndexPut(Function):
    """x[geom][adv] = value (accumulate: +=) on a copy of x, or on x itself with `inplace`;
    value is a Tensor of x's dtype or a scalar."""
    node_name = "IndexPutBackward0"

    @staticmethod
    def forward(ctx, x, value, geom, adv, accumulate, inplace=False):
        vt = isinstance(value, Tensor)
        ctx.args = (geom, adv, accumulate, value._shape if vt else None)
        if inplace:
            if vt and value._storage is x._storage:  # x[i] = x[j]: read a copy
                value = _clone_raw(value)
            out = x
        else:
            out = _clone_raw(x)
        if adv is None:
            _basic_assign(out, geom, value, accumulate)
        else:
            _scatter_into(out, geom, adv, value, accumulate_op(x.dtype) if accumulate else "store")
            adv.raise_oob(x._storage.device)
        if inplace:
            x._storage.version += 1
        return out

    @staticmethod
    def backward(ctx, g):
        geom, adv, accumulate, vshape = ctx.args
        adv = _trusted(adv) if adv is not None else None
        gx = gv = None
        if ctx.needs_input_grad[0]:
            gx = g if accumulate else IndexPut.apply(g, 0.0, geom, adv, False)
        if vshape is not None and ctx.needs_input_grad[1]:
            gv = sum_to(_take(g, geom, adv), vshape)
        return gx, gv, None, None, None, None


def run_inplace(fn, x, *args, others=()):
    """fn.apply(x, *args, True): an autograd Function that writes into x.  With autograd recording, x
    takes over the node's history (PyTorch's rebase); the node's backward never needs x's old values.
    A view of a tensor requiring grad goes through convert.inplace (its base gets a CopySlices node)."""
    from .convert import check_inplace, inplace
    check_inplace(x)
    grad = state.enabled and (x._rg or any(isinstance(o, Tensor) and o._rg for o in others))
    if grad and x._base is not None and x._base._rg:
        return inplace(x, lambda t, *_: fn.apply(t, *args, False), *others, uses_self=False)
    r = fn.apply(x, *args, True)
    if grad and r.grad_fn is not None:
        x.grad_fn = r.grad_fn
        x._output_nr = r._output_nr
        x._rg = True
    return x


# ---- parsing an index tuple --------------------------------------------------------
def _host_index(arr, n, k):
    """Validate and wrap host index values against a dim of size n; k numbers the index for messages."""
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < -n or hi >= n:
            if n == 0:
                raise IndexError("index is out of bounds for dimension with size 0")
            bad = lo if lo < -n else hi
            raise IndexError(f"index {bad} is out of bounds for dimension {k} with size {n}")
        if lo < 0:
            arr = np.where(arr < 0, arr + n, arr)
    return arr


def _to_host_array(i):
    if isinstance(i, np.ndarray):
        return i
    if isinstance(i, (list, tuple)) and any(isinstance(e, Tensor) for e in _flat(i)):
        i = _tensors_to_lists(i)
    a = np.array(i)
    if a.dtype == object:
        raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
                         "valid indices (got a ragged or non-numeric list)")
    return a


def parse(x, index):
    """index tuple -> (geom or None, _Adv or None)."""
    from .indexing import basic_geometry
    dev = x._storage.device
    basic, pos, idx = [], [], []
    checked = False
    d = vd = 0
    for it in index:
        if it is None:
            basic.append(None)
            vd += 1
        elif isinstance(it, (bool, np.bool_)) or (isinstance(it, Tensor) and it.ndim == 0 and
                                                   (it.dtype is D.bool_ or it.dtype is D.uint8)):
            truth = bool(it.item()) if isinstance(it, Tensor) else bool(it)
            basic.append(None)
            pos.append(vd)
            idx.append(upload_index(np.zeros(1 if truth else 0, np.int64), dev))
            vd += 1
        elif isinstance(it, numbers.Integral):
            basic.append(int(it))
            d += 1
        elif isinstance(it, slice):
            basic.append(it)
            d += 1
            vd += 1
        elif isinstance(it, Tensor):
            device_of([x, it])
            if it.dtype is D.bool_ or it.dtype is D.uint8:
                k = it.ndim
                _check_mask(x, it._shape, d, k)
                coords = nonzero_raw(it)
                for j in range(k):
                    basic.append(slice(None))
                    pos.append(vd + j)
                    idx.append(_column(coords, j))
                d += k
                vd += k
            elif it.dtype is D.int64 or it.dtype is D.int32:
                if it.ndim == 0:  # as PyTorch: a 0-d integer tensor selects (a view)
                    basic.append(int(it.item()))
                    d += 1
                    continue
                basic.append(slice(None))
                pos.append(vd)
                idx.append(it)
                checked = True
                d += 1
                vd += 1
            else:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        elif isinstance(it, (list, tuple, np.ndarray)):
            a = _to_host_array(it)
            if a.dtype == np.bool_:
                k = a.ndim
                if k == 0:
                    basic.append(None)
                    pos.append(vd)
                    idx.append(upload_index(np.zeros(1 if a else 0, np.int64), dev))
                    vd += 1
                    continue
                _check_mask(x, a.shape, d, k)
                for j, c in enumerate(np.nonzero(a)):
                    basic.append(slice(None))
                    pos.append(vd + j)
                    idx.append(upload_index(c, dev))
                d += k
                vd += k
            else:
                if a.dtype.kind not in "iuf" and a.size:
                    raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
                a = a.astype(np.int64)
                if a.ndim == 0:
                    basic.append(int(a))
                    d += 1
                    continue
                if d >= x.ndim:
                    raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
                a = _host_index(a, x._shape[d], len(idx))
                basic.append(slice(None))
                pos.append(vd)
                idx.append(upload_index(a, dev))
                d += 1
                vd += 1
        else:
            raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
                             f"valid indices (got {type(it).__name__})")
    if d > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
    identity = all(isinstance(b, slice) and b == slice(None) for b in basic)
    geom = None
    vshape = x._shape
    if not identity:
        geom = basic_geometry(x, tuple(basic))
        vshape = geom[0]
    adv = _Adv(vshape, pos, idx, checked) if idx else None
    return geom, adv


def _check_mask(x, mshape, d, k):
    if d + k > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
    for j in range(k):
        if mshape[j] != x._shape[d + j]:
            raise IndexError(f"The shape of the mask {list(mshape)} at index {j} does not match the shape of the "
                             f"indexed tensor {list(x._shape)} at index {d + j}")


# ---- getitem / setitem --------------------------------------------------------------
def advanced_getitem(x, index):
    geom, adv = parse(x, index)
    if adv is None:  # e.g. a 0-d integer tensor: a view, as in PyTorch
        from .shape import slice_view
        return slice_view(x, geom if geom is not None else (x._shape, tuple((i, 0, 1) for i in range(x.ndim)), ()))
    return Index.apply(x, geom, adv)


def _result_shape(x, geom, adv):
    if adv is not None:
        return adv.out_shape
    return geom[0] if geom is not None else x._shape


def _prep_value(x, value, rshape, cast=True):
    """The assigned value: a scalar, or a Tensor of x's dtype with leading 1s beyond the result's rank
    dropped, checked to broadcast to the indexing result."""
    if not isinstance(value, Tensor):
        if isinstance(value, (list, tuple, np.ndarray)):
            from .creation import tensor
            value = tensor(value, dtype=x.dtype, device=x.device)
        else:
            return value
    device_of([x, value])
    if value.dtype is not x.dtype:
        if not cast:
            raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                               f"{_tname(x.dtype)} for the destination and {_tname(value.dtype)} for the source.")
        value = value.to(x.dtype)
    vs = value._shape
    k = 0
    while len(vs) - k > len(rshape) and vs[k] == 1:
        k += 1
    if k:
        value = value.reshape(vs[k:])
    try:
        ok = broadcast_shapes(value._shape, rshape) == tuple(rshape)
    except RuntimeError:
        ok = False
    if not ok:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(vs)} cannot be broadcast to indexing "
                           f"result of shape {list(rshape)}")
    return value


def _tname(dt):
    return {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "int16": "Short",
            "int8": "Char", "uint8": "Byte", "bool": "Bool", "float16": "Half"}.get(dt.name, dt.name)


def advanced_setitem(x, index, value):
    setitem_with_grad(x, index, value)


def setitem_with_grad(x, index, value):
    """x[index] = value: one scatter (or strided copy) into x; with autograd recording x takes over an
    IndexPut node (a leaf requiring grad raises, as in PyTorch)."""
    geom, adv = parse(x, index)
    value = _prep_value(x, value, _result_shape(x, geom, adv), cast=adv is None)
    if geom is None and adv is None:  # x[...] = value
        geom = (x._shape, tuple((i, 0, 1) for i in range(x.ndim)), ())
    return run_inplace(IndexPut, x, value, geom, adv, False, others=(value,))


# ---- index_put ------------------------------------------------------------------------
def _index_put_parse(x, indices):
    if isinstance(indices, Tensor) or not isinstance(indices, (tuple, list)):
        indices = (indices,)
    items = tuple(slice(None) if i is None else i for i in indices)
    for i in items:
        if not isinstance(i, (Tensor, slice)):
            raise TypeError(f"index_put(): indices must be a tuple of Tensors or None, got {type(i).__name__}")
    if len(items) > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim} (got {len(items)})")
    return parse(x, items)


def index_put(input, indices, values, accumulate=False):
    geom, adv = _index_put_parse(input, indices)
    values = _prep_value(input, values, _result_shape(input, geom, adv), cast=False)
    if geom is None and adv is None:
        geom = (input._shape, tuple((i, 0, 1) for i in range(input.ndim)), ())
    return IndexPut.apply(input, values, geom, adv, bool(accumulate))


def index_put_(input, indices, values, accumulate=False):
    geom, adv = _index_put_parse(input, indices)
    values = _prep_value(input, values, _result_shape(input, geom, adv), cast=False)
    if geom is None and adv is None:
        geom = (input._shape, tuple((i, 0, 1) for i in range(input.ndim)), ())
    return run_inplace(IndexPut, input, values, geom, adv, bool(accumulate), others=(values,))


for _n, _f in (("index_put", index_put), ("index_put_", index_put_)):
    setattr(Tensor, _n, _f)
