"""Matrix products vs PyTorch: forward, gradients, double backward, error messages.

Both GEMM back ends run on PoCL: `path` switches between the numpy/BLAS host path (the default on
CPU devices) and the OpenCL kernel (the GPU path).  OpenCL-path sizes stay small: PoCL is slow.
"""
import math

import numpy as np
import pytest
import torch

import engine
from engine.ops import matmul as M
from engine.runtime import matmul as rt
from engine.runtime.device import default_device

from .helpers import assert_close, check_op, fp64, rand, to_engine

IS_CPU = default_device().is_cpu


@pytest.fixture(params=["numpy", "opencl"])
def path(request):
    if request.param == "numpy" and not IS_CPU:
        pytest.skip("the numpy path exists on CPU devices only")
    old = rt.FORCE_OPENCL
    rt.FORCE_OPENCL = request.param == "opencl"
    yield request.param
    rt.FORCE_OPENCL = old


@pytest.fixture
def opencl():
    old = rt.FORCE_OPENCL
    rt.FORCE_OPENCL = True
    yield
    rt.FORCE_OPENCL = old


@pytest.fixture
def layout_flags():
    """Build the per-layout GPU programs on PoCL too."""
    old = rt.LAYOUT_FLAGS
    rt.LAYOUT_FLAGS = True
    yield
    rt.LAYOUT_FLAGS = old


def tol(*dims):
    """float32 accumulation: the error grows like sqrt(reduction length)."""
    n = max([1] + [d for d in dims])
    return dict(rtol=1e-4, atol=1e-5 * max(4.0, math.sqrt(n)), grad_rtol=1e-4, grad_atol=1e-5 * max(4.0, math.sqrt(n)))


# ---- matmul over all rank combinations --------------------------------------------------------------
RANKS = [
    ((3,), (3,)),                # dot
    ((4, 3), (3,)),              # mv
    ((3,), (3, 5)),              # vector @ matrix
    ((4, 3), (3, 5)),            # mm
    ((2, 4, 3), (3, 5)),         # batch folded into rows
    ((4, 3), (2, 3, 5)),         # broadcast A
    ((2, 4, 3), (2, 3, 5)),      # bmm
    ((2, 1, 4, 3), (3, 3, 5)),   # broadcast batch
    ((2, 4, 3), (3,)),           # batched mv
    ((3,), (2, 3, 5)),           # vector @ batch
    ((1, 4, 3), (2, 3, 5)),
    ((2, 1, 4, 3), (1, 3, 3, 5)),          # two batch dims that don't merge
    ((2, 3, 1, 4, 3), (3, 2, 3, 5)),       # three batch dims: a launch per leading index
    ((2, 1, 3), (3, 5)),                   # M == 1 rows folded
    ((4, 2, 3), (4, 3, 1)),
]


@pytest.mark.parametrize("sa,sb", RANKS, ids=[f"{a}@{b}" for a, b in RANKS])
def test_matmul_ranks(path, sa, sb):
    check_op(lambda T, a, b: T.matmul(a, b), rand(sa), rand(sb), **tol(10))
    check_op(lambda T, a, b: a @ b, rand(sa), rand(sb), **tol(10))


@pytest.mark.parametrize("sa,sb", RANKS[:8], ids=[f"{a}@{b}" for a, b in RANKS[:8]])
def test_matmul_ranks_noncontig(path, sa, sb):
    check_op(lambda T, a, b: T.matmul(a, b), rand(sa), rand(sb), noncontig=True, **tol(10))


SIZES = [(1, 1, 1), (7, 33, 65), (65, 7, 33), (130, 65, 7), (33, 130, 1), (1, 65, 130), (130, 1, 33),
         (1, 1, 130), (17, 1, 1)]


@pytest.mark.parametrize("m,n,k", SIZES)
def test_mm_sizes(path, m, n, k):
    check_op(lambda T, a, b: T.mm(a, b), rand((m, k)), rand((k, n)), **tol(m, n, k))


