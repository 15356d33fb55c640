"""Advanced indexing against PyTorch: integer tensors / lists / numpy arrays / boolean masks mixed with
slices, ints and None; broadcasting and separated index tensors; assignment (incl. autograd);
repeated indices (gradient accumulation); bounds errors."""
import numpy as np
import pytest
import torch

import engine
from .helpers import assert_close, check_op, fp64, rand

rng = np.random.default_rng(7)
X = (4, 5, 6)


def I(*vals):
    return np.array(vals, dtype=np.int64)


# (name, index arrays, fn(x, *idx) -> x[...]) ; idx arrays are passed through check_op as tensors
GETITEM = [
    ("repeat_neg", [I(0, 2, -1, 2, 0)], lambda x, i: x[i]),
    ("dim1", [I(1, 1, -5, 3)], lambda x, i: x[:, i]),
    ("ellipsis_last", [I(5, 0, 0, -1)], lambda x, i: x[..., i]),
    ("index_2d", [I(0, 3, 3, 1, 0, 2).reshape(2, 3)], lambda x, i: x[i]),
    ("bcast_adjacent", [I(0, 3, 1).reshape(3, 1), I(4, 0, 4, 2)], lambda x, i, j: x[i, j]),
    ("bcast_last_two", [I(0, 3, 1).reshape(3, 1), I(4, 0, 5, 2)], lambda x, i, j: x[:, i, j]),
    ("separated", [I(0, 3, 1, 0), I(5, 0, 2, 5)], lambda x, i, j: x[i, :, j]),
    ("separated_by_none", [I(0, 3), I(1, 2)], lambda x, i, j: x[i, None, j]),
    ("none_mix", [I(2, 0, 2), I(1, 1, 5)], lambda x, i, j: x[None, i, None, :, j]),
    ("int_then_separated", [I(1, 0, 1)], lambda x, i: x[1, :, i]),
    ("slices", [I(2, 0, 2)], lambda x, i: x[1:3, i, ::2]),
    ("neg_step_free_slice", [I(3, 1)], lambda x, i: x[-3:, 1:4, i]),
    ("all_three", [I(0, 1), I(1, 2), I(2, 3)], lambda x, i, j, k: x[i, j, k]),
    ("empty_index", [np.zeros((0,), np.int64)], lambda x, i: x[:, i]),
    ("empty_2d_index", [np.zeros((2, 0), np.int64)], lambda x, i: x[i]),
    ("size1_bcast", [I(3), I(0, 1, 2)], lambda x, i, j: x[i, j]),
]


@pytest.mark.parametrize("noncontig", [False, True])
@pytest.mark.parametrize("name,idx,fn", GETITEM, ids=[g[0] for g in GETITEM])
def test_getitem(name, idx, fn, noncontig):
    check_op(lambda T, x, *ii: fn(x, *ii), rand(X), *idx, noncontig=noncontig)


def test_getitem_transposed_and_sliced_views():
    a = rand((6, 5, 4))
    check_op(lambda T, x, i: x.transpose(0, 2)[i, 1:, :3], a, I(0, -1, 2, 2))
    check_op(lambda T, x, i: x[::2, :, 1:][:, i], a, I(3, 0, 3))
    check_op(lambda T, x, i: x.permute(2, 0, 1)[:, i, i], a, I(4, 0, 1))


def test_getitem_index_tensor_layouts():
    # non-contiguous and int32 index tensors
    a = rand((5, 7))
    ie = engine.tensor(np.array([[0, 4], [1, 1], [6, 2]], np.int64)).t()
    it = torch.tensor(np.array([[0, 4], [1, 1], [6, 2]], np.int64)).t()
    assert_close(engine.tensor(a)[:, ie], torch.tensor(a)[:, it])
    assert_close(engine.tensor(a).t()[ie[:, ::2]], torch.tensor(a).t()[it[:, ::2]])
    check_op(lambda T, x, i: x[i], a, np.array([4, -1, 0, 4], np.int32))
    e = engine.tensor(np.arange(5, dtype=np.int64)).expand(3, 5)   # stride-0 index
    t = torch.arange(5).expand(3, 5)
    assert_close(engine.tensor(a)[e], torch.tensor(a)[t])


