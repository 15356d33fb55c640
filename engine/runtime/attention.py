"""Row kernels of fused attention (engine/ops/attention.py): a causal-aware softmax over the score
rows, in place, and its backward, in place over dP.

With the scale folded into the GEMMs' alpha, attention is two GEMMs and one pass over the
(batch, L, S) scores forward, four GEMMs and one pass backward.  The unfused path (matmul, *scale,
masked_fill, softmax, and their backwards) makes ~10 passes over that block; at GPT-step sizes
(384 x 256 x 256 floats = 100 MB) each pass is ~30 us on an H200.

One work-group per row; work-items stride over the row (coalesced), two local-memory tree
reductions (max, then sum of exp) forward, one (dot(dP, P)) backward.  Causal rows (key j allowed
for query i when j <= i, torch's top-left aligned tril) only read their allowed prefix.
"""
import numpy as np

from .launch import launch


def _types(ct, acc):
    """Every row kernel's head: T (storage) and ACC (accumulation) types, fp64 enabled where needed."""
    dbl = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" if "double" in (ct, acc) else ""
    return f"{dbl}typedef {ct} T;\ntypedef {acc} ACC;\n"


def _source(ct, acc, wg, bwd):
    head = _types(ct, acc) + f"""#define WG {wg}
inline ACC red_max(__local ACC* r, ACC v, int lid) {{
    r[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {{
        if (lid < s) r[lid] = fmax(r[lid], r[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }}
    ACC out = r[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return out;
}}
inline ACC red_sum(__local ACC* r, ACC v, int lid) {{
    r[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {{
        if (lid < s) r[lid] += r[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }}
    ACC out = r[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return out;
}}
"""
    if not bwd:
        body = """
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void attn_softmax(__global T* x, const long off, const int S, const int L, const int causal) {
    __local ACC r[WG];
    const int row = get_group_id(0), lid = get_local_id(0);
    __global T* p = x + off + (long)row * S;
    const int lim = causal ? min(S, row % L + 1) : S;
    ACC m = -INFINITY;
    for (int j = lid; j < lim; j += WG) m = fmax(m, (ACC)p[j]);
    m = red_max(r, m, lid);
    ACC s = 0;
    for (int j = lid; j < lim; j += WG) s += exp((ACC)p[j] - m);
    s = red_sum(r, s, lid);
    const ACC inv = (ACC)1 / s;
    for (int j = lid; j < S; j += WG) p[j] = (T)(j < lim ? exp((ACC)p[j] - m) * inv : (ACC)0);
}
"""
    else:
        body = """
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void attn_softmax_bwd(__global T* dp, const long dp_off, __global const T* pr, const long p_off,
                      const int S, const int L, const int causal) {
    __local ACC r[WG];
    const int row = get_group_id(0), lid = get_local_id(0);
    __global T* g = dp + dp_off + (long)row * S;
    __global const T* p = pr + p_off + (long)row * S;
    const int lim = causal ? min(S, row % L + 1) : S;
    ACC d = 0;
    for (int j = lid; j < lim; j += WG) d += (ACC)g[j] * (ACC)p[j];
    d = red_sum(r, d, lid);
    for (int j = lid; j < S; j += WG) g[j] = (T)(j < lim ? (ACC)p[j] * ((ACC)g[j] - d) : (ACC)0);
}
"""
    return head + body