@pytest.mark.parametrize("m,n,k", [(1, 33, 65), (65, 1, 33), (1, 1, 7)])
def test_skinny_through_gemm_kernel(opencl, monkeypatch, m, n, k):
    """M == 1 / N == 1 normally take the GEMV kernel: cover the tiled kernel's edges too."""
    monkeypatch.setattr(rt, "GEMV", False)
    check_op(lambda T, a, b: T.mm(a, b), rand((m, k)), rand((k, n)), **tol(m, n, k))


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_transposed_views(path, ta, tb):
    m, n, k = 37, 20, 45
    a = rand((k, m) if ta else (m, k))
    b = rand((n, k) if tb else (k, n))

    def f(T, a, b):
        return (a.t() if ta else a) @ (b.t() if tb else b)
    check_op(f, a, b, **tol(m, n, k))


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_layout_programs(opencl, layout_flags, ta, tb):
    """The GPU's per-layout loaders ('r' / 'c' / 'g'), GEMM and GEMV, run on PoCL."""
    m, n, k = 37, 20, 45

    def f(T, a, b):
        return (a.mT if ta else a) @ (b.mT if tb else b)
    for mm, nn in ((m, n), (1, n), (m, 1)):
        a = rand((2, k, mm) if ta else (2, mm, k))
        b = rand((2, n if nn > 1 else 1, k) if tb else (2, k, nn))
        check_op(f, a, b, **tol(m, n, k))
    # general strides: neither dim unit-stride
    check_op(lambda T, a, b: a[:, ::2] @ b[::2, ::3], rand((9, 14)), rand((14, 15)), **tol(14))


def test_strided_and_offset_views(path):
    a, b = rand((10, 24)), rand((14, 12))
    check_op(lambda T, a, b: a[1:8, ::2] @ b[2:, 3:9], a, b, **tol(12))
    check_op(lambda T, a, b: a[3] @ b[:, 1:], a, rand((24, 5)), **tol(24))
    # broadcast (stride-0) operands
    check_op(lambda T, a, b: a.expand(3, 4, 5) @ b, rand((1, 4, 5)), rand((3, 5, 2)), **tol(5))
    check_op(lambda T, a, b: a.unsqueeze(0).expand(3, 4, 5) @ b.expand(3, 5, 6), rand((4, 5)), rand((5, 6)),
             **tol(5))


def test_permuted_batches(path):
    def f(T, a, b):
        return a.permute(1, 0, 2) @ b.permute(2, 0, 1)
    check_op(f, rand((5, 3, 4)), rand((4, 6, 3)), **tol(6))


@pytest.mark.parametrize("sa,sb", [((3, 0), (0, 4)), ((0, 3), (3, 4)), ((3, 4), (4, 0)), ((0, 2, 3), (0, 3, 4)),
                                   ((2, 3, 0), (0, 5)), ((0,), (0,)), ((2, 0), (0,)), ((0,), (0, 3))])
def test_empty(path, sa, sb):
    out = check_op(lambda T, a, b: a @ b, rand(sa), rand(sb))
    if out.numel():
        assert np.all(out.detach().numpy() == 0)


@pytest.mark.parametrize("dt", [np.int64, np.int32])
def test_integer(path, dt):
    a = rand((5, 7), dt)
    b = rand((7, 3), dt)
    check_op(lambda T, a, b: a @ b, a, b)
    check_op(lambda T, a, b: a.t() @ b[:5], a, b)
    check_op(lambda T, a, b: T.bmm(a, b), rand((2, 3, 4), dt), rand((2, 4, 6), dt))
    check_op(lambda T, a, b: T.mv(a, b), a, rand((7,), dt))
    check_op(lambda T, a, b: T.dot(a, b), rand((9,), dt), rand((9,), dt))


def test_integer_wraps_like_torch(path):
    a = np.full((2, 3), 2**40, np.int64)
    b = np.full((3, 2), 2**30, np.int64)
    check_op(lambda T, a, b: a @ b, a, b)
    a8 = np.full((2, 40), 100, np.int32) * 1000
    check_op(lambda T, a, b: a @ b, a8, a8.T.copy())


@pytest.mark.skipif(not fp64(), reason="device without cl_khr_fp64")
def test_float64(path):
    for sa, sb in [((7, 33), (33, 5)), ((3, 9), (9,)), ((2, 4, 5), (5, 6)), ((9,), (9,))]:
        check_op(lambda T, a, b: a @ b, rand(sa, np.float64), rand(sb, np.float64))
    check_op(lambda T, i, a, b: T.addmm(i, a, b, beta=0.5, alpha=2.0), rand((4,), np.float64),
             rand((3, 5), np.float64), rand((5, 4), np.float64))


