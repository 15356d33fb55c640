"""Elementwise ops against PyTorch: forward and gradients, broadcasting, size-1,
empty and non-contiguous inputs."""
import numpy as np
import pytest
import torch

import engine
from .helpers import assert_close, check_op, rand

SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((5,), ()), ((0, 3), (1, 3)), ((1,), (2, 1, 3))]


@pytest.mark.parametrize("sa,sb", SHAPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum", "pow", "atan2"])
def test_binary(op, sa, sb):
    pos = op == "pow"
    a, b = rand(sa, positive=pos), rand(sb, positive=pos)
    check_op(lambda T, x, y: getattr(T, op)(x, y), a, b)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "pow", "floordiv", "mod"])
def test_binary_noncontiguous(op):
    a, b = rand((4, 5), positive=True), rand((4, 5), positive=True)
    check_op(lambda T, x, y: getattr(x, f"__{op}__")(y), a, b, noncontig=True,
             grad=op not in ("floordiv",))


@pytest.mark.parametrize("scalar", [2, 0.5, -3, True])
@pytest.mark.parametrize("op", ["__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
                                "__truediv__", "__rtruediv__", "__pow__"])
def test_scalar_operands(op, scalar):
    a = rand((3, 2), positive=True)
    if op == "__pow__" and scalar is True:
        return
    if "sub" in op and scalar is True:
        for T, x in ((engine, engine.tensor(a)), (torch, torch.tensor(a))):
            with pytest.raises(RuntimeError, match="Subtraction.*bool"):
                getattr(x, op)(scalar)
        return
    check_op(lambda T, x: getattr(x, op)(scalar), a)


UNARY = ["neg", "abs", "exp", "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "erf",
         "square", "reciprocal", "expm1", "log2", "log10", "tan", "atan", "sinh", "cosh", "floor", "ceil",
         "round", "trunc", "sign", "frac"]
POSITIVE = {"log", "log1p", "sqrt", "rsqrt", "log2", "log10", "reciprocal"}


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 1, 3), (0, 2), ()])
@pytest.mark.parametrize("op", UNARY)
def test_unary(op, shape):
    a = rand(shape, positive=op in POSITIVE)
    if op == "tan":
        a = np.asarray(a * 0.5)
    check_op(lambda T, x: getattr(T, op)(x), a)


@pytest.mark.parametrize("op", ["exp", "tanh", "sigmoid", "sqrt", "relu"])
def test_unary_noncontiguous(op):
    check_op(lambda T, x: getattr(T, op)(x), rand((3, 5), positive=True), noncontig=True)


@pytest.mark.parametrize("approx", ["none", "tanh"])
def test_gelu(approx):
    check_op(lambda T, x: T.nn.functional.gelu(x, approximate=approx) if T is torch else T.gelu(x, approx),
             rand((4, 6)))


@pytest.mark.parametrize("fn", [
    lambda T, x: T.nn.functional.silu(x) if T is torch else T.silu(x),
    lambda T, x: T.nn.functional.softplus(x) if T is torch else T.softplus(x),
    lambda T, x: T.nn.functional.softplus(x, beta=2.0, threshold=1.0) if T is torch else T.softplus(x, 2.0, 1.0),
    lambda T, x: T.nn.functional.leaky_relu(x, 0.1) if T is torch else T.leaky_relu(x, 0.1),
    lambda T, x: T.nn.functional.elu(x) if T is torch else T.elu(x),
])
def test_activations(fn):
    check_op(fn, rand((5, 3)))


def test_int_arithmetic_and_promotion():
    a = rand((3, 4), np.int64)
    b = rand((3, 4), np.int32)
    b[b == 0] = 3
    for f in [lambda T, x, y: x + y, lambda T, x, y: x * y, lambda T, x, y: x // y, lambda T, x, y: x % y,
              lambda T, x, y: x / y, lambda T, x, y: x - 2, lambda T, x, y: x * 1.5, lambda T, x, y: y + True,
              lambda T, x, y: x ** 2, lambda T, x, y: T.abs(y), lambda T, x, y: -y]:
        check_op(f, a, b, grad=False)


