"""Sorting, selection, unique/searchsorted and multinomial against PyTorch."""
import numpy as np
import pytest
import torch

import engine
from engine.runtime.device import default_device

from .helpers import check_op, rand

prng = np.random.default_rng(7)


def distinct(shape, dtype=np.float32):
    """Random floats without ties (so unstable and stable sorts agree with PyTorch's indices)."""
    n = int(np.prod(shape))
    return (prng.permutation(n).astype(dtype) * 0.37 - n * 0.1).reshape(shape)


# ---- sort ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 5, 17, 100, 511, 512, 513, 1000, 3000])
def test_sort_lengths(n):
    a = distinct((3, n))
    check_op(lambda T, x: T.sort(x, dim=1), a)
    check_op(lambda T, x: T.sort(x, dim=-1, descending=True), a)


def test_sort_long_row():
    a = distinct((20000,))  # several global (k, j) stages
    check_op(lambda T, x: T.sort(x), a, grad=False)
    check_op(lambda T, x: T.sort(x, descending=True), a, grad=False)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_sort_dims(dim):
    a = distinct((4, 6, 5))
    check_op(lambda T, x: T.sort(x, dim=dim), a)
    check_op(lambda T, x: x.sort(dim, True), a)


def test_sort_noncontiguous_and_views():
    a = distinct((7, 9))
    check_op(lambda T, x: T.sort(x, dim=0), a, noncontig=True)
    check_op(lambda T, x: T.sort(x, dim=1, descending=True), a, noncontig=True)
    check_op(lambda T, x: T.sort(x[:, 1::2], dim=1), a)
    check_op(lambda T, x: T.sort(x.t()[2:5], dim=0), a)


def test_sort_empty_and_scalar():
    for shape, dim in (((0,), 0), ((3, 0), 1), ((3, 0), 0), ((0, 5), 1), ((2, 1), 1)):
        check_op(lambda T, x: T.sort(x, dim=dim), distinct(shape) if 0 not in shape else
                 np.zeros(shape, np.float32), grad=0 not in shape)
    check_op(lambda T, x: T.sort(x), np.array(2.5, dtype=np.float32))
    check_op(lambda T, x: T.sort(x, 0, True), np.array(-1.0, dtype=np.float32))


def test_sort_result_type():
    r = engine.sort(engine.tensor([3.0, 1.0, 2.0]))
    v, i = r
    assert r.values is v and r.indices is i and r[0] is v
    assert i.dtype == engine.int64 and i.grad_fn is None and not i.requires_grad
    np.testing.assert_array_equal(v.numpy(), [1, 2, 3])
    np.testing.assert_array_equal(i.numpy(), [1, 2, 0])
    x = engine.tensor([3.0, 1.0, 2.0], requires_grad=True)
    v, i = x.sort()
    assert v.grad_fn is not None and v.grad_fn.name() == "SortBackward0"
    assert not i.requires_grad


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint8, np.int8, np.float64, np.bool_])
def test_sort_dtypes_with_ties_stable(dtype):
    if dtype == np.float64 and not default_device().fp64:
        pytest.skip("no fp64")
    a = rand((4, 37), dtype)  # many ties: our sort is always stable, so indices match torch's stable sort
    check_op(lambda T, x: T.sort(x, dim=1, stable=True), a, grad=False)
    check_op(lambda T, x: T.sort(x, dim=0, descending=True, stable=True), a, grad=False)
    check_op(lambda T, x: T.argsort(x, dim=1, stable=True), a, grad=False)


def test_sort_nan_inf_ordering():
    a = np.array([[1.0, np.nan, -np.inf, 3.0, np.inf, np.nan, -0.5, 2.0, np.nan]], dtype=np.float32)
    check_op(lambda T, x: T.sort(x, dim=1, stable=True), a, grad=False)
    check_op(lambda T, x: T.sort(x, dim=1, descending=True, stable=True), a, grad=False)
    check_op(lambda T, x: T.topk(x, 3, dim=1), np.array([[1.0, np.nan, 5.0, 2.0]], np.float32), grad=False)


def test_argsort_msort():
    a = distinct((5, 8))
    check_op(lambda T, x: T.argsort(x), a, grad=False)
    check_op(lambda T, x: T.argsort(x, dim=0, descending=True), a, grad=False)
    check_op(lambda T, x: x.argsort(1), a, noncontig=True, grad=False)
    check_op(lambda T, x: T.msort(x), a)


