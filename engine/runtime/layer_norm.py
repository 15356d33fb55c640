"""Layer-norm row kernels: forward (one kernel: mean, centred sum of squares, normalise, affine), dx
(one kernel), and dweight/dbias (one column kernel of 32 columns x row lanes; on GPUs with narrow rows,
(column, block of rows) partials and a second pass of lanes over the blocks).  The row machinery
(layouts, plans, the Kern source builder) is rows.py's; its module docstring has the rooflines.
"""
from .launch import launch
from .rows import TUNE, Geom, Kern, _big, _cached, _cpu, _ext, _gsize, _idx, _plans, _vec_ok, acc_of, plan


# ---- layer norm ---------------------------------------------------------------------------------
# x viewed as M contiguous rows of K; weight / bias are row tensors with kept stride 0.
def gen_ln_fwd(ct, nk, idx_t, mode, wg, contig, vec, has_w, has_b):
    """mean, then the centred sum of squares (two sweeps: as accurate as Welford), rstd = rsqrt(var + eps),
    y = (x - mean) * rstd [* w] [+ b]; mean and rstd kept per row."""
    a = acc_of(ct)[0] if ct != "half" else "float"
    tens = [("x", ct, False), ("y", ct, True)] + ([("w", ct, False)] if has_w else []) + \
        ([("b", ct, False)] if has_b else [])
    k = Kern("ln_fwd", tens, nk, idx_t, mode, wg, contig, vec, a)
    extra = [f"__global {ct}* mean_out", f"__global {ct}* rstd_out", f"{a} eps"]
    x, vx = k.ld("x"), k.vld("x")
    B = [f"  {a} s = 0, q = 0;"]
    B += k.loop(f"s += {x};", f"{a}4 v = {vx}; s += (v.x + v.y) + (v.z + v.w);")
    B += k.sum_reduce("s")
    B += [f"  {a} mu = s / ({a})K;"]
    B += k.loop(f"{a} d = {x} - mu; q += d * d;", f"{a}4 d = {vx} - mu; d = d * d; q += (d.x + d.y) + (d.z + d.w);")
    B += k.sum_reduce("q")
    B += [f"  {a} r = rsqrt(q / ({a})K + eps);"]
    e, ve = f"({x} - mu) * r", f"({vx} - mu) * r"
    if has_w:
        e, ve = f"{e} * {k.ld('w')}", f"{ve} * {k.vld('w')}"
    if has_b:
        e, ve = f"{e} + {k.ld('b')}", f"{ve} + {k.vld('b')}"
    B += k.loop(k.st("y", e), k.vst("y", ve))
    B += [f"  if (lid == 0) {{ mean_out[m] = ({ct})mu; rstd_out[m] = ({ct})r; }}"]
    return k.source(extra, B)


def gen_ln_bwd(ct, nk, idx_t, mode, wg, contig, vec, has_w):
    """h = g*w, xhat = (x - mean)*rstd; a = mean(h), b = mean(h*xhat); dx = rstd * (h - a - xhat*b)."""
    a = acc_of(ct)[0] if ct != "half" else "float"
    tens = [("g", ct, False), ("x", ct, False), ("dx", ct, True)] + ([("w", ct, False)] if has_w else [])
    k = Kern("ln_bwd", tens, nk, idx_t, mode, wg, contig, vec, a)
    extra = [f"__global const {ct}* mean", f"__global const {ct}* rstd"]
    h = f"{k.ld('g')} * {k.ld('w')}" if has_w else k.ld("g")
    vh = f"{k.vld('g')} * {k.vld('w')}" if has_w else k.vld("g")
    B = [f"  {a} mu = ({a})mean[m], r = ({a})rstd[m], sa = 0, sb = 0;"]
    B += k.loop(f"{a} h = {h}; sa += h; sb += h * (({k.ld('x')} - mu) * r);",
                f"{a}4 h = {vh}; {a}4 p = h * (({k.vld('x')} - mu) * r);"
                f" sa += (h.x + h.y) + (h.z + h.w); sb += (p.x + p.y) + (p.z + p.w);")
    B += k.sum_reduce("sa", "sb")
    B += [f"  sa = sa / ({a})K; sb = sb / ({a})K;"]
    B += k.loop(f"{a} h = {h}; {a} xh = ({k.ld('x')} - mu) * r; " + k.st("dx", "r * (h - sa - xh * sb)"),
                f"{a}4 h = {vh}; {a}4 xh = ({k.vld('x')} - mu) * r; " + k.vst("dx", "r * (h - sa - xh * sb)"))
    return k.source(extra, B)


