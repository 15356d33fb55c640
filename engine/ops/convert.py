"""dtype and device conversion, and in-place updates with the version counter."""
from .. import dtypes as D
from ..autograd.function import Function
from ..device import resolve as _resolve
from ..tensor import Tensor, empty, from_numpy_array, to_numpy
from ._core import check_dtype, copy_into, state

__all__ = []


class Cast(Function):
    node_name = "ToCopyBackward0"

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.src = x.dtype
        check_dtype(x._storage.device, dtype)
        out = empty(x._shape, dtype, x._storage.device)
        copy_into(out, x)
        return out

    @staticmethod
    def backward(ctx, g):
        return (g.to(ctx.src) if ctx.src.is_floating_point else None), None


class ToDevice(Function):
    node_name = "ToCopyBackward0"

    @staticmethod
    def forward(ctx, x, dev):
        ctx.src = x._storage.device
        check_dtype(dev, x.dtype)
        return from_numpy_array(to_numpy(x), dev, x.dtype)

    @staticmethod
    def backward(ctx, g):
        return g.to(ctx.src), None


def to(x, *args, **kwargs):
    """to(dtype) / to(device) / to(device, dtype) / to(other) / to(device=..., dtype=...)."""
    dtype = kwargs.get("dtype")
    device = kwargs.get("device")
    copy = kwargs.get("copy", False)
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a._storage.device, a.dtype
        elif isinstance(a, D.dtype) or (a is not None and not isinstance(a, str) and str(a).startswith("torch.")) \
                or a in (float, int, bool):
            dtype = a
        elif a is not None and not isinstance(a, bool):
            device = a
    out = x
    if device is not None:
        dev = _resolve(device)
        if dev is not x._storage.device:
            out = ToDevice.apply(out, dev)
    if dtype is not None:
        dt = D.to_dtype(dtype)
        if dt is not out.dtype:
            out = Cast.apply(out, dt)
    if copy and out is x:
        out = x.clone()
    return out


def type_(x, dtype=None):
    if dtype is None:
        return "engine." + {"float32": "FloatTensor", "float64": "DoubleTensor", "int64": "LongTensor",
                            "int32": "IntTensor", "bool": "BoolTensor"}.get(x.dtype.name, x.dtype.name)
    return to(x, dtype)


def _cast_method(dt):
    def m(self, memory_format=None):
        return to(self, dt)
    return m


# ---- in-place ---------------------------------------------------------------------
def check_inplace(t):
    if state.enabled:
        if t._rg and t.grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        b = t._base
        if b is not None and b._rg:
            if b.grad_fn is None:
                raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place "
                                   "operation.")


def inplace(t, fn, *args, **kwargs):
    """t <- fn(t, *args): in place, bumping the version counter.

    With autograd recording, the result's history is taken over by t (PyTorch's
    rebase), computed from a clone so no saved tensor sees the overwrite.
    """
    check_inplace(t)
    grad = state.enabled and (t._rg or any(isinstance(a, Tensor) and a._rg for a in args))
    if grad:
        if t._base is not None and t._base._rg:
            raise RuntimeError("in-place modification of a view of a tensor that requires grad is not supported "
                               "by clgrad's autograd; use an out-of-place op (e.g. torch.where or cat)")
        r = fn(t.clone() if t._rg else t, *args, **kwargs)
        _write(t, r)
        t.grad_fn = r.grad_fn
        t._output_nr = r._output_nr
        t._rg = r._rg
        return t
    prev = state.enabled
    state.enabled = False
    try:
        r = fn(t, *args, **kwargs)
    finally:
        state.enabled = prev
    _write(t, r)
    return t


def _write(t, r):
    if r.dtype is not t.dtype and not _can_cast(r.dtype, t.dtype):
        raise RuntimeError(f"result type {r.dtype.name.capitalize()} can't be cast to the desired output type "
                           f"{t.dtype.name.capitalize()}")
    if r.shape != t.shape:
        from ._core import broadcast_shapes
        if broadcast_shapes(r.shape, t.shape) != t.shape:
            raise RuntimeError(f"output with shape {list(t.shape)} doesn't match the broadcast shape "
                               f"{list(broadcast_shapes(r.shape, t.shape))}")
    copy_into(t, r)
    t._storage.version += 1


def _can_cast(src, dst):
    return src.kind <= dst.kind


def copy_(t, src, non_blocking=False):
    if not isinstance(src, Tensor):
        from .creation import tensor
        src = tensor(src, dtype=t.dtype, device=t.device)
    if src._storage.device is not t._storage.device:
        src = src.detach().to(t.device) if not src._rg else to(src, t.device)
    check_inplace(t)
    if state.enabled and (src._rg or t._rg):
        # the old values are overwritten: only src receives gradient
        return inplace(t, lambda _t, s: s.to(_t.dtype).expand(_t.shape).clone(), src)
    from ._core import broadcast_shapes
    if broadcast_shapes(src.shape, t.shape) != t.shape:
        raise RuntimeError(f"output with shape {list(t.shape)} doesn't match the broadcast shape "
                           f"{list(broadcast_shapes(src.shape, t.shape))}")
    copy_into(t, src)
    t._storage.version += 1
    return t


def fill_(t, value):
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} dimensions.")
        if value._rg and state.enabled:
            return copy_(t, value.expand(t.shape))
        value = value.item()
    check_inplace(t)
    if state.enabled and t._rg:
        from .creation import full_like
        return copy_(t, full_like(t, value))
    copy_into(t, value)
    t._storage.version += 1
    return t


def zero_(t):
    return fill_(t, 0)