def test_sort_values_gradient_double_backward():
    a = distinct((3, 5))
    w = prng.standard_normal((3, 5)).astype(np.float32)
    res = []
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        wt = T.tensor(w, requires_grad=True)
        v = T.sort(x, dim=1, descending=True).values
        (g,) = T.autograd.grad((v * v * wt).sum(), x, create_graph=True)
        (gw,) = T.autograd.grad((g * g).sum(), wt)
        res.append((g.detach().numpy(), gw.numpy()))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=1e-4, atol=1e-4)


# ---- topk / kthvalue / median ----------------------------------------------------------------------
@pytest.mark.parametrize("k", [0, 1, 3, 10])
def test_topk(k):
    a = distinct((4, 10))
    check_op(lambda T, x: T.topk(x, k), a)
    check_op(lambda T, x: T.topk(x, k, dim=1, largest=False), a)
    check_op(lambda T, x: x.topk(min(k, 4), 0), a, noncontig=True)


def test_topk_long_and_errors():
    a = distinct((2, 1500))
    check_op(lambda T, x: T.topk(x, 7, dim=1), a)
    check_op(lambda T, x: T.topk(x, 1, dim=0, largest=False), a)
    x = engine.tensor(a)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        engine.topk(x, 1501)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        engine.topk(x, -1)
    with pytest.raises(IndexError):
        engine.topk(x, 1, dim=2)
    assert engine.topk(engine.tensor(5.0), 1).values.shape == ()


def test_kthvalue():
    a = distinct((5, 9))
    for k in (1, 4, 9):
        check_op(lambda T, x: T.kthvalue(x, k), a)
        check_op(lambda T, x: T.kthvalue(x, k, 0 if k <= 5 else 1, keepdim=True), a)
    with pytest.raises(RuntimeError, match="out of range"):
        engine.kthvalue(engine.tensor(a), 10)


def test_median():
    a = distinct((5, 8))
    check_op(lambda T, x: T.median(x), a)
    check_op(lambda T, x: T.median(x, dim=1), a)
    check_op(lambda T, x: T.median(x, 0, keepdim=True), a)
    check_op(lambda T, x: x.median(1), distinct((3, 7)))
    b = np.array([[1.0, np.nan, 3.0, 0.0], [2.0, 1.0, 5.0, 4.0], [np.nan, np.nan, np.nan, 1.0]], np.float32)
    check_op(lambda T, x: T.median(x, dim=1), b, grad=False)
    check_op(lambda T, x: T.nanmedian(x, dim=1), b, grad=False)
    check_op(lambda T, x: T.nanmedian(x), b, grad=False)
    check_op(lambda T, x: T.median(x), b, grad=False)
    check_op(lambda T, x: T.median(x, 0), np.array([3, 1, 2, 2], np.int64), grad=False)


# ---- unique / searchsorted ---------------------------------------------------------------------------
def test_unique():
    a = rand((6, 7), np.int64)
    for ri in (False, True):
        for rc in (False, True):
            check_op(lambda T, x: T.unique(x, return_inverse=ri, return_counts=rc), a, grad=False)
    f = np.array([0.5, -1.0, 0.5, 2.0, -1.0, 3.5], np.float32)
    check_op(lambda T, x: x.unique(return_inverse=True), f, grad=False)
    check_op(lambda T, x: T.unique(x, return_counts=True), np.zeros((0,), np.float32), grad=False)
    check_op(lambda T, x: T.unique(x, dim=0), np.array([3, 1, 3, 2], np.int64), grad=False)


def test_unique_consecutive():
    a = np.array([1, 1, 2, 2, 3, 1, 1, 2], np.int64)
    check_op(lambda T, x: T.unique_consecutive(x), a, grad=False)
    check_op(lambda T, x: T.unique_consecutive(x, return_inverse=True, return_counts=True), a, grad=False)
    check_op(lambda T, x: T.unique_consecutive(x, return_counts=True), a.reshape(2, 4), grad=False)


def test_searchsorted_bucketize():
    seq = np.sort(rand((10,), np.float32))
    vals = rand((3, 4), np.float32)
    vals[0, :2] = seq[[2, 5]]  # exact hits: left and right differ
    for right in (False, True):
        check_op(lambda T, s, v: T.searchsorted(s, v, right=right), seq, vals, grad=False)
        check_op(lambda T, s, v: T.bucketize(v, s, right=right), seq, vals, grad=False)
    check_op(lambda T, s, v: T.searchsorted(s, v, side="right", out_int32=True), seq, vals, grad=False)
    seq2 = np.sort(rand((3, 6), np.float32), axis=1)
    check_op(lambda T, s, v: T.searchsorted(s, v), seq2, vals, grad=False)
    check_op(lambda T, s: T.searchsorted(s, 0.25), seq, grad=False)
    unsorted = rand((8,), np.float32)
    sorter = np.argsort(unsorted, kind="stable")
    check_op(lambda T, s, v, o: T.searchsorted(s, v, sorter=o), unsorted, vals, sorter, grad=False)
    ints = np.array([1, 3, 5, 7], np.int64)
    check_op(lambda T, s, v: T.searchsorted(s, v), ints, np.array([0, 3, 4, 8], np.int64), grad=False)
    with pytest.raises(RuntimeError):
        engine.searchsorted(engine.tensor(seq2), engine.tensor(rand((2, 4), np.float32)))


