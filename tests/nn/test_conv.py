"""Conv1d / Conv2d and F.conv1d / F.conv2d against PyTorch (identical weights): forward, grad
input, grad weight, grad bias over stride / padding / dilation / groups, plus init, repr,
errors, empty batch, strided inputs and a float64 finite-difference check."""
import math
import re

import numpy as np
import pytest
import torch

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.helpers import assert_close, check_op, fp64
from tests.nn.helpers import check_module, randn

X2 = (2, 4, 7, 6)      # odd sizes, reused so kernels compile once
X1 = (2, 4, 9)

CONV2D = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(2, 1), dilation=(2, 1)),
    dict(groups=2, padding=1),
    dict(out_channels=8, groups=4, padding=1),           # depthwise, multiplier 2
    dict(kernel_size=1),                                  # 1x1 fast path
    dict(kernel_size=(3, 1), stride=(1, 2)),
    dict(kernel_size=4, padding="same", dilation=2),      # asymmetric 'same'
    dict(padding="valid", bias=False),
    dict(padding=2, padding_mode="reflect"),
    dict(padding=(1, 2), padding_mode="replicate"),
    dict(padding=1, padding_mode="circular"),
]


def _kw(d, oc=6, k=3):
    d = dict(d)
    oc = d.pop("out_channels", oc)
    k = d.pop("kernel_size", k)
    return oc, k, d


@pytest.mark.parametrize("cfg", CONV2D, ids=[str(c) for c in CONV2D])
def test_conv2d_module(cfg):
    oc, k, kw = _kw(cfg)
    check_module(nn.Conv2d(4, oc, k, **kw), torch.nn.Conv2d(4, oc, k, **kw), randn(*X2), rtol=1e-4, atol=1e-4)


CONV1D = [
    dict(),
    dict(stride=2, padding=2, dilation=2),
    dict(out_channels=4, groups=4, padding=1),
    dict(kernel_size=1),
    dict(kernel_size=4, padding="same"),
    dict(padding=1, padding_mode="reflect", bias=False),
]


@pytest.mark.parametrize("cfg", CONV1D, ids=[str(c) for c in CONV1D])
def test_conv1d_module(cfg):
    oc, k, kw = _kw(cfg)
    check_module(nn.Conv1d(4, oc, k, **kw), torch.nn.Conv1d(4, oc, k, **kw), randn(*X1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(1, 4, 7, 6), (0, 4, 7, 6), (4, 7, 6)])
def test_conv2d_batch1_empty_unbatched(shape):
    e, t = check_module(nn.Conv2d(4, 6, 3, padding=1), torch.nn.Conv2d(4, 6, 3, padding=1), randn(*shape),
                        rtol=1e-4, atol=1e-4)
    assert tuple(e.shape) == tuple(t.shape)


@pytest.mark.parametrize("shape", [(0, 4, 9), (4, 9)])
def test_conv1d_empty_unbatched(shape):
    check_module(nn.Conv1d(4, 6, 3), torch.nn.Conv1d(4, 6, 3), randn(*shape), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(groups=2, dilation=2)])
