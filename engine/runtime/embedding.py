"""Embedding backward for small vocabularies (a character-level model's 65 rows): dW[v] = sum of the
gradient rows whose index is v, without atomics.

Why: the generic index_add scatters N x D atomic adds onto V x D addresses; with N = 16384 tokens onto
65 rows every address takes ~250 compare-and-swap rounds (415 us for the GPT step's token embedding on an
H200, 1.2% of the step).  Here a work-group owns TC columns and a range of rows and keeps a V x TC table
in local memory; work-item c only ever adds to column c, so nothing conflicts.  Each work-group writes
its table to scratch[split], and a second kernel sums the splits: deterministic, two launches.
"""
import numpy as np

from .launch import launch, round_up

LOCAL_BUDGET = 16384    # bytes of local memory a table may take (leaves room for 2+ work-groups per CU)


def rows_per_split(dev):
    # GPUs: ~6 row splits per 1,000 rows keep every CU busy; PoCL: few, long work-groups
    return 1024 if dev.is_cpu else 128


def columns(dev, V, isz):
    """Columns per work-group (a table of V x TC fits LOCAL_BUDGET), or 0 where V is too big."""
    budget = min(LOCAL_BUDGET, dev.local_mem // 2)
    for tc in (64, 32, 16):
        if V * tc * isz <= budget and tc <= dev.max_work_group_size:
            return tc
    return 0


def _source(ct, it, V, TC):
    ext = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" if ct == "double" else ""
    return ext + f"""#define T {ct}
__kernel __attribute__((reqd_work_group_size({TC}, 1, 1)))
void embedding_bwd_tables(__global const T* g, __global const {it}* idx, int idx_off, int N, int D, int rows,
                          __global T* scratch) {{
    __local T tab[{V * TC}];
    int lid = get_local_id(0);
    int tile = get_group_id(0), split = get_group_id(1);
    int c = tile * {TC} + lid;
    for (int v = 0; v < {V}; v++) tab[v * {TC} + lid] = (T)0;   // (each work-item: its own column only)
    int r0 = split * rows, r1 = min(r0 + rows, N);
    if (c < D) {{
        int r = r0;
        for (; r + 4 <= r1; r += 4) {{   // four independent loads in flight before the adds
            long v0 = (long)idx[idx_off + r], v1 = (long)idx[idx_off + r + 1];
            long v2 = (long)idx[idx_off + r + 2], v3 = (long)idx[idx_off + r + 3];
            T a0 = g[(long)r * D + c], a1 = g[(long)(r + 1) * D + c];
            T a2 = g[(long)(r + 2) * D + c], a3 = g[(long)(r + 3) * D + c];
            // out-of-range rows are skipped (the forward's check raises IndexError; inside a compiled
            // replay that surfaces only at the next host read, after this kernel may have run)
            if ((ulong)v0 < {V}ul) tab[(int)v0 * {TC} + lid] += a0;
            if ((ulong)v1 < {V}ul) tab[(int)v1 * {TC} + lid] += a1;
            if ((ulong)v2 < {V}ul) tab[(int)v2 * {TC} + lid] += a2;
            if ((ulong)v3 < {V}ul) tab[(int)v3 * {TC} + lid] += a3;
        }}
        for (; r < r1; r++) {{
            long v = (long)idx[idx_off + r];
            if ((ulong)v < {V}ul) tab[(int)v * {TC} + lid] += g[(long)r * D + c];
        }}
    }}
    if (c < D) {{
        __global T* out = scratch + (long)split * {V} * D + c;
        for (int v = 0; v < {V}; v++) out[(long)v * D] = tab[v * {TC} + lid];
    }}
}}

__kernel void embedding_bwd_sum(__global const T* scratch, int splits, int VD, __global T* out, int out_off) {{
    int i = get_global_id(0);
    if (i >= VD) return;
    T acc = (T)0;
    for (int s = 0; s < splits; s++) acc += scratch[(long)s * VD + i];
    out[out_off + i] = acc;
}}
"""


def backward(dev, ct, it, g_buf, idx_buf, idx_off, N, V, D, TC, scratch_alloc, out_buf, out_off):
    """out[V, D] = sum over rows r of g[r] into row idx[r] (g: N x D contiguous, idx already in range).
    scratch_alloc(n) -> a buffer of n elements of type ct."""
    i32 = np.int32
    splits = max(1, -(-N // rows_per_split(dev)))
    rows = -(-N // splits)
    prg_key = ("embedding_bwd", ct, it, V, TC)
    tk = dev.programs.kernel(prg_key + ("tables",), lambda: (_source(ct, it, V, TC), "embedding_bwd_tables"))
    sk = dev.programs.kernel(prg_key + ("sum",), lambda: (_source(ct, it, V, TC), "embedding_bwd_sum"))
    scratch = scratch_alloc(splits * V * D)
    tiles = -(-D // TC)
    launch(dev, tk, (tiles * TC, splits), (TC, 1), [g_buf, idx_buf, i32(idx_off), i32(N), i32(D), i32(rows),
                                                     scratch], "embedding_backward")
    wg = dev.wg
    launch(dev, sk, (round_up(V * D, wg),), (wg,), [scratch, i32(splits), i32(V * D), out_buf, i32(out_off)],
           "embedding_backward_sum")
    return scratch
