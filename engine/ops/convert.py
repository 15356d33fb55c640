"""dtype and device conversion, and in-place updates with the version counter."""
from .. import dtypes as D
from ..autograd.function import Function
from ..device import resolve as _resolve
from ..tensor import Tensor, empty, from_numpy_array, make, to_numpy
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
        return "engine." + _tname(x.dtype) + "Tensor"
    return to(x, dtype)


def _cast_method(dt):
    def m(self, memory_format=None):
        return to(self, dt)
    return m


# ---- in-place ---------------------------------------------------------------------
def check_inplace(t):
    """PyTorch's checks before an in-place op with grad mode on."""
    if state.enabled:
        if t._rg and t.grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        b = t._base
        if b is not None and b._rg:
            if b.grad_fn is None:
                raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place "
                                   "operation.")
            if not t._rg:
                raise RuntimeError("A view was created in no_grad mode and is being modified inplace with grad "
                                   "mode enabled. Given that this use case is ambiguous and error-prone, it is "
                                   "forbidden. You can clarify your code by moving both the view and the inplace "
                                   "either both inside the no_grad block (if you don't want the inplace to be "
                                   "tracked) or both outside (if you want the inplace to be tracked).")


def inplace(t, fn, *args, uses_self=True, **kwargs):
    """t <- fn(t, *args): in place, bumping the version counter.

    With autograd recording, fn runs out of place (on a clone of t when uses_self,
    so no saved tensor sees the overwrite), the result is written into t and t takes
    over its history (PyTorch's rebase).  When t is a view, its base takes a
    CopySlices node and t becomes a view of the base's new history.
    """
    check_inplace(t)
    if state.enabled and (t._rg or any(isinstance(a, Tensor) and a._rg for a in args)):
        r = fn(_clone(t) if uses_self else t, *args, **kwargs)
        if r.dtype is not t.dtype:
            _check_cast(r.dtype, t.dtype)
            r = to(r, t.dtype)
        if r._shape != t._shape:
            _check_bcast(t, r)
            from .shape import expand
            r = expand(r, t._shape)
        b = t._base
        if b is None:
            copy_into(t, r)
            t._storage.version += 1
            t.grad_fn = r.grad_fn
            t._output_nr = r._output_nr
            t._rg = r._rg
            _regen_views(t, None)
            _keep_retain(t)
            return t
        _rebase_view(t, b, r)
        _keep_retain(t)
        return t
    prev = state.enabled
    state.enabled = False
    try:
        r = fn(t, *args, **kwargs)
    finally:
        state.enabled = prev
    _write(t, r)
    return t


def _keep_retain(t):
    if t._retains_grad and t.grad_fn is not None:
        from ..tensor import _own_edge
        _own_edge(t)


def _clone(t):
    from .shape import clone
    return clone(t)


class CopySlices(Function):
    """base[view geometry] = src, in place: the node a base gets when a view of it is
    modified in place with autograd.  geom = (shape, strides, offset) of the view
    relative to the (contiguous) base."""
    node_name = "CopySlices"

    @staticmethod
    def forward(ctx, base, src, geom):
        ctx.geom = geom
        shape, strides, off = geom
        copy_into(make(base._storage, shape, strides, base._offset + off, base.dtype), src)
        return make(base._storage, base._shape, base._strides, base._offset, base.dtype)

    @staticmethod
    def backward(ctx, g):
        shape, strides, off = ctx.geom
        from .shape import as_strided, contiguous
        gb = gs = None
        gc = contiguous(g)
        if ctx.needs_input_grad[1]:
            gs = as_strided(gc, shape, strides, gc._offset + off)
        if ctx.needs_input_grad[0]:
            gb = MaskRegion.apply(gc, ctx.geom)
        return gb, gs, None


class MaskRegion(Function):
    """A copy of g with the elements at geom (relative to contiguous g) zeroed."""
    node_name = "MaskRegionBackward0"

    @staticmethod
    def forward(ctx, g, geom):
        ctx.geom = geom
        shape, strides, off = geom
        out = empty(g._shape, g.dtype, g._storage.device)
        copy_into(out, g)
        copy_into(make(out._storage, shape, strides, off, out.dtype), 0)
        return out

    @staticmethod
    def backward(ctx, gg):
        return MaskRegion.apply(gg, ctx.geom), None


