"""Losses vs torch: forward, input grads, reductions, weights, ignore_index, label smoothing, errors."""
import numpy as np
import pytest
import torch

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.helpers import assert_close
from tests.nn.helpers import check_functional, check_module, randn, rng

RED = ["mean", "sum", "none"]


def _targets(shape, C, ignore=None, frac=0.3):
    t = rng.integers(0, C, size=shape).astype(np.int64)
    if ignore is not None:
        t[rng.random(shape) < frac] = ignore
    return t


def _w(C):
    return rng.uniform(0.2, 2.0, size=C).astype(np.float32)


@pytest.mark.parametrize("reduction", RED)
def test_cross_entropy_2d(reduction):
    x, t = randn(6, 5), _targets((6,), 5)
    check_module(nn.CrossEntropyLoss(reduction=reduction), torch.nn.CrossEntropyLoss(reduction=reduction), x, t)


@pytest.mark.parametrize("reduction", RED)
def test_cross_entropy_weight_ignore_smoothing(reduction):
    w = _w(5)
    x, t = randn(6, 5), _targets((6,), 5, ignore=-100)
    t[0] = 1
    for ls in (0.0, 0.2):
        ours = nn.CrossEntropyLoss(weight=engine.tensor(w), reduction=reduction, label_smoothing=ls)
        theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(w), reduction=reduction, label_smoothing=ls)
        check_module(ours, theirs, x, t)
    # custom ignore_index, no weight, smoothing
    t2 = _targets((6,), 5, ignore=3)
    check_functional(lambda a, b: F.cross_entropy(a, b, ignore_index=3, label_smoothing=0.1, reduction=reduction),
                     lambda a, b: torch.nn.functional.cross_entropy(a, b, ignore_index=3, label_smoothing=0.1,
                                                                    reduction=reduction), x, t2)


@pytest.mark.parametrize("reduction", RED)
def test_cross_entropy_kdim(reduction):
    w = _w(5)
    x, t = randn(2, 5, 3, 4), _targets((2, 3, 4), 5, ignore=-100)
    check_module(nn.CrossEntropyLoss(weight=engine.tensor(w), reduction=reduction, label_smoothing=0.1),
                 torch.nn.CrossEntropyLoss(weight=torch.tensor(w), reduction=reduction, label_smoothing=0.1),
                 x, t)
    x, t = randn(2, 5, 3), _targets((2, 3), 5)
    check_module(nn.CrossEntropyLoss(reduction=reduction), torch.nn.CrossEntropyLoss(reduction=reduction), x, t)


@pytest.mark.parametrize("reduction", RED)
def test_cross_entropy_probabilities(reduction):
    w = _w(5)
    x = randn(6, 5)
    p = torch.tensor(randn(6, 5)).softmax(1).numpy()
    for ls in (0.0, 0.25):
        check_module(nn.CrossEntropyLoss(weight=engine.tensor(w), reduction=reduction, label_smoothing=ls),
                     torch.nn.CrossEntropyLoss(weight=torch.tensor(w), reduction=reduction, label_smoothing=ls),
                     x, p)
    x3, p3 = randn(2, 5, 3), torch.tensor(randn(2, 5, 3)).softmax(1).numpy()
    check_module(nn.CrossEntropyLoss(reduction=reduction), torch.nn.CrossEntropyLoss(reduction=reduction), x3, p3)


def test_cross_entropy_unbatched_and_empty():
    check_functional(F.cross_entropy, torch.nn.functional.cross_entropy, randn(5), np.array(2))
    check_functional(F.cross_entropy, torch.nn.functional.cross_entropy, randn(5), randn(5))
    x, t = np.zeros((0, 5), np.float32), np.zeros((0,), np.int64)
    for red in RED:
        check_functional(F.cross_entropy, torch.nn.functional.cross_entropy, x, t, reduction=red)
    # batch of one
    check_functional(F.cross_entropy, torch.nn.functional.cross_entropy, randn(1, 5), np.array([4]))


def test_cross_entropy_all_ignored():
    x, t = randn(3, 5), np.full((3,), -100, np.int64)
    for red in RED:
        check_functional(F.cross_entropy, torch.nn.functional.cross_entropy, x, t, reduction=red)
        check_functional(F.cross_entropy, torch.nn.functional.cross_entropy, x, t, reduction=red,
                         label_smoothing=0.1)


def test_cross_entropy_noncontiguous():
    xt = randn(5, 6)
    x_e = engine.tensor(xt).t().requires_grad_()
    x_t = torch.tensor(xt).t().requires_grad_()
    t = _targets((6,), 5)
    a = F.cross_entropy(x_e, engine.tensor(t), label_smoothing=0.1)
    b = torch.nn.functional.cross_entropy(x_t, torch.tensor(t), label_smoothing=0.1)
    assert_close(a, b, 1e-5, 1e-6)
    a.backward()
    b.backward()
    assert_close(x_e.grad, x_t.grad, 1e-5, 1e-6)


