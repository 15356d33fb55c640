"""Reductions and scans against PyTorch: forward values, dtypes, errors and gradients,
over int / negative / tuple / None dims, keepdim, size-1, empty and non-contiguous inputs,
and long rows that take the multi-group kernel path."""
import math

import numpy as np
import pytest
import torch

import engine
from .helpers import TORCH_GRADS_AMINMAX_NARROW_COPY, assert_close, check_op, fp64, rand

pytestmark = pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0")

# (shape, dim) pairs; dims cover int, negative, tuple (unsorted), None, size-1, 0-d and empty
DIM_CASES = [
    ((7,), None), ((7,), 0), ((7,), -1),
    ((2, 3, 4), None), ((2, 3, 4), 1), ((2, 3, 4), -1), ((2, 3, 4), (2, 0)), ((2, 3, 4), (0, 1, 2)),
    ((1, 4, 1), 0), ((1, 4, 1), (0, 2)), ((3, 1), 1),
    ((), None), ((), 0),
    ((0, 3), 1), ((0, 3), 0), ((0, 3), None),
]
NONEMPTY = [(s, d) for s, d in DIM_CASES if 0 not in s]


def _id(v):
    return str(v).replace(" ", "")


def _call(fn_name, dim, keepdim, **kw):
    def f(T, x):
        if dim is None and not keepdim:
            return getattr(T, fn_name)(x, **kw)
        if dim is None:
            return getattr(T, fn_name)(x, dim=None, keepdim=True, **kw) if fn_name not in ("amax", "amin") \
                else getattr(T, fn_name)(x, dim=(), keepdim=True, **kw)
        return getattr(T, fn_name)(x, dim=dim, keepdim=keepdim, **kw)
    return f


@pytest.mark.parametrize("noncontig", [False, True])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shape,dim", DIM_CASES, ids=_id)
@pytest.mark.parametrize("op", ["sum", "mean", "prod", "logsumexp", "var", "std", "norm"])
def test_float_reductions(op, shape, dim, keepdim, noncontig):
    if op == "prod" and (isinstance(dim, tuple) or (dim is None and keepdim)):
        pytest.skip("torch.prod takes one dim (or none, without keepdim)")
    if op == "logsumexp" and dim is None:
        check_op(lambda T, x: T.logsumexp(x, tuple(range(x.ndim)), keepdim=keepdim), rand(shape),
                 noncontig=noncontig)
        return
    x = rand(shape, low=0.5, high=1.5) if op == "prod" else rand(shape)
    check_op(_call(op, dim, keepdim, **({"p": 2} if op == "norm" else {})), x, noncontig=noncontig)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shape,dim", NONEMPTY, ids=_id)
@pytest.mark.parametrize("op", ["amax", "amin"])
def test_amax_amin(op, shape, dim, keepdim):
    check_op(_call(op, dim, keepdim), rand(shape))
    check_op(_call(op, dim, keepdim), rand(shape), noncontig=True)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shape,dim", [((7,), 0), ((7,), -1), ((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1),
                                       ((1, 4, 1), 0), ((1, 4, 1), 2), ((), 0), ((0, 3), 1), ((5, 1), 1)],
                         ids=_id)
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_dim(op, shape, dim, keepdim):
    for nc in (False, True):
        out = check_op(lambda T, x: getattr(T, op)(x, dim, keepdim), rand(shape), noncontig=nc)
        assert out.values is out[0] and out.indices is out[1]
        check_op(lambda T, x: getattr(x, op)(dim=dim, keepdim=keepdim), rand(shape), noncontig=nc)


def test_max_namedtuple_and_unpacking():
    x = engine.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    v, i = engine.max(x, 1)
    assert v.tolist() == [5.0, 7.0] and i.tolist() == [1, 0]
    r = x.min(dim=0, keepdim=True)
    assert r.values.shape == (1, 3) and r.indices.tolist() == [[0, 1, 0]]
    assert type(r).__name__ == "min" and "indices=" in repr(r)
    r = engine.aminmax(x, dim=1)
    assert r.min.tolist() == [1.0, 0.0] and r.max.tolist() == [5.0, 7.0]


