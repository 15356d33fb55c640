"""Fused SDPA (engine/ops/attention.py): vs torch's scaled_dot_product_attention, forward and
gradients, causal or not, L != S, broadcast batch dims, strided inputs, rows longer than a
work-group, double backward; and that it runs as GEMMs + the two row kernels only."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import engine
import engine.nn.functional as F

rng = np.random.default_rng(11)


@pytest.fixture(autouse=True, params=["group", "reg", "serial"])
def row_kernels(request):
    """Every row-kernel layout on every device (register rows are the GPUs' choice for S <= 512, a row
    per work-item the CPUs')."""
    from engine.runtime import attention as _rt
    old = _rt.FORCE_KIND[0]
    _rt.FORCE_KIND[0] = request.param
    yield
    _rt.FORCE_KIND[0] = old


def _pair(shape):
    a = rng.standard_normal(shape).astype(np.float32)
    return engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shapes", [((2, 3, 5, 8), (2, 3, 5, 8), (2, 3, 5, 4)),
                                    ((2, 3, 4, 8), (2, 3, 7, 8), (2, 3, 7, 6)),
                                    ((2, 3, 5, 8), (1, 3, 5, 8), (1, 1, 5, 8)),
                                    ((300, 16), (300, 16), (300, 16)),
                                    ((3, 33, 8), (3, 33, 8), (3, 33, 8)),
                                    ((2, 9, 4), (2, 600, 4), (2, 600, 4)),
                                    ((1, 1, 1, 4), (1, 1, 1, 4), (1, 1, 1, 4))])
def test_fused_sdpa_matches_torch(causal, shapes):
    (eq, tq), (ek, tk), (ev, tv) = (_pair(s) for s in shapes)
    out = F.scaled_dot_product_attention(eq, ek, ev, is_causal=causal)
    ref = TF.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    w = rng.standard_normal(ref.shape).astype(np.float32)
    (out * engine.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for e, t in ((eq, tq), (ek, tk), (ev, tv)):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_fused_sdpa_strided_heads_and_scale():
    B, T, H, E = 2, 6, 3, 4
    a = rng.standard_normal((B, T, 3 * H * E)).astype(np.float32)
    ex, tx = engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)

    def heads(x, lib):
        q, k, v = x.split(H * E, dim=2)
        return [t.view(B, T, H, E).transpose(1, 2) for t in (q, k, v)]
    out = F.scaled_dot_product_attention(*heads(ex, engine), is_causal=True, scale=0.3)
    ref = TF.scaled_dot_product_attention(*heads(tx, torch), is_causal=True, scale=0.3)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kernel_gemm", [False, True])
def test_fused_sdpa_head_layout_output_and_grads(kernel_gemm):
    """Head-split views of one projection: the output and q/k/v gradients come out in (B, T, H, E) order,
    so transpose(1, 2).contiguous() and the gradients' view back are free, with OpenCL GEMMs and with the
    CPUs' host BLAS (which writes the strided C in place); values equal torch's."""
    from engine.runtime import matmul as _mm
    old = _mm.FORCE_OPENCL
    _mm.FORCE_OPENCL = True if kernel_gemm else None
    try:
        B, T, H, E = 2, 7, 3, 5
        a = rng.standard_normal((B, T, 3 * H * E)).astype(np.float32)
        ex, tx = engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)

        def attn(x):
            q, k, v = x.split(H * E, dim=2)
            q, k, v = [t.view(B, T, H, E).transpose(1, 2) for t in (q, k, v)]
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True) if x.__class__ is engine.Tensor else \
                TF.scaled_dot_product_attention(q, k, v, is_causal=True)
            return y, y.transpose(1, 2).contiguous().view(B, T, H * E)
        (ye, oe), (yt, ot) = attn(ex), attn(tx)
        assert ye.stride() == (T * H * E, E, H * E, 1)
        np.testing.assert_allclose(oe.detach().numpy(), ot.detach().numpy(), rtol=1e-4, atol=1e-5)
        w = rng.standard_normal((B, T, H * E)).astype(np.float32)
        with engine.profiler.profile() as prof:
            (oe * engine.tensor(w)).sum().backward()
        (ot * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
        # dq/dk/dv land in one buffer laid out like the projection: no reshape, no cat
        names = [r["name"] for r in prof.records if r["kind"] == "kernel"]
        assert "copy" not in names, names
    finally:
        _mm.FORCE_OPENCL = old


def test_fused_sdpa_launches():
    q = engine.randn(2, 2, 8, 4, requires_grad=True)
    with engine.profiler.profile() as prof:
        out = F.scaled_dot_product_attention(q, q, q, is_causal=True)
        out.sum().backward()
    names = [r["name"] for r in prof.records if r["kind"] == "kernel"]
    assert "attn_softmax" in names and "attn_softmax_backward" in names
    assert not {"masked_fill", "softmax", "tril", "mul"} & set(names), names
    assert out.grad_fn.name() == "ScaledDotProductAttentionBackward0"


def test_fused_sdpa_double_backward():
    (eq, tq), (ek, tk), (ev, tv) = (_pair((2, 3, 4)) for _ in range(3))
    out = F.scaled_dot_product_attention(eq, ek, ev, is_causal=True)
    ref = TF.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    (gq,) = engine.autograd.grad(out.sum(), eq, create_graph=True)
    (tgq,) = torch.autograd.grad(ref.sum(), tq, create_graph=True)
    np.testing.assert_allclose(gq.detach().numpy(), tgq.detach().numpy(), rtol=1e-4, atol=1e-5)
    (gq * gq).sum().backward()
    (tgq * tgq).sum().backward()
    np.testing.assert_allclose(ek.grad.numpy(), tk.grad.numpy(), rtol=1e-3, atol=1e-5)


def test_split_backward_joins_adjacent_gradients_without_copy():
    from engine.ops.shape import adjacent_view
    base = engine.randn(4, 9)
    parts = base.split(3, dim=1)
    j = adjacent_view(parts, 1)
    assert j is not None and j.shape == (4, 9) and j.stride() == base.stride()
    np.testing.assert_array_equal(j.numpy(), base.numpy())
    assert adjacent_view(list(reversed(parts)), 1) is None                  # out of order
    assert adjacent_view([parts[0], parts[2]], 1) is None                   # a gap
    assert adjacent_view([parts[0], parts[1].clone()], 1) is None           # another storage
    assert adjacent_view(base.split(2, dim=0), 0).shape == (4, 9)
    o = engine.randn(3, 4)
    assert adjacent_view([o, o], 0) is None                                 # the same slice twice
    # through autograd: values equal torch's, and with create_graph the cat path keeps it differentiable
    a = rng.standard_normal((5, 6)).astype(np.float32)
    e, t = engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    we = [engine.tensor(rng.standard_normal((5, 2)).astype(np.float32)) for _ in range(3)]
    (sum((x * w).sum() for x, w in zip(e.split(2, 1), we))).backward()
    (sum((x * torch.tensor(w.numpy())).sum() for x, w in zip(t.split(2, 1), we))).backward()
    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-6)

