"""Elementwise math: forward kernel expression and backward formula side by side."""
import math

from .. import dtypes as D
from ..autograd.function import Function
from ..runtime.launch import _REC
from ..tensor import Tensor
from ._core import ew, result_dtype, state, sum_to, to_float_dtype

__all__ = ["add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide",
           "remainder", "fmod", "pow", "maximum", "minimum", "fmax", "fmin", "neg", "negative", "abs",
           "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "square", "sin", "cos",
           "tan", "tanh", "sigmoid", "relu", "gelu", "silu", "softplus", "erf", "sign", "floor", "ceil",
           "round", "trunc", "reciprocal", "where", "clamp", "clip", "eq", "ne", "lt", "le", "gt", "ge",
           "greater", "less", "greater_equal", "less_equal", "not_equal", "equal", "logical_and",
           "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor",
           "bitwise_not", "isnan", "isinf", "isfinite", "lerp", "atan2", "asin", "acos", "atan", "sinh",
           "cosh", "leaky_relu", "elu", "hardtanh", "relu6", "mish", "logaddexp", "allclose", "isclose",
           "sgn", "nan_to_num", "addcmul", "addcdiv", "frac", "deg2rad", "rad2deg", "hypot", "xlogy"]

_INT_POW = """
long ipow(long a, long b) { long r = 1; while (b > 0) { if (b & 1) r *= a; a *= a; b >>= 1; } return r; }
"""


def _t(x):
    return isinstance(x, Tensor)


def _scalar_of(x, dt):
    """A Python scalar converted for a kernel argument of dtype dt."""
    if dt.is_floating_point:
        return float(x)
    return int(x)


def _binary(op, expr, a, b, out_dtype=None, compute=None, preamble="", dt=None):
    if dt is None:
        dt = result_dtype(a, b)
    cd = compute or dt
    if not _t(a):
        a = _scalar_of(a, cd)
    if not _t(b):
        b = _scalar_of(b, cd)
    return ew(op, expr, (a, b), out_dtype or dt, cd, preamble=preamble)


def _unary_float(op, expr, x):
    dt = to_float_dtype(x.dtype)
    return ew(op, expr, [x], dt, dt)


# ---- arithmetic ---------------------------------------------------------------
class Add(Function):
    node_name = "AddBackward0"

    @staticmethod
    def forward(ctx, a, b, alpha=1):
        ctx.sa = a._shape if _t(a) else None  # (two attributes, not a tuple: one object fewer per node)
        ctx.sb = b._shape if _t(b) else None
        ctx.alpha = alpha
        dt = result_dtype(a, b)
        if alpha == 1:
            return _binary("add", "(v1 || v2)" if dt is D.bool_ else "v1 + v2", a, b, dt=dt)
        return ew("add_alpha", "v1 + v3 * v2", [a if _t(a) else _scalar_of(a, dt), b if _t(b) else _scalar_of(b, dt),
                                                _scalar_of(alpha, dt)], dt, dt)

    @staticmethod
    def backward(ctx, g):  # d(a + alpha*b) = (g, alpha*g)
        sa, sb = ctx.sa, ctx.sb
        ga = sum_to(g, sa) if sa is not None and ctx.needs_input_grad[0] else None
        gb = None
        if sb is not None and ctx.needs_input_grad[1]:
            gb = sum_to(g if ctx.alpha == 1 else g * ctx.alpha, sb)
        return ga, gb


class Sub(Function):
    node_name = "SubBackward0"

    @staticmethod
    def forward(ctx, a, b, alpha=1):
        ctx.sa = a._shape if _t(a) else None  # (two attributes, not a tuple: one object fewer per node)
        ctx.sb = b._shape if _t(b) else None
        ctx.alpha = alpha
        if ((a.dtype is D.bool_) if _t(a) else isinstance(a, bool)) or (
                (b.dtype is D.bool_) if _t(b) else isinstance(b, bool)):
            raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
                               "trying to invert a mask, use the `~` or `logical_not()` operator instead.")
        if alpha == 1:
            return _binary("sub", "v1 - v2", a, b)
        dt = result_dtype(a, b)
        return ew("sub_alpha", "v1 - v3 * v2", [a if _t(a) else _scalar_of(a, dt), b if _t(b) else _scalar_of(b, dt),
                                                _scalar_of(alpha, dt)], dt, dt)

    @staticmethod
    def backward(ctx, g):  # d(a - alpha*b) = (g, -alpha*g)
        sa, sb = ctx.sa, ctx.sb
        ga = sum_to(g, sa) if sa is not None and ctx.needs_input_grad[0] else None
        gb = sum_to(-g if ctx.alpha == 1 else g * (-ctx.alpha), sb) if sb is not None and ctx.needs_input_grad[1] else None
        return ga, gb


