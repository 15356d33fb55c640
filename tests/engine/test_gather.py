"""gather / scatter / index_* / masked_* / nonzero / one_hot / tril / triu / take against PyTorch:
forward and gradients, repeated indices, negative dims, empty and size-1 dims, non-contiguous
inputs, bounds errors."""
import numpy as np
import pytest
import torch

import engine
from .helpers import assert_close, check_op, fp64, rand

rng = np.random.default_rng(11)


def I(*vals):
    return np.array(vals, dtype=np.int64)


def rint(high, shape, dtype=np.int64):
    return rng.integers(0, high, size=shape).astype(dtype)


def perm_index(shape, dim, n):
    """An index of `shape` whose entries along `dim` are distinct values < n (no write collisions)."""
    out = np.empty(shape, np.int64)
    k = shape[dim]
    it = np.ndindex(*[s for d, s in enumerate(shape) if d != dim])
    for rest in it:
        p = rng.permutation(n)[:k]
        sl = list(rest)
        sl.insert(dim, slice(None))
        out[tuple(sl)] = p
    return out


def _both_raise(fn, exc, match=None, torch_exc=None):
    """clgrad must raise `exc`; PyTorch `torch_exc` (default: exc).  Out-of-range indices raise IndexError
    in clgrad even where PyTorch raises RuntimeError (the error is both)."""
    msgs = []
    for T in (engine, torch):
        with pytest.raises(exc if T is engine else (torch_exc or exc), match=match) as ei:
            fn(T)
        msgs.append(str(ei.value))
    return msgs