@pytest.mark.parametrize("noncontig", [False, True])
def test_bool_masks(noncontig):
    a = rand(X)
    m3 = rng.random(X) > 0.5
    m2 = rng.random((4, 5)) > 0.5
    m2b = rng.random((5, 6)) > 0.5
    m1 = np.array([True, False, True, True, False, True])
    check_op(lambda T, x, m: x[m], a, m3, noncontig=noncontig)
    check_op(lambda T, x, m: x[m], a, m2, noncontig=noncontig)
    check_op(lambda T, x, m: x[:, m], a, m2b, noncontig=noncontig)
    check_op(lambda T, x, m: x[..., m], a, m1, noncontig=noncontig)
    check_op(lambda T, x, m, i: x[i, :, m], a, m1, I(0, 3, 1, 2), noncontig=noncontig)
    check_op(lambda T, x, m: x[m, 1:3], a, m2, noncontig=noncontig)
    check_op(lambda T, x: x[x > 0.5], a)
    check_op(lambda T, x: x[np.zeros(X, bool)], a)   # no True element
    check_op(lambda T, x: x[T.ones(4, 5, dtype=T.bool)], a)


def test_python_and_numpy_indices():
    a = rand(X)
    check_op(lambda T, x: x[[0, 3, 3, -1]], a)
    check_op(lambda T, x: x[[True, False, True, False]], a)
    check_op(lambda T, x: x[[[0, 1], [2, 3]], 1], a)
    check_op(lambda T, x: x[np.array([2, 0, 2])], a)
    check_op(lambda T, x: x[:, np.array([[1], [0]]), np.array([0, 5, 1])], a)
    check_op(lambda T, x: x[1, [0, 4], 2:], a)
    check_op(lambda T, x: x[[]], a)
    check_op(lambda T, x: x[True], a)
    check_op(lambda T, x: x[False], a)
    check_op(lambda T, x: x[..., True], a)
    check_op(lambda T, x: x[None, True, 1], a)
    check_op(lambda T, x: x[T.tensor(True)], a)
    check_op(lambda T, x: x[T.tensor(2)], a)
    check_op(lambda T, x: x[T.tensor(2), :, [1, 2]], a)
    check_op(lambda T, x: x[[1.7]], a)  # a float list truncates, as PyTorch


def test_zero_dim_tensors():
    a = rand(())
    check_op(lambda T, x: x[True], a)
    check_op(lambda T, x: x[T.tensor(False)], a)
    check_op(lambda T, x: x[x > 0], a)
    _both_raise(lambda T: T.tensor(1.0)[T.tensor([0])], IndexError)


def test_size1_and_empty_dims():
    check_op(lambda T, x, i: x[i], rand((1, 3)), I(0, 0, -1))
    check_op(lambda T, x, i: x[:, i], rand((2, 0, 3)), np.zeros((0,), np.int64))
    check_op(lambda T, x, i: x[i], rand((3, 0)), I(2, 0))
    check_op(lambda T, x, i: x[i, 0], rand((0, 3)), np.zeros((0,), np.int64))
    check_op(lambda T, x, m: x[m], rand((0, 3)), np.zeros((0, 3), bool))
    check_op(lambda T, x, i: x[i], rand((5,)), I(4, -5, 0))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_, np.float64])
def test_getitem_dtypes(dtype):
    if dtype == np.float64 and not fp64():
        pytest.skip("no fp64")
    a = rand((4, 3), dtype)
    check_op(lambda T, x, i: x[i, 1:], a, I(3, 0, 3))
    check_op(lambda T, x: x[x != 0], a)


def test_grad_accumulates_repeated_indices():
    a = rand((3, 4))
    idx = rng.integers(-3, 3, size=200)
    check_op(lambda T, x, i: x[i], a, idx)
    check_op(lambda T, x, i: x[:, i % 4] * 2, a, idx)