def test_conv2d_functional_noncontiguous(kw):
    x, w, b = randn(*X2), randn(6, 4 // kw.get("groups", 1), 3, 3), randn(6)
    check_op(lambda T, x, w, b: T.nn.functional.conv2d(x, w, b, **kw), x, w, b, noncontig=True,
             rtol=1e-4, atol=1e-4)


def test_conv2d_permuted_view():
    """A channels-last tensor seen through permute (non-contiguous), gradient reaching the base."""
    xb = randn(2, 7, 6, 4)
    w = randn(6, 4, 3, 3)
    eb = engine.tensor(xb, requires_grad=True)
    tb = torch.tensor(xb, requires_grad=True)
    ew, tw = engine.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    eo = F.conv2d(eb.permute(0, 3, 1, 2), ew, padding=1)
    to = torch.nn.functional.conv2d(tb.permute(0, 3, 1, 2), tw, padding=1)
    assert_close(eo, to, 1e-4, 1e-4)
    g = randn(*to.shape)
    eo.backward(engine.tensor(g))
    to.backward(torch.tensor(g))
    assert_close(eb.grad, tb.grad, 1e-4, 1e-4)
    assert_close(ew.grad, tw.grad, 1e-4, 1e-4)


def test_conv1d_functional_noncontiguous():
    x, w = randn(*X1), randn(6, 4, 3)
    check_op(lambda T, x, w: T.nn.functional.conv1d(x, w, None, 2, 1), x, w, noncontig=True, rtol=1e-4, atol=1e-4)


def test_conv2d_no_grad_and_input_only_grad():
    m = nn.Conv2d(4, 6, 3)
    x = engine.tensor(randn(*X2))
    with engine.no_grad():
        y = m(x)
    assert y.grad_fn is None and not y.requires_grad
    m.weight.requires_grad_(False)
    m.bias.requires_grad_(False)
    xe = engine.tensor(randn(*X2), requires_grad=True)
    m(xe).sum().backward()
    assert xe.grad is not None and m.weight.grad is None


@pytest.mark.skipif(not fp64(), reason="device has no fp64")
def test_conv_gradcheck_fp64():
    x = engine.tensor(np.random.randn(1, 2, 5, 4), dtype=engine.float64, requires_grad=True)
    w = engine.tensor(np.random.randn(4, 1, 3, 2), dtype=engine.float64, requires_grad=True)
    b = engine.tensor(np.random.randn(4), dtype=engine.float64, requires_grad=True)
    assert engine.autograd.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2),
                                                              groups=2), (x, w, b))
    x1 = engine.tensor(np.random.randn(1, 2, 6), dtype=engine.float64, requires_grad=True)
    w1 = engine.tensor(np.random.randn(3, 2, 3), dtype=engine.float64, requires_grad=True)
    assert engine.autograd.gradcheck(lambda x, w: F.conv1d(x, w, padding=1, stride=2), (x1, w1))
    assert engine.autograd.gradgradcheck(lambda x, w: F.conv2d(x, w, padding=1, groups=2), (x, w))


def test_default_init_and_attributes():
    engine.manual_seed(0)
    m = nn.Conv2d(3, 8, (3, 2), groups=1)
    assert tuple(m.weight.shape) == (8, 3, 3, 2) and tuple(m.bias.shape) == (8,)
    bound = 1 / math.sqrt(3 * 3 * 2)
    w = m.weight.detach().numpy()
    b = m.bias.detach().numpy()
    assert np.abs(w).max() <= bound + 1e-7 and np.abs(w).max() > 0.7 * bound
    assert np.abs(b).max() <= bound + 1e-7
    assert abs(w.mean()) < 0.1 * bound and abs(w.std() - bound / math.sqrt(3)) < 0.2 * bound
    assert m.kernel_size == (3, 2) and m.stride == (1, 1) and m.padding == (0, 0) and m.dilation == (1, 1)
    assert m.groups == 1 and m.padding_mode == "zeros" and m.transposed is False and m.output_padding == (0, 0)
    d = nn.Conv1d(4, 8, 3, groups=4, bias=False)
    assert tuple(d.weight.shape) == (8, 1, 3) and d.bias is None
    assert [n for n, _ in nn.Conv2d(2, 2, 1).named_parameters()] == ["weight", "bias"]


@pytest.mark.parametrize("args,kw", [
    ((1, 8, 3), dict(padding=1)),
    ((4, 6, (3, 2)), dict(stride=2, groups=2, bias=False)),
    ((4, 6, 3), dict(padding="same", dilation=2, padding_mode="reflect")),
    ((4, 6, 3), dict(padding="valid")),
])
def test_conv2d_repr(args, kw):
    assert repr(nn.Conv2d(*args, **kw)) == repr(torch.nn.Conv2d(*args, **kw))


def test_conv1d_repr():
    for kw in [dict(), dict(padding=2, dilation=2, groups=2, bias=False, padding_mode="circular")]:
        assert repr(nn.Conv1d(4, 6, 3, **kw)) == repr(torch.nn.Conv1d(4, 6, 3, **kw))


