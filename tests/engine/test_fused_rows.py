"""The fused row kernels of runtime/rows.py against PyTorch: softmax / log_softmax forward and
backward, cross-entropy over class indices, layer norm (forward, dx, dweight/dbias).

Every test runs twice: with the device's own layouts, and with the GPU layouts forced onto this
device (online max/sum statistics, one work-group per row, aligned 4-wide loads, blocked column
sums), so both code paths are checked on PoCL.  Kernel counts are checked through the profiler."""
import numpy as np
import pytest
import torch

import engine
from engine.runtime.device import default_device
import engine.nn.functional as F
from engine.runtime import rows as _rows
from .helpers import check_op, fp64, kernel_names, rand


@pytest.fixture(params=["native", "gpu_layouts"], autouse=True)
def paths(request):
    old = _rows.force_gpu_paths(request.param == "gpu_layouts")
    yield request.param
    _rows.force_gpu_paths(old)


def _kernels(fn):
    """Kernel launches (names) made by fn()."""
    return kernel_names(fn)[1]


def _id(v):
    return str(v).replace(" ", "")


# ---- softmax / log_softmax -------------------------------------------------------------------------
SM_CASES = [((4, 7), 1), ((3, 5000), 1), ((3, 5000), 0), ((2, 4099), -1), ((64, 300), 1), ((1, 1), 1),
            ((5, 1), 1), ((1, 5), 0), ((0, 5), 1), ((5, 0), 1), ((2, 3, 4), 0), ((2, 3, 4), 1), ((7,), 0), ((), 0)]


@pytest.mark.parametrize("noncontig", [False, True])
@pytest.mark.parametrize("shape,dim", SM_CASES, ids=_id)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_fwd_bwd(op, shape, dim, noncontig):
    x = rand(shape, low=-6.0, high=6.0)
    check_op(lambda T, t: getattr(T, op)(t, dim), x, noncontig=noncontig, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_float64(op):
    if not fp64():
        pytest.skip("no float64")
    check_op(lambda T, t: getattr(T, op)(t, 1), rand((3, 1030), np.float64))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_offset_view_and_expanded_grad(op):
    # a row start that is not 16-byte aligned (scalar head), and a stride-0 upstream gradient
    base = rand((2 * 1031 + 1,))
    xe = engine.tensor(base)[1:].reshape(2, 1031).requires_grad_(True)
    xt = torch.tensor(base)[1:].reshape(2, 1031).requires_grad_(True)
    ye, yt = getattr(xe, op)(1), getattr(xt, op)(1)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    ye.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_backward_is_one_kernel(op):
    x = engine.randn(8, 300, requires_grad=True)
    y = getattr(x, op)(1)
    g = engine.randn(8, 300)
    names = _kernels(lambda: y.backward(g))
    assert names == [f"{op}_backward"], names


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_double_backward(op):
    x = rand((3, 40))
    xe = engine.tensor(x).requires_grad_(True)
    xt = torch.tensor(x).requires_grad_(True)
    w = rand((3, 40))
    ge, = engine.autograd.grad((getattr(xe, op)(1) * engine.tensor(w)).sum(), [xe], create_graph=True)
    gt, = torch.autograd.grad((getattr(xt, op)(1) * torch.tensor(w)).sum(), [xt], create_graph=True)
    np.testing.assert_allclose(ge.detach().numpy(), gt.detach().numpy(), rtol=1e-5, atol=1e-6)
    (ge * ge).sum().backward()
    (gt * gt).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)


# ---- cross entropy over class indices -----------------------------------------------------------------
def _targets(n, C, ignore=None, seed=0):
    t = np.random.default_rng(seed).integers(0, C, n)
    if ignore is not None and n > 1:
        t[1] = ignore
    return t