@pytest.mark.parametrize("shape", [(7,), (2, 3, 4), ()])
def test_max_min_full(shape):
    check_op(lambda T, x: (T.max(x), T.min(x), x.max(), x.min()), rand(shape))
    g = TORCH_GRADS_AMINMAX_NARROW_COPY
    check_op(lambda T, x: T.aminmax(x), rand(shape), grad=g)
    check_op(lambda T, x: T.aminmax(x, dim=-1, keepdim=True), rand(shape), grad=g)


def test_max_binary_form():
    a, b = rand((3, 4)), rand((4,))
    check_op(lambda T, x, y: (T.max(x, y), T.min(x, y), x.max(y), x.min(other=y) if T is engine
                              else torch.min(x, y)), a, b)


def test_max_ties_gradient():
    x = np.array([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 0.0]], dtype=np.float32)
    check_op(lambda T, t: T.amax(t, 1), x)                # split evenly among ties
    check_op(lambda T, t: T.max(t), x)
    check_op(lambda T, t: T.min(t.reshape(-1)), x)
    check_op(lambda T, t: T.max(t, 1), x)                  # the selected (first) index only
    check_op(lambda T, t: T.min(t, 0, keepdim=True), x)
    check_op(lambda T, t: T.norm(t, float("inf"), dim=1), x)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_argmin(op, dim, keepdim):
    x = rand((5, 6))
    check_op(lambda T, t: getattr(T, op)(t, dim=dim, keepdim=keepdim), x)
    check_op(lambda T, t: getattr(t, op)(dim, keepdim), x, noncontig=True)
    ties = rand((5, 6), np.int64)   # values in -5..5: many ties, first index wins as on torch CPU
    check_op(lambda T, t: getattr(T, op)(t, dim=dim, keepdim=keepdim), ties)
    check_op(lambda T, t: getattr(T, op)(t, dim=dim, keepdim=keepdim), ties.astype(np.float32))
    check_op(lambda T, t: getattr(T, op)(t, dim=dim, keepdim=keepdim), ties, noncontig=True)


def test_argmax_scalar_and_size1():
    check_op(lambda T, t: (T.argmax(t), T.argmax(t, 0), T.argmin(t, 0, True)), np.array(3.0, np.float32))
    check_op(lambda T, t: (T.argmax(t, 0), T.argmax(t, 1), T.argmax(t)), rand((1, 5)))


def test_nan_propagation():
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 1.0, -1.0, 0.0]], dtype=np.float32)
    check_op(lambda T, t: (T.max(t, 1), T.min(t, 1), T.amax(t, 1), T.argmax(t, 1), T.argmin(t, 1), T.max(t),
                           T.sum(t, 1), T.prod(t, 1)), x, grad=False)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_])
