"""softmax / log_softmax against PyTorch: every dim of several shapes, non-contiguous,
empty and 0-d inputs, long rows (one work-group per row), extreme values, dtype=,
gradients, double backward and finite differences."""
import numpy as np
import pytest
import torch

import engine
from .helpers import assert_close, check_op, fp64, rand

SHAPES_DIMS = [((7,), 0), ((7,), -1), ((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), 2), ((2, 3, 4), -1),
               ((1, 5), 0), ((1, 5), 1), ((5, 1), 1), ((0, 3), 0), ((0, 3), 1), ((3, 0), 1), ((), 0), ((), -1)]


def _id(v):
    return str(v).replace(" ", "")


@pytest.mark.parametrize("noncontig", [False, True])
@pytest.mark.parametrize("shape,dim", SHAPES_DIMS, ids=_id)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax(op, shape, dim, noncontig):
    x = rand(shape, low=-4.0, high=4.0)
    check_op(lambda T, t: getattr(T, op)(t, dim), x, noncontig=noncontig)
    check_op(lambda T, t: getattr(t, op)(dim=dim), x, noncontig=noncontig)


@pytest.mark.parametrize("shape,dim", [((3, 50000), 1), ((3, 50000), 0), ((2, 2000), -1), ((2000, 40), 1),
                                       ((100000,), 0), ((40, 2000), 0)], ids=_id)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_large(op, shape, dim):
    x = rand(shape, low=-8.0, high=8.0)
    check_op(lambda T, t: getattr(T, op)(t, dim), x, rtol=1e-4, atol=1e-6 if op == "softmax" else 1e-4)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_noncontig_large(op):
    check_op(lambda T, t: getattr(T, op)(t, 0), rand((700, 3)), noncontig=True, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_numerically_stable(op):
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -999.0], [1e30, -1e30, 0.0],
                  [88.0, 89.0, 90.0]], dtype=np.float32)
    check_op(lambda T, t: getattr(T, op)(t, 1), x)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("n", [3, 300])   # one work-item per row, and one work-group per row
def test_infinities_and_nan(op, n):
    x = np.zeros((5, n), np.float32)
    x[0, 0] = -np.inf                    # a masked position: 0 probability
    x[1, :] = -np.inf                    # a fully masked row: nan, as in torch
    x[2, 1] = np.inf                     # +inf: nan, as in torch
    x[3, 2] = np.nan
    x[4, n - 1] = -np.inf
    x[4, 0] = -np.inf
    check_op(lambda T, t: getattr(T, op)(t, 1), x, grad=False)
    check_op(lambda T, t: getattr(T, op)(t, 0), x, grad=False)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_dtype_argument(op):
    x = rand((3, 4))
    check_op(lambda T, t: getattr(T, op)(t, 1, dtype=T.float64), x)
    check_op(lambda T, t: getattr(t, op)(0, T.float64), x)
    check_op(lambda T, t: getattr(T, op)(t, 1, dtype=T.float32), rand((3, 4), np.int64), grad=False)
    if fp64():
        check_op(lambda T, t: getattr(T, op)(t, 1), rand((3, 4), np.float64))
        check_op(lambda T, t: getattr(T, op)(t, 0), rand((3, 5000), np.float64), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_errors(op):
    for T in (engine, torch):
        with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
            getattr(T, op)(T.tensor([1, 2]), 0)
        with pytest.raises(IndexError, match="Dimension out of range"):
            getattr(T, op)(T.ones(2, 3), 2)
        with pytest.raises(IndexError, match="Dimension out of range"):
            getattr(T, op)(T.ones(2, 3), -3)


def test_rows_sum_to_one():
    x = engine.tensor(rand((4, 1000), low=-20, high=20))
    s = engine.softmax(x, 1).sum(1).numpy()
    np.testing.assert_allclose(s, 1.0, rtol=1e-5)
    ls = engine.log_softmax(x, 1).exp().sum(1).numpy()
    np.testing.assert_allclose(ls, 1.0, rtol=1e-5)


def test_grad_fn_names():
    x = engine.ones(2, 3, requires_grad=True)
    assert type(x.softmax(1).grad_fn).__name__ == "SoftmaxBackward0"
    assert type(x.log_softmax(1).grad_fn).__name__ == "LogSoftmaxBackward0"


def _double_backward(fn, x):
    res = []
    u0 = np.random.default_rng(3).standard_normal(x.shape).astype(x.dtype)
    w0 = np.linspace(-1, 1, x.size).reshape(x.shape).astype(x.dtype)
    for T in (engine, torch):
        t = T.tensor(x, requires_grad=True)
        y = fn(T, t)
        (g,) = T.autograd.grad((y * T.tensor(u0)).sum(), t, create_graph=True)
        (gg,) = T.autograd.grad((g * T.tensor(w0)).sum(), t)
        res.append(gg)
    assert_close(res[0], res[1], 1e-4, 1e-5, "double backward")


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_double_backward(op, dim):
    _double_backward(lambda T, t: getattr(T, op)(t, dim), rand((3, 4)))
    _double_backward(lambda T, t: getattr(T, op)(t * 2, dim) ** 2, rand((3, 40)))


@pytest.mark.skipif(not fp64(), reason="device lacks cl_khr_fp64")
@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_gradcheck(op, dim):
    x = engine.tensor(rand((3, 4), np.float64), requires_grad=True)
    assert engine.autograd.gradcheck(lambda t: getattr(engine, op)(t, dim), (x,))
    y = engine.tensor(rand((2, 70), np.float64), requires_grad=True)   # the work-group path
    assert engine.autograd.gradcheck(lambda t: getattr(engine, op)(t, 1), (y,))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_gpu_launch_plan(op, monkeypatch):
    """The GPU plan (contiguous rows to work-groups of 32..256 lanes) on whatever device is here."""
    from engine.runtime.device import default_device
    monkeypatch.setattr(default_device(), "is_cpu", False)
    for shape, dim in [((2100, 40), 1), ((2100, 100), -1), ((3, 5000), 1), ((700, 600), 1), ((40, 700), 0),
                       ((4000, 30), 0)]:
        check_op(lambda T, t: getattr(T, op)(t, dim), rand(shape), rtol=1e-4, atol=1e-5)
    # few long rows: split into multi-group reductions plus an elementwise pass
    monkeypatch.setattr(default_device(), "compute_units", 64)
    from engine.ops import softmax as S
    monkeypatch.setattr(S, "_SPLIT_K", 16384)
    for shape, dim in [((2, 40000), 1), ((20000, 3), 0), ((40000,), 0)]:
        check_op(lambda T, t: getattr(T, op)(t, dim), rand(shape, low=-8, high=8), rtol=1e-4, atol=1e-5)
    x = np.zeros((2, 20000), np.float32)
    x[0, :] = -np.inf
    x[1, 5] = np.inf
    check_op(lambda T, t: getattr(T, op)(t, 1), x, grad=False)
