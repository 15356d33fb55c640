"""Generated kernels for convolution and pooling over (N, C, H, W) inputs (1-D uses H = 1).

One work-item per element written; every backward is a *gather* over the outputs that read
an element (no atomics, deterministic).  Kernels are specialised on the C type, the index type
and the op only: sizes, strides, offsets and window parameters are arguments.

  im2col:   cols[n, c, kh, kw, oh, ow] = x[n, c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw]  (0 outside)
  col2im:   dx[n, c, h, w] = sum of the cols entries that read x[n, c, h, w]
  pool_fwd: max (value + flat h*W+w index, NaN propagates as PyTorch) or average, regular or
            adaptive windows
  pool_bwd: max (gather of the grads whose index is this element) or average
"""
import numpy as np

from .launch import launch, round_up

_ACC = {"half": "float", "float": "float", "double": "double", "long": "long", "int": "long", "short": "long",
        "char": "long", "uchar": "long"}
_LOWEST = {"half": "-INFINITY", "float": "-INFINITY", "double": "-INFINITY", "long": "LONG_MIN", "int": "INT_MIN",
           "short": "SHRT_MIN", "char": "CHAR_MIN", "uchar": "0"}
_FLOAT = ("half", "float", "double")


def _head(ct):
    p = ""
    if ct == "double":
        p += "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
    if ct == "half":
        p += "#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n"
    return p


