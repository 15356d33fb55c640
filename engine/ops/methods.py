"""Bind the op functions onto Tensor as methods and operators."""
from .. import dtypes as D
from ..tensor import Tensor
from . import convert, indexing, pointwise as P, reduce as R, shape as S
from ..runtime import elementwise as _ew
from ._core import broadcast_shapes, expand_raw, fast_binary, state
from .convert import check_inplace, inplace


def _rev(fn):
    return lambda self, other: fn(_like(other, self), self)


def _like(v, t):
    from .creation import tensor
    if isinstance(v, Tensor):
        return v
    return tensor(v, device=t.device, dtype=D.result_type(v) if not isinstance(v, float) else None) \
        if not isinstance(v, (int, float, bool)) else _scalar_t(v, t)


def _scalar_t(v, t):
    from .creation import full
    return full((), v, dtype=D.result_type(v), device=t.device)


def _inplace_method(fn):
    def m(self, *args, **kwargs):
        return inplace(self, fn, *args, **kwargs)
    return m


def bind(name, fn, inplace_too=False):
    setattr(Tensor, name, fn)
    if inplace_too:
        setattr(Tensor, name + "_", _inplace_method(fn))


def _fast(op, expr, general):
    """Operator with the no-autograd contiguous fast path first (see _core.fast_binary)."""
    def method(s, o):
        r = fast_binary(op, expr, s, o)
        return general(s, o) if r is None else r
    method.__name__ = f"__{op}__"
    return method


def _fast_float(op, expr, general):
    """Like _fast, for operators whose fast expression is only right for floating tensors
    (true division) or that swap the operands (`other - self`: expr "v2 - v1")."""
    def method(s, o):
        if s.dtype.kind == 2:
            r = fast_binary(op, expr, s, o)
            if r is not None:
                return r
        return general(s, o)
    method.__name__ = f"__{op}__"
    return method


def _fast_rev(op, expr, general):
    """Reflected operator (`number <op> self`) with the fast path for a Python number."""
    def method(s, o):
        r = fast_binary(op, expr, s, o)
        return general(s, o) if r is None else r
    method.__name__ = f"__{op}__"
    return method


def _fast_inplace(op, expr, t, o):
    """t <op>= o written straight into t (one kernel, no temporary) when no graph is recorded,
    t is contiguous and o (a tensor of t's dtype broadcastable to t, or a Python number of no
    higher kind) needs no cast; None when the general in-place path is needed."""
    if state.enabled and (t._rg or (isinstance(o, Tensor) and o._rg)):
        return None
    dt = t.dtype
    if dt.kind == 0 or (op == "div" and dt.kind != 2):
        return None
    shape = t._shape
    if t._strides != _ew.cstrides(shape):
        return None
    st = t._storage
    dev = st.device
    ct = dt.ctype
    if isinstance(o, Tensor):
        ost = o._storage
        if o.dtype is not dt or ost.device is not dev:
            return None
        if ost is st and not (o._shape == shape and o._strides == t._strides and o._offset == t._offset):
            return None  # a different view of t's memory: the general path reads it before writing
        if o._shape != shape:
            try:
                if broadcast_shapes(shape, o._shape) != shape:
                    return None
            except RuntimeError:
                return None
            o = expand_raw(o, shape)
        check_inplace(t)
        if o._strides == t._strides:
            _ew.run_fast(dev, op, expr, t, t, o, ct, None)
        else:
            _ew.run(dev, op, expr, t, [t, o], [ct, ct])
    else:
        tb = type(o)
        if tb is float:
            if dt.kind != 2:
                return None
        elif tb is not int or not -2**31 <= o < 2**31:
            return None
        check_inplace(t)
        _ew.run_fast(dev, op, expr, t, t, o, ct, None)
    st.version += 1
    return t


def _inplace_op(op, expr, fn):
    """`t.op_(other)` / `t op= other`: the direct kernel first (see _fast_inplace)."""
    def m(self, *args, **kwargs):
        if len(args) == 1 and not kwargs:
            r = _fast_inplace(op, expr, self, args[0])
            if r is not None:
                return r
        return inplace(self, fn, *args, **kwargs)
    m.__name__ = f"{op}_"
    return m


