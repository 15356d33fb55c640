"""Generated kernels for convolution and pooling over (N, C, H, W) inputs (1-D uses H = 1).

One work-item per column (a fixed w / ow, looping over h / oh), so the index arithmetic is paid
once per column and neighbouring work-items touch neighbouring addresses.  Every backward is a
gather: a work-item owns one input column, zeroes it and adds, in a fixed order, every output
that read each element (no atomics, deterministic).  Window loops have bounds uniform across
work-items, which PoCL vectorises.  Kernels are specialised on the C type, the index type, the
op and dilation-or-not only: sizes, strides, offsets and window parameters are arguments.

  im2col:       cols[n, c, kh, kw, oh, ow] = x[n, c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw]  (0 outside)
  col2im:       dx[n, c, h, w] = sum of the cols entries that read x[n, c, h, w]
  pool_fwd:     max (value + flat h*W+w index, NaN propagates as PyTorch) or average, regular or
                adaptive windows
  pool_bwd:     max (grads whose saved index is this element) or average
  pool_scatter: max backward when windows cannot overlap (a store at the saved index)
"""
import numpy as np

from .launch import fill_buffer, launch, round_up

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
    """One work-item per (n, c, kh, kw, ow), looping over oh: the index decomposition is paid once
    per column of OH outputs, and neighbouring work-items write neighbouring addresses."""
    return _head(ct) + f"""
__kernel void im2col(__global {ct}* out, __global const {ct}* x, {I} x_off, {I} sn, {I} sc, {I} sh, {I} sw,
                     {_geom_params(I)}, {I} n) {{
    {I} gid = get_global_id(0);
    if (gid >= n) return;
    {I} ow = gid % OW;
    {I} row = gid / OW;                              /* ((b * C + c) * KH + kh) * KW + kw */
    {I} r = row;
    {I} kw = r % KW; r /= KW;
    {I} kh = r % KH; r /= KH;
    {I} c = r % C;  {I} b = r / C;
    {I} w = ow * SW - PW + kw * DW;
    int wok = w >= 0 && w < W;
    {I} base = x_off + b * sn + c * sc + (wok ? w * sw : 0);
    __global {ct}* o = out + row * OH * OW + ow;
    {I} h = kh * DH - PH;
    for ({I} oh = 0; oh < OH; ++oh, h += SH) {{
        {ct} v = ({ct})0;
        if (wok && h >= 0 && h < H) v = x[base + h * sh];
        o[oh * OW] = v;
    }}
}}
"""


def _range(a, kind, I, ind="    "):
    """Open loops over the outputs o{a} whose window holds input position {a}, defining k{a}
    (the kernel offset) for the regular kinds.  kind: 'range' (no dilation), 'dil', 'adaptive'."""
    A = a.upper()
    if kind == "adaptive":
        return (f"{ind}for ({I} o{a} = ({a} * O{A}) / {A}; o{a} < (({a} + 1) * O{A} + {A} - 1) / {A}; ++o{a}) {{\n")
    if kind == "range":
        return (f"{ind}for ({I} o{a} = lo{a}; o{a} <= hi{a}; ++o{a}) {{\n"
                f"{ind}    {I} k{a} = {a} + P{A} - o{a} * S{A};\n")
    return (f"{ind}for ({I} k{a} = 0; k{a} < K{A}; ++k{a}) {{\n"
            f"{ind}    {I} t{a} = {a} + P{A} - k{a} * D{A};\n"
            f"{ind}    if (t{a} < 0) break;\n"
            f"{ind}    if (t{a} % S{A}) continue;\n"
            f"{ind}    {I} o{a} = t{a} / S{A};\n"
            f"{ind}    if (o{a} >= O{A}) continue;\n")


def _bounds(a, kind, I, ind="    "):
    """lo{a} / hi{a} for kind 'range': outputs o with o*S - P <= a < o*S - P + K."""
    if kind != "range":
        return ""
    A = a.upper()
    return (f"{ind}{I} lo{a} = ({a} + P{A} < K{A}) ? 0 : ({a} + P{A} - K{A}) / S{A} + 1;\n"
            f"{ind}{I} hi{a} = min(({a} + P{A}) / S{A}, O{A} - 1);\n")


