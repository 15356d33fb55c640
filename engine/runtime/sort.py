"""Sorting kernels: a bitonic network over rows padded to a power of two.

Layout: B = outer * inner rows (the sort dim of a contiguous (outer, n, inner) tensor), each copied
into a padded row of P = 2^ceil(log2 n) keys with the row positions 0..P-1 as int indices.  Slots
with index >= n are padding and order after everything, so no sentinel value is needed.  Every
comparison breaks ties by the original index, which makes the order a strict total order: the
result is exactly a stable sort (NaN after +inf ascending, first descending, as PyTorch).

Stages with compare distance j < S/2 (S = 2 * work-group size) run in local memory, several per
launch; larger ones run one launch per (k, j) over global memory.  Kernels are specialised on the key
C type, direction and index width only; sizes are arguments.
"""
import numpy as np
import pyopencl as cl

from .launch import launch, round_up
from .philox import PHILOX_SRC

_FLOAT_CT = ("float", "double", "half")


def _pragmas(src, *cts):
    if "double" in src or "double" in cts:
        src = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" + src
    if "half" in cts:
        src = "#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n" + src
    return src


def _before(ct, descending):
    """C function: does (a, ia) come strictly before (b, ib) in the final order?"""
    nan = ""
    if ct in _FLOAT_CT:
        pick = "na" if descending else "nb"
        nan = f"""    int na = isnan(a), nb = isnan(b);
    if (na || nb) {{ if (na != nb) return {pick}; return ia < ib; }}
"""
    cmp = "a > b" if descending else "a < b"
    return f"""inline int before(T a, int ia, T b, int ib, int n) {{
    if (ia >= n || ib >= n) return ia < ib;
{nan}    if (a != b) return {cmp};
    return ia < ib;
}}
"""


def sort_source(ct, descending, it):
    count_nan = ""
    if ct in _FLOAT_CT:  # NaNs sort last ascending: binary search for the first one
        count_nan = """    int lo = 0, hi = n;
    while (lo < hi) { int mid = (lo + hi) >> 1; if (isnan(keys[base + mid])) hi = mid; else lo = mid + 1; }
    c = lo;"""
    src = f"""#define T {ct}
#define IT {it}
{_before(ct, descending)}
__kernel void sort_init(__global const T* x, IT xoff, __global T* keys, __global int* idx, IT total,
                        int n, int logP, IT inner) {{
    IT g = get_global_id(0);
    if (g >= total) return;
    IT b = g >> logP;
    int i = (int)(g & (((IT)1 << logP) - 1));
    IT o = b / inner, q = b - o * inner;
    keys[g] = (i < n) ? x[xoff + ((IT)o * n + i) * inner + q] : (T)0;
    idx[g] = i;
}}

__kernel void sort_global(__global T* keys, __global int* idx, IT npairs, int n, int logP, int k, int logj) {{
    IT t = get_global_id(0);
    if (t >= npairs) return;
    IT jm = ((IT)1 << logj) - 1;
    IT i = ((t & ~jm) << 1) | (t & jm);
    IT l = i + ((IT)1 << logj);
    int up = (((int)(i & (((IT)1 << logP) - 1))) & k) == 0;
    T a = keys[i], b = keys[l];
    int ia = idx[i], ib = idx[l];
    int sw = up ? before(b, ib, a, ia, n) : before(a, ia, b, ib, n);
    if (sw) {{ keys[i] = b; keys[l] = a; idx[i] = ib; idx[l] = ia; }}
}}

__kernel void sort_local(__global T* keys, __global int* idx, IT total, int n, int logP, int k0, int k1,
                         __local T* lk, __local int* li) {{
    int lid = get_local_id(0);
    int ls = get_local_size(0);
    int S = 2 * ls;
    IT base = (IT)get_group_id(0) * S;
    for (int e = lid; e < S; e += ls) {{
        IT g = base + e;
        if (g < total) {{ lk[e] = keys[g]; li[e] = idx[g]; }} else {{ lk[e] = (T)0; li[e] = 0x7fffffff; }}
    }}
    barrier(CLK_LOCAL_MEM_FENCE);
    IT pm = ((IT)1 << logP) - 1;
    for (int k = k0; k <= k1; k <<= 1) {{
        for (int j = min(k >> 1, ls); j > 0; j >>= 1) {{
            int i = ((lid & ~(j - 1)) << 1) | (lid & (j - 1));
            int l = i + j;
            int up = (((int)((base + i) & pm)) & k) == 0;
            T a = lk[i], b = lk[l];
            int ia = li[i], ib = li[l];
            int sw = up ? before(b, ib, a, ia, n) : before(a, ia, b, ib, n);
            if (sw) {{ lk[i] = b; lk[l] = a; li[i] = ib; li[l] = ia; }}
            barrier(CLK_LOCAL_MEM_FENCE);
        }}
    }}
    for (int e = lid; e < S; e += ls) {{
        IT g = base + e;
        if (g < total) {{ keys[g] = lk[e]; idx[g] = li[e]; }}
    }}
}}

/* out[(o, i, q)] = sorted row b = o*inner + q at position start + i, for a contiguous output
   whose sort dim has size m; flags: 1 = write values, 2 = write indices */
__kernel void sort_take(__global const T* keys, __global const int* idx, int logP, int start, int m,
                        IT inner, IT count, __global T* vals, IT voff, __global long* oidx, IT ioff,
                        int flags) {{
    IT g = get_global_id(0);
    if (g >= count) return;
    IT q = g % inner;
    IT r = g / inner;
    IT i = r % m;
    IT o = r / m;
    IT src = ((o * inner + q) << logP) + start + i;
    if (flags & 1) vals[voff + g] = keys[src];
    if (flags & 2) oidx[ioff + g] = (long)idx[src];
}}

/* one value per row from an ascending sort: mode 0 position k, 1 median (NaN if any),
   2 nanmedian (ignores NaN) */
__kernel void sort_pick(__global const T* keys, __global const int* idx, int logP, int n, int mode, int k,
                        IT B, __global T* vals, IT voff, __global long* oidx, IT ioff) {{
    IT b = get_global_id(0);
    if (b >= B) return;
    IT base = b << logP;
    int c = n;
{count_nan}
    int pos = k;
    if (mode == 1) pos = (c < n) ? c : (n - 1) / 2;
    else if (mode == 2) pos = (c > 0) ? (c - 1) / 2 : 0;
    vals[voff + b] = keys[base + pos];
    oidx[ioff + b] = (long)idx[base + pos];
}}

/* flags[i] = 1 where a run of equal values starts (i == 0 or v[i] != v[i-1]) */
__kernel void run_starts(__global const T* v, IT voff, IT n, __global int* flags) {{
    IT i = get_global_id(0);
    if (i >= n) return;
    flags[i] = (i == 0 || v[voff + i] != v[voff + i - 1]) ? 1 : 0;
}}
"""
    return _pragmas(src, ct)