class Mul(Function):
    node_name = "MulBackward0"

    @staticmethod
    def forward(ctx, a, b):
        ta, tb = _t(a), _t(b)
        ctx.save_for_backward(a if ta else None, b if tb else None)
        ctx.scalars = (None if ta else a, None if tb else b)
        dt = result_dtype(a, b)
        return _binary("mul", "v1 && v2" if dt is D.bool_ else "v1 * v2", a, b, dt=dt)

    @staticmethod
    def backward(ctx, g):  # d(a*b) = (g*b, g*a)
        a, b = ctx.saved_tensors
        sa, sb = ctx.scalars
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = sum_to(g * (b if b is not None else sb), a.shape)
        if ctx.needs_input_grad[1]:
            gb = sum_to(g * (a if a is not None else sa), b.shape)
        return ga, gb


class Div(Function):
    node_name = "DivBackward0"

    @staticmethod
    def forward(ctx, a, b, rounding_mode=None):
        ctx.save_for_backward(a if _t(a) else None, b if _t(b) else None)
        ctx.scalars = (None if _t(a) else a, None if _t(b) else b)
        if rounding_mode == "floor":
            return _floor_div(a, b)
        if rounding_mode == "trunc":
            dt = result_dtype(a, b)
            if dt.is_floating_point:
                return _binary("div_trunc", "trunc(v1 / v2)", a, b)
            return _binary("div_trunc", "v1 / v2", a, b)
        if rounding_mode is not None:
            raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")
        dt = to_float_dtype(result_dtype(a, b))
        return _binary("div", "v1 / v2", a, b, out_dtype=dt, compute=dt)

    @staticmethod
    def backward(ctx, g):  # d(a/b) = (g/b, -g*a/b^2)
        a, b = ctx.saved_tensors
        sa, sb = ctx.scalars
        bb = b if b is not None else sb
        ga = sum_to(g / bb, a.shape) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            aa = a if a is not None else sa
            gb = sum_to(-g * aa / (b * b), b.shape)
        return ga, gb


def _floor_div(a, b):
    dt = result_dtype(a, b)
    if dt.is_floating_point:
        return _binary("floordiv", "floor(v1 / v2)", a, b)
    return _binary("floordiv", "(v1 / v2) - (((v1 % v2) != 0) && ((v1 < 0) != (v2 < 0)))", a, b)


class Remainder(Function):
    node_name = "RemainderBackward0"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if _t(a) else None, b if _t(b) else None)
        ctx.scalars = (None if _t(a) else a, None if _t(b) else b)
        dt = result_dtype(a, b)
        if dt.is_floating_point:
            e = "(fmod(v1, v2) != 0 && ((fmod(v1, v2) < 0) != (v2 < 0))) ? fmod(v1, v2) + v2 : fmod(v1, v2)"
        else:
            e = "((v1 % v2) != 0 && (((v1 % v2) < 0) != (v2 < 0))) ? (v1 % v2) + v2 : (v1 % v2)"
        return _binary("remainder", e, a, b)

    @staticmethod
    def backward(ctx, g):  # a - floor(a/b)*b: (g, -g*floor(a/b))
        a, b = ctx.saved_tensors
        sa, sb = ctx.scalars
        ga = sum_to(g, a.shape) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            gb = sum_to(-g * floor_divide(a if a is not None else sa, b), b.shape)
        return ga, gb