def _col_loops(I, body, ind="    "):
    """The adjoint of im2col's loops for one input column (fixed n, c, w): every (kw, kh, oh)
    whose column entry read an element of it; bounds are uniform across work-items, so PoCL
    vectorises them.  `body` sees ow, kh, kw, oh, h."""
    return f"""{ind}for ({I} kw = 0; kw < KW; ++kw) {{
{ind}    {I} tw = w + PW - kw * DW;
{ind}    if (tw < 0 || tw % SW) continue;
{ind}    {I} ow = tw / SW;
{ind}    if (ow >= OW) continue;
{ind}    for ({I} kh = 0; kh < KH; ++kh) {{
{ind}        {I} h0 = kh * DH - PH;
{ind}        {I} lo = h0 >= 0 ? 0 : (SH - 1 - h0) / SH;
{ind}        {I} hi = (H - 1 - h0 < 0) ? 0 : min(OH, (H - 1 - h0) / SH + 1);
{ind}        for ({I} oh = lo; oh < hi; ++oh) {{
{ind}            {I} h = h0 + oh * SH;
{body}
{ind}        }}
{ind}    }}
{ind}}}
"""


def gen_col2im(ct, I, dil=True):
    """One work-item per input column (n, c, w): zero it, then add every column entry that read
    it, in a fixed order (deterministic; the column belongs to this work-item alone)."""
    body = "                o[h * W] += cp[((kh * KW + kw) * OH + oh) * OW + ow];"
    return _head(ct) + f"""
__kernel void col2im(__global {ct}* out, __global const {ct}* cols, {I} c_off, {_geom_params(I)}, {I} n) {{
    {I} gid = get_global_id(0);
    if (gid >= n) return;
    {I} w = gid % W;
    {I} bc = gid / W;                                /* n * C + c */
    __global const {ct}* cp = cols + c_off + bc * KH * KW * OH * OW;
    __global {ct}* o = out + bc * H * W + w;
    for ({I} h = 0; h < H; ++h) o[h * W] = ({ct})0;
{_col_loops(I, body)}}}
"""


def _window(axis, adaptive, I, ind="    "):
    """Start `{a}s`, count `{a}n` and step `{a}d` of output `o{a}`'s window."""
    a, A = axis, axis.upper()
    if adaptive:
        return (f"{ind}{I} {a}s = (o{a} * {A}) / O{A};\n"
                f"{ind}{I} {a}n = ((o{a} + 1) * {A} + O{A} - 1) / O{A} - {a}s;\n"
                f"{ind}{I} {a}d = 1;\n")
    return (f"{ind}{I} {a}s = o{a} * S{A} - P{A};\n"
            f"{ind}{I} {a}n = K{A};\n"
            f"{ind}{I} {a}d = D{A};\n")


def _avg_div(adaptive, I, ind="    "):
    if adaptive:
        return f"{ind}{I} div = hn * wn;\n"
    return (f"{ind}{I} he = min(hs + KH, H + PH), we = min(ws + KW, W + PW);\n"
            f"{ind}{I} div = (he - hs) * (we - ws);\n"
            f"{ind}{I} hs0 = max(hs, ({I})0), ws0 = max(ws, ({I})0);\n"
            f"{ind}he = min(he, H); we = min(we, W);\n"
            f"{ind}if (divisor > 0) div = divisor; else if (!cip) div = (he - hs0) * (we - ws0);\n")


def gen_pool_fwd(ct, I, op, adaptive):
    """One work-item per (n, c, ow), looping over oh."""
    acc = _ACC[ct]
    if not adaptive:
        return _gen_pool_fwd_regular(ct, I, op)
    src = _head(ct) + f"""
__kernel void pool_fwd(__global {ct}* out, __global long* idx, __global const {ct}* x, {I} x_off,
                       {I} sn, {I} sc, {I} sh, {I} sw, {_geom_params(I)}, int cip, {I} divisor, {I} n) {{
    {I} gid = get_global_id(0);
    if (gid >= n) return;
    {I} ow = gid % OW;
    {I} bc = gid / OW;
    {I} c = bc % C;  {I} b = bc / C;
    __global const {ct}* p = x + x_off + b * sn + c * sc;
""" + _window("w", adaptive, I)
    if op == "max":
        src += "    while (ws < 0) { ws += wd; wn -= 1; }\n"
    src += f"    for ({I} oh = 0; oh < OH; ++oh) {{\n" + _window("h", adaptive, I, "        ")
    if op == "max":
        src += f"""        while (hs < 0) {{ hs += hd; hn -= 1; }}
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
        out[(bc * OH + oh) * OW + ow] = ({ct})best;
        idx[(bc * OH + oh) * OW + ow] = bi;
    }}
}}
"""
    else:
        src += _avg_div(adaptive, I, "        ") + f"""        {acc} s = ({acc})0;
        for ({I} h = max(hs, ({I})0); h < min(hs + hn, H); ++h)
            for ({I} w = max(ws, ({I})0); w < min(ws + wn, W); ++w)
                s += ({acc})p[h * sh + w * sw];
        out[(bc * OH + oh) * OW + ow] = ({ct})(s / ({acc})div);
    }}
}}
"""
    return src