def dim_index_source(ct, it):
    """Scatter / gather along one dim of contiguous (outer, n, inner) <-> (outer, m, inner) arrays."""
    src = f"""#define T {ct}
#define IT {it}
__kernel void dim_scatter(__global const T* src, IT soff, __global const long* idx, IT ioff,
                          __global T* out, IT ooff, IT count, IT m, IT n, IT inner) {{
    IT g = get_global_id(0);
    if (g >= count) return;
    IT q = g % inner;
    IT r = g / inner;
    IT o = r / m;
    long j = idx[ioff + g];
    if (j < 0 || j >= n) return;
    out[ooff + (o * n + (IT)j) * inner + q] = src[soff + g];
}}

__kernel void dim_gather(__global const T* src, IT soff, __global const long* idx, IT ioff,
                         __global T* out, IT ooff, IT count, IT m, IT n, IT inner) {{
    IT g = get_global_id(0);
    if (g >= count) return;
    IT q = g % inner;
    IT r = g / inner;
    IT o = r / m;
    long j = idx[ioff + g];
    out[ooff + g] = (j < 0 || j >= n) ? (T)0 : src[soff + (o * n + (IT)j) * inner + q];
}}

/* for each value, the insertion point in its row of a sorted sequence (optionally through sorter) */
__kernel void search_sorted(__global const T* seq, IT soff, __global const long* sorter, IT sroff,
                            int use_sorter, __global const T* v, IT voff, __global long* out, IT count,
                            IT M, IT K, int per_row, int right) {{
    IT g = get_global_id(0);
    if (g >= count) return;
    IT base = per_row ? (g / K) * M : 0;
    T x = v[voff + g];
    IT lo = 0, hi = M;
    while (lo < hi) {{
        IT mid = (lo + hi) >> 1;
        IT p = use_sorter ? base + (IT)sorter[sroff + base + mid] : base + mid;
        T s = seq[soff + p];
        int go_right = right ? !(x < s) : (s < x);
        if (go_right) lo = mid + 1; else hi = mid;
    }}
    out[g] = (long)lo;
}}
"""
    return _pragmas(src, ct)