def test_double_backward():
    a = rand((4, 3))
    res = []
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        i = T.tensor([0, 2, 2, -1])
        y = (x[i] ** 2).sum()
        (g,) = T.autograd.grad(y, x, create_graph=True)
        (gg,) = T.autograd.grad((g * g).sum(), x)
        res.append((g.detach().numpy(), gg.numpy()))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-5)
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=1e-5)


def test_gradcheck_fp64():
    if not fp64():
        pytest.skip("no fp64")
    x = engine.tensor(rand((4, 3), np.float64), requires_grad=True)
    i = engine.tensor([0, 2, 2, -1])
    assert engine.autograd.gradcheck(lambda t: t[i, 1:] * t[i, :2], (x,))


# ---- errors -------------------------------------------------------------------------------
def _both_raise(fn, exc, match=None):
    msgs = []
    for T in (engine, torch):
        with pytest.raises(exc, match=match) as ei:
            fn(T)
        msgs.append(str(ei.value))
    return msgs


def test_out_of_range_getitem():
    a = rand(X)
    m = _both_raise(lambda T: T.tensor(a)[T.tensor([0, 4])], IndexError)
    assert m[0] == m[1] == "index 4 is out of bounds for dimension 0 with size 4"
    m = _both_raise(lambda T: T.tensor(a)[:, T.tensor([-6])], IndexError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(a)[T.tensor([0]), :, T.tensor([6])], IndexError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(a)[[0, 5]], IndexError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(a)[:, np.array([-6])], IndexError)
    assert m[0] == m[1]
    _both_raise(lambda T: T.zeros(0, 3)[T.tensor([0])], IndexError, "out of bounds")
    # the flag is reset: the next op works
    check_op(lambda T, x, i: x[i], a, I(3, 0))


def test_out_of_range_setitem():
    def f(T):
        x = T.zeros(3, 4)
        x[T.tensor([1, 3])] = 1.0
    m = _both_raise(f, IndexError)
    assert m[0] == m[1]

    def g(T):
        x = T.zeros(3, 4)
        x[:, [0, -5]] = T.ones(3, 2)
    m = _both_raise(g, IndexError)
    assert m[0] == m[1]


def test_index_errors():
    a = rand(X)
    m = _both_raise(lambda T: T.tensor(a)[T.tensor([0.5])], IndexError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(a)[T.tensor([1], dtype=T.int16)], IndexError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(a)[T.ones(3, 3, dtype=T.bool)], IndexError)
    assert m[0] == m[1]
    m = _both_raise(lambda T: T.tensor(a)[T.tensor([0, 1]), T.tensor([0, 1, 2])], IndexError)
    assert m[0] == m[1]
    _both_raise(lambda T: T.tensor(a)[[0], [0], [0], [0]], IndexError, "too many indices")
    _both_raise(lambda T: T.tensor(a)[1.5], IndexError)


# ---- setitem ---------------------------------------------------------------------------
SETITEM = [
    ("tensor_idx_scalar", lambda T: (T.tensor([0, 3, -2]),), 2.5),
    ("tensor_idx_bcast_row", lambda T: (T.tensor([0, 3]),), "row"),
    ("separated", lambda T: (T.tensor([0, 3]), slice(None), T.tensor([1, -1])), "col"),
    ("adjacent", lambda T: (slice(None), T.tensor([[0], [4]]), T.tensor([1, 2, 3])), "bcast"),
    ("mask", lambda T: (T.tensor(np.arange(20).reshape(4, 5) % 3 == 0),), "row"),
    ("list_and_slice", lambda T: ([1, 2], slice(1, 4)), 7.0),
    ("full_mask_scalar", lambda T: (T.tensor(np.arange(120).reshape(X) % 7 == 1),), -1.0),
    ("int_and_tensor", lambda T: (2, T.tensor([0, 4]), slice(None, None, 2)), "small"),
    ("basic_only", lambda T: (slice(1, 3), 0), "row"),
]


def _value(kind, T):
    if isinstance(kind, float):
        return kind
    shape = {"row": (6,), "col": (2, 5), "bcast": (4, 1, 1), "small": (2, 1)}[kind]
    return T.tensor(np.arange(np.prod(shape), dtype=np.float32).reshape(shape))


