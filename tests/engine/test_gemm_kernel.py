"""The tiled GEMM kernel's optional paths (PF bits of a tile config: interior tiles without bounds
checks, vector global loads, double-buffered local memory, vector C stores) on PoCL, with the GPU's
per-layout programs (LAYOUT_FLAGS): every operand layout, edges, odd K, unaligned offsets, bias,
broadcast batches and 64-bit indices give torch's results."""
import numpy as np
import pytest
import torch

import engine
from engine.runtime import matmul as rt
from engine.runtime.device import default_device

# small tiles (PoCL runs work-groups as loops) with every combination of the PF bits that matters,
# and the GPU tuner's candidates
CFGS = [(32, 32, 8, 4, 4, 4, pf) for pf in (1, 3, 7, 15, 31, 30, 23, 63, 41)] + \
    [(32, 64, 8, 4, 8, 4, 31), (64, 32, 16, 8, 4, 4, 31), (32, 32, 16, 4, 4, 4, 15), (32, 32, 16, 4, 4, 2, 1), (128, 128, 8, 8, 8, 4, 31),
     (128, 64, 16, 8, 8, 4, 31), (64, 128, 8, 8, 8, 4, 63), (256, 128, 8, 16, 8, 4, 31), (128, 256, 8, 8, 16, 4, 31)]


@pytest.fixture
def gpu_path(monkeypatch):
    monkeypatch.setattr(rt, "LAYOUT_FLAGS", True)
    monkeypatch.setattr(rt, "FORCE_OPENCL", True)
    monkeypatch.setenv("CLGRAD_SPLITK", "0")


def _operand(rng, rows, cols, lay, batch=None, offset=0):
    """(engine view, torch view) of a rows x cols matrix stored with layout 'r', 'c' or 'g' (step 2),
    `offset` elements into its buffer."""
    shape = (cols, rows) if lay == "c" else (rows, cols * 2) if lay == "g" else (rows, cols)
    if batch:
        shape = (batch,) + shape
    n = int(np.prod(shape))
    flat = rng.standard_normal(n + offset).astype(np.float32)
    e = engine.tensor(flat)[offset:].reshape(shape)
    t = torch.tensor(flat)[offset:].reshape(shape)
    if lay == "c":
        e, t = e.transpose(-1, -2), t.transpose(-1, -2)
    elif lay == "g":
        e, t = e[..., ::2], t[..., ::2]
    return e, t


def _check(e, t, K):
    np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-4, atol=1e-5 * max(4.0, K ** 0.5) * 4)