def multinomial_source(pct, act, it):
    """pct: probability C type, act: accumulation type (double where the device has fp64)."""
    isf = "isnan(v) || isinf(v)" if pct in _FLOAT_CT else "0"
    if act == "double":
        u_expr = "((double)(a >> 5) * 67108864.0 + (double)(c >> 6)) * 0x1.0p-53"
    else:
        u_expr = "(float)(a >> 8) * 0x1.0p-24f"
    src = f"""{PHILOX_SRC}
#define T {pct}
#define ACC {act}
#define IT {it}
/* per row: running sums (cdf), then status: 0 ok, 1 negative/inf/nan, 2 sum <= 0; and #nonzero */
__kernel void mn_prep(__global const T* p, IT poff, IT ps0, IT ps1, int n, IT B, __global ACC* cdf,
                      __global int* status) {{
    IT b = get_global_id(0);
    if (b >= B) return;
    ACC s = 0;
    int bad = 0, nz = 0;
    for (int i = 0; i < n; i++) {{
        T v = p[poff + b * ps0 + (IT)i * ps1];
        if ({isf} || v < 0) bad = 1;
        if (v > 0) nz++;
        s += (ACC)v;
        cdf[b * n + i] = s;
    }}
    status[2 * b] = bad ? 1 : (s <= 0 ? 2 : 0);
    status[2 * b + 1] = nz;
}}

/* with replacement: sample g of row b = g / ns draws u in [0,1) (53 bits, counter ctr0 + g/2) and
   takes the first category whose running sum exceeds u * total */
__kernel void mn_draw(__global const ACC* cdf, int n, IT count, int ns, __global long* out, IT ooff,
                      ulong ctr0, uint k0, uint k1) {{
    IT g = get_global_id(0);
    if (g >= count) return;
    IT b = g / ns;
    ulong ctr = ctr0 + (ulong)(g >> 1);
    uint4 r = philox4x32_10((uint4)((uint)ctr, (uint)(ctr >> 32), 0u, 0u), (uint2)(k0, k1));
    uint a = (g & 1) ? r.z : r.x, c = (g & 1) ? r.w : r.y;
    ACC u = {u_expr};
    __global const ACC* row = cdf + b * n;
    ACC total = row[n - 1];
    ACC target = u * total;
    int lo = 0, hi = n;
    while (lo < hi) {{ int mid = (lo + hi) >> 1; if (row[mid] > target) hi = mid; else lo = mid + 1; }}
    if (lo >= n) {{  /* rounding put the target on the total: the last category with mass */
        lo = 0; hi = n - 1;
        while (lo < hi) {{ int mid = (lo + hi) >> 1; if (row[mid] >= total) hi = mid; else lo = mid + 1; }}
    }}
    out[ooff + g] = (long)lo;
}}

/* without replacement (Efraimidis-Spirakis / exponential race): key = p / E, E ~ Exp(1) > 0;
   the top num_samples keys of a row are a sample without replacement, in draw order */
__kernel void mn_keys(__global const T* p, IT poff, IT ps0, IT ps1, int n, IT count, __global ACC* keys,
                      ulong ctr0, uint k0, uint k1) {{
    IT g = get_global_id(0);
    if (g >= count) return;
    IT b = g / n;
    int i = (int)(g - b * n);
    ulong ctr = ctr0 + (ulong)(g >> 2);
    uint4 r = philox4x32_10((uint4)((uint)ctr, (uint)(ctr >> 32), 0u, 0u), (uint2)(k0, k1));
    uint w = (g & 2) ? ((g & 1) ? r.w : r.z) : ((g & 1) ? r.y : r.x);
    ACC u = ((ACC)(w >> 8) + (ACC)0.5) * (ACC)0x1.0p-24;   /* in (0, 1) */
    ACC v = (ACC)p[poff + b * ps0 + (IT)i * ps1];
    keys[g] = v > 0 ? v / -log(u) : (ACC)0;
}}
"""
    return _pragmas(src, pct, act)


# ---- program / kernel cache -----------------------------------------------------------------
def _kernels(device, key, gen, names):
    """Build one program for `key`, cache each named kernel of it; returns a dict name -> kernel."""
    cache = device.programs.kernels
    first = (key, names[0])
    if first not in cache:
        k0 = device.programs.build(gen(), names[0])
        cache[first] = k0
        for nm in names[1:]:
            cache[(key, nm)] = cl.Kernel(k0.program, nm)
    return {nm: cache[(key, nm)] for nm in names}


_SORT_NAMES = ("sort_init", "sort_global", "sort_local", "sort_take", "sort_pick", "run_starts")
_NPT = {"int": np.int32, "long": np.int64}


