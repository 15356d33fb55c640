"""The kernel shapes of runtime/reduction.py against PyTorch: vec (4-vector loads with a scalar
head and tail), serial (strided rows, unrolled) and group, each with one and several chunks per
row, on sizes that are not multiples of 4, views that start at odd offsets, strided views, empty
and very long rows, float64 and integer types.

The `plan` fixture runs every case under several plan knobs, among them the GPU plans (work-groups
of interleaved work-items, a second pass) on whatever device runs the tests, so PoCL checks the
kernels that NVIDIA runs."""
import numpy as np
import pytest
import torch

import engine
from engine.runtime import reduction as R
from .helpers import fp64

PLANS = {
    "default": {},
    "gpu": {"gpu_plan": 1, "wg": 64, "unroll": 2, "groups_per_cu": 8, "items_per_cu": 64},
    "gpu_u4_wg32": {"gpu_plan": 1, "wg": 32, "unroll": 4, "groups_per_cu": 64, "items_per_cu": 1024},
    "gpu_onepass": {"gpu_plan": 1, "wg": 64, "unroll": 2, "groups_per_cu": 16, "onepass": 1},
    "novec": {"vec": 0},
}


@pytest.fixture(params=list(PLANS))
def plan(request):
    old = R.set_tuning(**PLANS[request.param])
    yield request.param
    R.set_tuning(**old)


_rng = np.random.default_rng(7)


def _data(shape, dtype=np.float32, ties=False):
    if np.dtype(dtype) == np.bool_:
        return _rng.random(shape) > 0.3
    if np.dtype(dtype).kind in "iu" or ties:
        lo = 0 if np.dtype(dtype).kind == "u" else -3
        return _rng.integers(lo, 4, size=shape).astype(dtype)
    return _rng.uniform(-2, 2, size=shape).astype(dtype)


def _cmp(fn, a, view=lambda t: t, exact=False):
    """fn(view(T.tensor(a))) for T = engine and torch; floats against a float64 torch reference.
    (values, indices) results compare both."""
    mine = fn(view(engine.tensor(a)))
    ta = torch.from_numpy(a)
    same_type = fn(view(ta))
    ref = fn(view(ta.double())) if a.dtype == np.float32 else same_type
    if isinstance(ref, tuple):
        _check(mine[0], ref[0], same_type[0], a, exact)
        _check(mine[1], ref[1], same_type[1], a, True)
    else:
        _check(mine, ref, same_type, a, exact)


