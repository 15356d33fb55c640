"""Random numbers: the Philox-4x32-10 stream (golden values), seeding, distributions, flags."""
import math

import numpy as np
import pytest

import engine
from engine.runtime import philox as ph
from engine.runtime.device import default_device

N = 100_000


# ---- the stream itself: portable, pinned by known-answer tests -------------------------------------
KAT = [  # Random123 kat_vectors: philox4x32 10 rounds (ctr, key) -> out
    ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff,) * 4, (0xffffffff, 0xffffffff), (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


def _raw_bits(seed, offset, n, c2=0, c3=0):
    dev = default_device()
    t = engine.empty(n, dtype=engine.int64)
    ph.run(dev, "bits32", t._storage.buf, 0, "long", n, seed, offset, c2=c2, c3=c3)
    return [int(v) for v in t.numpy()]


@pytest.mark.parametrize("ctr,key,want", KAT)
def test_philox_known_answers(ctr, key, want):
    assert ph.philox_reference(ctr, key) == want
    seed = key[0] | (key[1] << 32)
    offset = ctr[0] | (ctr[1] << 32)
    assert tuple(_raw_bits(seed, offset, 4, ctr[2], ctr[3])) == want


def _ref_words(seed, offset, ncounters):
    out = []
    for c in range(offset, offset + ncounters):
        out.extend(ph.philox_reference((c & 0xFFFFFFFF, c >> 32, 0, 0), (seed & 0xFFFFFFFF, seed >> 32)))
    return out


def test_rand_golden_float32():
    engine.manual_seed(1234)
    got = engine.rand(10).numpy()
    w = _ref_words(1234, 0, 3)[:10]
    want = np.array([(v >> 8) * 2.0 ** -24 for v in w], dtype=np.float32)
    np.testing.assert_array_equal(got, want)
    # the next call continues at counter 3 (ceil(10 / 4) counters were reserved)
    got2 = engine.rand(4).numpy()
    w2 = _ref_words(1234, 3, 1)
    np.testing.assert_array_equal(got2, np.array([(v >> 8) * 2.0 ** -24 for v in w2], dtype=np.float32))


def test_uniform_range_golden():
    # uniform_(a, b) = a + (b - a) * u, each op rounded to float32 (FP_CONTRACT off: no device FMA)
    engine.manual_seed(21)
    got = engine.empty(6).uniform_(-2.0, 3.0).numpy()
    w = _ref_words(21, 0, 2)[:6]
    u = np.array([(v >> 8) * 2.0 ** -24 for v in w], dtype=np.float32)
    want = np.float32(-2.0) + np.float32(5.0) * u
    np.testing.assert_array_equal(got, want)


def test_known_first_values():
    # pinned literal values: the stream of seed 0 must never change (checkpoints/tests depend on it)
    engine.manual_seed(0)
    np.testing.assert_array_equal(engine.rand(4).numpy(),
                                  np.array([(0x6627e8d5 >> 8) / 2 ** 24, (0xe169c58d >> 8) / 2 ** 24,
                                            (0xbc57ac4c >> 8) / 2 ** 24, (0x9b00dbd8 >> 8) / 2 ** 24],
                                           dtype=np.float32))


@pytest.mark.skipif(not default_device().fp64, reason="no fp64")
def test_rand_golden_float64():
    engine.manual_seed(77)
    got = engine.rand(5, dtype=engine.float64).numpy()
    w = _ref_words(77, 0, 3)
    want = [((w[2 * i] >> 5) * 67108864.0 + (w[2 * i + 1] >> 6)) * 2.0 ** -53 for i in range(5)]
    np.testing.assert_array_equal(got, np.array(want))


def test_randint_golden():
    engine.manual_seed(5)
    got = engine.randint(-3, 7, (9,)).numpy()
    w = _ref_words(5, 0, 3)[:9]
    np.testing.assert_array_equal(got, np.array([-3 + v % 10 for v in w]))


def test_randn_matches_reference():
    engine.manual_seed(9)
    got = engine.randn(8).numpy().astype(np.float64)
    w = _ref_words(9, 0, 2)
    want = []
    for a, b in zip(w[0::2], w[1::2]):
        u1 = ((a >> 8) + 1) * 2.0 ** -24
        u2 = (b >> 8) * 2.0 ** -24
        r = math.sqrt(-2 * math.log(u1))
        want += [r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_prefix_property():
    # element i depends only on (seed, offset, i): no work size enters the stream
    engine.manual_seed(3)
    a = engine.rand(1000).numpy()
    engine.manual_seed(3)
    b = engine.rand(7).numpy()
    np.testing.assert_array_equal(a[:7], b)
    engine.manual_seed(3)
    c = engine.randn(999).numpy()
    engine.manual_seed(3)
    d = engine.randn(3).numpy()
    np.testing.assert_array_equal(c[:3], d)


# ---- seeding and state ---------------------------------------------------------------------------
def test_determinism_and_seeds():
    for fn in (lambda: engine.rand(50), lambda: engine.randn(3, 5), lambda: engine.randint(0, 100, (20,)),
               lambda: engine.randperm(30), lambda: engine.bernoulli(engine.full((40,), 0.5))):
        engine.manual_seed(42)
        a = fn().numpy()
        engine.manual_seed(42)
        b = fn().numpy()
        np.testing.assert_array_equal(a, b)
        engine.manual_seed(43)
        c = fn().numpy()
        assert not np.array_equal(a, c)
    engine.manual_seed(42)
    x, y = engine.rand(16).numpy(), engine.rand(16).numpy()
    assert not np.array_equal(x, y)


def test_rng_state_roundtrip():
    engine.manual_seed(11)
    engine.rand(13)
    st = engine.get_rng_state()
    assert st.dtype == engine.uint8 and st.shape == (16,)
    a = engine.randn(20).numpy()
    engine.rand(3)
    engine.set_rng_state(st)
    np.testing.assert_array_equal(engine.randn(20).numpy(), a)
    assert engine.initial_seed() == 11


def test_fork_rng_and_generator():
    engine.manual_seed(1)
    with engine.random.fork_rng():
        engine.rand(100)
    after = engine.rand(4).numpy()
    engine.manual_seed(1)
    np.testing.assert_array_equal(engine.rand(4).numpy(), after)

    g = engine.Generator().manual_seed(5)
    a = engine.rand(6, generator=g).numpy()
    engine.manual_seed(5)
    np.testing.assert_array_equal(engine.rand(6).numpy(), a)  # same seed, same stream
    g2 = engine.Generator()
    g2.manual_seed(5)
    engine.rand(100)  # the global stream does not touch generator g2
    np.testing.assert_array_equal(engine.rand(6, generator=g2).numpy(), a)
    st = g2.get_state()
    b = engine.randn(5, generator=g2).numpy()
    g2.set_state(st)
    np.testing.assert_array_equal(engine.randn(5, generator=g2).numpy(), b)
    dev = engine.get_default_device()
    assert engine.Generator(device=dev).device == dev
    assert engine.manual_seed(3) is engine.default_generator
    assert engine.default_generator.initial_seed() == 3


# ---- distributions ---------------------------------------------------------------------------------
def test_rand_stats():
    x = engine.rand(N).numpy()
    assert x.min() >= 0 and x.max() < 1
    assert abs(x.mean() - 0.5) < 0.005
    assert abs(x.std() - 1 / math.sqrt(12)) < 0.005
    h, _ = np.histogram(x, bins=10, range=(0, 1))
    assert np.all(np.abs(h - N / 10) < 5 * math.sqrt(N / 10))


@pytest.mark.parametrize("dtype", [engine.float32, engine.float64])
def test_randn_stats(dtype):
    if dtype is engine.float64 and not default_device().fp64:
        pytest.skip("no fp64")
    x = engine.randn(N, dtype=dtype).numpy()
    assert x.dtype == dtype.np
    assert abs(x.mean()) < 0.015 and abs(x.std() - 1) < 0.015
    assert abs(np.mean(np.abs(x) < 1) - 0.6827) < 0.01
    assert abs(np.mean(x ** 3)) < 0.05 and abs(np.mean(x ** 4) - 3) < 0.1


def test_uniform_normal_inplace_stats():
    x = engine.empty(N).uniform_(-2, 3).numpy()
    assert x.min() >= -2 and x.max() < 3 and abs(x.mean() - 0.5) < 0.03
    y = engine.empty(N).normal_(4, 0.5).numpy()
    assert abs(y.mean() - 4) < 0.01 and abs(y.std() - 0.5) < 0.01
    z = engine.normal(2.0, 3.0, size=(N,)).numpy()
    assert abs(z.mean() - 2) < 0.05 and abs(z.std() - 3) < 0.05
    e = engine.empty(N).exponential_(2.0).numpy()
    assert e.min() >= 0 and abs(e.mean() - 0.5) < 0.01
    g = engine.empty(N).geometric_(0.25).numpy()
    assert g.min() >= 1 and abs(g.mean() - 4) < 0.1
    ln = engine.empty(N).log_normal_(1.0, 0.5).numpy()
    assert abs(np.median(np.log(ln)) - 1.0) < 0.02
    c = engine.empty(N).cauchy_(1.0, 2.0).numpy()
    assert abs(np.median(c) - 1.0) < 0.05


def test_normal_tensor_forms():
    mean = engine.tensor([0.0, 10.0, -5.0])
    std = engine.tensor([1.0, 0.1, 2.0])
    m = mean.reshape(1, 3).expand(20000, 3)
    s = std.reshape(1, 3).expand(20000, 3)
    x = engine.normal(m, s).numpy()
    np.testing.assert_allclose(x.mean(0), [0, 10, -5], atol=0.06)
    np.testing.assert_allclose(x.std(0), [1, 0.1, 2], rtol=0.03)
    y = engine.normal(m, 2.0).numpy()
    np.testing.assert_allclose(y.std(0), [2, 2, 2], rtol=0.03)
    z = engine.normal(1.0, s)
    assert z.shape == (20000, 3)
    with pytest.raises(RuntimeError, match="std >= 0.0"):
        engine.normal(0.0, -1.0, size=(3,))
    with pytest.raises(RuntimeError, match="std >= 0.0"):
        engine.empty(3).normal_(0, -1)


def test_randint_range_and_histogram():
    x = engine.randint(3, 13, (N,)).numpy()
    assert x.dtype == np.int64 and x.min() == 3 and x.max() == 12
    h = np.bincount(x - 3, minlength=10)
    chi2 = ((h - N / 10) ** 2 / (N / 10)).sum()
    assert chi2 < 40  # 9 dof: p < 1e-5
    y = engine.randint(5, (1000,)).numpy()
    assert y.min() == 0 and y.max() == 4
    big = engine.randint(-2 ** 40, 2 ** 40, (N,)).numpy()
    assert big.min() >= -2 ** 40 and big.max() < 2 ** 40 and abs(big.mean()) < 2 ** 40 * 0.02
    assert engine.randint(0, 10, size=(2, 3)).shape == (2, 3)
    assert engine.randint(low=1, high=4, size=(4,)).numpy().min() >= 1
    f = engine.randint(0, 4, (100,), dtype=engine.float32)
    assert f.dtype == engine.float32 and set(np.unique(f.numpy())) <= {0, 1, 2, 3}
    with pytest.raises(RuntimeError, match="from"):
        engine.randint(5, 5, (3,))


def test_random_inplace_ranges():
    x = engine.empty(N, dtype=engine.int64).random_(0, 7).numpy()
    assert x.min() == 0 and x.max() == 6
    y = engine.empty(1000, dtype=engine.int64).random_(10).numpy()
    assert y.min() >= 0 and y.max() <= 9
    z = engine.empty(1000, dtype=engine.uint8).random_().numpy()
    assert z.max() > 200
    f = engine.empty(1000).random_().numpy()
    assert f.min() >= 0 and f.max() <= 2 ** 24 and np.all(f == np.floor(f))
    b = engine.empty(1000, dtype=engine.bool).random_().numpy()
    assert 300 < b.sum() < 700


def test_bernoulli():
    p = engine.full((N,), 0.3)
    x = engine.bernoulli(p)
    assert x.dtype == engine.float32 and x.shape == (N,)
    xs = x.numpy()
    assert set(np.unique(xs)) <= {0.0, 1.0} and abs(xs.mean() - 0.3) < 0.01
    pv = engine.tensor([0.0, 1.0, 0.5]).reshape(1, 3).expand(20000, 3)
    r = engine.bernoulli(pv).numpy().mean(0)
    assert r[0] == 0 and r[1] == 1 and abs(r[2] - 0.5) < 0.02
    y = engine.bernoulli(engine.zeros(N), 0.8).numpy()
    assert abs(y.mean() - 0.8) < 0.01
    t = engine.zeros(N, dtype=engine.int64).bernoulli_(0.25).numpy()
    assert abs(t.mean() - 0.25) < 0.01
    u = engine.zeros(4, 20000).bernoulli_(engine.tensor([[0.1], [0.2], [0.9], [1.0]])).numpy().mean(1)
    np.testing.assert_allclose(u, [0.1, 0.2, 0.9, 1.0], atol=0.015)
    assert engine.ones(5).bernoulli().shape == (5,)
    with pytest.raises(RuntimeError, match=r"\[0, 1\]"):
        engine.zeros(3).bernoulli_(1.5)


# ---- flags, shapes, in-place semantics ---------------------------------------------------------------
def test_flags_and_shapes():
    assert engine.rand(2, 3).shape == (2, 3)
    assert engine.rand((2, 3)).shape == (2, 3)
    assert engine.rand([4]).shape == (4,)
    assert engine.randn(size=(2, 2)).shape == (2, 2)
    assert engine.rand(engine.Size([3, 1])).shape == (3, 1)
    assert engine.rand(()).shape == ()
    assert engine.rand(2, dtype=engine.float64).dtype == engine.float64
    r = engine.randn(3, requires_grad=True)
    assert r.requires_grad and r.is_leaf
    assert not engine.rand(3).requires_grad
    dev = engine.get_default_device()
    assert engine.rand(3, device=dev).device == dev
    assert engine.rand(3, device=str(dev)).device == dev
    with pytest.raises(RuntimeError, match="not implemented for 'Long'"):
        engine.rand(3, dtype=engine.int64)
    with pytest.raises(RuntimeError, match="not implemented for 'Long'"):
        engine.randn(3, dtype=engine.int64)
    with pytest.raises(RuntimeError, match="not implemented for 'Long'"):
        engine.zeros(3, dtype=engine.int64).uniform_()
    x = engine.zeros(2, 5, dtype=engine.float64)
    assert engine.rand_like(x).dtype == engine.float64 and engine.rand_like(x).shape == (2, 5)
    assert engine.randn_like(x, dtype=engine.float32).dtype == engine.float32
    ri = engine.randint_like(engine.zeros(3, 4, dtype=engine.int32), 10)
    assert ri.dtype == engine.int32 and ri.shape == (3, 4) and ri.numpy().max() < 10
    ri2 = engine.randint_like(x, 5, 8).numpy()
    assert ri2.min() >= 5 and ri2.max() < 8


def test_empty_shapes():
    for fn in (lambda: engine.rand(0), lambda: engine.randn(3, 0), lambda: engine.randint(0, 3, (0, 2)),
               lambda: engine.randperm(0), lambda: engine.bernoulli(engine.zeros(0)),
               lambda: engine.empty(0).uniform_(), lambda: engine.empty(2, 0).normal_()):
        t = fn()
        assert t.numel() == 0
    engine.manual_seed(8)
    engine.rand(0)
    a = engine.rand(3).numpy()
    engine.manual_seed(8)
    np.testing.assert_array_equal(engine.rand(3).numpy(), a)  # empty draws reserve nothing


def test_inplace_version_and_autograd_rules():
    x = engine.zeros(10)
    v = x._version
    for op in (lambda t: t.uniform_(), lambda t: t.normal_(), lambda t: t.bernoulli_(0.5),
               lambda t: t.exponential_(), lambda t: t.random_(0, 3), lambda t: t.cauchy_(),
               lambda t: t.log_normal_(), lambda t: t.geometric_(0.5)):
        r = op(x)
        assert r is x and x._version == v + 1
        v = x._version
    w = engine.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w.uniform_()
    with pytest.raises(RuntimeError, match="from=2"):
        engine.zeros(3).uniform_(2, 1)
    h = w * 2  # sampling over a computed tensor cuts its history
    h.normal_()
    assert h.grad_fn is None and not h.requires_grad
    with engine.no_grad():
        w.normal_()
    assert w.requires_grad and np.all(w.detach().numpy() != 0)


def test_inplace_noncontiguous_view():
    base = engine.zeros(6, 8)
    view = base[:, ::2]
    assert not view.is_contiguous()
    view.uniform_(1, 2)
    b = base.numpy()
    assert np.all(b[:, 1::2] == 0) and np.all((b[:, ::2] >= 1) & (b[:, ::2] < 2))
    t = engine.zeros(4, 5).t()
    t.normal_()
    assert np.all(t.numpy() != 0)


def test_randperm():
    for n in (1, 2, 7, 100, 1000, 5000):
        p = engine.randperm(n)
        assert p.dtype == engine.int64 and p.shape == (n,)
        np.testing.assert_array_equal(np.sort(p.numpy()), np.arange(n))
    assert not np.array_equal(engine.randperm(50).numpy(), np.arange(50))
    assert engine.randperm(6, dtype=engine.int32).dtype == engine.int32
    assert engine.randperm(6, dtype=engine.float32).dtype == engine.float32
    # uniformity: position of element 0 over many permutations of 4
    counts = np.zeros((4, 4))
    for _ in range(400):
        p = engine.randperm(4).numpy()
        counts[np.arange(4), p] += 1
    assert counts.min() > 60 and counts.max() < 140