def gen_ln_wb(ct, idx_t, has_w, has_b, final):
    """Column sums over a block of rows: work-item (j, b) sums rows [b*R, min(M, b*R+R)) of column j:
    dw = sum(g * xhat), db = sum(g).  final: write the result (one block), else acc-type partials.
    Rows 4 at a time, so each work-item has 8 loads in flight (neighbouring work-items: neighbouring
    columns, coalesced)."""
    a = acc_of(ct)[0] if ct != "half" else "float"
    ot = ct if final else a

    def row(u):
        ld = f"{a} g{u} = ({a})g[g_o + (m + {u}) * K + j];"
        if has_w:
            ld += (f" {a} x{u} = (({a})x[x_o + (m + {u}) * K + j] - ({a})mean[m + {u}]) * ({a})rstd[m + {u}];")
        return ld

    def acc(us):
        w = " ".join(f"sw += g{u} * x{u};" for u in us) if has_w else ""
        return w + " " + " ".join(f"sb += g{u};" for u in us)
    src = f"""__kernel void ln_wb(__global const {ct}* g, {idx_t} g_o, __global const {ct}* x, {idx_t} x_o,
                    __global const {ct}* mean, __global const {ct}* rstd, __global {ot}* dw, __global {ot}* db,
                    {idx_t} M, {idx_t} K, {idx_t} R) {{
  {idx_t} j = get_global_id(0), b = get_global_id(1);
  if (j >= K) return;
  {idx_t} m = b * R, m1 = min(M, m + R);
  {a} sw = 0, sb = 0;
  for (; m + 4 <= m1; m += 4) {{ {" ".join(row(u) for u in range(4))} {acc(range(4))} }}
  for (; m < m1; ++m) {{ {row(0)} {acc([0])} }}
  {f'dw[b * K + j] = ({ot})sw;' if has_w else ''}
  {f'db[b * K + j] = ({ot})sb;' if has_b else ''}
}}"""
    return _ext(src)


def _lanes_meet(ct, rl, has_w, has_b):
    """The end of the 32-column x rl-lane dweight/dbias kernels: lane sums meet in local memory, lane 0
    writes column j."""
    return f"""  shw[r][c] = sw; shb[r][c] = sb;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = {rl} / 2; s > 0; s >>= 1) {{
    if (r < s) {{ shw[r][c] += shw[r + s][c]; shb[r][c] += shb[r + s][c]; }}
    barrier(CLK_LOCAL_MEM_FENCE);
  }}
  if (r == 0 && j < K) {{
    {f'dw[j] = ({ct})shw[0][c];' if has_w else ''}
    {f'db[j] = ({ct})shb[0][c];' if has_b else ''}
  }}"""