@pytest.mark.parametrize("name,idx,kind", SETITEM, ids=[s[0] for s in SETITEM])
def test_setitem(name, idx, kind):
    a = rand(X)
    res = []
    for T in (engine, torch):
        x = T.tensor(a)
        x[idx(T)] = _value(kind, T)
        res.append(x)
    assert_close(res[0], res[1])


@pytest.mark.parametrize("name,idx,kind", SETITEM, ids=[s[0] for s in SETITEM])
def test_setitem_grad(name, idx, kind):
    check_op(lambda T, x: _set(x * 1.5, idx(T), _value(kind, T)), rand(X))


def test_setitem_value_grad():
    a, v = rand(X), rand((2, 5))
    check_op(lambda T, x, val: _set(x * 1, (T.tensor([0, 3]), slice(None), T.tensor([1, -1])), val * 3), a, v)
    check_op(lambda T, x, val: _set(x * 1, (slice(1, 3), 2), val[0, :1]), a, v)
    check_op(lambda T, x, val: _set(x * 1, (x > 0,), val[1, 2]), a, v)


def _set(y, idx, val):
    y[idx] = val
    return y


def test_setitem_noncontiguous_target():
    a = rand((6, 5))
    res = []
    for T in (engine, torch):
        x = T.tensor(a)
        xt = x.t()
        xt[T.tensor([0, 4]), 1:] = T.tensor(np.arange(10, dtype=np.float32).reshape(2, 5))
        x[::2][T.tensor([1, -1])] = -1.0
        res.append(x)
    assert_close(res[0], res[1])


def test_setitem_casts_and_int_targets():
    res = []
    for T in (engine, torch):
        x = T.zeros(5, dtype=T.int64)
        x[T.tensor([1, 3])] = 2.7
        x[0:2] = T.tensor([4.2, -3.5])  # basic indexing casts
        b = T.zeros(4, dtype=T.bool)
        b[T.tensor([2])] = True
        res.append((x, b))
    assert_close(res[0], res[1])
    m = _both_raise(lambda T: T.zeros(3).__setitem__([0], T.tensor([2])), RuntimeError)
    assert m[0] == m[1]


def test_setitem_value_broadcast_leading_ones_and_mismatch():
    res = []
    for T in (engine, torch):
        x = T.zeros(3, 4)
        x[[0, 2]] = T.ones(1, 1, 2, 4)
        res.append(x)
    assert_close(res[0], res[1])

    def bad(T):
        x = T.zeros(3, 4, 5)
        x[[0, 1]] = T.ones(3, 5)
    m = _both_raise(bad, RuntimeError)
    assert m[0] == m[1]


def test_setitem_aliasing_value():
    a = rand((5, 3))
    res = []
    for T in (engine, torch):
        x = T.tensor(a)
        # torch refuses an aliasing value; clgrad copies it first
        x[[0, 1]] = x[3] if T is engine else x[3].clone()
        x[[2, 4]] = x[[4, 2]]
        res.append(x)
    assert_close(res[0], res[1])


def test_setitem_leaf_requires_grad_raises():
    for T in (engine, torch):
        x = T.zeros(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable"):
            x[T.tensor([0])] = 1.0
        with pytest.raises(RuntimeError, match="leaf Variable"):
            x[0:2] = 1.0
        with T.no_grad():
            x[T.tensor([1])] = 2.0
        assert x.detach().numpy().tolist() == [0.0, 2.0, 0.0]


def test_setitem_version_and_grad_fn():
    x = engine.zeros(4, requires_grad=True) * 1
    v0 = x._version
    x[engine.tensor([1])] = engine.tensor([3.0], requires_grad=True)
    assert x._version > v0
    assert x.grad_fn is not None and "IndexPut" in type(x.grad_fn).__name__


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put(accumulate):
    # without accumulate, duplicate indices have no defined winner (torch documents it):
    # those index lists are duplicate-free, or a GPU may legitimately pick another writer
    a, v = rand((6, 4)), rand((6, 4))
    idx = I(0, 5, 2, 1, 3, -2) if not accumulate else I(0, 4, 4, 1, 0, -1)
    check_op(lambda T, x, i, val: T.index_put(x * 1, (i,), val, accumulate=accumulate), a, idx, v)
    check_op(lambda T, x, i, val: (x * 1).index_put_((i,), val, accumulate=accumulate), a, idx, v)
    check_op(lambda T, x, i, val: T.index_put(x, (i[:3] % 6, i[:3] % 4), val[:3, 0], accumulate=accumulate), a, idx, v)


def test_index_put_dtype_mismatch():
    m = _both_raise(lambda T: T.zeros(3, dtype=T.int64).index_put_((T.tensor([0]),), T.tensor(1.5)), RuntimeError)
    assert m[0] == m[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32, np.int16, np.int8, np.uint8,
                                   np.bool_])