def test_integer_and_bool_dtypes(dtype):
    x = rand((3, 5), dtype)
    check_op(lambda T, t: (T.sum(t), T.sum(t, 1), t.sum(0, keepdim=True), T.prod(t, 1), T.max(t), T.min(t, 1),
                           T.amax(t, (0, 1)), T.amin(t, 0), T.all(t), T.any(t, 1), T.count_nonzero(t),
                           T.count_nonzero(t, 0), T.cumsum(t, 1), T.cumprod(t, 0)), x, grad=False)
    if dtype != np.bool_:
        check_op(lambda T, t: (T.argmax(t), T.argmin(t, 1)), x, grad=False)
        check_op(lambda T, t: (T.sum(t, dtype=T.int32), T.sum(t, 1, dtype=T.float32),
                               T.mean(t, dtype=T.float32), T.cumsum(t, 0, dtype=T.float32)), x, grad=False)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_int_errors(dtype):
    x = rand((3, 4), dtype)
    for T in (engine, torch):
        t = T.tensor(x)
        with pytest.raises(RuntimeError, match="mean\\(\\): could not infer output dtype"):
            T.mean(t)
        with pytest.raises(RuntimeError, match="std and var only support floating point"):
            T.var(t)
        with pytest.raises(RuntimeError, match="std and var only support floating point"):
            t.std(1)
        with pytest.raises(RuntimeError, match="Expected a floating point"):
            T.norm(t)
    check_op(lambda T, t: T.logsumexp(t, 1), x, grad=False)   # ints are promoted to float


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1), -1])
def test_all_any_count_nonzero(dim, keepdim):
    x = np.array([[1.0, 0.0, np.nan], [0.0, 0.0, 0.0], [2.0, 3.0, 0.5]], dtype=np.float32)
    f = _call("all", dim, keepdim)
    g = _call("any", dim, keepdim)
    check_op(lambda T, t: (f(T, t), g(T, t), f(T, t > 0), g(T, t > 0), f(T, t.to(T.uint8))), x, grad=False)
    check_op(lambda T, t: (f(T, t), g(T, t)), x, grad=False, noncontig=True)
    if not keepdim:
        check_op(lambda T, t: T.count_nonzero(t, dim), x, grad=False)
    check_op(lambda T, t: (t.all(), t.any(), t.all(1), (t == t).all()), x, grad=False)
    e = np.zeros((0, 3), np.float32)
    check_op(lambda T, t: (T.all(t), T.any(t), T.all(t, 0), T.any(t, 0), T.all(t, 1), T.count_nonzero(t, 0)), e,
             grad=False)


@pytest.mark.parametrize("p", [2, 1, 3, 0.5, 0, float("inf"), float("-inf"), "fro", -1.5])
@pytest.mark.parametrize("dim", [None, 1, (0, 2), -1])
def test_norm(p, dim):
    x = rand((2, 3, 4))
    check_op(lambda T, t: T.norm(t, p, dim), x)
    check_op(lambda T, t: t.norm(p=p, dim=dim, keepdim=True), x, noncontig=True)


def test_norm_zero_vector_gradient():
    x = np.zeros((2, 3), np.float32)
    x[1] = [1.0, -2.0, 0.0]
    check_op(lambda T, t: T.norm(t, dim=1), x)            # p=2: 0 for the zero row, like torch
    check_op(lambda T, t: T.norm(t), np.zeros(4, np.float32))
    check_op(lambda T, t: T.norm(t, 1, dim=1), x)
    check_op(lambda T, t: T.norm(t, 3, dim=1), x)
    check_op(lambda T, t: T.norm(t, dtype=T.float64), x)


@pytest.mark.parametrize("unbiased,correction", [(None, None), (False, None), (True, None), (None, 0),
                                                 (None, 2), (None, 2.5)])
def test_var_std_correction(unbiased, correction):
    kw = {}
    if unbiased is not None:
        kw["unbiased"] = unbiased
    if correction is not None:
        kw["correction"] = correction
    x = rand((3, 5))
    check_op(lambda T, t: (T.var(t, 1, **kw), T.std(t, 0, keepdim=True, **kw), t.var(**kw), t.std(**kw),
                           T.var(t, (0, 1), **kw)), x)
    check_op(lambda T, t: (T.var_mean(t, 1, **kw), T.std_mean(t, dim=(0, 1), keepdim=True, **kw),
                           T.var_mean(t, dim=(0, 1), **kw)), x)


def test_var_positional_forms():
    x = rand((3, 5))
    check_op(lambda T, t: (t.var(0, True), t.var(False), T.std(t, 1, False, True), t.std(1, keepdim=True),
                           T.var(t, False)), x)


def test_var_degenerate():
    check_op(lambda T, t: (T.var(t), T.std(t, 0), T.var(t, correction=0)), rand((1,)))
    # constant rows: std 0 gets a zero gradient
    check_op(lambda T, t: T.std(t, 1), np.ones((2, 4), np.float32))