# CPUs (PoCL): one work-item per row, looping over it.  PoCL runs a work-group's items as a loop, so
# the row-per-group kernel's tree reductions (a barrier per level) split that loop again and again for
# rows of a few dozen scores; a row per work-item has no barrier at all (tiny GPT of notebook 06, 2048
# rows of 32 causal scores: 445 -> 160-270 us forward).
def _serial_source(ct, acc, bwd):
    head = _types(ct, acc)
    if not bwd:
        return head + """
__kernel void attn_softmax_row(__global T* x, const long off, const int S, const int L, const int causal) {
    const int row = get_global_id(0);
    __global T* p = x + off + (long)row * S;
    const int lim = causal ? min(S, row % L + 1) : S;
    ACC m = -INFINITY;
    for (int j = 0; j < lim; ++j) m = fmax(m, (ACC)p[j]);
    ACC s = 0;
    for (int j = 0; j < lim; ++j) { ACC e = exp((ACC)p[j] - m); s += e; p[j] = (T)e; }
    const ACC inv = (ACC)1 / s;
    for (int j = 0; j < lim; ++j) p[j] = (T)((ACC)p[j] * inv);
    for (int j = lim; j < S; ++j) p[j] = (T)0;
}
"""
    return head + """
__kernel void attn_softmax_bwd_row(__global T* dp, const long dp_off, __global const T* pr, const long p_off,
                                   const int S, const int L, const int causal) {
    const int row = get_global_id(0);
    __global T* g = dp + dp_off + (long)row * S;
    __global const T* p = pr + p_off + (long)row * S;
    const int lim = causal ? min(S, row % L + 1) : S;
    ACC d = 0;
    for (int j = 0; j < lim; ++j) d += (ACC)g[j] * (ACC)p[j];
    for (int j = 0; j < lim; ++j) g[j] = (T)((ACC)p[j] * ((ACC)g[j] - d));
    for (int j = lim; j < S; ++j) g[j] = (T)0;
}
"""


# Rows of at most REG_MAX_S scores on GPUs: 32 work-items per row, 4 rows per work-group, each
# work-item keeping its ceil(S / 32) values in registers, so a row is read once and written once, and
# the reductions span 32 work-items, not 128 (the one-row-per-group kernel read the row three times
# and spent 14 barriers on 256 values: 132 us for the GPT step's 100 MB of causal scores on an H200,
# against ~45 us to read the allowed half and write the whole).
REG_MAX_S = 512
FORCE_KIND = [None]  # None: the device's choice; "serial" / "group" / "reg" (tests run each on any device)
_RW = 32


def _reg_source(ct, acc, vpt, bwd):
    wg = 4 * _RW
    head = _types(ct, acc) + f"""#define WG {wg}
#define RW {_RW}
#define RPG (WG / RW)
#define VPT {vpt}
inline ACC seg_red(__local ACC* r, ACC v, int lid, int lane, int is_max) {{
    r[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RW / 2; s > 0; s >>= 1) {{
        if (lane < s) r[lid] = is_max ? fmax(r[lid], r[lid + s]) : r[lid] + r[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }}
    ACC out = r[lid - lane];
    barrier(CLK_LOCAL_MEM_FENCE);
    return out;
}}
#define ROW_SETUP \\
    __local ACC r[WG]; \\
    const int lid = get_local_id(0), lane = lid % RW; \\
    const int row = get_group_id(0) * RPG + lid / RW; \\
    const int ok = row < rows; \\
    const int lim = !ok ? 0 : causal ? min(S, row % L + 1) : S;
"""
    if not bwd:
        body = """
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void attn_softmax_reg(__global T* x, const long off, const int S, const int L, const int causal, const int rows) {
    ROW_SETUP
    __global T* p = x + off + (long)(ok ? row : 0) * S;
    ACC v[VPT];
    ACC m = -INFINITY;
    #pragma unroll
    for (int k = 0; k < VPT; k++) {
        const int j = lane + k * RW;
        v[k] = j < lim ? (ACC)p[j] : -INFINITY;
        m = fmax(m, v[k]);
    }
    m = seg_red(r, m, lid, lane, 1);
    ACC s = 0;
    #pragma unroll
    for (int k = 0; k < VPT; k++) {
        v[k] = lane + k * RW < lim ? exp(v[k] - m) : (ACC)0;
        s += v[k];
    }
    s = seg_red(r, s, lid, lane, 0);
    const ACC inv = (ACC)1 / s;
    #pragma unroll
    for (int k = 0; k < VPT; k++) {
        const int j = lane + k * RW;
        if (ok && j < S) p[j] = (T)(v[k] * inv);
    }
}
"""
    else:
        body = """
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void attn_softmax_bwd_reg(__global T* dp, const long dp_off, __global const T* pr, const long p_off,
                          const int S, const int L, const int causal, const int rows) {
    ROW_SETUP
    __global T* g = dp + dp_off + (long)(ok ? row : 0) * S;
    __global const T* p = pr + p_off + (long)(ok ? row : 0) * S;
    ACC pv[VPT], gv[VPT];
    ACC d = 0;
    #pragma unroll
    for (int k = 0; k < VPT; k++) {
        const int j = lane + k * RW;
        pv[k] = j < lim ? (ACC)p[j] : (ACC)0;
        gv[k] = j < lim ? (ACC)g[j] : (ACC)0;
        d += gv[k] * pv[k];
    }
    d = seg_red(r, d, lid, lane, 0);
    #pragma unroll
    for (int k = 0; k < VPT; k++) {
        const int j = lane + k * RW;
        if (ok && j < S) g[j] = (T)(pv[k] * (gv[k] - d));
    }
}
"""
    return head + body