@pytest.mark.skipif(not fp64(), reason="device without cl_khr_fp64")
def test_gradcheck_and_double_backward(path):
    a = to_engine(rand((3, 4), np.float64), requires_grad=True)
    b = to_engine(rand((2, 4, 5), np.float64), requires_grad=True)
    assert engine.autograd.gradcheck(lambda a, b: a @ b, (a, b))
    ta = torch.tensor(a.detach().numpy(), requires_grad=True)
    tb = torch.tensor(b.detach().numpy(), requires_grad=True)
    for T, x, y in ((engine, a, b), (torch, ta, tb)):
        out = (T.matmul(x, y) ** 2).sum()
        gx, gy = T.autograd.grad(out, (x, y), create_graph=True)
        ((gx * gx).sum() + (gy ** 3).sum()).backward()
    assert_close(a.grad, ta.grad, 1e-10, 1e-10)
    assert_close(b.grad, tb.grad, 1e-10, 1e-10)


def test_double_backward_float32(path):
    def f(T, a, b, w):
        x = T.nn.functional.linear(a, w) if T is torch else M.linear(a, w)
        y = x @ b
        (g,) = T.autograd.grad(y.sum(), (a,), create_graph=True)
        return g * g
    check_op(f, rand((3, 4)), rand((5, 2)), rand((5, 4)), **tol(10))


# ---- the other entry points -------------------------------------------------------------------------
def test_mm_bmm_mv_dot(path):
    check_op(lambda T, a, b: T.mm(a, b), rand((6, 5)), rand((5, 7)), **tol(5))
    check_op(lambda T, a, b: a.mm(b), rand((6, 5)), rand((5, 7)), noncontig=True, **tol(5))
    check_op(lambda T, a, b: T.bmm(a, b), rand((3, 6, 5)), rand((3, 5, 7)), **tol(5))
    check_op(lambda T, a, b: a.bmm(b), rand((3, 6, 5)), rand((3, 5, 7)), noncontig=True, **tol(5))
    check_op(lambda T, a, b: T.mv(a, b), rand((6, 5)), rand((5,)), **tol(5))
    check_op(lambda T, a, b: a.mv(b), rand((6, 5)), rand((5,)), noncontig=True, **tol(5))
    check_op(lambda T, a, b: T.dot(a, b), rand((50,)), rand((50,)), **tol(50))
    check_op(lambda T, a, b: a.dot(b), rand((50,)), rand((50,)), noncontig=True, **tol(50))
    check_op(lambda T, a, b: T.vdot(a, b), rand((5,)), rand((5,)))
    check_op(lambda T, a, b: T.inner(a, b), rand((3, 5)), rand((2, 4, 5)), **tol(5))
    check_op(lambda T, a, b: a.inner(b), rand((5,)), rand((5,)))


def test_outer(path):
    check_op(lambda T, a, b: T.outer(a, b), rand((4,)), rand((6,)))
    check_op(lambda T, a, b: T.ger(a, b), rand((4,)), rand((6,)))
    check_op(lambda T, a, b: a.outer(b), rand((4,)), rand((6,)), noncontig=True)
    check_op(lambda T, a, b: T.outer(a, b), rand((3,), np.int64), rand((2,)))   # promotes like torch


@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, 2.0), (0, 1.5)])
def test_addmm(path, beta, alpha):
    for si in [(4,), (3, 4), (1, 4), (3, 1), ()]:
        check_op(lambda T, i, a, b: T.addmm(i, a, b, beta=beta, alpha=alpha), rand(si), rand((3, 5)),
                 rand((5, 4)), **tol(5))
    check_op(lambda T, i, a, b: i.addmm(a, b, beta=beta, alpha=alpha), rand((4,)), rand((1, 5)),
             rand((5, 4)), noncontig=True, **tol(5))


def test_addmm_beta0_ignores_nan(path):
    i = np.full((2, 2), np.nan, np.float32)
    check_op(lambda T, i, a, b: T.addmm(i, a, b, beta=0), i, rand((2, 3)), rand((3, 2)), grad=False)