def test_logsumexp_extremes():
    x = np.array([[1000.0, 1000.0, -1000.0], [np.inf, 1.0, 2.0], [-np.inf, -np.inf, -np.inf],
                  [-np.inf, 0.0, 1.0]], dtype=np.float32)
    check_op(lambda T, t: T.logsumexp(t, 1), x, grad=False)
    check_op(lambda T, t: T.logsumexp(t, 1), x[:1])
    check_op(lambda T, t: T.logsumexp(t, 0, keepdim=True), rand((0, 3)))
    check_op(lambda T, t: T.logsumexp(t, 1), rand((0, 3)))


@pytest.mark.parametrize("zeros", [[], [2], [1, 3], [0]])
def test_prod_gradient_with_zeros(zeros):
    x = rand((2, 5), low=0.5, high=1.5)
    x[0, zeros] = 0.0
    check_op(lambda T, t: (T.prod(t, 1), T.prod(t, 0, keepdim=True)), x)
    check_op(lambda T, t: T.prod(t), x[:1])


def test_prod_dtype_and_empty():
    check_op(lambda T, t: (T.prod(t), T.prod(t, 0), T.prod(t, 1)), rand((0, 3)))
    check_op(lambda T, t: T.prod(t, 1, dtype=T.float64), rand((0, 3)))
    check_op(lambda T, t: T.prod(t, dtype=T.float64), rand((3,)))
    check_op(lambda T, t: T.prod(t, 1, keepdim=True), rand((2, 3)), noncontig=True)


def test_empty_reductions():
    e = rand((0, 3))
    check_op(lambda T, t: (T.sum(t), T.sum(t, 0), T.sum(t, 1), T.mean(t), T.mean(t, 0), T.prod(t),
                           T.amax(t, 1), T.max(t, 1), T.norm(t), T.norm(t, dim=0), T.var(t, 0)), e)


def test_empty_errors():
    for T in (engine, torch):
        e, e2 = T.zeros(0), T.zeros(0, 3)
        for name in ("max", "min", "amax", "amin"):
            with pytest.raises(RuntimeError, match=f"{name}\\(\\): Expected reduction dim to be specified"):
                getattr(T, name)(e)
        with pytest.raises(IndexError, match="max\\(\\): Expected reduction dim 0 to have non-zero size"):
            T.max(e2, 0)
        with pytest.raises(IndexError, match="amin\\(\\): Expected reduction dim 0 to have non-zero size"):
            T.amin(e2, 0)
        with pytest.raises(IndexError, match="argmax\\(\\): Expected reduction dim to be specified"):
            T.argmax(e)
        with pytest.raises(IndexError, match="argmin\\(\\): Expected reduction dim 0 to have non-zero"):
            T.argmin(e2, 0)
        with pytest.raises(RuntimeError, match="cannot compute the inf norm"):
            T.norm(e, float("inf"))
        with pytest.raises(RuntimeError, match="cannot compute the inf norm"):
            T.norm(e2, float("inf"), dim=0)


def test_dim_errors():
    x = engine.ones(2, 3)
    for fn in (lambda: x.sum(2), lambda: x.mean(-3), lambda: x.max(5), lambda: x.amax((0, 2)),
               lambda: x.argmax(2), lambda: x.var(3), lambda: x.cumsum(2), lambda: engine.logsumexp(x, 2),
               lambda: x.norm(dim=2), lambda: x.all(2), lambda: x.prod(-3), lambda: engine.softmax(x, 2)):
        with pytest.raises(IndexError, match="Dimension out of range"):
            fn()
    with pytest.raises(RuntimeError, match="appears multiple times"):
        x.sum((0, 0))
    with pytest.raises(TypeError):
        engine.max(x, (0, 1))


