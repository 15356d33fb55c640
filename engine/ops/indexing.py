"""Indexing: basic indexing (ints, slices, None, Ellipsis) makes views;
tensors, lists and boolean masks go through advanced indexing kernels."""
import numbers

import numpy as np

from ..autograd.grad_mode import state
from ..tensor import Tensor
from .shape import slice_view

__all__ = []


def _is_advanced(i):
    return isinstance(i, (Tensor, list)) or (hasattr(i, "__array__") and not isinstance(i, numbers.Number)) \
        or isinstance(i, bool)


def expand_index(x, index):
    """Normalise `index` to a tuple with Ellipsis expanded."""
    if not isinstance(index, tuple):
        index = (index,)
    n_ell = sum(1 for i in index if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = 0
    for i in index:
        if i is None or i is Ellipsis or isinstance(i, bool):  # a bool adds a dim, as None does
            continue
        if isinstance(i, Tensor) and i.dtype.name in ("bool", "uint8"):
            used += i.ndim
        elif isinstance(i, (list, np.ndarray)) and not isinstance(i, Tensor):
            try:
                a = np.asarray(i) if not isinstance(i, list) or not any(isinstance(e, Tensor) for e in i) else None
            except ValueError:  # ragged: advanced_getitem reports it
                a = None
            used += a.ndim if a is not None and a.dtype == np.bool_ else 1
        else:
            used += 1
    if used > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
    if n_ell:
        k = next(j for j, i in enumerate(index) if i is Ellipsis)
        index = index[:k] + (slice(None),) * (x.ndim - used) + index[k + 1:]
    return index


def basic_geometry(x, index):
    """Shape and per-dim (src, start, step) for an index of ints / slices / None."""
    shape, dims, fixed = [], [], []
    d = 0
    for i in index:
        if i is None:
            shape.append(1)
            dims.append((None, d, 1))  # start: the input dim that follows (for the stride)
            continue
        n = x._shape[d]
        if isinstance(i, slice):
            start, stop, step = i.start, i.stop, i.step
            step = 1 if step is None else int(step)
            if step <= 0:
                raise ValueError("step must be greater than zero")
            start, stop, _ = slice(start if start is None else int(start), stop if stop is None else int(stop),
                                   step).indices(n)
            length = max(0, (stop - start + step - 1) // step)
            shape.append(length)
            dims.append((d, start if length else 0, step))
        else:
            k = int(i)
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for dimension {d} with size {n}")
            fixed.append((d, k + n if k < 0 else k))
        d += 1
    for dd in range(d, x.ndim):
        shape.append(x._shape[dd])
        dims.append((dd, 0, 1))
    return tuple(shape), tuple(dims), tuple(fixed)


def _node_class(x, raw, index):
    """PyTorch's grad_fn name for a basic index: that of the last view it applies
    (full slices inside a tuple are skipped; nothing applied is an alias)."""
    from . import shape as S
    if not isinstance(raw, tuple):
        if isinstance(raw, slice):
            return S.SliceView
        if raw is None:
            return S.UnsqueezeView
        if raw is Ellipsis:
            return S.AliasView
        return S.SelectView
    cls = S.AliasView
    d = 0
    for i in index:
        if i is None:
            cls = S.UnsqueezeView
            continue
        if isinstance(i, slice):
            n = x._shape[d]
            if not (i.start in (None, 0) and i.step in (None, 1) and (i.stop is None or i.stop >= n)):
                cls = S.SliceView
        else:
            cls = S.SelectView
        d += 1
    return cls


def _check_basic(x, index):
    for i in index:
        if not (i is None or isinstance(i, (slice, numbers.Integral))):
            raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
                             f"valid indices (got {type(i).__name__})")
        if isinstance(i, slice) and i.step is not None and int(i.step) == 0:
            raise ValueError("slice step cannot be zero")
    if x.ndim == 0 and any(isinstance(i, (slice, numbers.Integral)) for i in index):
        raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or `tensor.item<T>()` "
                         "in C++ to convert a 0-dim tensor to a number")


def _check_0d(x, index):
    if x.ndim == 0:
        for i in (index if isinstance(index, tuple) else (index,)):
            if isinstance(i, (slice, numbers.Integral)) and not isinstance(i, bool):
                raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                                 "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")


def getitem(x, index):
    raw = index
    _check_0d(x, index)
    index = expand_index(x, index)
    if any(_is_advanced(i) for i in index):
        from .advanced import advanced_getitem
        return advanced_getitem(x, index)
    _check_basic(x, index)
    geom = basic_geometry(x, index)
    if x._rg and state.enabled:
        return slice_view(x, geom, _node_class(x, raw, index))
    return slice_view(x, geom)


def setitem(x, index, value):
    """x[index] = value.  With autograd (x or value requires grad) the write is an
    in-place copy into the view x[index], which gives x's base a CopySlices node."""
    from .convert import copy_
    idx = expand_index(x, index)
    if any(_is_advanced(i) for i in idx):
        from .advanced import advanced_setitem
        return advanced_setitem(x, idx, value)
    _check_basic(x, idx)
    geom = basic_geometry(x, idx)
    if state.enabled and (x._rg or (isinstance(value, Tensor) and value._rg)):
        if x._rg and x.grad_fn is None:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place "
                               "operation.")
        copy_(slice_view(x, geom), value)
        b = x._base
        if b is not None and b._rg:
            # x is itself a view: it becomes a view of its base's new history
            from .shape import as_strided
            v = as_strided(b, x._shape, x._strides, x._offset)
            x.grad_fn, x._output_nr, x._rg = v.grad_fn, 0, True
        return
    prev = state.enabled
    state.enabled = False
    try:
        copy_(slice_view(x, geom), value)
    finally:
        state.enabled = prev


def index_select(x, dim, index):
    """x.index_select(dim, index) (kept here for shape.flip; the op lives in gather.py)."""
    from .gather import index_select as _index_select
    return _index_select(x, dim, index)