def _check(mine, ref, same_type, a, exact):
    assert str(mine.dtype).split(".")[-1] == str(same_type.dtype).split(".")[-1]
    m = mine.numpy()
    r = ref.numpy()
    assert m.shape == r.shape
    if exact or r.dtype.kind in "iub":
        np.testing.assert_array_equal(m, r.astype(m.dtype) if r.dtype.kind == "f" else r)
    else:
        k = max(1, a.size // max(1, m.size))
        np.testing.assert_allclose(m, r, rtol=2e-5, atol=1e-5 + 1e-7 * k, equal_nan=True)


OPS = {
    "sum": lambda t: t.sum(),
    "mean": lambda t: t.mean(),
    "max": lambda t: t.max(),
    "min": lambda t: t.min(),
    "argmax": lambda t: t.argmax(),
    "argmin": lambda t: t.argmin(),
    "nansum": lambda t: t.nansum(),
    "var": lambda t: t.var(),
    "logsumexp": lambda t: t.logsumexp(0),
    "norm": lambda t: t.norm(),
}


@pytest.mark.parametrize("n", [1, 3, 5, 31, 33, 127, 1023, 4097, 65537, (1 << 20) + 3])
@pytest.mark.parametrize("op", ["sum", "max", "argmax", "mean"])
def test_full_odd_sizes(plan, op, n):
    _cmp(OPS[op], _data((n,)))


@pytest.mark.parametrize("op", list(OPS))
def test_full_all_ops(plan, op):
    a = _data((70001,))
    if op == "nansum":
        a[::97] = np.nan
    _cmp(OPS[op], a)


@pytest.mark.parametrize("start", [1, 2, 3, 5])
@pytest.mark.parametrize("op", ["sum", "max", "argmin", "nansum"])
def test_misaligned_views(plan, op, start):
    a = _data((40011,))
    _cmp(OPS[op], a, lambda t: t[start:])
    _cmp(OPS[op], a, lambda t: t[start:-start])
    _cmp(lambda t: t.sum(-1), _data((37, 1001)), lambda t: t[1:, start:])


@pytest.mark.parametrize("shape,dim", [((37, 1001), -1), ((5, 40003), -1), ((1001, 37), 0), ((4099, 65), 0),
                                       ((3, 500, 7), 1), ((6, 7, 300), (0, 2)), ((300, 6, 7), (0, 2)),
                                       ((64, 4096), -1), ((4096, 64), 0), ((2, 3, 5, 4099), (1, 3))],
                         ids=str)
@pytest.mark.parametrize("op", ["sum", "mean", "amax", "argmax", "var", "logsumexp", "prod"])
def test_dims(plan, op, shape, dim):
    if op == "argmax" and isinstance(dim, tuple):
        pytest.skip("argmax takes one dim")
    if op == "prod" and isinstance(dim, tuple):
        pytest.skip("prod takes one dim")
    a = _rng.uniform(0.99, 1.01, size=shape).astype(np.float32) if op == "prod" else _data(shape)
    fns = {"sum": lambda t: t.sum(dim), "mean": lambda t: t.mean(dim), "amax": lambda t: t.amax(dim),
           "argmax": lambda t: t.argmax(dim), "var": lambda t: t.var(dim),
           "logsumexp": lambda t: t.logsumexp(dim), "prod": lambda t: t.prod(dim)}
    _cmp(fns[op], a)


@pytest.mark.parametrize("view", ["t", "step2", "t_offset"])
@pytest.mark.parametrize("dim", [0, -1, None])
def test_noncontiguous(plan, view, dim):
    a = _data((203, 131))
    v = {"t": lambda t: t.t(), "step2": lambda t: t[:, ::2], "t_offset": lambda t: t[1:, 3:].t()}[view]
    _cmp(lambda t: t.sum(dim) if dim is not None else t.sum(), a, v)
    _cmp(lambda t: t.max(dim) if dim is not None else t.max(), a, v)
    if dim is not None:
        _cmp(lambda t: t.argmin(dim), a, v)


def test_empty(plan):
    _cmp(lambda t: t.sum(), _data((0,)))
    _cmp(lambda t: t.sum(-1), _data((5, 0)))
    _cmp(lambda t: t.sum(0), _data((0, 5)))
    _cmp(lambda t: t.mean(-1), _data((5, 0)))
    _cmp(lambda t: t.prod(-1), _data((3, 0)))
    _cmp(lambda t: t.sum(-1), _data((0, 1000)))
    _cmp(lambda t: t.amax(-1), _data((0, 1000)))


@pytest.mark.parametrize("op", ["sum", "max", "argmax", "mean", "min"])
def test_long_rows(plan, op):
    a = _data((3, 300001))
    fns = {"sum": lambda t: t.sum(-1), "max": lambda t: t.max(-1), "argmax": lambda t: t.argmax(-1),
           "mean": lambda t: t.mean(-1), "min": lambda t: t.min(-1)}
    _cmp(fns[op], a)
    _cmp(fns[op], a, lambda t: t[:, 1:])


@pytest.mark.parametrize("shape,dim", [((100003,), None), ((9, 20001), -1), ((20001, 9), 0)], ids=str)
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_arg_ties_first_index(plan, op, shape, dim):
    # few distinct values: many ties, which every path must break towards the first index
    a = _data(shape, ties=True)
    _cmp(lambda t: getattr(t, op)(dim), a, exact=True)
    _cmp(lambda t: getattr(t, op)(dim), a, (lambda t: t[1:]) if dim is None else (lambda t: t[1:, 1:]), exact=True)


def test_nan(plan):
    a = _data((50003,))
    a[[7, 4000, 30001]] = np.nan
    for fn in (lambda t: t.max(), lambda t: t.min(), lambda t: t.argmax(), lambda t: t.argmin(),
               lambda t: t.sum(), lambda t: t.nansum(), lambda t: t.amax()):
        _cmp(fn, a)
    b = _data((7, 5003))
    b[3, 2000] = np.nan
    b[5, ::1000] = np.nan
    for fn in (lambda t: t.max(-1), lambda t: t.argmin(-1), lambda t: t.amin(0), lambda t: t.argmax(0)):
        _cmp(fn, b)


@pytest.mark.skipif(not fp64(), reason="device without fp64")
@pytest.mark.parametrize("op", ["sum", "max", "argmax", "var", "mean"])
def test_float64(plan, op):
    a = _data((3, 40003), np.float64)
    fns = {"sum": lambda t: t.sum(-1), "max": lambda t: t.max(), "argmax": lambda t: t.argmax(-1),
           "var": lambda t: t.var(), "mean": lambda t: t.mean(0)}
    mine = fns[op](engine.tensor(a))
    ref = fns[op](torch.from_numpy(a))
    if isinstance(ref, tuple):
        mine, ref = mine[0], ref[0]
    np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-10, atol=1e-9)
    _cmp(fns[op], a, lambda t: t[:, 1:])


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.int16, np.int8, np.uint8, np.bool_], ids=str)
def test_int_types(plan, dtype):
    a = _data((5, 30011), dtype)
    fns = [lambda t: t.sum(), lambda t: t.sum(-1), lambda t: t.sum(0), lambda t: t.any(-1), lambda t: t.all(),
           lambda t: t.count_nonzero(-1)]
    if dtype is not np.bool_:
        fns += [lambda t: t.amax(-1), lambda t: t.amin(), lambda t: t.argmax(-1), lambda t: t.argmin(0),
                lambda t: t.max()]
    for fn in fns:
        _cmp(fn, a)
        _cmp(fn, a, lambda t: t[:, 3:])