def test_dtype_rules():
    f = rand((2, 3))
    check_op(lambda T, t: (T.sum(t, dtype=T.float64), T.mean(t, 1, dtype=T.float64),
                           T.cumsum(t, 1, dtype=T.float64)), f)
    # the input is cast first: 1.5 + 1.5 summed as int64 is 2
    check_op(lambda T, t: (T.sum(t, 0, dtype=T.int64), T.prod(t, dtype=T.int64), T.cumsum(t, 1, dtype=T.int32)),
             np.full((2, 2), 1.5, np.float32), grad=False)
    check_op(lambda T, t: T.sum(t, dtype=T.int32), rand((3, 2), np.int64), grad=False)


@pytest.mark.parametrize("shape,dim", [((7,), 0), ((7,), -1), ((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), 2),
                                       ((2, 3, 4), -2), ((1, 5), 0), ((0, 3), 0), ((0, 3), 1), ((), 0),
                                       ((4, 1), 1)], ids=_id)
def test_cumsum_cumprod(shape, dim):
    check_op(lambda T, t: T.cumsum(t, dim), rand(shape))
    check_op(lambda T, t: t.cumsum(dim), rand(shape), noncontig=True)
    check_op(lambda T, t: T.cumprod(t, dim), rand(shape, low=0.5, high=1.5))
    check_op(lambda T, t: t.cumprod(dim=dim), rand(shape, low=-1.5, high=1.5), noncontig=True)


@pytest.mark.parametrize("zeros", [[2], [1, 3], [0], [4]])
def test_cumprod_gradient_with_zeros(zeros):
    x = rand((2, 5), low=0.5, high=1.5)
    x[0, zeros] = 0.0
    check_op(lambda T, t: T.cumprod(t, 1), x)
    check_op(lambda T, t: T.cumprod(t.t(), 0), x)


def test_cumsum_inplace():
    check_op(lambda T, t: t.clone().cumsum_(1), rand((3, 4)))


# ---- long rows: the multi-group (two-pass) reduction and chunked scan paths ----------------------
def _close_big(mine, ref, rtol=1e-4, atol=1e-3):
    assert_close(mine, ref, rtol, atol, "large")


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin", "argmax", "argmin", "norm", "var", "std",
                                "logsumexp", "max", "all", "count_nonzero"])
def test_large_1d(op):
    x = rand((100000,))
    x[77777] = 3.0   # a unique max late in the row, in a later group's chunk
    x[12345] = -3.0
    et, tt = engine.tensor(x), torch.tensor(x)

    def f(T, t):
        if op == "logsumexp":
            return T.logsumexp(t, 0)
        if op in ("all", "count_nonzero"):
            return getattr(T, op)(t > -2.5)
        return getattr(T, op)(t)
    _close_big(f(engine, et), f(torch, tt))
    if op in ("sum", "mean", "amax", "norm", "var", "logsumexp", "std"):
        check_op(f, x, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape,dim", [((3, 50000), 1), ((3, 50000), 0), ((50000, 3), 0), ((3, 50000), -1)],
                         ids=_id)
def test_large_2d(shape, dim):
    x = rand(shape)
    check_op(lambda T, t: (T.sum(t, dim), T.mean(t, dim, keepdim=True), T.amax(t, dim), T.var(t, dim),
                           T.logsumexp(t, dim), T.norm(t, dim=dim)), x, rtol=1e-4, atol=1e-3)
    check_op(lambda T, t: (T.max(t, dim), T.argmin(t, dim)), x, grad=False)
    check_op(lambda T, t: T.sum(t, dim), x, noncontig=True, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape,dim", [((100000,), 0), ((3, 50000), 1), ((3, 50000), 0), ((50000, 3), 0)],
                         ids=_id)
def test_large_cumsum(shape, dim):
    x = rand(shape, low=0.0, high=1.0)
    check_op(lambda T, t: T.cumsum(t, dim), x, rtol=1e-5, atol=1e-2)
    i = rand(shape, np.int32)
    check_op(lambda T, t: T.cumsum(t, dim), i, grad=False)
    # +-1 (and a few 2 and 0.5) keep every product exact in float32
    p = np.where(rand(shape, np.bool_), 1.0, -1.0).astype(np.float32)
    p.reshape(-1)[::997] = 2.0
    p.reshape(-1)[500::997] = 0.5
    check_op(lambda T, t: T.cumprod(t, dim), p, grad=False)