def test_python_floor_semantics():
    a = np.array([-7, 7, -7, 7], dtype=np.int64)
    b = np.array([2, -2, -2, 2], dtype=np.int64)
    check_op(lambda T, x, y: (x // y, x % y), a, b, grad=False)
    check_op(lambda T, x, y: (x // y, x % y, T.fmod(x, y)), a.astype(np.float32), b.astype(np.float32),
             grad=False)


@pytest.mark.parametrize("dt", [np.float32, np.int64, np.int32, np.bool_])
def test_comparisons(dt):
    a, b = rand((3, 4), dt), rand((1, 4), dt)
    for op in ["eq", "ne", "lt", "le", "gt", "ge"]:
        if dt == np.bool_ and op in ("lt", "le", "gt", "ge"):
            continue
        check_op(lambda T, x, y: getattr(T, op)(x, y), a, b, grad=False)
    check_op(lambda T, x, y: (x == 1, x > 0, 0 < x), a, b, grad=False)


def test_logical_and_bitwise():
    a, b = rand((3, 4), np.bool_), rand((3, 4), np.bool_)
    check_op(lambda T, x, y: (x & y, x | y, x ^ y, ~x, T.logical_not(x), T.logical_and(x, y),
                              T.logical_or(x, y), T.logical_xor(x, y)), a, b, grad=False)
    i, j = rand((3, 4), np.int64), rand((3, 4), np.int64)
    check_op(lambda T, x, y: (x & y, x | y, x ^ y, ~x), i, j, grad=False)


def test_where_and_clamp():
    c = rand((3, 4), np.bool_)
    a, b = rand((3, 4)), rand((1, 4))
    check_op(lambda T, m, x, y: T.where(m, x, y), c, a, b)
    check_op(lambda T, m, x: T.where(m, x, 0.0), c, a)
    check_op(lambda T, x: T.clamp(x, -0.5, 0.7), a)
    check_op(lambda T, x: T.clamp(x, min=0.1), a)
    check_op(lambda T, x: x.clamp(max=0.2), a)
    check_op(lambda T, x, lo: T.clamp(x, min=lo), a, b)


def test_isnan_isinf():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 0.0], dtype=np.float32)
    check_op(lambda T, x: (T.isnan(x), T.isinf(x), T.isfinite(x), T.nan_to_num(x)), a, grad=False)


def test_maximum_ties_split_gradient():
    a = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    check_op(lambda T, x, y: T.maximum(x, y), a, a.copy())


def test_broadcast_error_names_shapes():
    with pytest.raises(RuntimeError, match=r"size of tensor a \(3\) must match the size of tensor b \(4\)"):
        engine.ones(2, 3) + engine.ones(2, 4)


def test_inplace_ops_and_version_counter():
    x = engine.ones(3)
    v = x._version
    x.add_(2)
    x.mul_(engine.tensor([1.0, 2.0, 3.0]))
    x -= 1
    x /= 2
    assert x._version == v + 4
    assert_close(x, torch.tensor([1.0, 2.5, 4.0]))


def test_inplace_on_saved_tensor_raises():
    a = engine.tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    c = b * b
    b.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.sum().backward()


def test_inplace_on_leaf_requiring_grad_raises():
    a = engine.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        a.add_(1)
    with engine.no_grad():
        a.add_(1)
    assert_close(a, torch.tensor([2.0, 3.0], requires_grad=True))


def test_inplace_with_grad_rebases_history():
    x = np.array([1.0, 2.0, 3.0], dtype=np.float32)

    def f(T, a):
        b = a * 2
        b.mul_(a)
        b.add_(1)
        return b.exp() if False else b
    check_op(f, x)


def test_inplace_result_type_error():
    x = engine.zeros(3, dtype=engine.int64)
    with pytest.raises(RuntimeError, match="can't be cast"):
        x.add_(1.5)


def test_float64_where_supported():
    from .helpers import fp64
    if not fp64():
        with pytest.raises(TypeError, match="float64"):
            engine.zeros(2, dtype=engine.float64)
        return
    a = rand((3, 3), np.float64)
    check_op(lambda T, x: T.exp(x) * x, a)