def gen_ln_wb_fin(ct, idx_t, has_w, has_b, rl):
    """Column sums of the (B, K) partials: work-group = 32 columns x `rl` lanes; lane r sums blocks
    r, r + rl, ..., then the lanes meet in local memory (one lane walking all B blocks was a chain
    of B dependent-latency loads: 13 us of a 38 us layer-norm dweight on an H200)."""
    a = acc_of(ct)[0] if ct != "half" else "float"
    src = f"""__kernel void ln_wb_fin(__global const {a}* pw, __global const {a}* pb, __global {ct}* dw,
                        __global {ct}* db, {idx_t} K, {idx_t} B) {{
  const int c = get_local_id(0), r = get_local_id(1);
  {idx_t} j = get_group_id(0) * 32 + c;
  __local {a} shw[{rl}][33], shb[{rl}][33];
  {a} sw = 0, sb = 0;
  if (j < K) {{
    for ({idx_t} b = r; b < B; b += {rl}) {{ {'sw += pw[b * K + j];' if has_w else ''} {'sb += pb[b * K + j];' if has_b else ''} }}
  }}
{_lanes_meet(ct, rl, has_w, has_b)}
}}"""
    return _ext(src)


def _ln_launch(device, kind, gen, name, M, K, rows_, consts, extra, flags):
    """Launch an LN row kernel: rows_ are the (M, K) row tensors, consts the (K,) weight-like ones
    (kept stride 0); extra the trailing arguments."""
    ts = rows_ + consts
    offs = [t._offset for t in ts]
    big = M * K >= 2**31 or _big(*rows_)
    key = (device, kind, M, K, tuple(o & 3 for o in offs), ts[0].dtype.ctype, flags, big)
    pl = _plans.get(key)
    if pl is None:
        ct = ts[0].dtype.ctype
        geom = Geom((M, K), 1, [(o, (K, 1)) for o in offs[:len(rows_)]] + [(o, (0, 1)) for o in offs[len(rows_):]])
        idx_t, it = _idx(big)
        mode, wg = plan(device, M, K, True)
        vec = _vec_ok(device, mode, geom, [ct])
        knl = device.programs.kernel((kind, ct, idx_t, mode, wg, vec, flags), lambda: (gen(
            ct, len(geom.kshape), idx_t, mode, wg, True, vec, *flags), kind))
        pl = _cached(key, lambda: (knl, geom, it, _gsize(mode, wg, M), (wg,)))
    knl, geom, it, gs, ls = pl
    launch(device, knl, gs, ls, geom.args(it, [t._storage.buf for t in ts], offs) + extra, name)


def ln_fwd(device, x, M, K, w, b, y, mean, rstd, eps):
    consts = ([w] if w is not None else []) + ([b] if b is not None else [])
    _ln_launch(device, "ln_fwd", gen_ln_fwd, "native_layer_norm", M, K, [x, y], consts,
               [mean._storage.buf, rstd._storage.buf, acc_of(x.dtype.ctype)[1](eps)], (w is not None, b is not None))


def ln_bwd_dx(device, g, x, M, K, w, mean, rstd, dx):
    _ln_launch(device, "ln_bwd", gen_ln_bwd, "native_layer_norm_backward", M, K, [g, x, dx],
               [w] if w is not None else [], [mean._storage.buf, rstd._storage.buf], (w is not None,))


def gen_ln_wb_strip(ct, idx_t, has_w, has_b, rl):
    """One pass, no partials: work-group = 32 adjacent columns x `rl` row lanes; lane r sums rows
    r, r + rl, ... (4 at a time) of its column, then the rl lane sums meet in local memory.
    A warp reads 32 adjacent columns of one row (coalesced)."""
    a = acc_of(ct)[0] if ct != "half" else "float"

    def row(u):
        mm = f"(m + {u} * {rl})"
        ld = f"{a} g{u} = ({a})g[g_o + {mm} * K + j];"
        if has_w:
            ld += f" {a} x{u} = (({a})x[x_o + {mm} * K + j] - ({a})mean[{mm}]) * ({a})rstd[{mm}];"
        return ld

    def acc(us):
        w = " ".join(f"sw += g{u} * x{u};" for u in us) if has_w else ""
        return w + " " + " ".join(f"sb += g{u};" for u in us)
    src = f"""__kernel void ln_wb_strip(__global const {ct}* g, {idx_t} g_o, __global const {ct}* x, {idx_t} x_o,
                          __global const {ct}* mean, __global const {ct}* rstd, __global {ct}* dw,
                          __global {ct}* db, {idx_t} M, {idx_t} K) {{
  const int c = get_local_id(0), r = get_local_id(1);
  {idx_t} j = get_group_id(0) * 32 + c;
  __local {a} shw[{rl}][33], shb[{rl}][33];
  {a} sw = 0, sb = 0;
  if (j < K) {{
    {idx_t} m = r;
    for (; m + {3 * rl} < M; m += {4 * rl}) {{ {" ".join(row(u) for u in range(4))} {acc(range(4))} }}
    for (; m < M; m += {rl}) {{ {row(0)} {acc([0])} }}
  }}
{_lanes_meet(ct, rl, has_w, has_b)}
}}"""
    return _ext(src)