def _rebase_view(t, b, r):
    from ..runtime.elementwise import contiguous_strides
    if b._strides != contiguous_strides(b._shape) and b.numel() > 1:
        raise RuntimeError("in-place modification with autograd of a view whose base tensor is not contiguous "
                           "is not supported")
    geom = (t._shape, t._strides, t._offset - b._offset)
    nb = CopySlices.apply(b, r, geom)
    t._storage.version += 1
    b.grad_fn = nb.grad_fn
    b._output_nr = 0
    b._rg = True
    from .shape import as_strided
    v = as_strided(b, t._shape, t._strides, t._offset)
    t.grad_fn = v.grad_fn
    t._output_nr = 0
    t._rg = True
    _regen_views(b, t)


def _regen_views(b, skip):
    """The other views of b (made with autograd) become views of b's new history."""
    views = b.__dict__.get("_views")
    if not views:
        return
    from .shape import as_strided
    for v in list(views):
        if v is skip or v._storage is not b._storage:
            continue
        nv = as_strided(b, v._shape, v._strides, v._offset)
        v.grad_fn, v._output_nr, v._rg = nv.grad_fn, 0, True


def _check_cast(src, dst):
    if not _can_cast(src, dst):
        raise RuntimeError(f"result type {_tname(src)} can't be cast to the desired output type {_tname(dst)}")


def _tname(dt):
    return {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long", "int32": "Int",
            "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}[dt.name]


def _check_bcast(t, r):
    from ._core import broadcast_shapes
    if broadcast_shapes(r._shape, t._shape) != t._shape:
        raise RuntimeError(f"output with shape {list(t.shape)} doesn't match the broadcast shape "
                           f"{list(broadcast_shapes(r._shape, t._shape))}")


def _write(t, r):
    if r.dtype is not t.dtype:
        _check_cast(r.dtype, t.dtype)
    if r._shape != t._shape:
        _check_bcast(t, r)
    copy_into(t, r)
    t._storage.version += 1


def _can_cast(src, dst):
    return src.kind <= dst.kind


class CopyFrom(Function):
    """The value an in-place copy_ writes: src broadcast to shape and cast to dtype."""
    node_name = "CopyBackwards"

    @staticmethod
    def forward(ctx, src, shape, dtype):
        ctx.src = (src._shape, src.dtype)
        from ._core import expand_raw
        v = expand_raw(src, shape)
        if dtype is not src.dtype:
            out = empty(shape, dtype, src._storage.device)
            copy_into(out, v)
            return out
        return make(v._storage, v._shape, v._strides, v._offset, v.dtype)

    @staticmethod
    def backward(ctx, g):
        shape, dt = ctx.src
        from ._core import sum_to
        g = sum_to(g, shape)
        return (g if g.dtype is dt or not dt.is_floating_point else to(g, dt)), None, None


def copy_(t, src, non_blocking=False):
    if not isinstance(src, Tensor):
        from .creation import tensor
        src = tensor(src, dtype=t.dtype, device=t.device)
    if src._storage.device is not t._storage.device:
        src = src.detach().to(t.device) if not src._rg else to(src, t.device)
    from ._core import broadcast_shapes
    if broadcast_shapes(src._shape, t._shape) != t._shape:
        raise RuntimeError(f"output with shape {list(t.shape)} doesn't match the broadcast shape "
                           f"{list(broadcast_shapes(src._shape, t._shape))}")
    check_inplace(t)
    if state.enabled and (src._rg or t._rg):
        # the old values are overwritten: only src receives gradient
        return inplace(t, lambda _t, s: CopyFrom.apply(s, _t._shape, _t.dtype), src, uses_self=False)
    if src._storage is t._storage:
        if src._offset == t._offset and src._strides == t._strides and src._shape == t._shape:
            t._storage.version += 1
            return t
        from ._core import contiguous_raw
        src = contiguous_raw(src) if not src.is_contiguous() else _fresh_copy(src)  # may overlap t
    copy_into(t, src)
    t._storage.version += 1
    return t


def _fresh_copy(x):
    out = empty(x._shape, x.dtype, x._storage.device)
    copy_into(out, x)
    return out


def fill_(t, value):
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} dimensions.")
        if value._rg and state.enabled:
            return copy_(t, value)
        value = value.item()
    check_inplace(t)
    if state.enabled and t._rg:
        from .creation import full
        return copy_(t, full((), value, dtype=t.dtype, device=t.device))
    from .creation import _check_fill
    copy_into(t, _check_fill(value, t.dtype))
    t._storage.version += 1
    return t


def zero_(t):
    return fill_(t, 0)