@pytest.mark.parametrize("cfg", CFGS, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("la,lb", [("r", "r"), ("r", "c"), ("c", "r"), ("c", "c"), ("g", "r"), ("c", "g")])
def test_layouts_edges(gpu_path, monkeypatch, cfg, la, lb):
    monkeypatch.setenv("CLGRAD_MATMUL_TILE", ",".join(map(str, cfg)))
    rng = np.random.default_rng(7)
    tm, tn = cfg[:2]
    for M, N, K, off in ((2 * tm, 2 * tn, 32, 0),          # interior tiles only
                         (tm + 5, 2 * tn + 3, 40, 0),      # edges in M and N
                         (2 * tm, tn, 37, 0),              # K not a multiple of TK, nor of 4
                         (2 * tm, 2 * tn, 34, 1)):         # unaligned offsets and strides: no vector loads
        ea, ta = _operand(rng, M, K, la, offset=off)
        eb, tb = _operand(rng, K, N, lb, offset=off)
        _check(ea @ eb, ta @ tb, K)


@pytest.mark.parametrize("cfg", [CFGS[4], CFGS[-1]], ids=lambda c: "x".join(map(str, c)))
def test_bias_batch_long_index(gpu_path, monkeypatch, cfg):
    monkeypatch.setenv("CLGRAD_MATMUL_TILE", ",".join(map(str, cfg)))
    rng = np.random.default_rng(8)
    tm, tn = cfg[:2]
    M, N, K = 2 * tm, tn + 4, 24
    for long_idx in (False, True):
        if long_idx:
            monkeypatch.setattr(rt, "INT32_LIMIT", 1)
        # batched, B broadcast over the batch (stride 0), A transposed
        ea, ta = _operand(rng, M, K, "c", batch=3)
        eb, tb = _operand(rng, K, N, "r")
        _check(ea @ eb, ta @ tb, K)
        # bias epilogue: addmm with a broadcast row bias and a full bias; baddbmm
        bias = rng.standard_normal(N).astype(np.float32)
        ea, ta = _operand(rng, M, K, "r")
        eb, tb = _operand(rng, K, N, "c")
        _check(engine.addmm(engine.tensor(bias), ea, eb, beta=0.5, alpha=2.0),
               torch.addmm(torch.tensor(bias), ta, tb, beta=0.5, alpha=2.0), K)
        full = rng.standard_normal((3, M, N)).astype(np.float32)
        ea, ta = _operand(rng, M, K, "r", batch=3)
        eb, tb = _operand(rng, K, N, "r", batch=3)
        _check(engine.baddbmm(engine.tensor(full), ea, eb, beta=1.5), torch.baddbmm(torch.tensor(full), ta, tb, beta=1.5), K)


def test_gradients(gpu_path, monkeypatch):
    monkeypatch.setenv("CLGRAD_MATMUL_TILE", "32,32,8,4,4,4,31")
    rng = np.random.default_rng(9)
    a = rng.standard_normal((2, 70, 48)).astype(np.float32)
    b = rng.standard_normal((48, 64)).astype(np.float32)
    ea, eb = engine.tensor(a, requires_grad=True), engine.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (ea @ eb).sum().backward()
    (ta @ tb).sum().backward()
    _check(ea.grad, ta.grad, 64)
    _check(eb.grad, tb.grad, 140)


def test_fits_and_source():
    dev = default_device()
    src = rt.gen_source("float", "float", "float", (128, 128, 8, 8, 8, 4, 31), "r", "c", True, "int")
    assert "const int M, const int N, const int K" in src and "fast" in src and "float4" in src
    # ints and halves keep scalar loads (no vector-type conversions)
    src = rt.gen_source("int", "uint", "uint", (32, 32, 8, 4, 4, 4, 31), "r", "r", False, "long")
    assert "(__global const uint4*)" not in src and "(__global const int4*)" not in src
    assert rt._fits(dev, (32, 32, 8, 4, 4, 4, 15), 4)


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_interior_tiles_take_the_vector_path(gpu_path, monkeypatch, ta, tb):
    """With the bounds-checked loads patched to read zeros, interior-only products stay right: their
    work-groups ran the unchecked float4 loads.  (A tile config no other test uses: the program cache
    keeps the patched build.)"""
    cfg = (16, 16, 8, 4, 4, 4, 31)
    monkeypatch.setenv("CLGRAD_MATMUL_TILE", ",".join(map(str, cfg)))
    orig = rt.gen_source

    def patched(*args):
        src = orig(*args)
        assert "float4*)(A" in src or args[4] == "g"
        return src.replace("(CT)A[", "(CT)0*A[").replace("(CT)B[", "(CT)0*B[")
    monkeypatch.setattr(rt, "gen_source", patched)
    rng = np.random.default_rng(10)
    ea, t_a = _operand(rng, 32, 24, "c" if ta else "r")
    eb, t_b = _operand(rng, 24, 48, "c" if tb else "r")
    _check(ea @ eb, t_a @ t_b, 24)


def test_v2_tiles_keep_plain_prefetch():
    """V=2 tiles with the vector/interior/double-buffer options faulted on NVIDIA: _fits refuses them."""
    dev = default_device()
    assert not rt._fits(dev, (32, 32, 16, 4, 4, 2, 15), 4)
    assert rt._fits(dev, (32, 32, 16, 4, 4, 2, 1), 4)


# ---- causal attention's triangle hints (TRI_*) ------------------------------------------------------
TRI_CFGS = [CFGS[4], (32, 32, 8, 4, 4, 4, 41), (32, 32, 16, 4, 4, 4, 1), (64, 32, 16, 8, 4, 4, 31)]


@pytest.mark.parametrize("cfg", TRI_CFGS, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("M,N,K", [(96, 40, 96), (70, 33, 70), (40, 24, 100), (100, 24, 40)])
def test_triangle_hints_skip_the_masked_part(gpu_path, monkeypatch, cfg, M, N, K):
    """A_LOWER / A_UPPER: A's entries beyond the tile rows' K range are never read (NaN there changes
    nothing), the ones inside it are the zeros of the mask; C_LOWER: the C tiles above the diagonal keep
    what they held, the rest equal torch's product."""
    from engine.ops.matmul import _gemm_raw
    monkeypatch.setenv("CLGRAD_MATMUL_TILE", ",".join(map(str, cfg)))
    tm = cfg[0]
    rng = np.random.default_rng(13)
    m, k = np.arange(M)[:, None], np.arange(K)[None, :]
    b = rng.standard_normal((2, K, N)).astype(np.float32)
    for tri, zero, unread in ((rt.TRI_A_LOWER, k > m, k >= (m // tm + 1) * tm),
                              (rt.TRI_A_UPPER, k < m, k < (m // tm) * tm)):
        a = rng.standard_normal((2, M, K)).astype(np.float32)
        a[:, zero] = 0
        ref = torch.tensor(a) @ torch.tensor(b)
        a[:, unread] = np.nan
        out = _gemm_raw(engine.tensor(a), engine.tensor(b), tri=tri)
        _check(out, ref, K)
    a = rng.standard_normal((2, M, K)).astype(np.float32)
    bt = rng.standard_normal((2, K, M)).astype(np.float32)   # square C: M x M
    out = engine.full((2, M, M), 7.0)
    _gemm_raw(engine.tensor(a), engine.tensor(bt), out=out, tri=rt.TRI_C_LOWER)
    ref = (torch.tensor(a) @ torch.tensor(bt)).numpy()
    got = out.numpy()
    i, j = np.arange(M)[:, None], np.arange(M)[None, :]
    lower = j <= i
    np.testing.assert_allclose(got[:, lower], ref[:, lower], rtol=1e-4, atol=1e-4)
    skipped = (j // cfg[1]) * cfg[1] > (i // tm) * tm + tm - 1   # tiles wholly above the diagonal
    assert skipped.any() == (M > tm)
    assert (got[:, skipped] == 7.0).all()


@pytest.mark.parametrize("cfg", TRI_CFGS[:2], ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("L,S", [(70, 70), (40, 100), (100, 40), (1, 33)])
def test_causal_attention_with_tiled_gemms(gpu_path, monkeypatch, cfg, L, S):
    """The fused SDPA's six causal products through the tiled kernel (the GPUs' path) with tiles smaller
    than the score matrix, so the hints do skip: forward and gradients equal torch's."""
    import torch.nn.functional as TF
    import engine.nn.functional as F
    monkeypatch.setenv("CLGRAD_MATMUL_TILE", ",".join(map(str, cfg)))
    rng = np.random.default_rng(14)
    arrs = [rng.standard_normal(s).astype(np.float32) for s in ((2, 3, L, 16), (2, 3, S, 16), (2, 3, S, 8))]
    e = [engine.tensor(x, requires_grad=True) for x in arrs]
    t = [torch.tensor(x, requires_grad=True) for x in arrs]
    out = F.scaled_dot_product_attention(*e, is_causal=True)
    ref = TF.scaled_dot_product_attention(*t, is_causal=True)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    w = rng.standard_normal(ref.shape).astype(np.float32)
    (out * engine.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for x, y in zip(e, t):
        np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-4, atol=2e-5)
