"""Pooling modules and functionals against PyTorch: forward, indices, grad input (overlapping
windows, ties, ceil_mode, count_include_pad, divisor_override, adaptive windows), 1-D and 2-D,
empty batch, unbatched and strided inputs, repr and errors."""
import numpy as np
import pytest
import torch

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.helpers import assert_close, check_op, fp64
from tests.nn.helpers import check_module, randn

X2 = (2, 3, 7, 6)
X1 = (2, 3, 9)

MAX2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),                    # overlapping windows
    dict(kernel_size=3, stride=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1)),
    dict(kernel_size=2, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, dilation=2),
]


@pytest.mark.parametrize("kw", MAX2D, ids=[str(k) for k in MAX2D])
def test_maxpool2d(kw):
    check_module(nn.MaxPool2d(**kw), torch.nn.MaxPool2d(**kw), randn(*X2))
    e, t = check_module(nn.MaxPool2d(return_indices=True, **kw), torch.nn.MaxPool2d(return_indices=True, **kw),
                        randn(*X2))
    assert_close(e[1], t[1], msg="indices")


def test_maxpool2d_ties_overlapping():
    """Integer-valued input: many ties inside overlapping windows, as PyTorch picks the first max."""
    x = np.random.default_rng(3).integers(0, 3, X2).astype(np.float32)
    kw = dict(kernel_size=3, stride=1, padding=1)
    e, t = check_module(nn.MaxPool2d(return_indices=True, **kw), torch.nn.MaxPool2d(return_indices=True, **kw), x)
    assert_close(e[1], t[1], msg="indices")


def test_maxpool2d_nan():
    x = randn(*X2)
    x[0, 0, 1, 1] = np.nan
    e = F.max_pool2d(engine.tensor(x), 2)
    t = torch.nn.functional.max_pool2d(torch.tensor(x), 2)
    assert_close(e, t)


MAX1D = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)]


@pytest.mark.parametrize("kw", MAX1D, ids=[str(k) for k in MAX1D])
def test_maxpool1d(kw):
    check_module(nn.MaxPool1d(**kw), torch.nn.MaxPool1d(**kw), randn(*X1))
    e, t = check_module(nn.MaxPool1d(return_indices=True, **kw), torch.nn.MaxPool1d(return_indices=True, **kw),
                        randn(*X1))
    assert_close(e[1], t[1], msg="indices")


AVG2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1), divisor_override=5),
    dict(kernel_size=2, stride=1),
]


@pytest.mark.parametrize("kw", AVG2D, ids=[str(k) for k in AVG2D])
def test_avgpool2d(kw):
    check_module(nn.AvgPool2d(**kw), torch.nn.AvgPool2d(**kw), randn(*X2))


AVG1D = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
         dict(kernel_size=3, stride=1, padding=1)]


@pytest.mark.parametrize("kw", AVG1D, ids=[str(k) for k in AVG1D])
def test_avgpool1d(kw):
    check_module(nn.AvgPool1d(**kw), torch.nn.AvgPool1d(**kw), randn(*X1))


@pytest.mark.parametrize("osz", [1, (1, 1), (3, 4), (None, 3), (5, 2), (10, 9), 7])
def test_adaptive_avgpool2d(osz):
    check_module(nn.AdaptiveAvgPool2d(osz), torch.nn.AdaptiveAvgPool2d(osz), randn(*X2))


@pytest.mark.parametrize("osz", [1, (3, 4), (None, 3), (10, 9)])
def test_adaptive_maxpool2d(osz):
    check_module(nn.AdaptiveMaxPool2d(osz), torch.nn.AdaptiveMaxPool2d(osz), randn(*X2))
    e, t = check_module(nn.AdaptiveMaxPool2d(osz, return_indices=True),
                        torch.nn.AdaptiveMaxPool2d(osz, return_indices=True), randn(*X2))
    assert_close(e[1], t[1], msg="indices")