def _norm(msg):
    """Python set reprs in messages ({'zeros', 'reflect', ...}) have no fixed order: sort them."""
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", msg)


def _same_error(fe, ft):
    with pytest.raises(Exception) as et:
        ft()
    with pytest.raises(et.type) as ee:
        fe()
    assert _norm(str(ee.value)) == _norm(str(et.value))


@pytest.mark.parametrize("case", [
    lambda M: M.nn.functional.conv2d(M.zeros(1, 4, 5, 5), M.zeros(8, 3, 3, 3)),        # wrong channels
    lambda M: M.nn.functional.conv2d(M.zeros(1, 3, 2, 2), M.zeros(8, 3, 3, 3)),        # kernel too large
    lambda M: M.nn.functional.conv1d(M.zeros(1, 4, 2), M.zeros(8, 4, 3)),
    lambda M: M.nn.functional.conv2d(M.zeros(1, 3, 5, 5), M.zeros(8, 3, 3, 3), padding="foo"),
    lambda M: M.nn.functional.conv2d(M.zeros(1, 3, 5, 5), M.zeros(8, 3, 3, 3), padding="same", stride=2),
    lambda M: M.nn.functional.conv2d(M.zeros(3, 5), M.zeros(8, 3, 3, 3)),
    lambda M: M.nn.functional.conv2d(M.zeros(1, 4, 5, 5), M.zeros(8, 2, 3, 3), groups=3),
    lambda M: M.nn.functional.conv2d(M.zeros(1, 4, 5, 5), M.zeros(8, 2, 3, 3), M.zeros(5), groups=2),
    lambda M: M.nn.functional.conv2d(M.zeros(1, 4, 5, 5), M.zeros(8, 4, 3, 3), stride=0),
    lambda M: M.nn.functional.conv2d(M.zeros(1, 4, 5, 5), M.zeros(8, 4, 3, 3), padding=-1),
    lambda M: M.nn.functional.conv1d(M.zeros(1, 4, 5), M.zeros(8, 4, 3), stride=[1, 1]),
    lambda M: M.nn.Conv2d(3, 4, 3, padding="foo"),
    lambda M: M.nn.Conv2d(3, 4, 3, groups=2),
    lambda M: M.nn.Conv2d(4, 3, 3, groups=2),
    lambda M: M.nn.Conv2d(4, 4, 3, groups=0),
    lambda M: M.nn.Conv2d(4, 4, 3, stride=2, padding="same"),
    lambda M: M.nn.Conv1d(4, 4, 3, padding_mode="foo"),
])
def test_conv_errors(case):
    _same_error(lambda: case(engine), lambda: case(torch))


def test_conv_module_in_sequential_trains():
    """A small CNN (digits-like 8x8 input) learns: loss goes down with SGD."""
    engine.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 3)) if hasattr(nn, "ReLU") and hasattr(nn, "Flatten") and hasattr(nn, "Linear") \
        else None
    if net is None:
        pytest.skip("ReLU/Flatten/Linear modules not available yet")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 32)
    xn = rng.standard_normal((32, 1, 8, 8)).astype(np.float32)
    xn[np.arange(32), 0, y * 2 + 1, :] += 3.0
    x = engine.tensor(xn)
    yt = engine.tensor(y)
    params = list(net.parameters())
    losses = []
    for _ in range(30):
        out = net(x)
        loss = F.cross_entropy(out, yt) if hasattr(F, "cross_entropy") else None
        if loss is None:
            pytest.skip("cross_entropy not available yet")
        for p in params:
            p.grad = None
        loss.backward()
        with engine.no_grad():
            for p in params:
                p -= 0.2 * p.grad
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


CONVT2D = [
    dict(),
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(2, 1), padding=(0, 1), dilation=(1, 2), groups=2),
    dict(out_channels=4, groups=4, stride=2, bias=False),
]


@pytest.mark.parametrize("cfg", CONVT2D, ids=[str(c) for c in CONVT2D])
def test_conv_transpose2d_module(cfg):
    oc, k, kw = _kw(cfg)
    check_module(nn.ConvTranspose2d(4, oc, k, **kw), torch.nn.ConvTranspose2d(4, oc, k, **kw), randn(*X2),
                 rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(0, 4, 9), (4, 9), (2, 4, 9)])
