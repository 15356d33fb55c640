"""Indexing: basic indexing (ints, slices, None, Ellipsis) makes views;
tensors, lists and boolean masks go through advanced indexing kernels."""
import numbers

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
        if i is None or i is Ellipsis:
            continue
        if isinstance(i, Tensor) and i.dtype.name in ("bool", "uint8"):
            used += max(i.ndim, 1) if i.ndim else 0
        else:
            used += 1
    if used > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
    if n_ell:
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (x.ndim - used) + index[k + 1:]
    return index


def basic_geometry(x, index):
    """Shape and per-dim (src, start, step) for an index of ints / slices / None."""
    shape, dims, fixed = [], [], []
    d = 0
    for i in index:
        if i is None:
            shape.append(1)
            dims.append((None, 0, 1))
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


def getitem(x, index):
    index = expand_index(x, index)
    if any(_is_advanced(i) for i in index):
        from .advanced import advanced_getitem
        return advanced_getitem(x, index)
    for i in index:
        if not (i is None or isinstance(i, (slice, numbers.Integral))):
            if isinstance(i, Tensor):
                continue
            raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
                             f"valid indices (got {type(i).__name__})")
    return slice_view(x, basic_geometry(x, index))


def setitem(x, index, value):
    from .convert import copy_
    idx = expand_index(x, index)
    if any(_is_advanced(i) for i in idx):
        from .advanced import advanced_setitem
        return advanced_setitem(x, idx, value)
    from ._core import state
    if state.enabled and (x._rg or (isinstance(value, Tensor) and value._rg)):
        from .advanced import setitem_with_grad
        return setitem_with_grad(x, idx, value)
    prev = state.enabled
    state.enabled = False
    try:
        v = slice_view(x, basic_geometry(x, idx))
        copy_(v, value)
    finally:
        state.enabled = prev
