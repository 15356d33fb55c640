"""Fused scaled-dot-product attention (no mask or causal, no dropout): one autograd node.

forward:  P = softmax(scale * Q @ K^T  [causal: keys j <= query i])      O = P @ V
backward: dV = P^T @ dO     dP = dO @ V^T     dS = P * (dP - rowsum(dP * P))
          dQ = scale * dS @ K      dK = scale * dS^T @ Q
The scale rides on the GEMMs' alpha and the mask inside the row kernels (runtime/attention.py),
so no (L, S) pass is spent on them; causal products tell the GEMM which triangle matters, so the
tiled kernel skips the masked tiles of S and dP and the zero K slices of P and dS.  With create_graph
the backward re-derives the gradients through the unfused differentiable formula (double backward works).
"""
import math

from .. import dtypes as D
from ..autograd import grad_mode as _gm
from ..autograd.function import Function
from ..runtime import attention as _rt
from ..runtime import matmul as _rt_mm
from ..tensor import empty, make
from ._core import sum_to
from .matmul import _gemm_raw


def _t(x):
    """Raw transposed view of the last two dims."""
    nd = x.ndim
    shp = x._shape[:nd - 2] + (x._shape[-1], x._shape[-2])
    st = x._strides[:nd - 2] + (x._strides[-1], x._strides[-2])
    return make(x._storage, shp, st, x._offset, x.dtype)


def _like(x, shape):
    """An uninitialised `shape` tensor laid out densely in x's dim order (x: a (..., L, E) operand), or
    None for plain contiguous.  The head-split q/k/v of a (B, T, 3C) projection are (B, nh, T, hs) views
    in (B, T, nh, hs) order: an output and gradients in that order make the model's transpose(1, 2)
    back to (B, T, C) free (torch's fused attention returns that layout too), 4 copies of B*T*C per
    layer less (the OpenCL GEMM and the CPUs' host BLAS both write strided C)."""
    dev = x._storage.device
    if x.ndim < 3 or x._strides[-1] != 1:
        return None
    order = sorted(range(x.ndim), key=lambda i: -x._strides[i])   # stable: ties keep dim order
    if order[-1] != x.ndim - 1 or order == list(range(x.ndim)):
        return None
    st, acc = [0] * x.ndim, 1
    for i in reversed(order):
        st[i] = acc
        acc *= shape[i]
    base = empty((acc,), x.dtype, dev)
    return make(base._storage, tuple(shape), tuple(st), 0, x.dtype)


def _joint(q, k, v):
    """Gradient views for q, k, v laid out in one new buffer exactly as q, k, v lie in theirs, when they
    are the three column blocks of one projection (equal shapes and strides, k and v starting one and two
    blocks after q, together tiling a dense region); else None.  The model's view/transpose back then
    stays a view and split's backward joins the three without a cat (runtime: 3 copies of B*T*C per
    layer)."""
    if not (q._storage is k._storage is v._storage) or not (q._shape == k._shape == v._shape) or \
            not (q._strides == k._strides == v._strides) or q.dtype is not k.dtype or k.dtype is not v.dtype:
        return None
    gap = k._offset - q._offset
    if gap <= 0 or v._offset - k._offset != gap or q._strides[-1] != 1:
        return None
    expected, jumped = 1, False   # dims by stride: dense up to the block width, then dense at 3x
    for s, n in sorted((s, n) for s, n in zip(q._strides, q._shape) if n > 1):
        if s == expected:
            expected = s * n
        elif not jumped and expected == gap and s == 3 * gap:
            jumped, expected = True, s * n
        else:
            return None
    if not jumped and expected != gap:
        return None
    base = empty((3 * q.numel(),), q.dtype, q._storage.device)
    return [make(base._storage, q._shape, q._strides, i * gap, q.dtype) for i in range(3)]


def _acc(dt):
    return "double" if dt is D.float64 else "float"


class FusedAttention(Function):
    node_name = "ScaledDotProductAttentionBackward0"

    @staticmethod
    def forward(ctx, q, k, v, scale, causal):
        dev = q._storage.device
        p = _gemm_raw(q, _t(k), alpha=scale, tri=_rt_mm.TRI_C_LOWER if causal else 0)
        L, S = p._shape[-2], p._shape[-1]
        _rt.softmax_rows(dev, p._storage.buf, p._offset, p.numel() // S, S, L, int(causal), p.dtype.ctype,
                         _acc(p.dtype))
        out = _gemm_raw(p, v, out=_like(q, p._shape[:-1] + (v._shape[-1],)) if p._shape[:-2] == q._shape[:-2]
                        else None, tri=_rt_mm.TRI_A_LOWER if causal else 0)
        ctx.save_for_backward(q, k, v, p)
        ctx.scale, ctx.causal = scale, causal
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, p = ctx.saved_tensors
        need = ctx.needs_input_grad
        if _gm.is_grad_enabled():   # create_graph: differentiate the unfused formula
            from ..autograd.engine import grad
            out = reference_attention(q, k, v, ctx.scale, ctx.causal)
            ins = [t for t, n in zip((q, k, v), need) if n]
            gs = iter(grad(out, ins, g, create_graph=True, allow_unused=True))
            return tuple(next(gs) if n else None for n in need[:3]) + (None, None)
        dev = p._storage.device
        L, S = p._shape[-2], p._shape[-1]
        dq = dk = dv = None
        lo, up, cl = (_rt_mm.TRI_A_LOWER, _rt_mm.TRI_A_UPPER, _rt_mm.TRI_C_LOWER) if ctx.causal else (0, 0, 0)
        joint = _joint(q, k, v) if all(need[:3]) and p._shape[:-2] == q._shape[:-2] else None
        if need[2]:
            o = joint[2] if joint else _like(v, v._shape) if p._shape[:-2] == v._shape[:-2] else None
            dv = sum_to(_gemm_raw(_t(p), g, out=o, tri=up), v._shape)
        if need[0] or need[1]:
            dp = _gemm_raw(g, _t(v), tri=cl)
            _rt.softmax_rows_backward(dev, dp._storage.buf, dp._offset, p._storage.buf, p._offset, p.numel() // S,
                                      S, L, int(ctx.causal), p.dtype.ctype, _acc(p.dtype))
            if need[0]:
                o = joint[0] if joint else _like(q, q._shape) if dp._shape[:-2] == q._shape[:-2] else None
                dq = sum_to(_gemm_raw(dp, k, alpha=ctx.scale, out=o, tri=lo), q._shape)
            if need[1]:
                o = joint[1] if joint else _like(k, k._shape) if dp._shape[:-2] == k._shape[:-2] else None
                dk = sum_to(_gemm_raw(_t(dp), q, alpha=ctx.scale, out=o, tri=up), k._shape)
        return dq, dk, dv, None, None


def reference_attention(q, k, v, scale, causal):
    """The unfused formula in differentiable Tensor ops (double backward, tests)."""
    s = q.matmul(k.transpose(-2, -1)) * scale
    if causal:
        L, S = s.shape[-2], s.shape[-1]
        keep = s.new_ones((L, S), dtype=D.bool_).tril()
        s = s.masked_fill(keep.logical_not(), float("-inf"))
    return s.softmax(-1).matmul(v)


def fused_attention(q, k, v, scale=None, causal=False):
    sc = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return FusedAttention.apply(q, k, v, sc, bool(causal))
