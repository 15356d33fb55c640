"""Convolution and pooling primitives (autograd Functions over engine/runtime/im2col.py kernels).

All work on 4-D (N, C, H, W) tensors; callers view 1-D problems as H = 1.  `geom` is the tuple
(C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW).  Every backward is itself a Function whose
backward is the forward again (im2col <-> col2im, avg pool <-> its adjoint), so double backward
works; max pool's backward's backward is a gather at the saved indices.
"""
from .. import dtypes as D
from ..autograd.function import Function
from ..runtime import im2col as _k
from ..tensor import empty
from ._core import contiguous_raw

__all__ = []

_BIG = 2**31 - 1


def _big(*ts):
    return any(t._storage.size // max(t.dtype.itemsize, 1) >= _BIG for t in ts)


def im2col_raw(x, geom):
    C, H, W, OH, OW, KH, KW = geom[:7]
    N = x._shape[0]
    out = empty((N, C * KH * KW, OH * OW), x.dtype, x._storage.device)
    _k.im2col(x._storage.device, out, x, x._strides, geom, _big(x, out))
    return out


def col2im_raw(cols, geom, N):
    C, H, W = geom[:3]
    cols = contiguous_raw(cols)
    out = empty((N, C, H, W), cols.dtype, cols._storage.device)
    _k.col2im(cols._storage.device, out, cols, geom, _big(cols, out))
    return out


class Im2Col(Function):
    """(N, C, H, W) -> (N, C*KH*KW, OH*OW) columns (zero padding included)."""
    node_name = "ConvolutionBackward0"

    @staticmethod
    def forward(ctx, x, geom):
        ctx.geom = geom
        ctx.N = x._shape[0]
        return im2col_raw(x, geom)

    @staticmethod
    def backward(ctx, g):
        return Col2Im.apply(g, ctx.geom, ctx.N), None


class Col2Im(Function):
    node_name = "ConvolutionBackwardBackward0"

    @staticmethod
    def forward(ctx, cols, geom, N):
        ctx.geom = geom
        return col2im_raw(cols, geom, N)

    @staticmethod
    def backward(ctx, g):
        return Im2Col.apply(g, ctx.geom), None, None


def _pool_out(x, geom):
    C, H, W, OH, OW = geom[:5]
    return (x._shape[0], C, OH, OW)


class MaxPool(Function):
    """(N, C, H, W) -> (values, int64 indices h*W + w into each input plane)."""
    node_name = "MaxPool2DWithIndicesBackward0"

    @staticmethod
    def forward(ctx, x, geom, adaptive):
        dev = x._storage.device
        shape = _pool_out(x, geom)
        out = empty(shape, x.dtype, dev)
        idx = empty(shape, D.int64, dev)
        _k.pool_fwd(dev, "max", adaptive, out, idx, x, x._strides, geom, 0, 0, _big(x, out, idx))
        ctx.geom, ctx.adaptive, ctx.shape = geom, adaptive, x._shape
        ctx.idx = idx
        ctx.mark_non_differentiable(idx)
        return out, idx

    @staticmethod
    def backward(ctx, g, _gi):
        return MaxPoolBackward.apply(g, ctx.idx, ctx.shape, ctx.geom, ctx.adaptive), None, None


class MaxPoolBackward(Function):
    node_name = "MaxPool2DWithIndicesBackwardBackward0"

    @staticmethod
    def forward(ctx, g, idx, shape, geom, adaptive):
        g = contiguous_raw(g)
        out = empty(shape, g.dtype, g._storage.device)
        _k.pool_bwd(g._storage.device, "max", adaptive, out, g, idx, geom, 0, 0, _big(g, out))
        ctx.idx, ctx.shape = idx, shape
        return out

    @staticmethod
    def backward(ctx, gg):
        N, C, H, W = ctx.shape
        idx = ctx.idx
        OH, OW = idx.shape[2:]
        r = gg.reshape(N, C, H * W).gather(2, idx.reshape(N, C, OH * OW)).reshape(N, C, OH, OW)
        return r, None, None, None, None


class AvgPool(Function):
    node_name = "AvgPool2DBackward0"

    @staticmethod
    def forward(ctx, x, geom, adaptive, cip, divisor):
        dev = x._storage.device
        out = empty(_pool_out(x, geom), x.dtype, dev)
        _k.pool_fwd(dev, "avg", adaptive, out, None, x, x._strides, geom, int(cip), int(divisor or 0),
                    _big(x, out))
        ctx.args = (x._shape, geom, adaptive, cip, divisor)
        return out

    @staticmethod
    def backward(ctx, g):
        return AvgPoolBackward.apply(g, *ctx.args), None, None, None, None


class AvgPoolBackward(Function):
    node_name = "AvgPool2DBackwardBackward0"

    @staticmethod
    def forward(ctx, g, shape, geom, adaptive, cip, divisor):
        g = contiguous_raw(g)
        out = empty(shape, g.dtype, g._storage.device)
        _k.pool_bwd(g._storage.device, "avg", adaptive, out, g, None, geom, int(cip), int(divisor or 0),
                    _big(g, out))
        ctx.args = (geom, adaptive, cip, divisor)
        return out

    @staticmethod
    def backward(ctx, gg):
        return AvgPool.apply(gg, *ctx.args), None, None, None, None, None


def _raw_view(t, shape):
    """A raw view of contiguous t with a new shape (no autograd)."""
    from .matmul import _view
    return _view(contiguous_raw(t), shape)


class Convolution(Function):
    """conv over (N, C, H, W) with weight (OC, C/groups, KH, KW): im2col + one batched GEMM with the
    bias fused in as the GEMM's addend.  One graph node, as PyTorch's ConvolutionBackward0; the
    backward recomputes the columns (nothing of size K x L is kept) and is written with Tensor ops,
    so double backward works."""
    node_name = "ConvolutionBackward0"

    @staticmethod
    def forward(ctx, x, weight, bias, geom, groups, pointwise):
        from .matmul import _gemm_raw
        C, H, W, OH, OW, KH, KW = geom[:7]
        N = x._shape[0]
        OC = weight._shape[0]
        G = groups
        K = C // G * KH * KW
        L = OH * OW
        cols = _raw_view(x, (N, G, K, L)) if pointwise else im2col_raw(x, geom)
        cols = _raw_view(cols, (N, G, K, L))
        w3 = _raw_view(weight, (G, OC // G, K))
        if bias is not None:
            out = _gemm_raw(w3, cols, _raw_view(bias, (G, OC // G, 1)), 1, 1)
        else:
            out = _gemm_raw(w3, cols)
        ctx.save_for_backward(x, weight)
        ctx.args = (geom, G, pointwise, bias is not None)
        return _raw_view(out, (N, OC, OH, OW))

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        geom, G, pointwise, has_bias = ctx.args
        C, H, W, OH, OW, KH, KW = geom[:7]
        N = x.shape[0]
        OC = weight.shape[0]
        K = C // G * KH * KW
        L = OH * OW
        g4 = g.reshape(N, G, OC // G, L)
        gx = gw = gb = None
        need = ctx.needs_input_grad
        if need[0]:
            gcols = weight.reshape(G, OC // G, K).transpose(1, 2).matmul(g4)          # (N, G, K, L)
            if pointwise:
                gx = gcols.reshape(x.shape)
            else:
                gx = Col2Im.apply(gcols.reshape(N, C * KH * KW, L), geom, N)
        if need[1]:
            cols = x.reshape(N, G, K, L) if pointwise else Im2Col.apply(x, geom).reshape(N, G, K, L)
            gw = g4.matmul(cols.transpose(2, 3)).sum(0).reshape(weight.shape)
        if has_bias and need[2]:
            gb = g.sum((0, 2, 3))
        return gx, gw, gb, None, None, None