def test_cross_entropy_grad_fn_and_uint8_target():
    x = engine.tensor(randn(4, 3), requires_grad=True)
    t = engine.tensor(np.array([0, 1, 2, 1], np.uint8))
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)
    assert_close(F.cross_entropy(x, t), torch.nn.functional.cross_entropy(xt, torch.tensor(t.numpy())))


def _errors(fn_e, fn_t):
    with pytest.raises(Exception) as et:
        fn_t()
    with pytest.raises(type(et.value)) as ee:
        r = fn_e()
        if isinstance(r, engine.Tensor):
            r.tolist()
    return str(ee.value), str(et.value)


def test_cross_entropy_errors():
    x = randn(3, 5)
    E, T = engine.tensor, torch.tensor
    cases = [
        (x, np.array([0, 1, 7])),               # IndexError out of bounds
        (x, np.array([0, 1, -1])),
        (x, np.array([0, 1, 2], np.int32)),     # dtype
        (x, np.array([0, 1])),                  # batch size
        (randn(2, 5, 4), np.zeros((2, 3), np.int64)),
        (randn(2, 5, 4, 3), np.zeros((2, 4), np.int64)),
        (x, randn(3, 4)),
    ]
    for a, b in cases:
        me, mt = _errors(lambda: F.cross_entropy(E(a), E(b)),
                         lambda: torch.nn.functional.cross_entropy(T(a), T(b)))
        if "Expected" in mt:
            assert me == mt
    me, mt = _errors(lambda: F.cross_entropy(E(x), E(np.array([0, 1, 2])), weight=engine.ones(4)),
                     lambda: torch.nn.functional.cross_entropy(T(x), T(np.array([0, 1, 2])), weight=torch.ones(4)))
    assert me == mt
    me, mt = _errors(lambda: F.cross_entropy(E(x), E(np.array([0, 1, 2])), reduction="foo"),
                     lambda: torch.nn.functional.cross_entropy(T(x), T(np.array([0, 1, 2])), reduction="foo"))
    assert me == mt
    # nll_loss out of range
    _errors(lambda: F.nll_loss(E(x), E(np.array([0, 5, 1]))),
            lambda: torch.nn.functional.nll_loss(T(x), T(np.array([0, 5, 1]))))


@pytest.mark.parametrize("reduction", RED)
def test_nll_loss(reduction):
    w = _w(4)
    lp = torch.tensor(randn(5, 4)).log_softmax(1).numpy()
    t = _targets((5,), 4, ignore=-100)
    t[0] = 2
    check_module(nn.NLLLoss(weight=engine.tensor(w), reduction=reduction),
                 torch.nn.NLLLoss(weight=torch.tensor(w), reduction=reduction), lp, t)
    check_module(nn.NLLLoss(ignore_index=1, reduction=reduction),
                 torch.nn.NLLLoss(ignore_index=1, reduction=reduction), randn(2, 4, 3), _targets((2, 3), 4))


@pytest.mark.parametrize("reduction", RED)
def test_regression_losses(reduction):
    a, b = randn(4, 3), randn(4, 3)
    for ours, theirs in ((nn.MSELoss, torch.nn.MSELoss), (nn.L1Loss, torch.nn.L1Loss),
                         (nn.SmoothL1Loss, torch.nn.SmoothL1Loss), (nn.HuberLoss, torch.nn.HuberLoss)):
        check_module(ours(reduction=reduction), theirs(reduction=reduction), a, b)
    check_module(nn.SmoothL1Loss(reduction=reduction, beta=0.5), torch.nn.SmoothL1Loss(reduction=reduction,
                                                                                         beta=0.5), a, b)
    check_module(nn.HuberLoss(reduction=reduction, delta=0.7), torch.nn.HuberLoss(reduction=reduction,
                                                                                    delta=0.7), a, b)


def test_mse_broadcast_warning_and_noncontig():
    a, b = randn(4, 3), randn(3)
    with pytest.warns(UserWarning):
        check_functional(F.mse_loss, torch.nn.functional.mse_loss, a, b)
    x = engine.tensor(randn(3, 4)).t().requires_grad_()
    xt = torch.tensor(x.detach().numpy()).requires_grad_()
    y = randn(4, 3)
    assert_close(F.l1_loss(x, engine.tensor(y)), torch.nn.functional.l1_loss(xt, torch.tensor(y)))


@pytest.mark.parametrize("reduction", RED)
def test_kl_div(reduction):
    lp = torch.tensor(randn(4, 5)).log_softmax(1).numpy()
    p = torch.tensor(randn(4, 5)).softmax(1).numpy()
    p[0, 0] = 0
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_module(nn.KLDivLoss(reduction=reduction), torch.nn.KLDivLoss(reduction=reduction), lp, (p, False))
        check_module(nn.KLDivLoss(reduction="batchmean", log_target=True),
                     torch.nn.KLDivLoss(reduction="batchmean", log_target=True), lp, np.log(p + 1e-3))