class Fmod(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if _t(a) else None, b if _t(b) else None)
        ctx.scalars = (None if _t(a) else a, None if _t(b) else b)
        dt = result_dtype(a, b)
        return _binary("fmod", "fmod(v1, v2)" if dt.is_floating_point else "v1 % v2", a, b)

    @staticmethod
    def backward(ctx, g):  # a - trunc(a/b)*b
        a, b = ctx.saved_tensors
        sa, sb = ctx.scalars
        ga = sum_to(g, a.shape) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            gb = sum_to(-g * div(a if a is not None else sa, b, rounding_mode="trunc"), b.shape)
        return ga, gb


class Pow(Function):
    node_name = "PowBackward0"

    @staticmethod
    def forward(ctx, a, b):
        dt = result_dtype(a, b)
        if not dt.is_floating_point:
            if _t(b) or b < 0:
                if not _t(b) and b < 0:
                    raise RuntimeError("Integers to negative integer powers are not allowed.")
            out = _binary("pow", "ipow(v1, v2)", a, b, compute=D.int64, preamble=_INT_POW)
            ctx.save_for_backward(None, None, None)
            ctx.scalars = (None, None)
            return out
        if not _t(b) and b == 2:
            out = ew("square", "v1 * v1", [a], dt, dt)
        else:
            out = _binary("pow", "pow(v1, v2)", a, b)
        ctx.save_for_backward(a if _t(a) else None, b if _t(b) else None, out if _t(b) else None)
        ctx.scalars = (None if _t(a) else a, None if _t(b) else b)
        return out

    @staticmethod
    def backward(ctx, g):  # d(a^b) = (g*b*a^(b-1), g*a^b*log(a))
        a, b, out = ctx.saved_tensors
        sa, sb = ctx.scalars
        ga = gb = None
        if ctx.needs_input_grad[0]:
            if b is None:
                ga = g * 2.0 * a if sb == 2 else (g * 0.0 if sb == 0 else g * sb * a ** (sb - 1))
            else:
                ga = g * b * pow(a, b - 1)
            ga = sum_to(ga, a.shape)
        if ctx.needs_input_grad[1]:
            base = a if a is not None else sa
            lg = log(base) if _t(base) else math.log(base) if base > 0 else float("nan")
            gb = g * out * lg
            if not _t(base) and base == 0:
                gb = g * 0.0
            gb = sum_to(gb, b.shape)
        return ga, gb