def _kind(device, S):
    """'serial' (a row per work-item: CPUs), 'reg' (GPUs, 0 < S <= REG_MAX_S) or 'group' (a row per group)."""
    k = FORCE_KIND[0] or ("serial" if device.is_cpu else "reg")
    return "group" if k == "reg" and not _reg_vpt(S) else k


def _reg_vpt(S):
    """Values per work-item of the register kernels (a power of two), or 0 where they don't apply."""
    if S > REG_MAX_S or S == 0:
        return 0
    return 1 << (max(1, -(-S // _RW)) - 1).bit_length()


def _wg(device):
    return 128 if not device.is_cpu else 16


def softmax_rows(device, buf, off, rows, S, L, causal, ct, acc):
    """In place: each of `rows` contiguous rows of S values becomes its (causal) softmax."""
    kind = _kind(device, S)
    if kind == "serial":
        knl = device.programs.kernel(("attn_softmax_row", ct, acc),
                                     lambda: (_serial_source(ct, acc, False), "attn_softmax_row"))
        launch(device, knl, (rows,), None, [buf, np.int64(off), np.int32(S), np.int32(L), np.int32(causal)],
               "attn_softmax")
        return
    vpt = _reg_vpt(S) if kind == "reg" else 0
    if vpt:
        knl = device.programs.kernel(("attn_softmax_reg", ct, acc, vpt),
                                     lambda: (_reg_source(ct, acc, vpt, False), "attn_softmax_reg"))
        launch(device, knl, (-(-rows // 4) * 4 * _RW,), (4 * _RW,),
               [buf, np.int64(off), np.int32(S), np.int32(L), np.int32(causal), np.int32(rows)], "attn_softmax")
        return
    wg = _wg(device)
    knl = device.programs.kernel(("attn_softmax", ct, acc, wg),
                                 lambda: (_source(ct, acc, wg, False), "attn_softmax"))
    launch(device, knl, (rows * wg,), (wg,), [buf, np.int64(off), np.int32(S), np.int32(L), np.int32(causal)],
           "attn_softmax")


def softmax_rows_backward(device, dp_buf, dp_off, p_buf, p_off, rows, S, L, causal, ct, acc):
    """In place over dP: dS = P * (dP - rowsum(dP * P)) (zero where causal masks)."""
    kind = _kind(device, S)
    if kind == "serial":
        knl = device.programs.kernel(("attn_softmax_bwd_row", ct, acc),
                                     lambda: (_serial_source(ct, acc, True), "attn_softmax_bwd_row"))
        launch(device, knl, (rows,), None,
               [dp_buf, np.int64(dp_off), p_buf, np.int64(p_off), np.int32(S), np.int32(L), np.int32(causal)],
               "attn_softmax_backward")
        return
    vpt = _reg_vpt(S) if kind == "reg" else 0
    if vpt:
        knl = device.programs.kernel(("attn_softmax_bwd_reg", ct, acc, vpt),
                                     lambda: (_reg_source(ct, acc, vpt, True), "attn_softmax_bwd_reg"))
        launch(device, knl, (-(-rows // 4) * 4 * _RW,), (4 * _RW,),
               [dp_buf, np.int64(dp_off), p_buf, np.int64(p_off), np.int32(S), np.int32(L), np.int32(causal),
                np.int32(rows)], "attn_softmax_backward")
        return
    wg = _wg(device)
    knl = device.programs.kernel(("attn_softmax_bwd", ct, acc, wg),
                                 lambda: (_source(ct, acc, wg, True), "attn_softmax_bwd"))
    launch(device, knl, (rows * wg,), (wg,),
           [dp_buf, np.int64(dp_off), p_buf, np.int64(p_off), np.int32(S), np.int32(L), np.int32(causal)],
           "attn_softmax_backward")