@pytest.mark.parametrize("osz", [1, 4, 12])
def test_adaptive_pool1d(osz):
    check_module(nn.AdaptiveAvgPool1d(osz), torch.nn.AdaptiveAvgPool1d(osz), randn(*X1))
    check_module(nn.AdaptiveMaxPool1d(osz), torch.nn.AdaptiveMaxPool1d(osz), randn(*X1))


@pytest.mark.parametrize("shape", [(1, 3, 7, 6), (0, 3, 7, 6), (3, 7, 6)])
def test_pool2d_batch1_empty_unbatched(shape):
    x = randn(*shape)
    check_module(nn.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1), x)
    check_module(nn.AvgPool2d(3, 2, 1), torch.nn.AvgPool2d(3, 2, 1), x)
    check_module(nn.AdaptiveAvgPool2d((2, 3)), torch.nn.AdaptiveAvgPool2d((2, 3)), x)
    check_module(nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1), x)


@pytest.mark.parametrize("shape", [(0, 3, 9), (3, 9)])
def test_pool1d_empty_unbatched(shape):
    x = randn(*shape)
    check_module(nn.MaxPool1d(3, 2, 1), torch.nn.MaxPool1d(3, 2, 1), x)
    check_module(nn.AvgPool1d(3, 2, 1), torch.nn.AvgPool1d(3, 2, 1), x)
    check_module(nn.AdaptiveAvgPool1d(4), torch.nn.AdaptiveAvgPool1d(4), x)


@pytest.mark.parametrize("fn,kw", [
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("adaptive_avg_pool2d", dict(output_size=(3, 4))),
    ("adaptive_avg_pool2d", dict(output_size=1)),
    ("adaptive_max_pool2d", dict(output_size=(3, 4))),
    ("max_pool1d", dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool1d", dict(kernel_size=3, stride=2)),
])
def test_pool_functional_noncontiguous(fn, kw):
    x = randn(*(X2 if "2d" in fn else X1))
    check_op(lambda T, x: getattr(T.nn.functional, fn)(x, **kw), x, noncontig=True)


def test_maxpool_permuted_view():
    xb = randn(2, 7, 6, 3)
    eb, tb = engine.tensor(xb, requires_grad=True), torch.tensor(xb, requires_grad=True)
    eo = F.max_pool2d(eb.permute(0, 3, 1, 2), 3, 2, 1)
    to = torch.nn.functional.max_pool2d(tb.permute(0, 3, 1, 2), 3, 2, 1)
    assert_close(eo, to)
    g = randn(*to.shape)
    eo.backward(engine.tensor(g))
    to.backward(torch.tensor(g))
    assert_close(eb.grad, tb.grad)


@pytest.mark.skipif(not fp64(), reason="device has no fp64")
def test_pool_gradcheck_fp64():
    x = engine.tensor(np.random.randn(1, 2, 5, 4), dtype=engine.float64, requires_grad=True)
    gc = engine.autograd.gradcheck
    assert gc(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), (x,))
    assert gc(lambda x: F.max_pool2d(x, 3, 1, 1), (x,))
    assert gc(lambda x: F.adaptive_avg_pool2d(x, (3, 3)), (x,))
    # composed with a square so the first derivative depends on x (pools are piecewise linear)
    assert engine.autograd.gradgradcheck(lambda x: F.avg_pool2d(x * x, 2, 1, 1, count_include_pad=False), (x,))
    assert engine.autograd.gradgradcheck(lambda x: F.max_pool2d(x * x, 2, 1), (x,))
    assert engine.autograd.gradgradcheck(lambda x: F.adaptive_avg_pool2d(x * x, (3, 2)), (x,))