@pytest.mark.parametrize("reduction", RED)
def test_bce(reduction):
    x = rng.uniform(0.05, 0.95, size=(4, 3)).astype(np.float32)
    t = rng.uniform(0, 1, size=(4, 3)).astype(np.float32)
    w = _w(3)
    check_module(nn.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction), x, t)
    check_module(nn.BCELoss(weight=engine.tensor(w), reduction=reduction),
                 torch.nn.BCELoss(weight=torch.tensor(w), reduction=reduction), x, t)
    # saturated inputs: log clamped at -100
    x2 = np.array([0.0, 1.0, 0.5], np.float32)
    t2 = np.array([1.0, 0.0, 1.0], np.float32)
    check_functional(F.binary_cross_entropy, torch.nn.functional.binary_cross_entropy, (x2, False), t2,
                     reduction=reduction)


@pytest.mark.parametrize("reduction", RED)
def test_bce_with_logits(reduction):
    x, t = randn(4, 3, scale=3.0), rng.uniform(0, 1, size=(4, 3)).astype(np.float32)
    x[0, 0] = 0.0
    w, pw = _w(3), _w(3)
    check_module(nn.BCEWithLogitsLoss(reduction=reduction), torch.nn.BCEWithLogitsLoss(reduction=reduction), x, t)
    check_module(nn.BCEWithLogitsLoss(weight=engine.tensor(w), pos_weight=engine.tensor(pw), reduction=reduction),
                 torch.nn.BCEWithLogitsLoss(weight=torch.tensor(w), pos_weight=torch.tensor(pw),
                                            reduction=reduction), x, t)
    # weight and pos_weight as tensor arguments (torch: not differentiable w.r.t. them)
    check_functional(lambda a, b, c, d: F.binary_cross_entropy_with_logits(a, b, c, pos_weight=d),
                     lambda a, b, c, d: torch.nn.functional.binary_cross_entropy_with_logits(a, b, c, pos_weight=d),
                     x, t, (w, False), (pw, False))


def test_bce_errors():
    E, T = engine.tensor, torch.tensor
    a, b = rng.uniform(0.1, 0.9, size=3).astype(np.float32), rng.uniform(0.1, 0.9, size=(3, 1)).astype(np.float32)
    me, mt = _errors(lambda: F.binary_cross_entropy(E(a), E(b)), lambda: torch.nn.functional.binary_cross_entropy(
        T(a), T(b)))
    assert me == mt
    me, mt = _errors(lambda: F.binary_cross_entropy_with_logits(E(a), E(b)),
                     lambda: torch.nn.functional.binary_cross_entropy_with_logits(T(a), T(b)))
    assert me == mt


def test_loss_module_buffers_and_repr():
    w = engine.ones(3)
    m = nn.CrossEntropyLoss(weight=w)
    assert "weight" in dict(m.named_buffers())
    assert m.ignore_index == -100 and m.label_smoothing == 0.0 and m.reduction == "mean"
    with pytest.warns(UserWarning):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    m = nn.BCEWithLogitsLoss(pos_weight=engine.ones(3))
    assert set(dict(m.named_buffers())) == {"pos_weight"}


def test_cross_entropy_double_backward_and_long_rows():
    x = randn(3, 7)
    t = np.array([1, 6, -100])
    xe, xt = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ge = engine.autograd.grad(F.cross_entropy(xe, engine.tensor(t)), xe, create_graph=True)[0]
    gt = torch.autograd.grad(torch.nn.functional.cross_entropy(xt, torch.tensor(t)), xt, create_graph=True)[0]
    assert_close(ge, gt, 1e-5, 1e-6)
    assert_close(engine.autograd.grad((ge * ge).sum(), xe)[0], torch.autograd.grad((gt * gt).sum(), xt)[0],
                 1e-4, 1e-6)
    # a GPT-like vocabulary row (work-group reductions) with a K-dim target
    check_functional(F.cross_entropy, torch.nn.functional.cross_entropy, randn(2, 300, 3, scale=4.0),
                     _targets((2, 3), 300))


def test_cross_entropy_target_check_memo():
    """An unchanged target found in range skips the flag read; a changed one is checked again."""
    import engine.nn.functional as EF
    x = engine.randn(4, 3)
    t = engine.tensor([0, 1, 2, 1])
    EF.cross_entropy(x, t)
    with engine.profiler.profile() as prof:
        EF.cross_entropy(x, t)
    assert not [r for r in prof.records if r["name"] == "memcpy_dtoh"]
    t[1] = 7
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        EF.cross_entropy(x, t)