# ---- gather ------------------------------------------------------------------------
@pytest.mark.parametrize("noncontig", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather(dim, noncontig):
    a = rand((4, 5, 6))
    shape = [3, 4, 5]
    shape[dim] = 7  # larger than the input along dim: repeated indices
    idx = rint(a.shape[dim], tuple(shape))
    check_op(lambda T, x, i: T.gather(x, dim, i), a, idx, noncontig=noncontig)
    check_op(lambda T, x, i: x.gather(dim, i) * 2, a, idx, noncontig=noncontig)


def test_gather_edge_shapes():
    check_op(lambda T, x, i: T.gather(x, 1, i), rand((3, 4)), np.zeros((0, 2), np.int64))
    check_op(lambda T, x, i: T.gather(x, 0, i), rand((1, 3)), np.zeros((4, 3), np.int64))
    check_op(lambda T, x, i: T.gather(x, 0, i), rand(()), np.zeros((2,), np.int64))
    check_op(lambda T, x, i: T.gather(x, 0, i), rand((3,)), np.array(2))
    check_op(lambda T, x, i: T.gather(x, 0, i), rand((3, 0)), np.zeros((2, 0), np.int64))
    check_op(lambda T, x, i: T.gather(x.t(), 1, i), rand((5, 3)), rint(5, (3, 2), np.int32))
    check_op(lambda T, x, i: T.take_along_dim(x, i, 1), rand((3, 4)), rint(4, (1, 6)))
    check_op(lambda T, x, i: T.take_along_dim(x, i), rand((3, 4)), rint(12, (5,)))


def test_gather_errors():
    x = rand((3, 4, 5))
    m = _both_raise(lambda T: T.tensor(x).gather(0, T.tensor([[[5]]])), IndexError, torch_exc=RuntimeError)
    assert m[0] == m[1] == "index 5 is out of bounds for dimension 0 with size 3"
    _both_raise(lambda T: T.tensor(x).gather(0, T.tensor([[[-1]]])), IndexError, "out of bounds", RuntimeError)
    m = _both_raise(lambda T: T.tensor(x).gather(0, T.tensor([5])), RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(x).gather(1, T.zeros(4, 1, 1, dtype=T.int64)), RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(x).gather(0, T.zeros(1, 1, 1)), RuntimeError)
    assert m[0] == m[1]
    check_op(lambda T, x, i: x.gather(0, i), x, np.zeros((1, 1, 1), np.int64))  # flag was reset


def test_gather_double_backward():
    a = rand((4, 3))
    idx = rint(4, (6, 3))
    res = []
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        y = (x.gather(0, T.tensor(idx)) ** 2).sum()
        (g,) = T.autograd.grad(y, x, create_graph=True)
        (gg,) = T.autograd.grad((g ** 2).sum(), x)
        res.append(gg)
    assert_close(res[0], res[1], 1e-4, 1e-4)


# ---- scatter -------------------------------------------------------------------------
@pytest.mark.parametrize("noncontig", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_src(dim, noncontig):
    a = rand((5, 6, 7))
    shape = [3, 4, 5]
    idx = perm_index(tuple(shape), dim % 3, a.shape[dim])
    src = rand((4, 5, 6))  # larger than index: its leading block is used
    check_op(lambda T, x, i, s: T.scatter(x, dim, i, s[:3, :4, :5]), a, idx, src, noncontig=noncontig)
    check_op(lambda T, x, i, s: x.scatter(dim, i, s), a, idx, rand((3, 4, 5)), noncontig=noncontig)
    # clgrad also differentiates a src larger than the index (its unused part gets zeros)
    check_op(lambda T, x, i, s: T.scatter(x, dim, i, s), a, idx, src, noncontig=noncontig,
             torch_fn=lambda T, x, i, s: T.scatter(x, dim, i, s[:3, :4, :5]))


def test_scatter_value_and_reduce():
    a = rand((4, 5))
    idx = perm_index((2, 5), 0, 4)
    check_op(lambda T, x, i: T.scatter(x, 0, i, 1.5), a, idx)
    check_op(lambda T, x, i: T.scatter(x, 0, i, value=-2.0), a, idx)
    rep = rint(4, (6, 5))
    check_op(lambda T, x, i, s: T.scatter(x, 0, i, s, reduce="add"), a, rep, rand((6, 5)),
             torch_fn=lambda T, x, i, s: T.scatter_add(x, 0, i, s))  # torch has no grad for reduce='add'
    check_op(lambda T, x, i, s: T.scatter(x, 0, i, s, reduce="add"), a, rep, rand((6, 5)), grad=False)
    check_op(lambda T, x, i, s: T.scatter(x, 0, i, s, reduce="multiply"), a, rep, rand((6, 5)), grad=False)
    check_op(lambda T, x, i: T.scatter(x, 1, i, 2.0, reduce="add"), a, rint(5, (4, 3)), grad=False)
    check_op(lambda T, x, i: T.scatter(x, 1, i, 2, reduce="add"), rint(9, (4, 5)), rint(5, (4, 3)))
    m = _both_raise(lambda T: T.zeros(3).scatter(0, T.tensor([0]), 1.0, reduce="mean"), RuntimeError)
    assert m[0] == m[1]


@pytest.mark.parametrize("noncontig", [False, True])
def test_scatter_add(noncontig):
    a = rand((4, 5, 3))
    idx = rint(4, (9, 5, 3))  # many repeats
    check_op(lambda T, x, i, s: T.scatter_add(x, 0, i, s), a, idx, rand((9, 5, 3)), noncontig=noncontig)
    idx2 = rint(3, (4, 2, 6))
    check_op(lambda T, x, i, s: x.scatter_add(-1, i, s[:, :2]), a, idx2, rand((4, 5, 6)), noncontig=noncontig)


def test_scatter_inplace():
    a, s = rand((4, 5)), rand((3, 5))
    idx = perm_index((3, 5), 0, 4)
    check_op(lambda T, x, i, v: (x * 1).scatter_(0, i, v), a, idx, s)
    check_op(lambda T, x, i, v: (x * 1).scatter_add_(0, i, v), a, rint(4, (3, 5)), s)
    res = []
    rep = rint(5, (4, 7))
    for T in (engine, torch):
        x = T.tensor(a)
        x.t().scatter_(1, T.tensor(idx[:, :2].T.copy()), 9.0)
        x.scatter_add_(1, T.tensor(rep), T.ones(4, 7))
        res.append(x)
    assert_close(res[0], res[1])


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin", "prod"])
def test_scatter_reduce(reduce, include_self):
    a = rand((5, 4))
    idx = rint(5, (8, 4))
    src = rand((8, 4))
    check_op(lambda T, x, i, s: T.scatter_reduce(x, 0, i, s, reduce, include_self=include_self), a, idx, src,
             grad=reduce != "prod", rtol=1e-4)
    ia = rint(7, (5, 3))
    check_op(lambda T, x, i, s: x.scatter_reduce(1, i, s, reduce, include_self=include_self), rint(9, (5, 7)),
             ia, rint(9, (5, 3)))


def test_scatter_errors():
    x = rand((3, 4, 5))
    m = _both_raise(lambda T: T.tensor(x).scatter(0, T.tensor([[[5]]]), 1.0), IndexError, torch_exc=RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(x).scatter_add(0, T.tensor([[[-1]]]), T.tensor(x)), IndexError,
                    torch_exc=RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(x).scatter(0, T.zeros(2, 1, 1, dtype=T.int64), T.ones(1, 1, 1)), RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(x).scatter(0, T.zeros(1, 1, 1), 1.0), RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(x).scatter(0, T.zeros(1, 1, dtype=T.int64), 1.0), RuntimeError)
    assert m[0] == m[1]


# ---- index_select / index_add / index_copy / index_fill ------------------------------------
@pytest.mark.parametrize("noncontig", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select(dim, noncontig):
    a = rand((4, 5, 6))
    idx = rint(a.shape[dim], (9,))
    check_op(lambda T, x, i: T.index_select(x, dim, i), a, idx, noncontig=noncontig)
    check_op(lambda T, x, i: x.index_select(dim, i), a, idx.astype(np.int32), noncontig=noncontig)


def test_index_select_edge():
    check_op(lambda T, x, i: x.index_select(0, i), rand((4, 3)), np.zeros((0,), np.int64))
    check_op(lambda T, x, i: x.index_select(1, i), rand((4, 0)), np.zeros((0,), np.int64))
    check_op(lambda T, x, i: x.index_select(0, i), rand(()), np.array(0))
    check_op(lambda T, x, i: x.index_select(0, i), rand((3,)), np.array(2))
    check_op(lambda T, x, i: x.index_select(0, i), rand((1, 3)), I(0, 0, 0))


def test_embedding_style_index_select_is_one_kernel():
    from engine.runtime import launch as L
    w = engine.tensor(rand((50, 8)))
    ids = engine.tensor(rint(50, (32,)))
    w.index_select(0, ids)  # build the kernel
    L.start_profiling()
    out = w.index_select(0, ids)
    recs = L.stop_profiling()
    assert len(recs) == 1, recs
    assert_close(out, torch.tensor(w.numpy()).index_select(0, torch.tensor(ids.numpy())))


def test_index_select_errors():
    m = _both_raise(lambda T: T.zeros(3, 4).index_select(0, T.tensor([3])), IndexError)
    assert m[0] == m[1] == "index out of range in self"
    m = _both_raise(lambda T: T.zeros(3, 4).index_select(0, T.tensor([-1])), IndexError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.zeros(3, 4).index_select(0, T.tensor([[0]])), IndexError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.zeros(3, 4).index_select(0, T.tensor([1.0])), RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(5.0).index_select(0, T.tensor([0, 0])), RuntimeError)
    assert m[0] == m[1]


@pytest.mark.parametrize("alpha", [1, 2.5])
@pytest.mark.parametrize("noncontig", [False, True])
def test_index_add(alpha, noncontig):
    a = rand((4, 5, 3))
    idx = rint(5, (7,))
    src = rand((4, 7, 3))
    check_op(lambda T, x, i, s: T.index_add(x, 1, i, s, alpha=alpha), a, idx, src, noncontig=noncontig)
    check_op(lambda T, x, i, s: (x * 1).index_add_(0, i, s[:, :5], alpha=alpha), a, rint(4, (4,)), src,
             noncontig=noncontig)


def test_index_add_int_and_edge():
    check_op(lambda T, x, i, s: x.index_add(0, i, s), rint(9, (4, 3)), rint(4, (6,)), rint(9, (6, 3)))
    check_op(lambda T, x, i, s: x.index_add(0, i, s), rand(()), np.array([0]), rand(()))
    check_op(lambda T, x, i, s: x.index_add(1, i, s), rand((2, 3)), np.zeros((0,), np.int64), rand((2, 0)))


def test_index_add_errors():
    m = _both_raise(lambda T: T.zeros(3, 4).index_add(0, T.tensor([3]), T.ones(1, 4)), IndexError,
                    torch_exc=RuntimeError)
    assert m[0] == m[1] == "index 3 is out of bounds for dimension 0 with size 3"
    m = _both_raise(lambda T: T.zeros(3, 4).index_add(0, T.tensor([-1]), T.ones(1, 4)), IndexError,
                    torch_exc=RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.zeros(3, 4).index_add(0, T.tensor([0, 1]), T.ones(1, 4)), RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.zeros(3, 4).index_add(0, T.tensor([0]), T.ones(1, 3)), RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.zeros(3, 4).index_add(0, T.tensor([0]), T.ones(1, 4, dtype=T.int64)), RuntimeError)
    assert m[0] == m[1]


def test_index_copy_and_fill():
    a = rand((4, 5, 3))
    idx = perm_index((3,), 0, 5)
    check_op(lambda T, x, i, s: T.index_copy(x, 1, i, s), a, idx, rand((4, 3, 3)))
    # distinct targets: with duplicates which source lands is unspecified (torch's docs), and a GPU's
    # order differs from torch's CPU loop (`perm_index % 4` repeated a row whenever it drew 0 and 4)
    check_op(lambda T, x, i, s: (x * 1).index_copy_(0, i, s[:2]), a, np.array([3, 1]), rand((4, 5, 3)))
    check_op(lambda T, x, i: x.index_fill(1, i, -1.5), a, I(0, 4, 4, -1), grad=False)  # torch's grad can't wrap
    check_op(lambda T, x, i: x.index_fill(1, i, -1.5), a, I(0, 4, 4, 1))
    check_op(lambda T, x, i: (x * 1).index_fill_(2, i, 2.0), a, I(1))
    check_op(lambda T, x, i, v: x.index_fill(1, i, v.sum()), a, I(0, 4, 4, 2), rand((2,)))
    check_op(lambda T, x, i: x.index_fill(0, i, 3), rint(9, (4, 2)), I(3, 0))
    m = _both_raise(lambda T: T.zeros(3, 4).index_fill(1, T.tensor([9]), 1.0), IndexError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.zeros(3, 4).index_copy(1, T.tensor([9]), T.ones(3, 1)), IndexError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.zeros(3, 4).index_copy(1, T.tensor([0, 1]), T.ones(3, 3)), IndexError)
    assert m[0] == m[1]


# ---- masked ----------------------------------------------------------------------------
@pytest.mark.parametrize("noncontig", [False, True])
def test_masked_fill(noncontig):
    a = rand((4, 5))
    check_op(lambda T, x, m: x.masked_fill(m, 2.5), a, rng.random((4, 5)) > 0.5, noncontig=noncontig)
    check_op(lambda T, x, m: T.masked_fill(x, m, -1.0), a, rng.random((5,)) > 0.5, noncontig=noncontig)
    check_op(lambda T, x, m: x.masked_fill(m, 0.0), a, rng.random((2, 4, 5)) > 0.5, noncontig=noncontig)
    check_op(lambda T, x, m, v: x.masked_fill(m, v.sum() * 2), a, rng.random((4, 1)) > 0.5, rand((3,)))
    check_op(lambda T, x, m: x.masked_fill(m, 1.7), rint(5, (3, 4)), rng.random((3, 4)) > 0.5)
    check_op(lambda T, x, m: x.masked_fill(m, T.tensor(4.0)), rint(5, (3, 4)), rng.random((3, 4)) > 0.5)


def test_masked_fill_inplace():
    a = rand((4, 5))
    m = rng.random((5,)) > 0.5
    check_op(lambda T, x, mm: (x * 1).masked_fill_(mm, 3.0), a, m)
    check_op(lambda T, x, mm, v: (x * 1).masked_fill_(mm, v[0]), a, m, rand((2,)))
    res = []
    for T in (engine, torch):
        x = T.tensor(a)
        x.t().masked_fill_(T.tensor(m).reshape(5, 1), -9.0)
        res.append(x)
    assert_close(res[0], res[1])
    m = _both_raise(lambda T: T.zeros(3).masked_fill_(T.ones(2, 3, dtype=T.bool), 1.0), RuntimeError)
    assert m[0] == m[1]


def test_masked_fill_errors():
    m = _both_raise(lambda T: T.zeros(3).masked_fill(T.ones(3), 1.0), RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.zeros(3).masked_fill(T.ones(3, dtype=T.int64), 1.0), RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.zeros(3).masked_fill(T.ones(3, dtype=T.bool), T.ones(2)), RuntimeError)
    assert m[0] == m[1]


def test_masked_select_and_scatter():
    a = rand((3, 4))
    check_op(lambda T, x, m: T.masked_select(x, m), a, rng.random((3, 4)) > 0.5)
    check_op(lambda T, x, m: x.masked_select(m), a, rng.random((4,)) > 0.5, noncontig=True)
    check_op(lambda T, x, m: x.masked_select(m), a, rng.random((2, 3, 4)) > 0.5)
    check_op(lambda T, x, m: x.masked_select(m), a, np.zeros((3, 4), bool))
    check_op(lambda T, x, m: x.masked_select(m), rand(()), np.array(True))
    check_op(lambda T, x, m, s: x.masked_scatter(m, s), a, rng.random((3, 4)) > 0.5, rand((20,)))
    check_op(lambda T, x, m, s: (x * 1).masked_scatter_(m, s), a, rng.random((4,)) > 0.5, rand((3, 5)))
    m = _both_raise(lambda T: T.zeros(3).masked_select(T.ones(3, dtype=T.int64)), RuntimeError)
    assert m[0] == m[1]


# ---- nonzero / one_hot ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_, np.uint8, np.int32])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4), (0, 3), (), (1000,)])
def test_nonzero(shape, dtype):
    a = rand(shape, dtype)
    if np.dtype(dtype).kind != "b":
        a = np.asarray((a * (rng.random(shape) > 0.5)).astype(dtype))
    check_op(lambda T, x: T.nonzero(x), a)
    check_op(lambda T, x: x.nonzero(as_tuple=True), a)
    check_op(lambda T, x: T.argwhere(x), a)
    if len(shape) >= 2:
        check_op(lambda T, x: x.nonzero(), a, noncontig=True)


def test_nonzero_large_and_special():
    a = (rng.random((300, 257)) > 0.9).astype(np.float32)
    a[5, 7] = np.nan  # NaN is nonzero
    check_op(lambda T, x: x.nonzero(), a)
    check_op(lambda T, x: x.nonzero(), np.zeros((10, 10), np.float32))
    check_op(lambda T, x: x.nonzero(), np.ones((10, 10), np.float32))


def _one_hot(T, *args):
    f = T.nn.functional.one_hot if T is torch else T.one_hot
    return f(*args)


def test_one_hot():
    check_op(lambda T, t: _one_hot(T, t), rint(5, (7,)))
    check_op(lambda T, t: _one_hot(T, t, 6), rint(5, (2, 3)))
    check_op(lambda T, t: _one_hot(T, t, 4), np.array(2))
    check_op(lambda T, t: _one_hot(T, t, 3), np.zeros((0,), np.int64))
    check_op(lambda T, t: _one_hot(T, t, 3), rint(3, (4, 2)), noncontig=True)
    m = _both_raise(lambda T: _one_hot(T, T.tensor([5]), 3), IndexError, torch_exc=RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: _one_hot(T, T.tensor([-1]), 3), IndexError, torch_exc=RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: _one_hot(T, T.tensor([1.0]), 3), RuntimeError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: _one_hot(T, T.tensor([], dtype=T.int64)), RuntimeError)
    assert m[0] == m[1]


# ---- tril / triu ---------------------------------------------------------------------------
@pytest.mark.parametrize("noncontig", [False, True])
@pytest.mark.parametrize("k", [0, 1, -2, 5, -7])
@pytest.mark.parametrize("op", ["tril", "triu"])
def test_tri(op, k, noncontig):
    check_op(lambda T, x: getattr(T, op)(x, k), rand((4, 6)), noncontig=noncontig)
    check_op(lambda T, x: getattr(x, op)(diagonal=k), rand((2, 3, 5, 4)), noncontig=noncontig)
    check_op(lambda T, x: getattr(T, op)(x, k), rand((0, 3)))
    check_op(lambda T, x: getattr(T, op)(x, k), rint(9, (3, 3)))


@pytest.mark.parametrize("op", ["tril", "triu"])
def test_tri_inplace_and_errors(op):
    a = rand((4, 5))
    check_op(lambda T, x: getattr(x * 1, op + "_")(1), a)
    res = []
    for T in (engine, torch):
        x = T.tensor(a)
        getattr(x.t(), op + "_")(-1)
        res.append(x)
    assert_close(res[0], res[1])
    m = _both_raise(lambda T: getattr(T, op)(T.zeros(3)), RuntimeError)
    assert m[0] == m[1]


def test_tri_double_backward():
    a = rand((4, 4))
    res = []
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        y = (T.triu(x, 1) ** 3).sum()
        (g,) = T.autograd.grad(y, x, create_graph=True)
        (gg,) = T.autograd.grad(g.sum(), x)
        res.append(gg)
    assert_close(res[0], res[1], 1e-4, 1e-4)


# ---- take ------------------------------------------------------------------------------
def test_take():
    a = rand((3, 4))
    check_op(lambda T, x, i: T.take(x, i), a, I(0, 11, -1, 5, 5))
    check_op(lambda T, x, i: x.take(i), a, rint(12, (2, 3)), noncontig=True)
    m = _both_raise(lambda T: T.zeros(3, 4).take(T.tensor([12])), IndexError)
    assert m[0] == m[1]


def test_gradcheck_fp64():
    if not fp64():
        pytest.skip("no fp64")
    x = engine.tensor(rand((4, 3), np.float64), requires_grad=True)
    s = engine.tensor(rand((5, 3), np.float64), requires_grad=True)
    i = engine.tensor(rint(4, (5, 3)))
    assert engine.autograd.gradcheck(lambda a, b: a.scatter_add(0, i, b).gather(0, i), (x, s))
    j = engine.tensor(rint(4, (6,)))
    assert engine.autograd.gradcheck(lambda a, b: a.index_add(0, j[:5], b, alpha=2).index_select(0, j), (x, s))


# ---- double backward and in-place history -------------------------------------------------
DOUBLE = [
    ("index_select", lambda T, x, i: (x ** 2).index_select(1, i)),
    ("index_add", lambda T, x, i: (x * x).index_add(1, i, x[:, :4] * 2, alpha=0.5)),
    ("scatter", lambda T, x, i: x.scatter(1, i.reshape(1, 4).expand(3, 4) % 5, x[:, :4] ** 2)),
    ("scatter_add", lambda T, x, i: x.scatter_add(1, i.reshape(1, 4).expand(3, 4), x[:, 1:] ** 2)),
    ("masked_fill", lambda T, x, i: (x ** 2).masked_fill(x > 0, 1.0)),
    ("tril", lambda T, x, i: T.tril(x ** 2, -1)),
    ("index_fill", lambda T, x, i: (x ** 2).index_fill(1, i, 0.5)),
    ("getitem_mask", lambda T, x, i: (x ** 2)[x > 0.2]),
    ("setitem", lambda T, x, i: _set(x ** 2, (slice(None), i[:2] + 1), x[:, :2] * x[:, 2:4])),
]


def _set(y, idx, v):
    y[idx] = v
    return y


@pytest.mark.parametrize("name,fn", DOUBLE, ids=[d[0] for d in DOUBLE])
def test_double_backward_ops(name, fn):
    a = rand((3, 5))
    idx = I(0, 3, 3, 1)
    res = []
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        y = fn(T, x, T.tensor(idx))
        up = T.tensor(np.linspace(-1, 1, int(np.prod(tuple(y.shape)))).astype(np.float32).reshape(tuple(y.shape)))
        (g,) = T.autograd.grad((y * up).sum(), x, create_graph=True)
        (gg,) = T.autograd.grad((g * g).sum(), x)
        res.append((g, gg))
    assert_close(res[0], res[1], 1e-4, 1e-4)


INPLACE = [
    ("scatter_", lambda T, y, s, i: y.scatter_(0, i, s[:2])),
    ("scatter_add_", lambda T, y, s, i: y.scatter_add_(0, i, s[:2])),
    ("index_add_", lambda T, y, s, i: y.index_add_(0, i[0], s, alpha=-2)),
    ("index_copy_", lambda T, y, s, i: y.index_copy_(0, i[0], s)),
    ("index_fill_", lambda T, y, s, i: y.index_fill_(1, i[0], s[0, 0])),
    ("masked_fill_", lambda T, y, s, i: y.masked_fill_(y > 0, s[1, 1])),
    ("masked_scatter_", lambda T, y, s, i: y.masked_scatter_(y > 0, s)),
    ("tril_", lambda T, y, s, i: y.tril_(1)),
    ("index_put_", lambda T, y, s, i: y.index_put_((i[0],), s, accumulate=True)),
    ("setitem", lambda T, y, s, i: y.__setitem__((i[0],), s) or y),
]


@pytest.mark.parametrize("name,fn", INPLACE, ids=[p[0] for p in INPLACE])
def test_inplace_history(name, fn):
    """In-place ops on a non-leaf: y takes over the op's history (grads flow to y's inputs and the source);
    on a leaf requiring grad they raise."""
    a, s = rand((4, 4)), rand((4, 4))
    idx = np.array([[3, 1, 0, 2], [1, 2, 3, 0]], np.int64)

    def f(T, x, src, i):
        y = x * 1.5
        r = fn(T, y, src * 1, i)
        assert r is y
        return y * 2
    check_op(f, a, s, idx)
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable"):
            fn(T, x, T.tensor(s), T.tensor(idx))


def test_inplace_bumps_version_and_invalidates_saved():
    for T in (engine, torch):
        x = T.tensor(rand((3, 3)), requires_grad=True)
        y = x * 1
        z = y * y  # saves y
        v = y._version
        y.index_fill_(0, T.tensor([1]), 0.0)
        assert y._version > v
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()


def test_uint8_mask_index():
    a = rand((3, 4))
    m = (rng.random((3, 4)) > 0.5).astype(np.uint8)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_op(lambda T, x, mm: x[mm], a, m)
        check_op(lambda T, x: x[T.tensor(1, dtype=T.uint8)], a)