CE_SHAPES = [(4, 7), (3, 5000), (2, 50257), (40, 33), (1, 1)]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", CE_SHAPES, ids=_id)
def test_cross_entropy(shape, reduction):
    N, C = shape
    x = rand(shape, low=-5.0, high=5.0)
    t = _targets(N, C)
    check_op(lambda T, a: T.nn.functional.cross_entropy(a, T.tensor(t), reduction=reduction), x, rtol=1e-5,
             atol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_weight_ignore(weighted, reduction):
    N, C = 9, 1030
    x = rand((N, C))
    w = rand((C,), positive=True)
    t = _targets(N, C, ignore=3)
    t[4] = 3     # a real target equal to a class index that some other row ignores
    for ign in (3, -100):
        check_op(lambda T, a: T.nn.functional.cross_entropy(a, T.tensor(t), T.tensor(w) if weighted else None,
                                                            ignore_index=ign, reduction=reduction), x,
                 rtol=1e-5, atol=1e-5)


def test_cross_entropy_float64():
    if not fp64():
        pytest.skip("no float64")
    x = rand((6, 1030), np.float64)
    t = _targets(6, 1030, ignore=-100)
    w = rand((1030,), np.float64, positive=True)
    for red in ("mean", "none"):
        check_op(lambda T, a: T.nn.functional.cross_entropy(a, T.tensor(t), T.tensor(w), reduction=red), x)


def test_cross_entropy_noncontig_and_layouts():
    x = rand((6, 50))
    t = _targets(6, 50)
    check_op(lambda T, a: T.nn.functional.cross_entropy(a, T.tensor(t)), x, noncontig=True)
    # (C,) input with a 0-d target; (N, C, d1, d2) with spatial targets
    check_op(lambda T, a: T.nn.functional.cross_entropy(a, T.tensor(np.int64(3))), rand((11,)))
    ts = np.random.default_rng(1).integers(0, 5, (2, 3, 4))
    ts[0, 1, 2] = -100
    for red in ("mean", "sum", "none"):
        check_op(lambda T, a: T.nn.functional.cross_entropy(a, T.tensor(ts), reduction=red), rand((2, 5, 3, 4)))
    # a column slice: rows with stride > C and a target tensor that is itself a strided view
    big = rand((4, 64))
    tv = np.arange(8)[::2].copy()
    check_op(lambda T, a: T.nn.functional.cross_entropy(a[:, 8:40], T.tensor(np.arange(8))[::2]),
             big, torch_fn=lambda T, a: T.nn.functional.cross_entropy(a[:, 8:40], T.tensor(tv)))


def test_cross_entropy_empty_and_all_ignored():
    for red in ("mean", "sum", "none"):
        check_op(lambda T, a: T.nn.functional.cross_entropy(a, T.tensor(np.zeros(0, np.int64)), reduction=red),
                 rand((0, 5)))
        t = np.full(3, -100)
        check_op(lambda T, a: T.nn.functional.cross_entropy(a, T.tensor(t), reduction=red), rand((3, 5)))


@pytest.mark.parametrize("bad", [5, 7, -1, -101])
def test_cross_entropy_target_out_of_bounds(bad):
    x = engine.randn(4, 5, requires_grad=True)
    t = engine.tensor(np.array([0, bad, 1, 2]))
    with pytest.raises(IndexError, match=f"Target {bad} is out of bounds."):
        F.cross_entropy(x, t)
    with pytest.raises(IndexError):
        torch.nn.functional.cross_entropy(torch.zeros(4, 5), torch.tensor([0, bad, 1, 2]))
    # the flag was reset: a good call afterwards works
    F.cross_entropy(x, engine.tensor(np.array([0, 4, 1, 2]))).backward()
    assert x.grad is not None


def test_cross_entropy_kernel_counts():
    x = engine.randn(16, 1000, requires_grad=True)
    t = engine.tensor(np.random.default_rng(0).integers(0, 1000, 16))
    names = []
    loss = None

    def fwd():
        nonlocal loss
        loss = F.cross_entropy(x, t)
    names = _kernels(fwd)
    assert names == ["cross_entropy", "cross_entropy_reduce"], names
    names = _kernels(lambda: loss.backward())
    assert names.count("cross_entropy_backward") == 1 and len(names) <= 2, names


def test_cross_entropy_double_backward_and_smoothing():
    x = rand((5, 9))
    w = rand((9,), positive=True)
    t = _targets(5, 9, ignore=-100)
    xe = engine.tensor(x).requires_grad_(True)
    xt = torch.tensor(x).requires_grad_(True)
    ge, = engine.autograd.grad(F.cross_entropy(xe, engine.tensor(t), engine.tensor(w)), [xe], create_graph=True)
    gt, = torch.autograd.grad(torch.nn.functional.cross_entropy(xt, torch.tensor(t), torch.tensor(w)), [xt],
                              create_graph=True)
    np.testing.assert_allclose(ge.detach().numpy(), gt.detach().numpy(), rtol=1e-5, atol=1e-6)
    (ge * ge).sum().backward()
    (gt * gt).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-6)
    # unfused paths stay: label smoothing and probability targets
    check_op(lambda T, a: T.nn.functional.cross_entropy(a, T.tensor(t), label_smoothing=0.1), x)
    p = np.abs(rand((5, 9)))
    p /= p.sum(1, keepdims=True)
    check_op(lambda T, a, b: T.nn.functional.cross_entropy(a, b), x, p)