def _gen_pool_fwd_regular(ct, I, op):
    """Fixed KH x KW loops with a validity predicate (uniform bounds: PoCL vectorises them)."""
    acc = _ACC[ct]
    src = _head(ct) + f"""
__kernel void pool_fwd(__global {ct}* out, __global long* idx, __global const {ct}* x, {I} x_off,
                       {I} sn, {I} sc, {I} sh, {I} sw, {_geom_params(I)}, int cip, {I} divisor, {I} n) {{
    {I} gid = get_global_id(0);
    if (gid >= n) return;
    {I} ow = gid % OW;
    {I} bc = gid / OW;
    {I} c = bc % C;  {I} b = bc / C;
    __global const {ct}* p = x + x_off + b * sn + c * sc;
    {I} ws = ow * SW - PW;
    for ({I} oh = 0; oh < OH; ++oh) {{
        {I} hs = oh * SH - PH;
"""
    if op == "max":
        nan = " || isnan(v)" if ct in _FLOAT else ""
        src += f"""        {acc} best = {_LOWEST[ct]};
        int bk = -1, k = 0;
        for ({I} i = 0; i < KH; ++i) {{
            {I} h = hs + i * DH;
            for ({I} j = 0; j < KW; ++j, ++k) {{
                {I} w = ws + j * DW;
                if (h >= 0 && h < H && w >= 0 && w < W) {{
                    {acc} v = ({acc})p[h * sh + w * sw];
                    if (bk < 0 || v > best{nan}) {{ best = v; bk = k; }}
                }}
            }}
        }}
        out[(bc * OH + oh) * OW + ow] = ({ct})best;
        idx[(bc * OH + oh) * OW + ow] = (long)(hs + (bk / KW) * DH) * W + ws + (bk % KW) * DW;
    }}
}}
"""
    else:
        src += _avg_div(False, I, "        ") + f"""        {acc} s = ({acc})0;
        for ({I} i = 0; i < KH; ++i) {{
            {I} h = hs + i;
            for ({I} j = 0; j < KW; ++j) {{
                {I} w = ws + j;
                if (h >= 0 && h < H && w >= 0 && w < W) s += ({acc})p[h * sh + w * sw];
            }}
        }}
        out[(bc * OH + oh) * OW + ow] = ({ct})(s / ({acc})div);
    }}
}}
"""
    return src


def _gen_pool_bwd_regular(ct, I, op):
    """Column formulation as col2im: zero the work-item's input column, then add the grad of every
    window that holds each element (max: only where the saved index is that element)."""
    acc = _ACC[ct]
    if op == "max":
        body = ("                if (ip[oh * OW + ow] == (long)h * W + w) o[h * W] += gp[oh * OW + ow];")
    else:
        body = ("                {\n" + _window("h", False, I, "                ")
                + _window("w", False, I, "                ") + _avg_div(False, I, "                ")
                + f"                o[h * W] += ({ct})(({acc})gp[oh * OW + ow] / ({acc})div);\n"
                "                }")
    return _head(ct) + f"""
__kernel void pool_bwd(__global {ct}* out, __global const {ct}* g, {I} g_off, __global const long* idx,
                       {I} i_off, {_geom_params(I)}, int cip, {I} divisor, {I} n) {{
    {I} gid = get_global_id(0);
    if (gid >= n) return;
    {I} w = gid % W;
    {I} bc = gid / W;
    __global const {ct}* gp = g + g_off + bc * OH * OW;
    __global const long* ip = idx + i_off + bc * OH * OW;
    __global {ct}* o = out + bc * H * W + w;
    for ({I} h = 0; h < H; ++h) o[h * W] = ({ct})0;
{_col_loops(I, body)}}}
"""