def test_pool_repr():
    pairs = [(nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
             (nn.MaxPool2d((3, 2), 1, 1, ceil_mode=True), torch.nn.MaxPool2d((3, 2), 1, 1, ceil_mode=True)),
             (nn.AvgPool2d(3, 2, 1), torch.nn.AvgPool2d(3, 2, 1)),
             (nn.AdaptiveAvgPool2d((None, 3)), torch.nn.AdaptiveAvgPool2d((None, 3))),
             (nn.MaxPool1d(2), torch.nn.MaxPool1d(2)),
             (nn.AvgPool1d(2), torch.nn.AvgPool1d(2)),
             (nn.AdaptiveAvgPool1d(3), torch.nn.AdaptiveAvgPool1d(3)),
             (nn.AdaptiveMaxPool2d(2), torch.nn.AdaptiveMaxPool2d(2))]
    for e, t in pairs:
        assert repr(e) == repr(t)
    m = nn.MaxPool2d(3)
    assert m.stride == 3 and m.padding == 0 and m.dilation == 1 and m.ceil_mode is False


def _same_error(fe, ft):
    with pytest.raises(Exception) as et:
        ft()
    with pytest.raises(et.type) as ee:
        fe()
    assert str(ee.value) == str(et.value)


@pytest.mark.parametrize("case", [
    lambda M: M.nn.functional.max_pool2d(M.zeros(1, 3, 2, 2), 3),
    lambda M: M.nn.functional.max_pool2d(M.zeros(1, 3, 5, 5), 2, padding=2),
    lambda M: M.nn.functional.max_pool2d(M.zeros(3, 5), 2),
    lambda M: M.nn.functional.avg_pool2d(M.zeros(1, 3, 2, 2), 3),
    lambda M: M.nn.functional.avg_pool2d(M.zeros(1, 3, 5, 5), 2, padding=2),
    lambda M: M.nn.functional.max_pool1d(M.zeros(1, 3, 2), 3),
    lambda M: M.nn.functional.adaptive_avg_pool2d(M.zeros(3, 5), 2),
    lambda M: M.nn.functional.adaptive_avg_pool2d(M.zeros(1, 3, 0, 5), 2),
])
def test_pool_errors(case):
    _same_error(lambda: case(engine), lambda: case(torch))


def test_pool_integer_input():
    x = np.random.default_rng(5).integers(-50, 50, X2).astype(np.int64)
    for fn, kw in [("max_pool2d", dict(kernel_size=3, stride=2, padding=1)), ("avg_pool2d", dict(kernel_size=2)),
                   ("avg_pool1d", dict(kernel_size=3))]:
        if fn.endswith("1d"):
            x = x[0]
        e = getattr(F, fn)(engine.tensor(x), **kw)
        t = getattr(torch.nn.functional, fn)(torch.tensor(x), **kw)
        assert_close(e, t, msg=fn)


@pytest.mark.parametrize("case", [
    lambda M: M.nn.functional.adaptive_max_pool2d(M.ones(1, 3, 5, 5, dtype=M.int64), 2),
    lambda M: M.nn.functional.adaptive_avg_pool1d(M.ones(1, 3, 5, dtype=M.int64), 2),
    lambda M: M.nn.functional.max_pool1d(M.ones(1, 3, 5, dtype=M.int64), 2),
    lambda M: M.nn.functional.max_pool2d(M.ones(1, 3, 5, 5, dtype=M.bool), 2),
])
def test_pool_dtype_errors(case):
    _same_error(lambda: case(engine), lambda: case(torch))


def test_lppool():
    x = np.abs(randn(*X2)) + 0.1
    check_module(nn.LPPool2d(2, 3, stride=2), torch.nn.LPPool2d(2, 3, stride=2), x, rtol=1e-4, atol=1e-5)
    check_module(nn.LPPool1d(3, 2), torch.nn.LPPool1d(3, 2), x[0], rtol=1e-4, atol=1e-5)
    assert repr(nn.LPPool2d(2, 3, stride=2)) == repr(torch.nn.LPPool2d(2, 3, stride=2))