def _it(big):
    return "long" if big else "int"


def sort_kernels(device, ct, descending, big):
    it = _it(big)
    return _kernels(device, ("sort", ct, bool(descending), it), lambda: sort_source(ct, descending, it),
                    _SORT_NAMES)


def _local_wg(device, knl, itemsize):
    wg = getattr(knl, "_sort_wg", None)
    if wg is None:
        try:
            kmax = knl.get_work_group_info(cl.kernel_work_group_info.WORK_GROUP_SIZE, device.cl_device)
        except cl.Error:
            kmax = device.max_work_group_size
        wg = min(256, kmax, device.max_work_group_size)
        while wg * 2 * (itemsize + 4) > device.local_mem // 2 and wg > 1:
            wg //= 2
        p = 1
        while p * 2 <= wg:
            p *= 2
        wg = knl._sort_wg = p
    return wg


def log2_ceil(n):
    return max(0, (int(n) - 1).bit_length())


def sort_rows(device, x_buf, x_off, keys_buf, idx_buf, outer, n, inner, ct, itemsize, descending):
    """Sort the B = outer*inner rows of length n of the contiguous (outer, n, inner) array at x_buf
    into padded rows of P = 2^log2_ceil(n) (keys_buf: B*P of ct, idx_buf: B*P int32). Returns logP."""
    logP = log2_ceil(n)
    P = 1 << logP
    B = outer * inner
    total = B * P
    big = total >= 2 ** 31 or outer * n * inner >= 2 ** 31
    it = _NPT[_it(big)]
    ks = sort_kernels(device, ct, descending, big)
    wg0 = min(256, device.max_work_group_size)
    launch(device, ks["sort_init"], (round_up(total, wg0),), (wg0,),
           [x_buf, it(x_off), keys_buf, idx_buf, it(total), np.int32(n), np.int32(logP), it(inner)], "sort_init")
    if P == 1:
        return logP
    kl = ks["sort_local"]
    wg = _local_wg(device, kl, itemsize)
    S = 2 * wg
    ngroups = (total + S - 1) // S
    lk = cl.LocalMemory(S * itemsize)
    li = cl.LocalMemory(S * 4)
    # all stages with k <= S in local memory
    launch(device, kl, (ngroups * wg,), (wg,),
           [keys_buf, idx_buf, it(total), np.int32(n), np.int32(logP), np.int32(2), np.int32(min(P, S)), lk, li],
           "sort_local")
    kg = ks["sort_global"]
    npairs = total // 2
    k = 2 * S
    while k <= P:
        j = k // 2
        while j >= S:
            launch(device, kg, (round_up(npairs, wg0),), (wg0,),
                   [keys_buf, idx_buf, it(npairs), np.int32(n), np.int32(logP), np.int32(k),
                    np.int32(j.bit_length() - 1)], "sort_global")
            j //= 2
        launch(device, kl, (ngroups * wg,), (wg,),
               [keys_buf, idx_buf, it(total), np.int32(n), np.int32(logP), np.int32(k), np.int32(k), lk, li],
               "sort_local")
        k *= 2
    return logP


def take(device, keys_buf, idx_buf, ct, descending, logP, start, m, outer, inner, vals, voff, oidx, ioff):
    """Copy positions start..start+m of each sorted row into contiguous (outer, m, inner) outputs
    (vals / oidx may be None)."""
    count = outer * m * inner
    if count == 0:
        return
    big = (outer * inner) << logP >= 2 ** 31 or count >= 2 ** 31
    it = _NPT[_it(big)]
    ks = sort_kernels(device, ct, descending, big)
    flags = (1 if vals is not None else 0) | (2 if oidx is not None else 0)
    wg = min(256, device.max_work_group_size)
    launch(device, ks["sort_take"], (round_up(count, wg),), (wg,),
           [keys_buf, idx_buf, np.int32(logP), np.int32(start), np.int32(m), it(inner), it(count),
            vals if vals is not None else keys_buf, it(voff), oidx if oidx is not None else idx_buf, it(ioff),
            np.int32(flags)], "sort_take")


def pick(device, keys_buf, idx_buf, ct, logP, n, mode, k, B, vals, voff, oidx, ioff):
    if B == 0:
        return
    big = B << logP >= 2 ** 31
    it = _NPT[_it(big)]
    ks = sort_kernels(device, ct, False, big)
    wg = min(64, device.max_work_group_size)
    launch(device, ks["sort_pick"], (round_up(B, wg),), (wg,),
           [keys_buf, idx_buf, np.int32(logP), np.int32(n), np.int32(mode), np.int32(k), it(B),
            vals, it(voff), oidx, it(ioff)], "sort_pick")