class MaxMin(Function):
    node_name = "MaximumBackward0"

    @staticmethod
    def forward(ctx, a, b, is_max, nan_prop=True):
        ctx.save_for_backward(a, b)
        ctx.is_max = is_max
        dt = result_dtype(a, b)
        c = ">" if is_max else "<"
        if dt.is_floating_point:
            if nan_prop:
                e = f"(v1 != v1 || v2 != v2) ? (v1 + v2) : ((v1 {c} v2) ? v1 : v2)"
            else:
                e = f"(v1 != v1) ? v2 : (v2 != v2) ? v1 : ((v1 {c} v2) ? v1 : v2)"
        else:
            e = f"(v1 {c} v2) ? v1 : v2"
        return _binary("maximum" if is_max else "minimum", e, a, b)

    @staticmethod
    def backward(ctx, g):  # the gradient goes to the larger (smaller); ties split it in half
        a, b = ctx.saved_tensors
        pick = (a > b) if ctx.is_max else (a < b)
        tie = (a == b)
        wa = pick.to(g.dtype) + tie.to(g.dtype) * 0.5
        ga = sum_to(g * wa, a.shape) if ctx.needs_input_grad[0] else None
        gb = sum_to(g * (1.0 - wa), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


def add(input, other, alpha=1, out=None):
    return _out(Add.apply(input, other, alpha) if _t(input) else Add.apply(_as_t(input, other), other, alpha), out)


def _as_t(x, like):
    from .creation import tensor
    return tensor(x, device=like.device) if _t(like) else tensor(x)


def _out(r, out):
    if out is not None:
        out.copy_(r) if out.shape == r.shape else out.resize_as_(r).copy_(r)
        return out
    return r


def sub(input, other, alpha=1, out=None):
    if not _t(input):
        return _out(Sub.apply(_as_t(input, other), other, alpha), out)
    return _out(Sub.apply(input, other, alpha), out)


subtract = sub


def mul(input, other, out=None):
    return _out(Mul.apply(input, other), out)


multiply = mul


def div(input, other, rounding_mode=None, out=None):
    if not _t(input):
        input = _as_t(input, other)
    return _out(Div.apply(input, other, rounding_mode), out)


divide = div


def true_divide(input, other):
    return div(input, other)


def floor_divide(input, other):
    if not _t(input):
        input = _as_t(input, other)
    return Div.apply(input, other, "floor")


def remainder(input, other):
    if not _t(input):
        input = _as_t(input, other)
    return Remainder.apply(input, other)


def fmod(input, other):
    return Fmod.apply(input, other)


def pow(input, exponent):
    if not _t(input):
        input = _as_t(input, exponent)
        if input.dtype is D.int64 and _t(exponent) and exponent.dtype.is_floating_point:
            input = input.to(exponent.dtype)
    return Pow.apply(input, exponent)


def _maxmin(a, b, is_max, nan_prop=True):
    if not _t(b):
        from .creation import tensor
        b = tensor(b, dtype=a.dtype, device=a.device)
    return MaxMin.apply(a, b, is_max, nan_prop)


def maximum(input, other):
    return _maxmin(input, other, True)


def minimum(input, other):
    return _maxmin(input, other, False)


def fmax(input, other):
    return _maxmin(input, other, True, False)


def fmin(input, other):
    return _maxmin(input, other, False, False)


# ---- unary ----------------------------------------------------------------------
def _fuse_grad(g, s):
    """Whether a backward formula of g and the saved s may run as one hand-fused kernel: no graph to
    record (no double backward) and no engine.compile trace running (its fusion pass fuses the
    composite formula itself)."""
    return not state.enabled and _REC[0] is None and s.dtype is g.dtype and g._shape == s._shape


class Unary(Function):
    """Elementwise f(x) with f' given per op by `grad(x, out, g)`."""
    expr = None
    grad_expr = None
    float_only = True
    save_out = False

    @classmethod
    def run(cls, x):
        if cls.float_only:
            return _unary_float(cls.op, cls.expr, x)
        return ew(cls.op, cls.expr_for(x.dtype), [x], x.dtype, x.dtype)

    @classmethod
    def expr_for(cls, dt):
        return cls.expr

    @classmethod
    def forward(cls, ctx, x):
        out = cls.run(x)
        ctx.save_for_backward(out if cls.save_out else x)
        return out

    @classmethod
    def backward(cls, ctx, g):
        (s,) = ctx.saved_tensors
        ge = cls.grad_expr
        if ge is not None and _fuse_grad(g, s):
            # no double backward to record: the formula as one kernel (v1 = g, v2 = the saved tensor)
            return ew(cls.op + "_bwd", ge, [g, s], g.dtype, g.dtype)
        return cls.grad(s, g)


def _unary(name, expr, grad, save_out=False, float_only=True, expr_for=None, node=None, grad_expr=None):
    """grad(saved, g) is the differentiable backward formula; grad_expr, if given, the same formula as one
    kernel expression of v1 = g and v2 = saved, used when the backward records no graph."""
    ns = {"op": name, "expr": expr, "save_out": save_out, "float_only": float_only,
          "grad": staticmethod(grad), "node_name": node or f"{name.capitalize()}Backward0",
          "grad_expr": grad_expr}
    if expr_for is not None:
        ns["expr_for"] = classmethod(lambda cls, dt: expr_for(dt))
    cls = type(name.capitalize(), (Unary,), ns)
    cls.forward = classmethod(Unary.forward.__func__)
    cls.backward = classmethod(Unary.backward.__func__)

    def fn(input, out=None):
        return _out(cls.apply(input), out)
    fn.__name__ = name
    fn.Function = cls
    return fn


_SQRT_2_PI = 0.7978845608028654
_SQRT1_2 = 0.7071067811865476
_2_SQRT_PI = 1.1283791670955126

# forward expression and local derivative (x or out is what the formula saves)
exp = _unary("exp", "exp(v1)", lambda out, g: g * out, save_out=True)    # d exp = exp
exp2 = _unary("exp2", "exp2(v1)", lambda out, g: g * out * math.log(2), save_out=True)
expm1 = _unary("expm1", "expm1(v1)", lambda out, g: g * (out + 1), save_out=True)
log = _unary("log", "log(v1)", lambda x, g: g / x)                        # d log = 1/x
log2 = _unary("log2", "log2(v1)", lambda x, g: g / (x * math.log(2)))
log10 = _unary("log10", "log10(v1)", lambda x, g: g / (x * math.log(10)))
log1p = _unary("log1p", "log1p(v1)", lambda x, g: g / (x + 1))
sqrt = _unary("sqrt", "sqrt(v1)", lambda out, g: g / (out * 2), save_out=True, grad_expr="v1 / (v2 * 2)")   # 1/(2 sqrt x)
rsqrt = _unary("rsqrt", "rsqrt(v1)", lambda out, g: g * out * out * out * -0.5, save_out=True)
sin = _unary("sin", "sin(v1)", lambda x, g: g * cos(x))
cos = _unary("cos", "cos(v1)", lambda x, g: -g * sin(x))
tan = _unary("tan", "tan(v1)", lambda out, g: g * (out * out + 1), save_out=True)
asin = _unary("asin", "asin(v1)", lambda x, g: g * rsqrt(1 - x * x))
acos = _unary("acos", "acos(v1)", lambda x, g: -g * rsqrt(1 - x * x))
atan = _unary("atan", "atan(v1)", lambda x, g: g / (x * x + 1))
sinh = _unary("sinh", "sinh(v1)", lambda x, g: g * cosh(x))
cosh = _unary("cosh", "cosh(v1)", lambda x, g: g * sinh(x))
tanh = _unary("tanh", "tanh(v1)", lambda out, g: g * (1 - out * out), save_out=True,
              grad_expr="v1 * (1 - v2 * v2)")  # 1 - tanh^2
sigmoid = _unary("sigmoid", "1 / (1 + exp(-v1))", lambda out, g: g * out * (1 - out), save_out=True,
                 grad_expr="v1 * v2 * (1 - v2)")
erf = _unary("erf", "erf(v1)", lambda x, g: g * _2_SQRT_PI * exp(-(x * x)))
reciprocal = _unary("reciprocal", "1 / v1", lambda out, g: -g * out * out, save_out=True)
neg = _unary("neg", "-v1", lambda x, g: -g, float_only=False)
negative = neg
abs = _unary("abs", "fabs(v1)", lambda x, g: g * sign(x), float_only=False,
             expr_for=lambda dt: "fabs(v1)" if dt.is_floating_point else "(v1 < 0 ? -v1 : v1)")
square = _unary("square", "v1 * v1", lambda x, g: g * 2 * x, float_only=False,
                expr_for=lambda dt: "v1 * v1")
relu = _unary("relu", "v1 > 0 ? v1 : 0", lambda out, g: g * (out > 0), save_out=True, float_only=False,
              expr_for=lambda dt: "v1 > 0 ? v1 : 0", grad_expr="v2 > 0 ? v1 : 0")
relu6 = _unary("relu6", "clamp(v1, 0.0f, 6.0f)", lambda x, g: g * ((x > 0) & (x < 6)), float_only=False,
               expr_for=lambda dt: "v1 < 0 ? 0 : (v1 > 6 ? 6 : v1)")
silu = _unary("silu", "v1 / (1 + exp(-v1))",
              lambda x, g: g * sigmoid(x) * (1 + x * (1 - sigmoid(x))),
              grad_expr="v1 * (1 / (1 + exp(-v2))) * (1 + v2 * (1 - 1 / (1 + exp(-v2))))")   # s(x)(1 + x(1 - s(x)))
mish = _unary("mish", "v1 * tanh(v1 > 20 ? v1 : log1p(exp(v1)))",
              lambda x, g: g * (tanh(softplus(x)) + x * sigmoid(x) * (1 - tanh(softplus(x)) ** 2)))


def _zero_grad(x, g):
    return g * 0


def _sign_expr(dt):
    return "(v1 > 0) - (v1 < 0)" if dt is not D.bool_ else "v1"


sign = _unary("sign", "", _zero_grad, float_only=False, expr_for=_sign_expr)
sgn = sign
floor = _unary("floor", "", _zero_grad, float_only=False,
               expr_for=lambda dt: "floor(v1)" if dt.is_floating_point else "v1")
ceil = _unary("ceil", "", _zero_grad, float_only=False,
              expr_for=lambda dt: "ceil(v1)" if dt.is_floating_point else "v1")
trunc = _unary("trunc", "", _zero_grad, float_only=False,
               expr_for=lambda dt: "trunc(v1)" if dt.is_floating_point else "v1")
frac = _unary("frac", "v1 - trunc(v1)", lambda x, g: g)
_round0 = _unary("round", "", _zero_grad, float_only=False,
                 expr_for=lambda dt: "rint(v1)" if dt.is_floating_point else "v1")


def round(input, decimals=0):
    if decimals == 0:
        return _round0(input)
    s = 10.0 ** decimals
    return _round0(input * s) / s


def deg2rad(x):
    return x * (math.pi / 180)


def rad2deg(x):
    return x * (180 / math.pi)


class Gelu(Function):
    node_name = "GeluBackward0"

    @staticmethod
    def forward(ctx, x, approximate="none"):
        ctx.save_for_backward(x)
        ctx.approx = approximate
        dt = to_float_dtype(x.dtype)
        if approximate == "tanh":
            return ew("gelu_tanh", f"0.5 * v1 * (1 + tanh({_SQRT_2_PI} * (v1 + 0.044715 * v1 * v1 * v1)))", [x], dt, dt)
        if approximate != "none":
            raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
        return ew("gelu", f"0.5 * v1 * (1 + erf(v1 * {_SQRT1_2}))", [x], dt, dt)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if _fuse_grad(g, x):  # one kernel (v1 = g, v2 = x)
            if ctx.approx == "tanh":
                t = f"tanh({_SQRT_2_PI} * (v2 + 0.044715 * v2 * v2 * v2))"
                e = (f"v1 * (0.5 * (1 + {t}) + 0.5 * v2 * (1 - {t} * {t}) * {_SQRT_2_PI} "
                     "* (1 + 0.134145 * v2 * v2))")
                return ew("gelu_tanh_bwd", e, [g, x], g.dtype, g.dtype)
            e = f"v1 * (0.5 * (1 + erf(v2 * {_SQRT1_2})) + v2 * exp(-0.5 * v2 * v2) * 0.3989422804014327)"
            return ew("gelu_bwd", e, [g, x], g.dtype, g.dtype)
        if ctx.approx == "tanh":
            # u = k(x + 0.044715x^3); d = 0.5(1+tanh u) + 0.5x(1-tanh^2 u) k (1 + 3*0.044715 x^2)
            t = tanh(_SQRT_2_PI * (x + 0.044715 * x * x * x))
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_PI * (1 + 0.134145 * x * x))
        # d = Phi(x) + x phi(x)
        return g * (0.5 * (1 + erf(x * _SQRT1_2)) + x * exp(-0.5 * x * x) * 0.3989422804014327)


