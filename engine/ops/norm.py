"""Fused layer-norm kernels (used by engine.nn.functional.layer_norm).

The input is viewed as M contiguous rows of K elements (K = prod(normalized_shape)).
Forward, one kernel: per row mean, then the centred sum of squares (two passes over the row:
as accurate as Welford), rstd = rsqrt(var + eps), then y = (x - mean) * rstd [* w] [+ b];
mean and rstd (M,) are kept for the backward.
Backward dx, one kernel: per row a = mean(g*w), b = mean(g*w * xhat), then
    dx = rstd * (g*w - a - xhat * b)
dw = sum_rows(g * xhat) and db = sum_rows(g) are one elementwise pass + column reductions.
One work-group per long row, one work-item per short row (runtime.reduction._plan), as softmax.
"""
import numpy as np

from .. import dtypes as D
from ..runtime.launch import launch
from ..runtime.reduction import _SM_REDUCE, _fp64, _plan
from ..tensor import empty
from ._core import contiguous_raw, ew, reduce_raw

__all__ = []


def _head(mode, wg, idx_t, a):
    if mode == "serial":
        return [f"  {idx_t} m = get_global_id(0);", "  if (m >= M) return;", f"  {idx_t} j0 = 0, js = 1;"]
    return [f"  {idx_t} m = get_group_id(0);", "  int lid = get_local_id(0);", f"  {idx_t} j0 = lid, js = {wg};",
            f"  __local {a} sh[{wg}];"]


def _red(mode, var, wg, a):
    if mode == "serial":
        return []
    return [_SM_REDUCE.format(var=var, wg=wg, a=a, combine="sh[lid] = w + u;")]


def gen_fwd(ct, a, idx_t, mode, wg, has_w, has_b):
    params = [f"__global const {ct}* x", f"{idx_t} x_off", f"__global const {ct}* w", f"{idx_t} w_off",
              f"__global const {ct}* b", f"{idx_t} b_off", f"__global {ct}* y", f"__global {ct}* mean_out",
              f"__global {ct}* rstd_out", f"{idx_t} M", f"{idx_t} K", f"{a} eps"]
    loop = f"for ({idx_t} j = j0; j < K; j += js)"
    body = [f"__kernel void ln_fwd({', '.join(params)}) {{", *_head(mode, wg, idx_t, a),
            f"  {idx_t} xb = x_off + m * K, yb = m * K;",
            f"  {a} s = 0;",
            f"  {loop} s += ({a})x[xb + j];", *_red(mode, "s", wg, a),
            f"  {a} mu = s / ({a})K;",
            f"  {a} q = 0;",
            f"  {loop} {{ {a} d = ({a})x[xb + j] - mu; q += d * d; }}", *_red(mode, "q", wg, a),
            f"  {a} r = rsqrt(q / ({a})K + eps);",
            f"  {loop} {{",
            f"    {a} v = (({a})x[xb + j] - mu) * r;",
            f"    v = v * ({a})w[w_off + j];" if has_w else "",
            f"    v = v + ({a})b[b_off + j];" if has_b else "",
            f"    y[yb + j] = ({ct})v;",
            "  }",
            f"  if (j0 == 0) {{ mean_out[m] = ({ct})mu; rstd_out[m] = ({ct})r; }}",
            "}"]
    return _fp64("\n".join(line for line in body if line))


def gen_bwd(ct, a, idx_t, mode, wg, has_w):
    params = [f"__global const {ct}* g", f"__global const {ct}* x", f"{idx_t} x_off", f"__global const {ct}* w",
              f"{idx_t} w_off", f"__global const {ct}* mean", f"__global const {ct}* rstd", f"__global {ct}* dx",
              f"{idx_t} M", f"{idx_t} K"]
    loop = f"for ({idx_t} j = j0; j < K; j += js)"
    gh = f"({a})g[gb + j] * ({a})w[w_off + j]" if has_w else f"({a})g[gb + j]"
    body = [f"__kernel void ln_bwd({', '.join(params)}) {{", *_head(mode, wg, idx_t, a),
            f"  {idx_t} xb = x_off + m * K, gb = m * K;",
            f"  {a} mu = ({a})mean[m], r = ({a})rstd[m], sa = 0, sb = 0;",
            f"  {loop} {{ {a} h = {gh}; sa += h; sb += h * ((({a})x[xb + j] - mu) * r); }}",
            *_red(mode, "sa", wg, a), *_red(mode, "sb", wg, a),
            f"  sa = sa / ({a})K; sb = sb / ({a})K;",
            f"  {loop} {{ {a} h = {gh}; {a} xh = (({a})x[xb + j] - mu) * r;"
            f" dx[gb + j] = ({ct})(r * (h - sa - xh * sb)); }}",
            "}"]
    return _fp64("\n".join(body))