def test_large_argmax_ties_first_index():
    x = np.zeros(100000, np.float32)
    x[[5000, 60000, 99999]] = 1.0
    for T in (engine, torch):
        assert T.argmax(T.tensor(x)).item() == 5000
        assert T.max(T.tensor(x), 0).indices.item() == 5000
        assert T.argmin(T.tensor(-x)).item() == 5000
        assert T.argmin(T.tensor(x)).item() == 0
    y = np.tile(x, (2, 1))
    assert engine.argmax(engine.tensor(y), 1).tolist() == [5000, 5000]


# ---- float64, finite differences, double backward ------------------------------------------------
needs_fp64 = pytest.mark.skipif(not fp64(), reason="device lacks cl_khr_fp64")


@needs_fp64
def test_float64_reductions():
    x = rand((3, 4), np.float64)
    check_op(lambda T, t: (T.sum(t, 1), T.mean(t), T.prod(t, 0), T.amax(t, 1), T.max(t, 0), T.var(t, 1),
                           T.std(t), T.logsumexp(t, 1), T.norm(t, 3, 1), T.cumsum(t, 1), T.cumprod(t, 0),
                           T.argmax(t, 1)), x)
    big = rand((100000,), np.float64)
    check_op(lambda T, t: (T.sum(t), T.var(t), T.cumsum(t, 0)), big, rtol=1e-9, atol=1e-9)


@needs_fp64
@pytest.mark.parametrize("name,fn", [
    ("prod", lambda t: t.prod(1)),
    ("prod_zero", lambda t: (t * engine.tensor([[1.0, 0.0, 1.0]], dtype=engine.float64)).prod(1)),
    ("prod_all", lambda t: t.prod()),
    ("var", lambda t: t.var(0)),
    ("std", lambda t: t.std(1, keepdim=True)),
    ("logsumexp", lambda t: engine.logsumexp(t, 1)),
    ("norm2", lambda t: t.norm(dim=1)),
    ("norm3", lambda t: t.norm(3)),
    ("amax", lambda t: t.amax(1)),
    ("max_dim", lambda t: t.max(0)[0]),
    ("cumsum", lambda t: t.cumsum(1)),
    ("cumprod", lambda t: t.cumprod(1)),
    ("cumprod_zero", lambda t: (t * engine.tensor([[1.0, 0.0, 1.0]], dtype=engine.float64)).cumprod(1)),
    ("mean", lambda t: t.mean((0, 1))),
])
def test_gradcheck(name, fn):
    x = engine.tensor(rand((2, 3), np.float64, low=0.5, high=1.5), requires_grad=True)
    assert engine.autograd.gradcheck(fn, (x,))


def _double_backward(fn, x):
    """Second derivatives: grad of sum(grad(fn(x)) * w) wrt x, for clgrad and torch."""
    res = []
    u0 = None
    for T in (engine, torch):
        t = T.tensor(x, requires_grad=True)
        y = fn(T, t)
        if u0 is None:
            u0 = np.random.default_rng(7).standard_normal(tuple(y.shape)).astype(x.dtype)
        u = T.tensor(u0)
        (g,) = T.autograd.grad((y * u).sum(), t, create_graph=True)
        w = T.tensor(np.linspace(-1, 1, x.size).reshape(x.shape).astype(x.dtype))
        (gg,) = T.autograd.grad((g * w).sum(), t)
        res.append(gg)
    assert_close(res[0], res[1], 1e-4, 1e-5, "double backward")