def test_conv_transpose1d_module(shape):
    kw = dict(stride=3, padding=1, output_padding=2, dilation=1)
    check_module(nn.ConvTranspose1d(4, 6, 3, **kw), torch.nn.ConvTranspose1d(4, 6, 3, **kw), randn(*shape),
                 rtol=1e-4, atol=1e-4)


def test_conv_transpose2d_output_size_and_repr():
    e, t = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), torch.nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)
    assert repr(e) == repr(t)
    assert tuple(e.weight.shape) == (4, 3, 3, 3)
    check_module(_OutSize(e, (14, 14)), _OutSize(t, (14, 14)), randn(*X2[:2], 6, 6), rtol=1e-4, atol=1e-4)


class _OutSize:
    """Calls conv(x, output_size=...) for either library (plain wrapper, shares the parameters)."""

    def __init__(self, conv, size):
        self.conv, self.size = [conv], size

    def __call__(self, x):
        return self.conv[0](x, output_size=self.size)

    def named_parameters(self):
        return self.conv[0].named_parameters()

    def named_buffers(self):
        return self.conv[0].named_buffers()

    def state_dict(self):
        return self.conv[0].state_dict()

    def load_state_dict(self, sd):
        return self.conv[0].load_state_dict(sd)


@pytest.mark.parametrize("kw", [dict(kernel_size=3), dict(kernel_size=(2, 3), dilation=(2, 1), padding=1, stride=2)])
def test_unfold_fold(kw):
    check_module(nn.Unfold(**kw), torch.nn.Unfold(**kw), randn(*X2))
    L = torch.nn.Unfold(**kw)(torch.zeros(X2)).shape
    check_module(nn.Fold(X2[2:], **kw), torch.nn.Fold(X2[2:], **kw), randn(*L))
    assert repr(nn.Fold(X2[2:], **kw)) == repr(torch.nn.Fold(X2[2:], **kw))


@pytest.mark.parametrize("case", [
    lambda M: M.nn.functional.conv_transpose2d(M.zeros(1, 4, 5, 5), M.zeros(3, 2, 3, 3)),
    lambda M: M.nn.functional.conv_transpose2d(M.zeros(1, 4, 5, 5), M.zeros(4, 2, 3, 3), output_padding=1),
    lambda M: M.nn.functional.unfold(M.zeros(1, 4, 5, 5), 6),
    lambda M: M.nn.functional.fold(M.zeros(1, 4 * 9, 10), (5, 5), 3),
    lambda M: M.nn.ConvTranspose2d(4, 4, 3, padding_mode="reflect"),
])
def test_conv_transpose_fold_errors(case):
    _same_error(lambda: case(engine), lambda: case(torch))


@pytest.mark.parametrize("case", [
    lambda M: M.nn.functional.conv2d(M.zeros(1, 3, 5, 5, dtype=M.float64), M.zeros(8, 3, 3, 3)),
    lambda M: M.nn.functional.conv2d(M.zeros(1, 3, 5, 5), M.zeros(8, 3, 3, 3), M.zeros(8, dtype=M.float64)),
    lambda M: M.nn.functional.conv2d(M.zeros(1, 3, 5, 5), M.zeros(8, 3, 3, 3, dtype=M.float64)),
])
def test_conv_dtype_errors(case):
    if not fp64():
        pytest.skip("device has no fp64")
    _same_error(lambda: case(engine), lambda: case(torch))


def test_grad_fn_names():
    x = engine.tensor(randn(*X2), requires_grad=True)
    assert F.conv2d(x, engine.tensor(randn(6, 4, 3, 3))).grad_fn.name() == "ConvolutionBackward0"
    assert engine.nn.functional.max_pool2d(x, 2).grad_fn.name() == "MaxPool2DWithIndicesBackward0"
    assert engine.nn.functional.avg_pool2d(x, 2).grad_fn.name() == "AvgPool2DBackward0"