def test_baddbmm_addbmm_addmv_addr(path):
    check_op(lambda T, i, a, b: T.baddbmm(i, a, b, beta=0.5, alpha=2.0), rand((2, 1, 4)), rand((2, 3, 5)),
             rand((2, 5, 4)), **tol(5))
    check_op(lambda T, i, a, b: i.baddbmm(a, b), rand((4,)), rand((2, 3, 5)), rand((2, 5, 4)), **tol(5))
    check_op(lambda T, i, a, b: T.addbmm(i, a, b, beta=0.5, alpha=2.0), rand((3, 4)), rand((2, 3, 5)),
             rand((2, 5, 4)), **tol(5))
    check_op(lambda T, i, a, b: T.addmv(i, a, b, beta=0.5, alpha=2.0), rand((3,)), rand((3, 5)), rand((5,)),
             **tol(5))
    check_op(lambda T, i, a, b: T.addr(i, a, b, beta=0.5, alpha=2.0), rand((3, 4)), rand((3,)), rand((4,)))


def test_inplace_addmm(path):
    def f(T, i, a, b):
        i = i * 1.0
        i.addmm_(a, b, alpha=2.0)
        return i
    check_op(f, rand((3, 4)), rand((3, 5)), rand((5, 4)), **tol(5))


def _torch_linear(x, w, b=None):
    return torch.nn.functional.linear(x, w, b)


@pytest.mark.parametrize("sx", [(5, 4), (4,), (2, 3, 4), (1, 4), (2, 0, 4)])
@pytest.mark.parametrize("bias", [False, True])
def test_linear(path, sx, bias):
    args = [rand(sx), rand((6, 4))] + ([rand((6,))] if bias else [])
    check_op(lambda T, *a: M.linear(*a) if T is engine else _torch_linear(*a), *args, **tol(6))
    check_op(lambda T, *a: M.linear(*a) if T is engine else _torch_linear(*a), *args, noncontig=True, **tol(6))


def test_linear_variants(path):
    lin = lambda T, *a: M.linear(*a) if T is engine else _torch_linear(*a)  # noqa: E731
    check_op(lin, rand((3, 4)), rand((4,)))                      # 1-D weight
    check_op(lin, rand((4,)), rand((4,)), rand(()))
    check_op(lin, rand((3, 4)), rand((6, 4)), rand(()))          # 0-d bias broadcasts
    check_op(lin, rand((3, 4)), rand((6, 4)), rand((3, 6)))      # full bias (composite path)
    # a weight that is itself a transposed view
    check_op(lambda T, x, w, b: (M.linear if T is engine else _torch_linear)(x, w.t(), b),
             rand((5, 4)), rand((4, 6)), rand((6,)), **tol(6))


def test_tensordot(path):
    check_op(lambda T, a, b: T.tensordot(a, b, dims=2), rand((3, 4, 5)), rand((4, 5, 2)), **tol(20))
    check_op(lambda T, a, b: T.tensordot(a, b, dims=([0, 2], [2, 0])), rand((3, 4, 5)), rand((5, 2, 3)),
             **tol(20))
    check_op(lambda T, a, b: T.tensordot(a, b, dims=0), rand((2, 3)), rand((4,)))


EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->ji", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->", [(3, 4)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ijk,ik->j", [(2, 3, 4), (2, 4)]),
    ("ij,kj", [(3, 4), (5, 4)]),
    ("i,i", [(5,), (5,)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum(path, eq, shapes):
    check_op(lambda T, *xs: T.einsum(eq, *xs), *[rand(s) for s in shapes], **tol(10))


def test_chain_matmul(path):
    check_op(lambda T, a, b, c: T.linalg.multi_dot([a, b, c]) if T is torch else T.chain_matmul(a, b, c),
             rand((2, 3)), rand((3, 4)), rand((4, 5)), **tol(5))


def test_out_argument(path):
    a, b = rand((3, 4)), rand((4, 5))
    out = engine.empty(3, 5)
    r = engine.matmul(engine.tensor(a), engine.tensor(b), out=out)
    assert r is out
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-5, atol=1e-5)


def test_rmatmul_with_numpy(path):
    a, b = rand((3, 4)), rand((4, 5))
    r = a @ engine.tensor(b)
    assert isinstance(r, engine.Tensor)
    np.testing.assert_allclose(r.numpy(), a @ b, rtol=1e-5, atol=1e-5)


def test_grad_fn_names():
    a = engine.randn(3, 4, requires_grad=True)
    v = engine.randn(4, requires_grad=True)
    assert type((a @ a.t()).grad_fn).__name__ == "MmBackward0"
    assert type((a @ v).grad_fn).__name__ == "MvBackward0"
    assert type((v @ v).grad_fn).__name__ == "DotBackward0"
    assert type(engine.bmm(a[None], a.t()[None]).grad_fn).__name__ == "BmmBackward0"
    assert type(engine.addmm(v, a.t(), a).grad_fn).__name__ == "AddmmBackward0"
    assert type(M.linear(a, a, None).grad_fn).__name__ == "MmBackward0"


def test_no_grad_records_nothing(path):
    a = engine.randn(3, 4, requires_grad=True)
    with engine.no_grad():
        r = a @ a.t()
    assert r.grad_fn is None and not r.requires_grad


# ---- launch chunking and 64-bit indexing ----------------------------------------------------------------
def test_grid_chunking(opencl, monkeypatch):
    """Grids beyond NVIDIA's 65535 work-groups in y / z are split into several launches."""
    from engine.runtime import gemm_small
    monkeypatch.setattr(rt, "_MAX_GROUPS_YZ", 2)
    monkeypatch.setattr(gemm_small, "MAX_GROUPS_YZ", 2)
    check_op(lambda T, a, b: a @ b, rand((5, 70, 9)), rand((5, 9, 3)), **tol(9))   # 3 M tiles, 5 batches
    check_op(lambda T, a, b: a @ b, rand((5, 1, 9)), rand((5, 9, 3)), **tol(9))    # GEMV over 5 batches


def test_long_index_kernels(opencl, monkeypatch):
    monkeypatch.setattr(rt, "INT32_LIMIT", 1)
    check_op(lambda T, a, b: a @ b, rand((2, 7, 9)), rand((9, 5)), **tol(9))
    check_op(lambda T, i, a, b: T.addmm(i, a, b), rand((5,)), rand((1, 9)), rand((9, 5)), **tol(9))


@pytest.mark.parametrize("cfg", [(64, 64, 16, 4, 4, 4, 1), (128, 128, 8, 8, 8, 4, 1), (8, 8, 8, 1, 1, 1, 0),
                                 (32, 64, 8, 4, 8, 2, 1)])
def test_tile_configs(opencl, monkeypatch, cfg):
    """Every tile configuration the GPUs may pick, run on PoCL (edges included)."""
    monkeypatch.setenv("CLGRAD_MATMUL_TILE", ",".join(map(str, cfg)))
    assert rt.choose_config(default_device(), engine.float32, 7, 7, 7, 1) == cfg
    check_op(lambda T, a, b: a @ b.mT, rand((2, 130, 20)), rand((2, 67, 20)), **tol(20))
    check_op(lambda T, i, a, b: T.baddbmm(i, a.mT, b), rand((67,)), rand((2, 9, 130)), rand((2, 9, 67)), **tol(9))


def test_env_switch(monkeypatch):
    monkeypatch.setattr(rt, "FORCE_OPENCL", None)
    monkeypatch.setenv("CLGRAD_MATMUL", "opencl")
    assert not rt.use_numpy(default_device())
    monkeypatch.setenv("CLGRAD_MATMUL", "")
    assert rt.use_numpy(default_device()) == IS_CPU
    assert not rt.use_numpy(default_device(), 8 * 8 * 8)      # tiny products stay on the (async) kernel
    monkeypatch.setattr(rt, "FORCE_OPENCL", False)
    assert rt.use_numpy(default_device(), 8 * 8 * 8) == IS_CPU


def test_default_path_mixes(monkeypatch):
    """With no switch, tiny and large products on a CPU device take different paths: same results."""
    monkeypatch.setattr(rt, "FORCE_OPENCL", None)
    monkeypatch.delenv("CLGRAD_MATMUL", raising=False)
    check_op(lambda T, a, b: a @ b, rand((3, 4)), rand((4, 5)))
    check_op(lambda T, a, b: a @ b, rand((2, 70, 40)), rand((40, 60)), **tol(60))


def test_kernel_source_has_no_sizes():
    src = rt.gen_source("float", "float", "float", (64, 64, 16, 4, 4, 4, 1), "r", "c", True, "int")
    assert "const int M, const int N, const int K" in src


# ---- errors like PyTorch -----------------------------------------------------------------------------
def _same_error(fn, *arrays, exc=RuntimeError):
    e_in = [engine.tensor(a) for a in arrays]
    t_in = [torch.tensor(a) for a in arrays]
    with pytest.raises(exc) as ee:
        fn(engine, *e_in)
    with pytest.raises(exc) as te:
        fn(torch, *t_in)
    assert str(ee.value) == str(te.value)


ERRORS = [
    (lambda T, a, b: T.mm(a, b), [(2, 3), (4, 5)]),
    (lambda T, a, b: a @ b, [(2, 3), (4, 5)]),
    (lambda T, a, b: a @ b, [(3,), (4, 5)]),
    (lambda T, a, b: a @ b, [(2, 3), (4,)]),
    (lambda T, a, b: a @ b, [(3,), (4,)]),
    (lambda T, a, b: a @ b, [(2, 3, 4), (5, 3)]),
    (lambda T, a, b: a @ b, [(2, 3, 4), (2, 5, 3)]),
    (lambda T, a, b: a @ b, [(4,), (2, 5, 3)]),
    (lambda T, a, b: a @ b, [(), (2, 3)]),
    (lambda T, a, b: T.bmm(a, b), [(2, 3), (2, 3)]),
    (lambda T, a, b: T.bmm(a, b), [(2, 3, 4), (4, 5)]),
    (lambda T, a, b: T.bmm(a, b), [(2, 3, 4), (3, 4, 5)]),
    (lambda T, a, b: T.bmm(a, b), [(2, 3, 4), (2, 5, 5)]),
    (lambda T, a, b: T.mm(a, b), [(2, 3), (2, 3, 4)]),
    (lambda T, a, b: T.mm(a, b), [(3,), (3, 3)]),
    (lambda T, a, b: T.mv(a, b), [(2, 3), (4,)]),
    (lambda T, a, b: T.mv(a, b), [(2, 3, 4), (4,)]),
    (lambda T, a, b: T.dot(a, b), [(3,), (4,)]),
    (lambda T, a, b: T.dot(a, b), [(3, 1), (3,)]),
    (lambda T, a, b: T.outer(a, b), [(3, 2), (3,)]),
    (lambda T, i, a, b: T.addmm(i, a, b), [(4,), (2, 3), (3, 3)]),
]


@pytest.mark.parametrize("k", range(len(ERRORS)))
def test_errors_match_torch(k):
    fn, shapes = ERRORS[k]
    _same_error(fn, *[rand(s) for s in shapes])


def test_dtype_errors_match_torch():
    _same_error(lambda T, a, b: a @ b, rand((2, 3)), rand((3, 4), np.int64))
    _same_error(lambda T, a, b: T.mm(a, b), rand((2, 3)), rand((3, 4), np.int32))
    _same_error(lambda T, a, b: T.dot(a, b), rand((3,)), rand((3,), np.int64))
    _same_error(lambda T, a, b: T.bmm(a, b), rand((2, 3, 4)), rand((2, 4, 2), np.int64))
    if fp64():
        _same_error(lambda T, a, b: a @ b, rand((2, 3)), rand((3, 4), np.float64))
        with pytest.raises(RuntimeError, match="same dtype"):   # torch's wording here differs across versions
            engine.mv(engine.tensor(rand((2, 3))), engine.tensor(rand((3,), np.float64)))
    _same_error(lambda T, a, b: a @ b, rand((2, 3), np.bool_), rand((3, 2), np.bool_), exc=NotImplementedError)


def test_linear_errors_match_torch():
    _same_error(lambda T, x, w: (M.linear if T is engine else _torch_linear)(x, w), rand((2, 3)), rand((4, 5)))
    _same_error(lambda T, x, w: (M.linear if T is engine else _torch_linear)(x, w), rand((2, 3, 4)), rand((5, 6)))
    _same_error(lambda T, x, w, b: (M.linear if T is engine else _torch_linear)(x, w, b), rand((2, 3)),
                rand((4, 3)), rand((5,)))
    _same_error(lambda T, x, w, b: (M.linear if T is engine else _torch_linear)(x, w, b), rand((2, 3)),
                rand((3,)), rand(()))


def test_einsum_errors():
    with pytest.raises(RuntimeError):
        engine.einsum("ij,jk->ik", engine.randn(2, 3))
    with pytest.raises(RuntimeError):
        engine.einsum("ij->k", engine.randn(2, 3))
    with pytest.raises(RuntimeError):
        engine.einsum("ijk->i", engine.randn(2, 3))