@pytest.mark.parametrize("fn", [
    lambda T, t: T.var(t, 1), lambda T, t: T.std(t, 0), lambda T, t: T.logsumexp(t, 1),
    lambda T, t: T.norm(t, dim=1), lambda T, t: T.prod(t, 1), lambda T, t: T.cumprod(t, 1),
    lambda T, t: T.cumsum(t, 0) ** 2, lambda T, t: T.amax(t, 1) ** 2,
])
def test_double_backward(fn):
    _double_backward(fn, rand((3, 4), low=0.5, high=1.5))


def test_grad_fn_names():
    x = engine.ones(2, 3, requires_grad=True)
    assert type(x.sum(1).grad_fn).__name__ == "SumBackward1"
    assert type(x.max(1).values.grad_fn).__name__ == "MaxBackward0"
    assert x.max(1).indices.grad_fn is None and not x.max(1).indices.requires_grad
    assert type(x.cumsum(1).grad_fn).__name__ == "CumsumBackward0"
    assert math.isclose(x.var().item(), 0.0)


def test_gpu_launch_plan(monkeypatch):
    """The GPU plan (256-lane groups, contiguous rows to work-groups, fewer lanes for short rows)
    runs the same kernels with other launch shapes: check it on whatever device is here."""
    from engine.runtime.device import default_device
    monkeypatch.setattr(default_device(), "is_cpu", False)
    for shape, dim in [((2100, 40), 1), ((2100, 100), -1), ((3, 50000), 1), ((50000, 3), 0), ((2000, 300), 1),
                       ((4000, 300), 0), ((30, 40, 50), 1)]:
        x = rand(shape)
        check_op(lambda T, t: (T.sum(t, dim), T.amax(t, dim), T.var(t, dim), T.logsumexp(t, dim)), x,
                 rtol=1e-4, atol=1e-4)
        check_op(lambda T, t: (T.max(t, dim), T.argmin(t, dim)), x, grad=False)
        check_op(lambda T, t: T.cumsum(t, dim), x, rtol=1e-4, atol=1e-3)      # and its reverse scan
        pm = np.where(rand(shape, np.bool_), 1.0, -1.0).astype(np.float32)
        check_op(lambda T, t: (T.cumprod(t, dim), T.cumsum(t.long(), dim)), pm, grad=False)
    check_op(lambda T, t: (T.sum(t), T.argmax(t), T.cumsum(t, 0)), rand((100000,)), rtol=1e-4, atol=1e-2,
             grad=False)


def test_nansum_nanmean():
    x = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, 2.0]], dtype=np.float32)
    check_op(lambda T, t: (T.nansum(t), T.nansum(t, 1), t.nanmean(0), T.nanmean(t, 1, keepdim=True)), x)
    check_op(lambda T, t: (T.nansum(t), T.nanmean(t.float(), 0)), rand((3, 4), np.int64), grad=False)


def test_grad_fn_names_match_torch():
    cases = [lambda x: x.sum(), lambda x: x.sum(1), lambda x: x.mean(), lambda x: x.mean(1), lambda x: x.prod(),
             lambda x: x.prod(1), lambda x: x.max(), lambda x: x.max(1)[0], lambda x: x.min(1)[0],
             lambda x: x.min(), lambda x: x.amax(), lambda x: x.amin(1), lambda x: x.var(), lambda x: x.std(1),
             lambda x: x.logsumexp(1), lambda x: x.norm(), lambda x: x.norm(1, 1), lambda x: x.cumsum(1),
             lambda x: x.cumprod(1), lambda x: x.nansum(),
             *([lambda x: x.aminmax()[0]] if TORCH_GRADS_AMINMAX_NARROW_COPY else []),
             lambda x: engine.var_mean(x)[1] if isinstance(x, engine.Tensor) else torch.var_mean(x)[1],
             lambda x: engine.std_mean(x, 1)[0] if isinstance(x, engine.Tensor) else torch.std_mean(x, 1)[0]]
    for f in cases:
        a = type(f(engine.ones(2, 3, requires_grad=True)).grad_fn).__name__
        b = type(f(torch.ones(2, 3, requires_grad=True)).grad_fn).__name__
        assert a == b