def test_index_put_accumulate_atomics(dtype):
    if dtype == np.float64 and not fp64():
        pytest.skip("no fp64")
    n = 4000
    idx = rng.integers(0, 7, size=n)
    vals = rand((n,), dtype) if dtype != np.uint8 else rng.integers(0, 3, size=n).astype(np.uint8)
    if np.dtype(dtype).kind == "f":
        vals = np.round(vals * 4) / 4  # exactly representable sums: order-independent
    res = []
    for T in (engine, torch):
        x = T.zeros(7, dtype=getattr(T, np.dtype(dtype).name if dtype != np.bool_ else "bool"))
        x.index_put_((T.tensor(idx),), T.tensor(vals), accumulate=True)
        res.append(x)
    assert_close(res[0], res[1])


def test_int64_atomics_fallback(monkeypatch):
    """Without cl_khr_int64_base_atomics, 64-bit accumulation runs a deterministic serial kernel."""
    from engine.runtime.device import default_device
    dev = default_device()
    monkeypatch.setattr(dev, "int64_atomics", False)
    idx = rng.integers(0, 5, size=300)
    vals = rng.integers(-9, 9, size=300)
    dts = ["int64"] + (["float64"] if fp64() else [])
    for dt in dts:
        res = []
        for T in (engine, torch):
            x = T.zeros(5, dtype=getattr(T, dt))
            x.index_put_((T.tensor(idx),), T.tensor(vals).to(getattr(T, dt)), accumulate=True)
            res.append(x)
        assert_close(res[0], res[1])
    a = rand((5, 2), np.float64) if fp64() else None
    if a is not None:
        check_op(lambda T, x, i: x[i], a, idx)


def test_no_host_sync_for_trusted_indices():
    """Lists (host-checked) and the backward pass launch kernels without reading the error flag."""
    from engine.runtime import index as ix
    calls = []
    orig = ix.check_errors
    ix.check_errors = lambda dev, message=None: calls.append(1) or orig(dev, message)
    try:
        x = engine.tensor(rand((4, 3)), requires_grad=True)
        y = x[[0, 2, 2]]
        y.sum().backward()
        assert calls == []
        x.detach()[engine.tensor([1, 3])]
        assert len(calls) == 1
    finally:
        ix.check_errors = orig


def test_setitem_on_views_with_grad():
    """Assigning through a view of a tensor that requires grad: the base takes over the history."""
    a, v = rand((4, 5)), rand((2,))
    check_op(lambda T, x, val: _set_view(x * 2, (0, [1, 3]), val), a, v)
    check_op(lambda T, x, val: _set_view(x * 2, (slice(None), 2), val[0]), a, v, grad=True)
    check_op(lambda T, x: _mask_view(x * 2), a)
    check_op(lambda T, x, i: _index_put_view(x * 1, i), a, I(0, 2, 2))


def _set_view(h, idx, val):
    row, cols = idx
    if isinstance(cols, list):
        h[row][cols] = val * 3
    else:
        h[row, cols] = val
    return h


def _mask_view(h):
    col = h[:, 1]
    col[col > 0] = 0.0
    return h


def _index_put_view(h, i):
    h[1:].index_put_((i,), h[0].detach() * 0 + 1.0, accumulate=True)
    return h