def _geom(dev, x, M, K):
    big = x._storage.size >= 2**31 or M * K >= 2**31
    idx_t, it = ("long", np.int64) if big else ("int", np.int32)
    serial, _, wg = _plan(dev, M, K, True, split=False)
    mode = "serial" if serial else "group"
    gsize = ((M + wg - 1) // wg * wg,) if serial else (M * wg,)
    return idx_t, it, mode, wg, gsize, (wg,)


def _acc(dt):
    return ("double", np.float64) if dt is D.float64 else ("float", np.float32)


def layer_norm_fwd(x, M, K, weight, bias, eps):
    """x: contiguous; returns (y with x's shape, mean (M,), rstd (M,))."""
    dev = x._storage.device
    ct = x.dtype.ctype
    a, anp = _acc(x.dtype)
    y = empty(x._shape, x.dtype, dev)
    mean = empty((M,), x.dtype, dev)
    rstd = empty((M,), x.dtype, dev)
    if M == 0 or K == 0:
        return y, mean, rstd
    idx_t, it, mode, wg, gsize, lsize = _geom(dev, x, M, K)
    hw, hb = weight is not None, bias is not None
    knl = dev.programs.kernel(("ln_fwd", ct, a, idx_t, mode, wg, hw, hb),
                              lambda: (gen_fwd(ct, a, idx_t, mode, wg, hw, hb), "ln_fwd"))
    w = weight if hw else x
    b = bias if hb else x
    launch(dev, knl, gsize, lsize, [x._storage.buf, it(x._offset), w._storage.buf, it(w._offset), b._storage.buf,
                                    it(b._offset), y._storage.buf, mean._storage.buf, rstd._storage.buf, it(M),
                                    it(K), anp(eps)], "native_layer_norm")
    return y, mean, rstd


def layer_norm_bwd(g, x, M, K, pshape, weight, mean, rstd, need_dx, need_w, need_b):
    """(dx, dw, db) (each None where not needed); x, weight contiguous."""
    dev = x._storage.device
    ct = x.dtype.ctype
    a, _ = _acc(x.dtype)
    g = contiguous_raw(g)
    dx = dw = db = None
    if need_dx:
        dx = empty(x._shape, x.dtype, dev)
        if M and K:
            idx_t, it, mode, wg, gsize, lsize = _geom(dev, x, M, K)
            hw = weight is not None
            knl = dev.programs.kernel(("ln_bwd", ct, a, idx_t, mode, wg, hw),
                                      lambda: (gen_bwd(ct, a, idx_t, mode, wg, hw), "ln_bwd"))
            w = weight if hw else x
            launch(dev, knl, gsize, lsize, [g._storage.buf, x._storage.buf, it(x._offset), w._storage.buf,
                                            it(w._offset), mean._storage.buf, rstd._storage.buf, dx._storage.buf,
                                            it(M), it(K)], "native_layer_norm_backward")
    if need_w or need_b:
        from ..tensor import make
        from ..runtime.elementwise import contiguous_strides
        g2 = make(g._storage, (M, K), (K, 1), g._offset, g.dtype)
        if need_w:
            x2 = make(x._storage, (M, K), (K, 1), x._offset, x.dtype)
            mc = make(mean._storage, (M, 1), (1, 1), mean._offset, mean.dtype)
            rc = make(rstd._storage, (M, 1), (1, 1), rstd._offset, rstd.dtype)
            gx = ew("ln_gxhat", "v1 * ((v2 - v3) * v4)", [g2, x2, mc, rc], x.dtype, x.dtype)
            dw = reduce_raw("sum", gx, (0,), False, x.dtype)[0]
            dw = make(dw._storage, pshape, contiguous_strides(pshape), dw._offset, dw.dtype)
        if need_b:
            db = reduce_raw("sum", g2, (0,), False, x.dtype)[0]
            db = make(db._storage, pshape, contiguous_strides(pshape), db._offset, db.dtype)
    return dx, dw, db