T = Tensor
T.__add__ = _fast("add", "v1 + v2", lambda s, o: P.Add.apply(s, o))
T.__radd__ = T.__add__
T.__sub__ = _fast("sub", "v1 - v2", P.sub)
T.__rsub__ = _fast_rev("rsub", "v2 - v1", _rev(P.sub))
T.__mul__ = _fast("mul", "v1 * v2", lambda s, o: P.Mul.apply(s, o))
T.__rmul__ = T.__mul__
T.__truediv__ = _fast_float("div", "v1 / v2", lambda s, o: P.Div.apply(s, o, None))
T.__rtruediv__ = _fast_float("rdiv", "v2 / v1", _rev(P.div))
T.__floordiv__ = lambda s, o: P.floor_divide(s, o)
T.__rfloordiv__ = _rev(P.floor_divide)
T.__mod__ = lambda s, o: P.remainder(s, o)
T.__rmod__ = _rev(P.remainder)
T.__pow__ = lambda s, o: P.pow(s, o)
T.__rpow__ = lambda s, o: P.pow(_like(o, s) if not isinstance(o, Tensor) else o, s)
T.__neg__ = lambda s: P.neg(s)
T.__pos__ = lambda s: s
T.__abs__ = lambda s: P.abs(s)
T.__invert__ = lambda s: P.bitwise_not(s)
T.__eq__ = lambda s, o: P.eq(s, o) if isinstance(o, (Tensor, int, float, bool)) else NotImplemented
T.__ne__ = lambda s, o: P.ne(s, o) if isinstance(o, (Tensor, int, float, bool)) else NotImplemented
T.__lt__ = lambda s, o: P.lt(s, o)
T.__le__ = lambda s, o: P.le(s, o)
T.__gt__ = lambda s, o: P.gt(s, o)
T.__ge__ = lambda s, o: P.ge(s, o)
T.__and__ = lambda s, o: P.logical_and(s, o) if s.dtype is D.bool_ and (not isinstance(o, Tensor) or o.dtype is D.bool_) else P.bitwise_and(s, o)
T.__or__ = lambda s, o: P.logical_or(s, o) if s.dtype is D.bool_ and (not isinstance(o, Tensor) or o.dtype is D.bool_) else P.bitwise_or(s, o)
T.__xor__ = lambda s, o: P.logical_xor(s, o) if s.dtype is D.bool_ and (not isinstance(o, Tensor) or o.dtype is D.bool_) else P.bitwise_xor(s, o)
T.__rand__, T.__ror__, T.__rxor__ = T.__and__, T.__or__, T.__xor__
T.__iadd__ = _inplace_op("add", "v1 + v2", P.add)
T.__isub__ = _inplace_op("sub", "v1 - v2", P.sub)
T.__imul__ = _inplace_op("mul", "v1 * v2", P.mul)
T.__itruediv__ = _inplace_op("div", "v1 / v2", P.div)
T.__ifloordiv__ = lambda s, o: inplace(s, P.floor_divide, o)
T.__imod__ = lambda s, o: inplace(s, P.remainder, o)
T.__ipow__ = lambda s, o: inplace(s, P.pow, o)
T.__iand__ = lambda s, o: inplace(s, T.__and__, o)
T.__ior__ = lambda s, o: inplace(s, T.__or__, o)
T.__ixor__ = lambda s, o: inplace(s, T.__xor__, o)
T.__getitem__ = indexing.getitem
T.__setitem__ = indexing.setitem

for _n in ("add", "sub", "mul", "div", "remainder", "fmod", "pow", "floor_divide", "true_divide", "clamp",
           "neg", "abs", "exp", "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "sigmoid", "relu",
           "square", "reciprocal", "sign", "floor", "ceil", "round", "trunc", "frac", "erf", "expm1", "log2",
           "log10", "exp2", "asin", "acos", "atan", "sinh", "cosh", "maximum", "minimum", "fmax", "fmin",
           "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or",
           "bitwise_xor", "bitwise_not", "lerp", "atan2", "addcmul", "addcdiv", "nan_to_num", "sgn", "hypot",
           "xlogy", "clip", "subtract", "multiply", "divide", "negative", "deg2rad", "rad2deg"):
    bind(_n, getattr(P, _n), inplace_too=True)
T.add_, T.sub_, T.mul_, T.div_ = T.__iadd__, T.__isub__, T.__imul__, T.__itruediv__
for _n in ("eq", "ne", "lt", "le", "gt", "ge", "greater", "less", "greater_equal", "less_equal", "not_equal",
           "isnan", "isinf", "isfinite", "allclose", "isclose", "equal", "where"):
    bind(_n, getattr(P, _n))
T.where = lambda self, condition, other: P.where(condition, self, other)
T.gelu = lambda self, approximate="none": P.gelu(self, approximate)
T.silu = lambda self: P.silu(self)
T.softplus = lambda self, beta=1.0, threshold=20.0: P.softplus(self, beta, threshold)
T.relu_ = _inplace_method(P.relu)
T.clamp_min = lambda self, m: P.clamp(self, min=m)
T.clamp_max = lambda self, m: P.clamp(self, max=m)
T.clamp_min_ = _inplace_method(lambda s, m: P.clamp(s, min=m))
T.clamp_max_ = _inplace_method(lambda s, m: P.clamp(s, max=m))

T.sum = R.sum
T.mean = R.mean

for _n in ("reshape", "permute", "transpose", "swapaxes", "swapdims", "t", "squeeze", "unsqueeze", "flatten",
           "unflatten", "narrow", "select", "split", "chunk", "unbind", "movedim", "moveaxis", "broadcast_to",
           "flip", "roll", "diagonal", "as_strided", "tile", "clone", "diag", "diag_embed"):
    bind(_n, getattr(S, _n))
T.view = S.view
T.view_as = lambda self, other: S.view(self, other.shape)
T.reshape_as = lambda self, other: S.reshape(self, other.shape)
T.expand = S.expand
T.expand_as = S.expand_as
T.contiguous = S.contiguous
T.repeat = S.repeat
T.unfold = S.unfold
T.to = convert.to
T.type = convert.type_
T.type_as = lambda self, other: convert.to(self, other.dtype)
T.float = convert._cast_method(D.float32)
T.double = convert._cast_method(D.float64)
T.half = convert._cast_method(D.float16)
T.long = convert._cast_method(D.int64)
T.int = convert._cast_method(D.int32)
T.short = convert._cast_method(D.int16)
T.bool = convert._cast_method(D.bool_)
T.byte = convert._cast_method(D.uint8)
T.char = convert._cast_method(D.int8)
T.cpu = lambda self, memory_format=None: convert.to(self, "cpu")
T.cuda = lambda self, device=None, non_blocking=False, memory_format=None: convert.to(
    self, "cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))
T.copy_ = convert.copy_
T.fill_ = convert.fill_
T.zero_ = convert.zero_