def run_starts(device, v_buf, voff, n, ct, flags_buf):
    if n == 0:
        return
    big = voff + n >= 2 ** 31
    it = _NPT[_it(big)]
    ks = sort_kernels(device, ct, False, big)
    wg = min(256, device.max_work_group_size)
    launch(device, ks["run_starts"], (round_up(n, wg),), (wg,), [v_buf, it(voff), it(n), flags_buf], "run_starts")


def _dim_kernels(device, ct, big):
    it = _it(big)
    return _kernels(device, ("dim_index", ct, it), lambda: dim_index_source(ct, it),
                    ("dim_scatter", "dim_gather", "search_sorted"))


def dim_index(device, kind, ct, src, soff, idx, ioff, out, ooff, outer, m, n, inner):
    """kind 'scatter': out(outer, n, inner)[o, idx, q] = src(outer, m, inner);
    kind 'gather': out(outer, m, inner) = src(outer, n, inner)[o, idx, q].  idx: (outer, m, inner) int64."""
    count = outer * m * inner
    if count == 0:
        return
    big = max(count, outer * n * inner) + max(soff, ioff, ooff) >= 2 ** 31
    it = _NPT[_it(big)]
    knl = _dim_kernels(device, ct, big)["dim_" + kind]
    wg = min(256, device.max_work_group_size)
    launch(device, knl, (round_up(count, wg),), (wg,),
           [src, it(soff), idx, it(ioff), out, it(ooff), it(count), it(m), it(n), it(inner)], "dim_" + kind)


def search_sorted(device, ct, seq, soff, sorter, sroff, v, voff, out, count, M, K, per_row, right):
    if count == 0:
        return
    big = count + voff >= 2 ** 31 or M * max(1, count // max(K, 1)) + soff >= 2 ** 31
    it = _NPT[_it(big)]
    knl = _dim_kernels(device, ct, big)["search_sorted"]
    wg = min(256, device.max_work_group_size)
    launch(device, knl, (round_up(count, wg),), (wg,),
           [seq, it(soff), sorter if sorter is not None else out, it(sroff), np.int32(sorter is not None),
            v, it(voff), out, it(count), it(M), it(max(K, 1)), np.int32(per_row), np.int32(right)],
           "search_sorted")


def _mn_kernels(device, pct, act, big):
    it = _it(big)
    return _kernels(device, ("multinomial", pct, act, it), lambda: multinomial_source(pct, act, it),
                    ("mn_prep", "mn_draw", "mn_keys"))


def mn_prep(device, pct, act, p, poff, ps0, ps1, n, B, cdf, status):
    big = B * n >= 2 ** 31 or poff + (B - 1) * ps0 + (n - 1) * ps1 >= 2 ** 31
    it = _NPT[_it(big)]
    knl = _mn_kernels(device, pct, act, big)["mn_prep"]
    wg = min(64, device.max_work_group_size)
    launch(device, knl, (round_up(B, wg),), (wg,),
           [p, it(poff), it(ps0), it(ps1), np.int32(n), it(B), cdf, status], "mn_prep")


def mn_draw(device, pct, act, cdf, n, B, ns, out, ooff, seed, offset):
    count = B * ns
    big = B * n >= 2 ** 31 or count >= 2 ** 31
    it = _NPT[_it(big)]
    knl = _mn_kernels(device, pct, act, big)["mn_draw"]
    wg = min(256, device.max_work_group_size)
    launch(device, knl, (round_up(count, wg),), (wg,),
           [cdf, np.int32(n), it(count), np.int32(ns), out, it(ooff), np.uint64(offset),
            np.uint32(seed & 0xFFFFFFFF), np.uint32(seed >> 32)], "mn_draw")


def mn_keys(device, pct, act, p, poff, ps0, ps1, n, B, keys, seed, offset):
    count = B * n
    big = count >= 2 ** 31 or poff + (B - 1) * ps0 + (n - 1) * ps1 >= 2 ** 31
    it = _NPT[_it(big)]
    knl = _mn_kernels(device, pct, act, big)["mn_keys"]
    wg = min(256, device.max_work_group_size)
    launch(device, knl, (round_up(count, wg),), (wg,),
           [p, it(poff), it(ps0), it(ps1), np.int32(n), it(count), keys, np.uint64(offset),
            np.uint32(seed & 0xFFFFFFFF), np.uint32(seed >> 32)], "mn_keys")