def gelu(input, approximate="none"):
    return Gelu.apply(input, approximate)


class Softplus(Function):
    node_name = "SoftplusBackward0"

    @staticmethod
    def forward(ctx, x, beta=1.0, threshold=20.0):
        ctx.save_for_backward(x)
        ctx.beta, ctx.th = beta, threshold
        dt = to_float_dtype(x.dtype)
        return ew("softplus", "(v1 * v2 > v3) ? v1 : log1p(exp(v1 * v2)) / v2", [x, float(beta), float(threshold)], dt, dt)

    @staticmethod
    def backward(ctx, g):  # sigmoid(beta x), 1 above the threshold
        (x,) = ctx.saved_tensors
        bx = x * ctx.beta
        return g * where(bx > ctx.th, 1.0, sigmoid(bx))


def softplus(input, beta=1.0, threshold=20.0):
    return Softplus.apply(input, beta, threshold)


class LeakyRelu(Function):
    node_name = "LeakyReluBackward0"

    @staticmethod
    def forward(ctx, x, slope=0.01):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return ew("leaky_relu", "v1 > 0 ? v1 : v1 * v2", [x, float(slope)], x.dtype, x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * where(x > 0, 1.0, ctx.slope)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return LeakyRelu.apply(input, negative_slope)


class Elu(Function):
    node_name = "EluBackward0"

    @staticmethod
    def forward(ctx, x, alpha=1.0):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return ew("elu", "v1 > 0 ? v1 : v2 * expm1(v1)", [x, float(alpha)], x.dtype, x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * where(x > 0, 1.0, exp(x) * ctx.alpha)


def elu(input, alpha=1.0, inplace=False):
    return Elu.apply(input, alpha)


# ---- selection ------------------------------------------------------------------
class Where(Function):
    node_name = "WhereBackward0"

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        ctx.shapes = (a.shape if _t(a) else None, b.shape if _t(b) else None)
        dt = result_dtype(a, b)
        args = [cond] + [x if _t(x) else _scalar_of(x, dt) for x in (a, b)]
        from ..runtime import elementwise as _ew
        from ._core import broadcast_shapes, device_of, expand_raw
        from ..tensor import empty
        dev = device_of(args)
        shape = broadcast_shapes(*[x.shape for x in args if _t(x)])
        out = empty(shape, dt, dev)
        ops = [expand_raw(x, shape) if _t(x) else x for x in args]
        _ew.run(dev, "where", "v1 ? v2 : v3", out, ops, ["uchar", dt.ctype, dt.ctype])
        return out

    @staticmethod
    def backward(ctx, g):  # the gradient flows to the branch that was taken
        (c,) = ctx.saved_tensors
        sa, sb = ctx.shapes
        ga = sum_to(where(c, g, 0.0), sa) if sa is not None and ctx.needs_input_grad[1] else None
        gb = sum_to(where(c, 0.0, g), sb) if sb is not None and ctx.needs_input_grad[2] else None
        return None, ga, gb


def where(condition, input=None, other=None):
    if input is None and other is None:
        return condition.nonzero(as_tuple=True)
    if not _t(condition):
        raise TypeError("where(): argument 'condition' must be Tensor")
    if condition.dtype is not D.bool_:
        condition = condition != 0
    return Where.apply(condition, input, other)


class Clamp(Function):
    node_name = "ClampBackward1"

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x, lo if _t(lo) else None, hi if _t(hi) else None)
        ctx.scal = (lo, hi)
        dt = result_dtype(x, *[v for v in (lo, hi) if v is not None])
        args, e = [x], "v1"
        if lo is not None:
            args.append(lo if _t(lo) else _scalar_of(lo, dt))
            e = f"(({e}) < v{len(args)} ? v{len(args)} : ({e}))"
            if dt.is_floating_point:
                e = f"(v1 != v1 ? v1 : {e})"
        if hi is not None:
            args.append(hi if _t(hi) else _scalar_of(hi, dt))
            e = f"(({e}) > v{len(args)} ? v{len(args)} : ({e}))"
        return ew("clamp", e, args, dt, dt)

    @staticmethod
    def backward(ctx, g):  # passes where lo <= x <= hi
        x, tlo, thi = ctx.saved_tensors
        lo, hi = ctx.scal
        m = None
        if lo is not None:
            m = x >= (tlo if tlo is not None else lo)
        if hi is not None:
            m2 = x <= (thi if thi is not None else hi)
            m = m2 if m is None else m & m2
        gx = g * m if m is not None else g
        glo = sum_to(g * (x < tlo), tlo.shape) if tlo is not None and ctx.needs_input_grad[1] else None
        ghi = sum_to(g * (x > thi), thi.shape) if thi is not None and ctx.needs_input_grad[2] else None
        return gx, glo, ghi


def clamp(input, min=None, max=None, out=None):
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    return _out(Clamp.apply(input, min, max), out)


clip = clamp


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return clamp(input, min_val, max_val)


# ---- comparisons and logic (no gradient) ------------------------------------
def _cmp(name, c):
    def fn(input, other, out=None):
        if not _t(input):
            input, other = _as_t(input, other), other
        dt = result_dtype(input, other)
        return _out(_binary(name, f"v1 {c} v2", input, other, out_dtype=D.bool_, compute=dt), out)
    fn.__name__ = name
    return fn


eq = _cmp("eq", "==")
ne = _cmp("ne", "!=")
lt = _cmp("lt", "<")
le = _cmp("le", "<=")
gt = _cmp("gt", ">")
ge = _cmp("ge", ">=")
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def equal(input, other):
    return input.shape == other.shape and bool((input == other).all())


def _logic(name, e):
    def fn(input, other):
        return _binary(name, e, input, other, out_dtype=D.bool_, compute=result_dtype(input, other))
    fn.__name__ = name
    return fn


logical_and = _logic("logical_and", "(v1 != 0) && (v2 != 0)")
logical_or = _logic("logical_or", "(v1 != 0) || (v2 != 0)")
logical_xor = _logic("logical_xor", "(v1 != 0) != (v2 != 0)")


def logical_not(input):
    return ew("logical_not", "!v1", [input], D.bool_, input.dtype)


def _bitwise(name, c):
    def fn(input, other):
        dt = result_dtype(input, other)
        if dt.is_floating_point:
            raise RuntimeError(f'"{name}_cpu" not implemented for \'{dt.name.capitalize()}\'')
        return _binary(name, f"v1 {c} v2", input, other)
    fn.__name__ = name
    return fn


bitwise_and = _bitwise("bitwise_and", "&")
bitwise_or = _bitwise("bitwise_or", "|")
bitwise_xor = _bitwise("bitwise_xor", "^")


def bitwise_not(input):
    if input.dtype.is_floating_point:
        raise RuntimeError("bitwise_not is only supported for integer and boolean tensors")
    return ew("bitwise_not", "!v1" if input.dtype is D.bool_ else "~v1", [input], input.dtype, input.dtype)


def isnan(input):
    if not input.dtype.is_floating_point:
        return ew("isnan0", "0", [input], D.bool_, input.dtype)
    return ew("isnan", "v1 != v1", [input], D.bool_, input.dtype)


def isinf(input):
    if not input.dtype.is_floating_point:
        return ew("isinf0", "0", [input], D.bool_, input.dtype)
    return ew("isinf", "isinf(v1)", [input], D.bool_, input.dtype)


def isfinite(input):
    if not input.dtype.is_floating_point:
        return ew("isfinite1", "1", [input], D.bool_, input.dtype)
    return ew("isfinite", "isfinite(v1)", [input], D.bool_, input.dtype)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    big = 3.4028234663852886e38 if input.dtype is D.float32 else 1.7976931348623157e308
    posinf = big if posinf is None else posinf
    neginf = -big if neginf is None else neginf
    return where(isnan(input), nan, where(input == float("inf"), posinf, where(input == float("-inf"), neginf, input)))


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    close = (input - other).abs() <= atol + rtol * other.abs()
    close = close | (input == other)
    if equal_nan:
        close = close | (isnan(input) & isnan(other))
    return close


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan).all())