def _strip_lanes(device, M, K):
    """Row lanes of the one-pass strip kernel, or 0 where it would not fill the device: it needs
    about one 32-column strip per compute unit (K >= 32 x compute units / 2) and rows to share."""
    if TUNE["ln_wb"] == "blocks" or (TUNE["ln_wb"] is None and (
            _cpu(device) or -(-K // 32) * 2 < device.compute_units or M < 128)):
        return 0
    rl = 1 << (min(1024, device.max_work_group_size) // 32).bit_length() - 1
    return min(rl, 32)


def ln_blocks(device, M, K):
    """Row blocks for the dweight/dbias column sums: enough (column, block) work-items to fill the
    device, at least 32 rows a block; one block (no second pass) where the columns alone do."""
    target = device.compute_units * (256 if _cpu(device) else 1024)
    # GPUs: up to 256 blocks, so enough loads are in flight (64 left an H200 at ~40% of its bandwidth)
    B = max(1, min(-(-target // max(K, 1)), -(-M // 32), 64 if _cpu(device) else 256))
    return B, -(-M // B)


def gen_ln_wb_cpu(ct, idx_t, has_w, has_b, W, final):
    """CPUs: work-item (c, b) sums columns [c*W, c*W + W) over rows [b*R, b*R + R), reading W adjacent
    elements per row into private accumulators (LLVM vectorises the W loop).  The blocks kernel's
    one-column-per-work-item walk down the rows touched a new cache line (and page) per element:
    142 ms for 4096^2 on PoCL (0.9 GB/s)."""
    a = acc_of(ct)[0] if ct != "half" else "float"
    ot = ct if final else a
    upd = (f"{a} gv = ({a})gr[c];" + (" sb[c] += gv;" if has_b else "")
           + (f" sw[c] += gv * ((({a})xr[c] - mu) * rs);" if has_w else ""))
    src = f"""__kernel void ln_wb_cpu(__global const {ct}* g, {idx_t} g_o, __global const {ct}* x, {idx_t} x_o,
                        __global const {ct}* mean, __global const {ct}* rstd, __global {ot}* dw, __global {ot}* db,
                        {idx_t} M, {idx_t} K, {idx_t} R) {{
  {idx_t} j0 = get_global_id(0) * {W}, b = get_global_id(1);
  if (j0 >= K) return;
  {idx_t} m0 = b * R, m1 = min(M, m0 + R);
  int n = (int)min(({idx_t}){W}, K - j0);
  {a} sw[{W}], sb[{W}];
  for (int c = 0; c < {W}; ++c) {{ sw[c] = 0; sb[c] = 0; }}
  for ({idx_t} m = m0; m < m1; ++m) {{
    {a} mu = ({a})mean[m], rs = ({a})rstd[m];
    __global const {ct}* gr = g + g_o + m * K + j0;
    __global const {ct}* xr = x + x_o + m * K + j0;
    if (n == {W}) {{ for (int c = 0; c < {W}; ++c) {{ {upd} }} }}
    else {{ for (int c = 0; c < n; ++c) {{ {upd} }} }}
  }}
  for (int c = 0; c < n; ++c) {{
    {f'dw[b * K + j0 + c] = ({ot})sw[c];' if has_w else ''}
    {f'db[b * K + j0 + c] = ({ot})sb[c];' if has_b else ''}
  }}
}}"""
    return _ext(src)


CPU_WB_COLS = 64     # columns per work-item of gen_ln_wb_cpu
CPU_WB_ROWS = 256    # at most this many rows per work-item (a block of 256 x 64 floats stays in L2)


def ln_bwd_wb(device, g, x, M, K, mean, rstd, dw, db, scratch):
    """dw = sum over rows of g * xhat, db = sum over rows of g (either may be None)."""
    ct = x.dtype.ctype
    hw, hb = dw is not None, db is not None
    big = _big(g, x) or M * K >= 2**31
    idx_t, it = _idx(big)
    rl = _strip_lanes(device, M, K)
    if rl:
        knl = device.programs.kernel(("ln_wb_strip", ct, idx_t, hw, hb, rl),
                                     lambda: (gen_ln_wb_strip(ct, idx_t, hw, hb, rl), "ln_wb_strip"))
        ow, ob = (dw if hw else db), (db if hb else dw)
        launch(device, knl, (-(-K // 32) * 32, rl), (32, rl),
               [g._storage.buf, it(g._offset), x._storage.buf, it(x._offset), mean._storage.buf, rstd._storage.buf,
                ow._storage.buf, ob._storage.buf, it(M), it(K)], "layer_norm_weight_backward")
        return
    cpu_cols = _cpu(device) and TUNE["ln_wb"] != "blocks"
    if cpu_cols:
        B = max(1, -(-M // CPU_WB_ROWS))
        R = -(-M // B)
        final = B == 1
        W = CPU_WB_COLS
        knl = device.programs.kernel(("ln_wb_cpu", ct, idx_t, hw, hb, W, final),
                                     lambda: (gen_ln_wb_cpu(ct, idx_t, hw, hb, W, final), "ln_wb_cpu"))
        gs, ls = (-(-K // W), B), None
    else:
        B, R = ln_blocks(device, M, K)
        final = B == 1
        knl = device.programs.kernel(("ln_wb", ct, idx_t, hw, hb, final),
                                     lambda: (gen_ln_wb(ct, idx_t, hw, hb, final), "ln_wb"))
        wgx = 64 if _cpu(device) else 256
        gs, ls = ((K + wgx - 1) // wgx * wgx, B), (wgx, 1)
    if final:
        ow, ob = dw, db
    else:
        a = acc_of(ct)[0]
        ow = scratch(B * K, a) if hw else None
        ob = scratch(B * K, a) if hb else None
    bw = (ow if hw else ob)._storage.buf
    bb = (ob if hb else ow)._storage.buf
    launch(device, knl, gs, ls, [g._storage.buf, it(g._offset), x._storage.buf, it(x._offset),
                                 mean._storage.buf, rstd._storage.buf, bw, bb, it(M), it(K), it(R)],
           "layer_norm_weight_backward")
    if not final:
        rl = 1 if _cpu(device) else max(1, min(32, device.max_work_group_size // 32, 1 << ((B // 8).bit_length() - 1)
                                                   if B >= 8 else 1))
        fin = device.programs.kernel(("ln_wb_fin", ct, idx_t, hw, hb, rl),
                                     lambda: (gen_ln_wb_fin(ct, idx_t, hw, hb, rl), "ln_wb_fin"))
        fw = (dw if hw else db)._storage.buf
        fb = (db if hb else dw)._storage.buf
        launch(device, fin, (-(-K // 32) * 32, rl), (32, rl), [bw, bb, fw, fb, it(K), it(B)],
               "layer_norm_weight_backward")