def test_int32_sum_wide(plan):
    # an int32 sum accumulates in int64 (torch's result dtype): no overflow
    a = np.full((1 << 16,), 2**30, dtype=np.int32)
    _cmp(lambda t: t.sum(), a)


def test_plan_shapes():
    """The plans take the kernel shapes the module docstring promises."""
    from engine.runtime.device import default_device
    dev = default_device()
    x = engine.tensor(_data((1 << 20,)))
    R._plans.clear()
    old = R.set_tuning(gpu_plan=1)
    try:
        mode, G, chunk, wg, _, _ = R._red_plan(dev, 1, 1 << 20, True, True)
        assert mode == "vec" and G > 1 and chunk % 4 == 0 and wg > 1
        assert R._red_plan(dev, 4096, 4096, False, False)[0] == "serial"
        assert R._red_plan(dev, 1536, 16384, False, False, True)[0] == "cols"
        assert R._red_plan(dev, 4096, 4096, False, False, True)[0] == "serial"   # wide: see TUNE cols_max_m
        assert R._red_plan(dev, 4096, 4096, True, True)[:2] == ("vec", 1)
        assert R._red_plan(dev, 4096, 4096, True, False)[0] == "group"
    finally:
        R.set_tuning(**old)
    if dev.is_cpu:
        mode, G, chunk, wg, _, _ = R._red_plan(dev, 1, 1 << 20, True, True)
        assert (mode, wg) == ("vec", 1)
    _cmp(lambda t: t.sum(), x.numpy())


def test_float16(plan):
    from engine.runtime.device import default_device
    if not default_device().fp16:
        pytest.skip("device without cl_khr_fp16")
    a = _data((5, 3001)).astype(np.float16)
    for fn in (lambda t: t.sum(-1), lambda t: t.amax(0), lambda t: t.argmax(), lambda t: t.mean()):
        mine, ref = fn(engine.tensor(a)), fn(torch.from_numpy(a))
        np.testing.assert_allclose(mine.numpy().astype(np.float32), ref.numpy().astype(np.float32), rtol=2e-3,
                                   atol=2e-2)


def test_repeated_calls(plan):
    # back-to-back launches that share plans, partial buffers and (one-pass) row counters
    a, b = _data((200003,)), _data((5, 70001))
    ea, eb = engine.tensor(a), engine.tensor(b)
    want_a, want_b = torch.from_numpy(a).double().sum().item(), torch.from_numpy(b).double().sum(-1).numpy()
    outs = [(ea.sum(), eb.sum(-1)) for _ in range(20)]
    for sa, sb in outs:
        assert abs(sa.item() - want_a) <= 1e-5 * abs(a).sum()
        np.testing.assert_allclose(sb.numpy(), want_b, rtol=1e-4, atol=1e-3)