# ---- composites -------------------------------------------------------------------
def lerp(input, end, weight):
    return input + weight * (end - input)


def atan2(input, other):
    class _A(Function):
        pass
    return _atan2(input, other)


class Atan2(Function):
    node_name = "Atan2Backward0"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _binary("atan2", "atan2(v1, v2)", a, b, out_dtype=to_float_dtype(result_dtype(a, b)),
                       compute=to_float_dtype(result_dtype(a, b)))

    @staticmethod
    def backward(ctx, g):  # d atan2(a, b) = (b, -a) / (a^2 + b^2)
        a, b = ctx.saved_tensors
        r = a * a + b * b
        return sum_to(g * b / r, a.shape), sum_to(-g * a / r, b.shape)


def _atan2(a, b):
    return Atan2.apply(a, b)


atan2 = _atan2


def hypot(input, other):
    return sqrt(input * input + other * other)


def logaddexp(input, other):
    m = maximum(input, other).detach()
    return m + log(exp(input - m) + exp(other - m))


def xlogy(input, other):
    return where(input == 0, 0.0, input * log(other))


def addcmul(input, tensor1, tensor2, value=1):
    return input + value * tensor1 * tensor2


def addcdiv(input, tensor1, tensor2, value=1):
    return input + value * tensor1 / tensor2