# ---- multinomial -------------------------------------------------------------------------------------
def _chi2(counts, p):
    exp = p / p.sum() * counts.sum()
    m = exp > 0
    assert np.all(counts[~m] == 0)
    return (((counts[m] - exp[m]) ** 2) / exp[m]).sum(), m.sum() - 1


def test_multinomial_with_replacement():
    w = np.array([1.0, 0.0, 3.0, 6.0, 0.5], np.float32)  # unnormalised, one impossible category
    s = engine.multinomial(engine.tensor(w), 50000, replacement=True)
    assert s.shape == (50000,) and s.dtype == engine.int64
    chi2, dof = _chi2(np.bincount(s.numpy(), minlength=5).astype(float), w.astype(float))
    assert chi2 < 25, chi2  # 3 dof: p < 1e-4
    w2 = np.abs(rand((3, 40), np.float32)) + 0.01
    s2 = engine.tensor(w2).multinomial(20000, True).numpy()
    assert s2.shape == (3, 20000)
    for r in range(3):
        chi2, dof = _chi2(np.bincount(s2[r], minlength=40).astype(float), w2[r].astype(float))
        assert chi2 < dof + 6 * np.sqrt(2 * dof), (r, chi2)


def test_multinomial_without_replacement():
    w = np.array([[0.1, 0.2, 0.3, 0.4, 0.0, 1.0], [5.0, 1.0, 1.0, 1.0, 1.0, 1.0]], np.float32)
    s = engine.multinomial(engine.tensor(w), 5).numpy()
    assert s.shape == (2, 5)
    for row in s:
        assert len(set(row.tolist())) == 5
    assert 4 not in s[0].tolist()
    # the first draw follows p; the full draw is a permutation for num_samples == n
    firsts = []
    for _ in range(1500):
        firsts.append(engine.multinomial(engine.tensor(w[1]), 6).numpy())
    firsts = np.array(firsts)
    assert all(sorted(r.tolist()) == list(range(6)) for r in firsts[:50])
    chi2, dof = _chi2(np.bincount(firsts[:, 0], minlength=6).astype(float), w[1].astype(float))
    assert chi2 < 30, chi2
    # second draw given the first is 0: uniform over the rest
    sec = firsts[firsts[:, 0] == 0, 1]
    h = np.bincount(sec, minlength=6)[1:]
    assert h.min() > len(sec) / 5 * 0.6


def test_multinomial_errors_and_determinism():
    with pytest.raises(RuntimeError, match="element < 0"):
        engine.multinomial(engine.tensor([0.5, -0.1, 0.6]), 2)
    with pytest.raises(RuntimeError, match="inf"):
        engine.multinomial(engine.tensor([0.5, float("nan")]), 1, True)
    with pytest.raises(RuntimeError, match="sum of probabilities"):
        engine.multinomial(engine.tensor([[0.5, 0.5], [0.0, 0.0]]), 1, True)
    with pytest.raises(RuntimeError, match="without replacement"):
        engine.multinomial(engine.tensor([0.5, 0.5]), 3)
    with pytest.raises(RuntimeError, match="not enough"):
        engine.multinomial(engine.tensor([0.5, 0.0, 0.5]), 3)
    with pytest.raises(RuntimeError):
        engine.multinomial(engine.tensor([1, 2]), 1)
    w = engine.tensor([0.2, 0.3, 0.5])
    engine.manual_seed(4)
    a = engine.multinomial(w, 10, True).numpy()
    b = engine.multinomial(w, 3).numpy()
    engine.manual_seed(4)
    np.testing.assert_array_equal(engine.multinomial(w, 10, True).numpy(), a)
    np.testing.assert_array_equal(engine.multinomial(w, 3).numpy(), b)
    # strided (non-contiguous) probabilities
    wt = engine.tensor(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], np.float32)).t()
    s = engine.multinomial(wt, 4, True).numpy()
    assert np.all(s[0] == 0) and np.all(s[1] == 2)