def _geom_params(I):
    return ", ".join(f"{I} {n}" for n in ("C", "H", "W", "OH", "OW", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW"))


def gen_im2col(ct, I):
    return _head(ct) + f"""
__kernel void im2col(__global {ct}* out, __global const {ct}* x, {I} x_off, {I} sn, {I} sc, {I} sh, {I} sw,
                     {_geom_params(I)}, {I} n) {{
    {I} gid = get_global_id(0);
    if (gid >= n) return;
    {I} r = gid;
    {I} ow = r % OW; r /= OW;
    {I} oh = r % OH; r /= OH;
    {I} kw = r % KW; r /= KW;
    {I} kh = r % KH; r /= KH;
    {I} c = r % C;  {I} b = r / C;
    {I} h = oh * SH - PH + kh * DH;
    {I} w = ow * SW - PW + kw * DW;
    {ct} v = ({ct})0;
    if (h >= 0 && h < H && w >= 0 && w < W) v = x[x_off + b * sn + c * sc + h * sh + w * sw];
    out[gid] = v;
}}
"""


def gen_col2im(ct, I):
    acc = _ACC[ct]
    return _head(ct) + f"""
__kernel void col2im(__global {ct}* out, __global const {ct}* cols, {I} c_off, {_geom_params(I)}, {I} n) {{
    {I} gid = get_global_id(0);
    if (gid >= n) return;
    {I} r = gid;
    {I} w = r % W; r /= W;
    {I} h = r % H; r /= H;
    {I} bc = r;                                   /* n * C + c */
    {acc} s = ({acc})0;
    for ({I} kh = 0; kh < KH; ++kh) {{
        {I} t = h + PH - kh * DH;
        if (t < 0) break;
        if (t % SH) continue;
        {I} oh = t / SH;
        if (oh >= OH) continue;
        for ({I} kw = 0; kw < KW; ++kw) {{
            {I} u = w + PW - kw * DW;
            if (u < 0) break;
            if (u % SW) continue;
            {I} ow = u / SW;
            if (ow >= OW) continue;
            s += ({acc})cols[c_off + (((bc * KH + kh) * KW + kw) * OH + oh) * OW + ow];
        }}
    }}
    out[gid] = ({ct})s;
}}
"""


def _window(axis, adaptive, I):
    """C statements giving start `{a}s`, count `{a}n` and step `{a}d` of output `o{a}`'s window."""
    a, A = axis, axis.upper()
    if adaptive:
        return (f"    {I} {a}s = (o{a} * {A}) / O{A};\n"
                f"    {I} {a}n = ((o{a} + 1) * {A} + O{A} - 1) / O{A} - {a}s;\n"
                f"    {I} {a}d = 1;\n")
    return (f"    {I} {a}s = o{a} * S{A} - P{A};\n"
            f"    {I} {a}n = K{A};\n"
            f"    {I} {a}d = D{A};\n")


def _avg_div(adaptive, I):
    if adaptive:
        return f"    {I} div = hn * wn;\n"
    return (f"    {I} he = min(hs + KH, H + PH), we = min(ws + KW, W + PW);\n"
            f"    {I} div = (he - hs) * (we - ws);\n"
            f"    {I} hs0 = max(hs, ({I})0), ws0 = max(ws, ({I})0);\n"
            f"    he = min(he, H); we = min(we, W);\n"
            f"    if (divisor > 0) div = divisor; else if (!cip) div = (he - hs0) * (we - ws0);\n")


def gen_pool_fwd(ct, I, op, adaptive):
    acc = _ACC[ct]
    head = _head(ct) + f"""
__kernel void pool_fwd(__global {ct}* out, __global long* idx, __global const {ct}* x, {I} x_off,
                       {I} sn, {I} sc, {I} sh, {I} sw, {_geom_params(I)}, int cip, {I} divisor, {I} n) {{
    {I} gid = get_global_id(0);
    if (gid >= n) return;
    {I} r = gid;
    {I} ow = r % OW; r /= OW;
    {I} oh = r % OH; r /= OH;
    {I} c = r % C;  {I} b = r / C;
    __global const {ct}* p = x + x_off + b * sn + c * sc;
""" + _window("h", adaptive, I) + _window("w", adaptive, I)
    if op == "max":
        body = f"""
    while (hs < 0) {{ hs += hd; hn -= 1; }}
    while (ws < 0) {{ ws += wd; wn -= 1; }}
    {acc} best = {_LOWEST[ct]};
    long bi = (long)hs * W + ws;
    for ({I} i = 0; i < hn; ++i) {{
        {I} h = hs + i * hd;
        if (h >= H) break;
        for ({I} j = 0; j < wn; ++j) {{
            {I} w = ws + j * wd;
            if (w >= W) break;
            {acc} v = ({acc})p[h * sh + w * sw];
            if (v > best{" || isnan(v)" if ct in _FLOAT else ""}) {{ best = v; bi = (long)h * W + w; }}
        }}
    }}
    out[gid] = ({ct})best;
    idx[gid] = bi;
}}
"""
    else:
        body = _avg_div(adaptive, I) + f"""
    {acc} s = ({acc})0;
    for ({I} h = max(hs, ({I})0); h < min(hs + hn, H); ++h)
        for ({I} w = max(ws, ({I})0); w < min(ws + wn, W); ++w)
            s += ({acc})p[h * sh + w * sw];
    out[gid] = ({ct})(s / ({acc})div);
}}
"""
    return head + body


def _candidates(axis, adaptive, I):
    """Loop header over the outputs o{a} whose window holds input position {a} (regular: one per k)."""
    a, A = axis, axis.upper()
    if adaptive:
        return (f"    for ({I} o{a} = ({a} * O{A}) / {A}; o{a} < (({a} + 1) * O{A} + {A} - 1) / {A}; ++o{a}) {{\n")
    return (f"    for ({I} k{a} = 0; k{a} < K{A}; ++k{a}) {{\n"
            f"        {I} t{a} = {a} + P{A} - k{a} * D{A};\n"
            f"        if (t{a} < 0) break;\n"
            f"        if (t{a} % S{A}) continue;\n"
            f"        {I} o{a} = t{a} / S{A};\n"
            f"        if (o{a} >= O{A}) continue;\n")


def _avg_candidates(axis, I):
    """Regular average windows have no dilation: outputs o with o*S - P <= a < o*S - P + K."""
    a, A = axis, axis.upper()
    return (f"    {I} lo{a} = ({a} + P{A} < K{A}) ? 0 : ({a} + P{A} - K{A}) / S{A} + 1;\n"
            f"    {I} hi{a} = min(({a} + P{A}) / S{A}, O{A} - 1);\n"
            f"    for ({I} o{a} = lo{a}; o{a} <= hi{a}; ++o{a}) {{\n")


def gen_pool_bwd(ct, I, op, adaptive):
    acc = _ACC[ct]
    src = _head(ct) + f"""
__kernel void pool_bwd(__global {ct}* out, __global const {ct}* g, {I} g_off, __global const long* idx,
                       {I} i_off, {_geom_params(I)}, int cip, {I} divisor, {I} n) {{
    {I} gid = get_global_id(0);
    if (gid >= n) return;
    {I} r = gid;
    {I} w = r % W; r /= W;
    {I} h = r % H; r /= H;
    {I} bc = r;
    __global const {ct}* gp = g + g_off + bc * OH * OW;
    {acc} s = ({acc})0;
"""
    if op == "max":
        src += f"    __global const long* ip = idx + i_off + bc * OH * OW;\n    long me = (long)h * W + w;\n"
        src += _candidates("h", adaptive, I) + _candidates("w", adaptive, I)
        src += "        if (ip[oh * OW + ow] == me) s += (" + acc + ")gp[oh * OW + ow];\n    }}\n"
    else:
        if adaptive:
            src += _candidates("h", adaptive, I) + _candidates("w", adaptive, I)
        else:
            src += _avg_candidates("h", I) + _avg_candidates("w", I)
        src += _window("h", adaptive, I).replace("\n", "\n    ") + _window("w", adaptive, I).replace("\n", "\n    ")
        src += _avg_div(adaptive, I).replace("\n", "\n    ")
        src += f"        s += ({acc})gp[oh * OW + ow] / ({acc})div;\n    }}}}\n"
    src += f"    out[gid] = ({ct})s;\n}}\n"
    return src


def _it(big):
    return ("long", np.int64) if big else ("int", np.int32)


def _run(device, key, gen, name, n, args):
    knl = device.programs.kernel(key, lambda: (gen(), name))
    wg = device.wg
    launch(device, knl, (round_up(n, wg),), (wg,), args, name)


def _geom(it, g):
    return [it(v) for v in g]


def im2col(device, out, x, xst, geom, big):
    """out: contiguous (N, C, KH, KW, OH, OW) buffer; x: tensor with strides xst = (sn, sc, sh, sw)."""
    n = out.numel()
    if n == 0:
        return
    I, it = _it(big)
    ct = x.dtype.ctype
    args = [out._storage.buf, x._storage.buf, it(x._offset)] + [it(s) for s in xst] + _geom(it, geom) + [it(n)]
    _run(device, ("im2col", ct, I), lambda: gen_im2col(ct, I), "im2col", n, args)


def col2im(device, out, cols, geom, big):
    """out: contiguous (N, C, H, W); cols: contiguous (N, C, KH, KW, OH, OW)."""
    n = out.numel()
    if n == 0:
        return
    I, it = _it(big)
    ct = out.dtype.ctype
    args = [out._storage.buf, cols._storage.buf, it(cols._offset)] + _geom(it, geom) + [it(n)]
    _run(device, ("col2im", ct, I), lambda: gen_col2im(ct, I), "col2im", n, args)


def pool_fwd(device, op, adaptive, out, idx, x, xst, geom, cip, divisor, big):
    n = out.numel()
    if n == 0:
        return
    I, it = _it(big)
    ct = x.dtype.ctype
    ibuf = idx._storage.buf if idx is not None else out._storage.buf
    args = ([out._storage.buf, ibuf, x._storage.buf, it(x._offset)] + [it(s) for s in xst] + _geom(it, geom)
            + [np.int32(cip), it(divisor), it(n)])
    if out._offset or (idx is not None and idx._offset):
        raise AssertionError("pool_fwd expects fresh outputs")
    _run(device, ("pool_fwd", ct, I, op, adaptive), lambda: gen_pool_fwd(ct, I, op, adaptive), "pool_fwd", n, args)


def pool_bwd(device, op, adaptive, out, g, idx, geom, cip, divisor, big):
    """out: contiguous (N*C, H, W) grad; g (and idx): contiguous (N*C, OH, OW)."""
    n = out.numel()
    if n == 0:
        return
    I, it = _it(big)
    ct = out.dtype.ctype
    ibuf = idx._storage.buf if idx is not None else g._storage.buf
    ioff = idx._offset if idx is not None else 0
    args = [out._storage.buf, g._storage.buf, it(g._offset), ibuf, it(ioff)] + _geom(it, geom) + [np.int32(cip), it(divisor), it(n)]
    _run(device, ("pool_bwd", ct, I, op, adaptive), lambda: gen_pool_bwd(ct, I, op, adaptive), "pool_bwd", n, args)