# ---- layer norm -----------------------------------------------------------------------------------
LN_CASES = [((4, 5000), (5000,)), ((300, 40), (40,)), ((64, 768), (768,)), ((5, 7), (7,)), ((3, 1), (1,)),
            ((2, 3, 4), (3, 4)), ((0, 8), (8,)), ((6, 4099), (4099,)), ((200, 40), (40,)),
            ((700, 130), (130,))]   # (700, 130): several row blocks and a partial column block on CPUs


def _ln(ns):
    """(clgrad's layer norm, torch's in float64 as the reference).  torch's float32 gradients are off by
    more than the tests' tolerance at times: rows of one element (the exact x and weight gradients are 0,
    torch's carry its rounding times rstd = 1/sqrt(eps): up to 1.7e-4 over 3000 draws, which failed a GPU
    run) and weight gradients summed over 3000-9000 rows (up to 3.9e-4 off; clgrad's 9.2e-5)."""
    return (lambda T, a, *wb: T.nn.functional.layer_norm(a, ns, *wb),
            lambda T, a, *wb: T.nn.functional.layer_norm(a.double(), ns, *[t.double() for t in wb]).float())


@pytest.mark.parametrize("affine", ["wb", "w", "none"])
@pytest.mark.parametrize("shape,ns", LN_CASES, ids=_id)
def test_layer_norm(shape, ns, affine):
    x = rand(shape, low=-3.0, high=5.0)
    args = [x] + [rand(ns) for _ in range({"wb": 2, "w": 1, "none": 0}[affine])]
    fn, ref = _ln(ns)
    check_op(fn, *args, torch_fn=ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(3000, 40), (9000, 7), (700, 33)], ids=_id)
@pytest.mark.parametrize("affine", ["wb", "w"])
def test_layer_norm_weight_grads_by_blocks(shape, affine):
    # the two-pass dweight/dbias (per-block partials, then lanes over the blocks), forced on any device
    old = _rows.tune(ln_wb="blocks")
    try:
        x = rand(shape, low=-3.0, high=5.0)
        args = [x] + [rand(shape[1:]) for _ in range({"wb": 2, "w": 1}[affine])]
        fn, ref = _ln(shape[1:])
        # sums of up to 9000 float32 products against the exact values
        check_op(fn, *args, torch_fn=ref, rtol=1e-4, atol=1e-4, grad_atol=2e-4)
    finally:
        _rows.tune(**old)


def test_layer_norm_noncontig_and_float64():
    check_op(lambda T, a, w, b: T.nn.functional.layer_norm(a, (30,), w, b), rand((30, 50)).T.copy(),
             rand((30,)), rand((30,)), noncontig=True, rtol=1e-4, atol=1e-4)
    if fp64():
        check_op(lambda T, a, w, b: T.nn.functional.layer_norm(a, (1030,), w, b), rand((70, 1030), np.float64),
                 rand((1030,), np.float64), rand((1030,), np.float64))


def test_layer_norm_kernel_counts():
    x = engine.randn(256, 512, requires_grad=True)
    w = engine.randn(512, requires_grad=True)
    b = engine.randn(512, requires_grad=True)
    y = None

    def fwd():
        nonlocal y
        y = F.layer_norm(x, (512,), w, b)
    assert _kernels(fwd) == ["native_layer_norm"]
    g = engine.randn(256, 512)
    names = _kernels(lambda: y.backward(g))
    assert names.count("native_layer_norm_backward") == 1, names
    # dweight/dbias: one column kernel; narrow rows on a GPU add a second pass over per-block partials
    nw = names.count("layer_norm_weight_backward")
    assert (nw == 1 or (nw == 2 and default_device().is_gpu)) and len(names) == 1 + nw, names