def gen_pool_bwd(ct, I, op, adaptive, dil=True):
    """One work-item per (n, c, w), looping over h: a gather over the windows holding (h, w)."""
    acc = _ACC[ct]
    if not adaptive:
        return _gen_pool_bwd_regular(ct, I, op)
    kind = "adaptive" if adaptive else ("dil" if (op == "max" and dil) else "range")
    src = _head(ct) + f"""
__kernel void pool_bwd(__global {ct}* out, __global const {ct}* g, {I} g_off, __global const long* idx,
                       {I} i_off, {_geom_params(I)}, int cip, {I} divisor, {I} n) {{
    {I} gid = get_global_id(0);
    if (gid >= n) return;
    {I} w = gid % W;
    {I} bc = gid / W;
    __global const {ct}* gp = g + g_off + bc * OH * OW;
    __global const long* ip = idx + i_off + bc * OH * OW;
{_bounds("w", kind, I)}    for ({I} h = 0; h < H; ++h) {{
        {acc} s = ({acc})0;
        long me = (long)h * W + w;
{_bounds("h", kind, I, "        ")}{_range("h", kind, I, "        ")}{_range("w", kind, I, "            ")}"""
    if op == "max":
        src += "                if (ip[oh * OW + ow] == me) s += (" + acc + ")gp[oh * OW + ow];\n"
    else:
        src += (_window("h", adaptive, I, "                ") + _window("w", adaptive, I, "                ")
                + _avg_div(adaptive, I, "                ")
                + f"                s += ({acc})gp[oh * OW + ow] / ({acc})div;\n")
    src += f"""            }}
        }}
        out[(bc * H + h) * W + w] = ({ct})s;
    }}
}}
"""
    return src


def gen_pool_scatter(ct, I):
    """Max-pool backward for windows that cannot overlap: each input gets at most one grad, so a
    plain store at the saved index (after a zero fill) is race-free and deterministic."""
    return _head(ct) + f"""
__kernel void pool_scatter(__global {ct}* out, __global const {ct}* g, {I} g_off, __global const long* idx,
                           {I} i_off, {I} HW, {I} OHW, {I} n) {{
    {I} gid = get_global_id(0);
    if (gid >= n) return;
    out[(gid / OHW) * HW + ({I})idx[i_off + gid]] = g[g_off + gid];
}}
"""


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
    n = out.numel() // geom[3]          # work-items: one per (n, c, kh, kw, ow)
    if n == 0:
        return
    I, it = _it(big)
    ct = x.dtype.ctype
    args = [out._storage.buf, x._storage.buf, it(x._offset)] + [it(s) for s in xst] + _geom(it, geom) + [it(n)]
    _run(device, ("im2col", ct, I), lambda: gen_im2col(ct, I), "im2col", n, args)


def col2im(device, out, cols, geom, big):
    """out: contiguous (N, C, H, W); cols: contiguous (N, C, KH, KW, OH, OW)."""
    n = out.numel() // geom[1]          # one per (n, c, w)
    if n == 0:
        return
    I, it = _it(big)
    ct = out.dtype.ctype
    dil = geom[11] != 1 or geom[12] != 1
    args = [out._storage.buf, cols._storage.buf, it(cols._offset)] + _geom(it, geom) + [it(n)]
    _run(device, ("col2im", ct, I, dil), lambda: gen_col2im(ct, I, dil), "col2im", n, args)


def pool_fwd(device, op, adaptive, out, idx, x, xst, geom, cip, divisor, big):
    n = out.numel() // geom[3]          # one per (n, c, ow)
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
    n = out.numel() // geom[1]          # one per (n, c, w)
    if n == 0:
        return
    I, it = _it(big)
    ct = out.dtype.ctype
    C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW = geom
    if op == "max" and not adaptive and SH >= DH * (KH - 1) + 1 and SW >= DW * (KW - 1) + 1:
        fill_buffer(device, out._storage.buf, np.zeros(1, out.dtype.np), out._offset * out.dtype.itemsize,
                    out.numel() * out.dtype.itemsize)
        m = g.numel()
        if m:
            args = [out._storage.buf, g._storage.buf, it(g._offset), idx._storage.buf, it(idx._offset),
                    it(H * W), it(OH * OW), it(m)]
            _run(device, ("pool_scatter", ct, I), lambda: gen_pool_scatter(ct, I), "pool_scatter", m, args)
        return
    ibuf = idx._storage.buf if idx is not None else g._storage.buf
    ioff = idx._offset if idx is not None else 0
    args = ([out._storage.buf, g._storage.buf, it(g._offset), ibuf, it(ioff)] + _geom(it, geom)
            + [np.int32(cip), it(divisor), it(n)])
    dil = geom[11] != 1 or geom[12] != 1
    _run(device, ("pool_bwd", ct, I, op, adaptive, dil), lambda: gen_pool_bwd(ct, I, op, adaptive, dil), "pool_bwd",
         n, args)
