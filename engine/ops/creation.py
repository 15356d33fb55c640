"""Tensor creation: from host data, constants, ranges."""
import math
import numbers

import numpy as np

from .. import dtypes as D
from ..device import resolve as _resolve
from ..runtime import launch as _launch
from ..tensor import Tensor, empty as _empty, from_numpy_array, to_numpy
from ._core import check_dtype, copy_into, ew

__all__ = ["tensor", "as_tensor", "from_numpy", "asarray", "zeros", "ones", "full", "empty", "arange",
           "linspace", "logspace", "eye", "zeros_like", "ones_like", "full_like", "empty_like",
           "empty_strided", "scalar_tensor"]


def _shape_arg(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if len(size) == 1 and isinstance(size[0], Tensor):
        size = tuple(size[0].tolist())
    out = []
    for s in size:
        if not isinstance(s, numbers.Integral) and not (isinstance(s, Tensor) and not s.is_floating_point()):
            raise TypeError(f"size must be a sequence of ints, got {type(s).__name__} ({s!r})")
        out.append(int(s))
    return tuple(out)


def _finish(t, requires_grad):
    if requires_grad:
        if not t.dtype.is_floating_point:
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        t._rg = True
    return t


def _infer_np(data):
    """Convert nested Python data to numpy with PyTorch's dtype inference: Python
    floats -> the default dtype, ints -> int64, bools -> bool; numpy scalars and
    tensors inside a sequence keep their dtype (promoted together)."""
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, np.generic):
        return np.asarray(data)
    if isinstance(data, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
    typed = None
    if isinstance(data, (list, tuple)):
        _check_ragged(data)
        for x in _flat(data):
            if isinstance(x, Tensor):
                dt = x.dtype
            elif isinstance(x, np.generic):
                dt = D.from_numpy_dtype(x.dtype)
            elif isinstance(x, bool):
                dt = D.bool_
            elif isinstance(x, numbers.Integral):
                dt = D.int64
            elif isinstance(x, numbers.Real):
                dt = D.get_default_dtype()
            elif isinstance(x, (str, bytes)):
                raise TypeError(f"new(): invalid data type '{type(x).__name__}'")
            else:
                raise TypeError(f"Could not infer dtype of {type(x).__name__}")
            typed = dt if typed is None else D.promote_types(typed, dt)
        if any(isinstance(x, Tensor) for x in _flat(data)):
            data = _tensors_to_lists(data)
    elif not isinstance(data, numbers.Number):
        if hasattr(data, "__array__"):
            return np.asarray(data)
        try:
            data = list(data)
        except TypeError:
            raise TypeError(f"Could not infer dtype of {type(data).__name__}") from None
        return _infer_np(data)
    arr = np.array(data)
    if arr.dtype == object:
        raise TypeError(f"can't convert data of type {type(data).__name__} to a tensor (non-numeric)")
    if typed is not None:
        return arr.astype(typed.np)
    if arr.dtype.kind == "f":
        arr = arr.astype(D.get_default_dtype().np)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
    elif arr.dtype.kind in "US":
        raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
    return arr


def _check_ragged(data, dim=0):
    """PyTorch's error for nested sequences of unequal lengths."""
    seqs = [x for x in data if isinstance(x, (list, tuple))]
    if not seqs:
        return
    if len(seqs) != len(data):
        raise ValueError(f"expected sequence of length {len(seqs[0])} at dim {dim + 1} (got a scalar)")
    n = len(seqs[0])
    for x in seqs:
        if len(x) != n:
            raise ValueError(f"expected sequence of length {n} at dim {dim + 1} (got {len(x)})")
        _check_ragged(x, dim + 1)


def _flat(data):
    for x in data:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def _tensors_to_lists(data):
    if isinstance(data, Tensor):
        return to_numpy(data).tolist() if data.ndim else data.item()
    if isinstance(data, (list, tuple)):
        return [_tensors_to_lists(x) for x in data]
    return data


def tensor(data, dtype=None, device=None, requires_grad=False, pin_memory=False):
    dtype = D.to_dtype(dtype)
    if isinstance(data, Tensor):
        t = clone_tensor(data)
        if dtype is not None and dtype is not t.dtype:
            t = t.to(dtype)
        if device is not None:
            t = t.to(device)
        return _finish(t, requires_grad)
    arr = _infer_np(data)
    dev = _resolve(device)
    if dtype is None:
        dtype = D.from_numpy_dtype(arr.dtype)
    check_dtype(dev, dtype)
    return _finish(from_numpy_array(arr, dev, dtype), requires_grad)


def as_tensor(data, dtype=None, device=None):
    dtype = D.to_dtype(dtype)
    if isinstance(data, Tensor):
        if (dtype is None or dtype is data.dtype) and (device is None or _resolve(device) is data._storage.device):
            return data
        return data.to(device=device, dtype=dtype)
    return tensor(data, dtype=dtype, device=device)


asarray = as_tensor


def from_numpy(arr):
    """A device copy of the numpy array (OpenCL memory can't alias host numpy memory)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(arr).__name__})")
    return from_numpy_array(arr, None)


def _size_of(args, size, name):
    if size is not None:
        if args:
            raise TypeError(f"{name}() got multiple values for argument 'size'")
        args = (size,)
    try:
        return _shape_arg(args)
    except TypeError as e:
        bad = next((a for a in (args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args)
                    if not isinstance(a, (numbers.Integral, Tensor))), None)
        if bad is not None:
            raise TypeError(f"{name}(): argument 'size' (position 1) must be tuple of ints, not "
                            f"{type(bad).__name__}") from None
        raise e


def _new(shape, dtype, device, name):
    dtype = D.to_dtype(dtype) or D.get_default_dtype()
    dev = _resolve(device)
    check_dtype(dev, dtype)
    for n in shape:
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: {list(shape)}")
    return _empty(shape, dtype, dev)


def empty(*args, dtype=None, device=None, requires_grad=False, size=None, **_):
    """empty(2, 3) / empty((2, 3)) / empty(size=(2, 3)): uninitialised memory."""
    return _finish(_new(_size_of(args, size, "empty"), dtype, device, "empty"), requires_grad)


def empty_strided(size, stride, dtype=None, device=None, requires_grad=False, **_):
    """Uninitialised memory viewed with the given strides (storage sized to fit)."""
    size, stride = _shape_arg((size,)), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError("mismatch in length of strides and shape")
    span = 1 + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else 0
    base = _new((span,), dtype, device, "empty_strided")
    from ..tensor import make
    return _finish(make(base._storage, size, stride, 0, base.dtype), requires_grad)


def fill_raw(t, value):
    """Set every element of the contiguous, fresh tensor t to value."""
    n = t.numel()
    if n:
        pat = np.array(value, dtype=t.dtype.np).reshape(1)
        if t.dtype is D.bool_:
            pat = np.array(bool(value), dtype=np.uint8).reshape(1)
        _launch.fill_buffer(t._storage.device, t._storage.buf, pat, t._offset * t.dtype.itemsize,
                            n * t.dtype.itemsize)
    return t


def _check_fill(value, dtype):
    if isinstance(value, Tensor):
        value = value.item()
    if not dtype.is_floating_point and isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise RuntimeError(f"value cannot be converted to type {dtype.name} without overflow")
    return value


def full(size, fill_value, dtype=None, device=None, requires_grad=False, **_):
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if dtype is None:
        dtype = D.result_type(fill_value)
    dtype = D.to_dtype(dtype)
    t = _new(_size_of((size,), None, "full"), dtype, device, "full")
    return _finish(fill_raw(t, _check_fill(fill_value, dtype)), requires_grad)


def zeros(*args, dtype=None, device=None, requires_grad=False, size=None, **_):
    """zeros(2, 3) / zeros((2, 3)) / zeros(size=(2, 3))."""
    return _finish(fill_raw(_new(_size_of(args, size, "zeros"), dtype, device, "zeros"), 0), requires_grad)


def ones(*args, dtype=None, device=None, requires_grad=False, size=None, **_):
    """ones(2, 3) / ones((2, 3)) / ones(size=(2, 3))."""
    return _finish(fill_raw(_new(_size_of(args, size, "ones"), dtype, device, "ones"), 1), requires_grad)


def _like(t, dtype, device):
    return (D.to_dtype(dtype) or t.dtype), (t._storage.device if device is None else device)


def empty_like(t, dtype=None, device=None, requires_grad=False, **_):
    dt, dev = _like(t, dtype, device)
    return empty(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False, **_):
    dt, dev = _like(t, dtype, device)
    return zeros(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False, **_):
    dt, dev = _like(t, dtype, device)
    return ones(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False, **_):
    dt, dev = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


def scalar_tensor(value, dtype=None, device=None, requires_grad=False):
    return full((), value, dtype=dtype or D.get_default_dtype(), device=device, requires_grad=requires_grad)


def arange(start=0, end=None, step=1, dtype=None, device=None, requires_grad=False, **_):
    """arange(end) / arange(start, end, step): int64 unless an argument is a float."""
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise RuntimeError("step must be nonzero")
    for v in vals:
        if isinstance(v, float) and not math.isfinite(v):
            raise RuntimeError(f"unsupported range: {start} -> {end}")
    if (end - start) / step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    if dtype is None:
        dtype = D.get_default_dtype() if any(isinstance(v, float) for v in vals) else D.int64
    dtype = D.to_dtype(dtype)
    n = max(0, math.ceil((end - start) / step))
    t = _new((n,), dtype, device, "arange")
    cd = D.float64 if dtype.is_floating_point and t._storage.device.fp64 else (
        D.float32 if dtype.is_floating_point else D.int64)
    _index_fill(t, "v1 + v2 * (%s)gid" % cd.ctype, start, step, cd)
    return _finish(t, requires_grad)


def _index_fill(t, expr, a, b, cd):
    """t[i] = expr(i) for a contiguous 1-D t, with scalars v1=a, v2=b."""
    from ..runtime import elementwise as _ew
    if t.numel():
        _ew.run(t._storage.device, "iota", expr, t, [a, b], [cd.ctype, cd.ctype])


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False, **_):
    """steps values from start to end inclusive, computed as PyTorch does (in the output
    dtype, the second half counted back from `end`, so both ends are exact)."""
    start = start.item() if isinstance(start, Tensor) else start
    end = end.item() if isinstance(end, Tensor) else end
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    dtype = D.to_dtype(dtype) or D.get_default_dtype()
    t = _new((steps,), dtype, device, "linspace")
    dev = t._storage.device
    if dtype.is_floating_point:
        cd = dtype if dtype is not D.float16 else D.float32
    else:
        cd = D.float64 if dev.fp64 else D.float32
    if steps == 1:
        copy_into(t, start)
    elif steps:
        c = cd.ctype
        s0, e0 = cd.np.type(start), cd.np.type(end)
        step = (e0 - s0) / cd.np.type(steps - 1)
        expr = f"(({c})gid < v3) ? v1 + v2 * ({c})gid : v4 - v2 * (v5 - ({c})gid)"
        from ..runtime import elementwise as _ew
        _ew.run(dev, "linspace", expr, t, [float(s0), float(step), float(steps // 2), float(e0),
                                            float(steps - 1)], [c] * 5)
    return _finish(t, requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    return _finish(full((), base, dtype=dtype, device=device) ** linspace(start, end, steps, dtype=dtype, device=device),
                   requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False, **_):
    m = n if m is None else m
    if n < 0 or m < 0:
        raise RuntimeError(f"n must be greater or equal to 0, got {n if n < 0 else m}")
    t = zeros(n, m, dtype=dtype, device=device)
    k = min(n, m)
    if k:
        from ..tensor import make
        diag = make(t._storage, (k,), (m + 1,), 0, t.dtype)
        copy_into(diag, 1)
    return _finish(t, requires_grad)


def clone_tensor(t):
    """A contiguous copy with no autograd history."""
    out = _empty(t._shape, t.dtype, t._storage.device)
    ew("copy", "v1", [t], t.dtype, t.dtype, out=out)
    return out
