"""Generated inclusive-scan kernels (cumsum, cumprod), optionally reversed.

The input is viewed as (kept dims, collapsed) x (scan dim of K elements).  Two strategies:

* chunks (CPUs, strided rows on GPUs, short rows): each row is cut into G chunks and one
  work-item scans one chunk serially; neighbouring work-items take neighbouring rows
  (coalesced loads when the rows are strided).  With G > 1 a first kernel writes each
  chunk's total, a second turns each row's totals into exclusive prefixes (the chunk's
  carry-in), and the last rescans each chunk from its carry.
* tiles (contiguous rows on GPUs): one work-group scans a tile of T = wg*IPT elements in
  rounds of wg (a scan in local memory per round, coalesced loads and stores).  Tile
  totals, then their exclusive scan (one work-group per row), then the tile scans with
  their carry-in.
"""
import numpy as np

from .elementwise import collapse
from .launch import launch
from .reduction import _default_scratch, _fp64, _index_expr

_OPS = {"sum": ("0", "+"), "prod": ("1", "*")}
_IPT = 8   # rounds per tile in the tile strategy


def _params(in_ct, acc_ct, out_ct, nk, idx_t, extra):
    params = [f"__global const {in_ct}* x", f"{idx_t} x_off"]
    params += [f"{idx_t} kn{d}, {idx_t} ks{d}, {idx_t} ko{d}" for d in range(nk)]
    params += [f"{idx_t} xs", f"__global {out_ct}* out", f"{idx_t} o_off", f"{idx_t} os",
               f"__global {acc_ct}* part", f"{idx_t} M", f"{idx_t} K", *(f"{idx_t} {e}" for e in extra)]
    return ", ".join(params)


def gen_scan(op, in_ct, acc_ct, out_ct, nk, idx_t, phase, reverse):
    """Chunk strategy: work-item gid scans chunk g = gid / M of row m = gid % M."""
    ident, o = _OPS[op]
    (kx, ko), klines = _index_expr("k", nk, idx_t, "m", ("s", "o"))
    pos = "(K - 1 - j)" if reverse else "j"
    body = [f"__kernel void scan({_params(in_ct, acc_ct, out_ct, nk, idx_t, ('G', 'chunk'))}) {{",
            f"  {idx_t} gid = get_global_id(0);", "  if (gid >= M * G) return;",
            f"  {idx_t} m = gid % M, g = gid / M;",
            *("  " + line for line in klines),
            f"  {idx_t} xb = x_off + {kx}, ob = o_off + {ko};",
            f"  {idx_t} j_end = min(K, (g + 1) * chunk);"]
    if phase == "part":
        body += [f"  {acc_ct} acc = {ident};",
                 f"  for ({idx_t} j = g * chunk; j < j_end; ++j) acc = acc {o} ({acc_ct})x[xb + {pos} * xs];",
                 "  part[m * G + g] = acc;"]
    else:
        body += [f"  {acc_ct} acc = (G > 1) ? part[m * G + g] : ({acc_ct}){ident};",
                 f"  for ({idx_t} j = g * chunk; j < j_end; ++j) {{",
                 f"    acc = acc {o} ({acc_ct})x[xb + {pos} * xs];",
                 f"    out[ob + {pos} * os] = ({out_ct})acc;", "  }"]
    body.append("}")
    return _fp64("\n".join(body))


def gen_carry(op, acc_ct):
    """Chunk strategy: each row's chunk totals become exclusive prefixes, serially."""
    ident, o = _OPS[op]
    return _fp64(f"""__kernel void carry(__global {acc_ct}* part, long M, long G) {{
  long m = get_global_id(0); if (m >= M) return;
  {acc_ct} acc = {ident};
  for (long g = 0; g < G; ++g) {{ {acc_ct} t = part[m * G + g]; part[m * G + g] = acc; acc = acc {o} t; }}
}}""")


def _local_scan(o, ident, wg, acc_ct):
    """Inclusive scan of sh[0..wg) in local memory (Hillis-Steele); every lane must call it."""
    return f"""    barrier(CLK_LOCAL_MEM_FENCE);
    for (int off = 1; off < {wg}; off <<= 1) {{
      {acc_ct} u = (lid >= off) ? sh[lid - off] : ({acc_ct}){ident};
      barrier(CLK_LOCAL_MEM_FENCE);
      sh[lid] = u {o} sh[lid];
      barrier(CLK_LOCAL_MEM_FENCE);
    }}"""


def gen_tile(op, in_ct, acc_ct, out_ct, nk, idx_t, phase, reverse, wg):
    """Tile strategy: work-group (t, m) handles elements [t*T, min(K, (t+1)*T)) of row m."""
    ident, o = _OPS[op]
    (kx, ko), klines = _index_expr("k", nk, idx_t, "m", ("s", "o"))
    pos = "(K - 1 - j)" if reverse else "j"
    body = [f"__kernel void tscan({_params(in_ct, acc_ct, out_ct, nk, idx_t, ('NT', 'T'))}) {{",
            f"  {idx_t} t = get_group_id(0), m = get_group_id(1);", "  int lid = get_local_id(0);",
            f"  __local {acc_ct} sh[{wg}];",
            *("  " + line for line in klines),
            f"  {idx_t} xb = x_off + {kx}, ob = o_off + {ko};",
            f"  {idx_t} j0 = t * T, j_end = min(K, j0 + T);"]
    if phase == "part":
        body += [f"  {acc_ct} acc = {ident};",
                 f"  for ({idx_t} j = j0 + lid; j < j_end; j += {wg}) acc = acc {o} ({acc_ct})x[xb + {pos} * xs];",
                 "  sh[lid] = acc;", "  barrier(CLK_LOCAL_MEM_FENCE);",
                 f"  for (int s = {wg} / 2; s > 0; s >>= 1) {{",
                 f"    if (lid < s) sh[lid] = sh[lid] {o} sh[lid + s];",
                 "    barrier(CLK_LOCAL_MEM_FENCE);", "  }",
                 "  if (lid == 0) part[m * NT + t] = sh[0];"]
    else:
        body += [f"  {acc_ct} carry = (NT > 1) ? part[m * NT + t] : ({acc_ct}){ident};",
                 f"  for ({idx_t} b = j0; b < j_end; b += {wg}) {{",
                 f"    {idx_t} j = b + lid;",
                 f"    sh[lid] = (j < j_end) ? ({acc_ct})x[xb + {pos} * xs] : ({acc_ct}){ident};",
                 _local_scan(o, ident, wg, acc_ct),
                 f"    if (j < j_end) out[ob + {pos} * os] = ({out_ct})(carry {o} sh[lid]);",
                 f"    carry = carry {o} sh[{wg} - 1];",
                 "    barrier(CLK_LOCAL_MEM_FENCE);", "  }"]
    body.append("}")
    return _fp64("\n".join(body))


def gen_tile_carry(op, acc_ct, wg):
    """Tile strategy: one work-group per row turns the NT tile totals into exclusive prefixes."""
    ident, o = _OPS[op]
    return _fp64(f"""__kernel void tcarry(__global {acc_ct}* part, long NT) {{
  long m = get_group_id(0); int lid = get_local_id(0);
  __local {acc_ct} sh[{wg}];
  {acc_ct} carry = {ident};
  for (long b = 0; b < NT; b += {wg}) {{
    long i = b + lid;
    sh[lid] = (i < NT) ? part[m * NT + i] : ({acc_ct}){ident};
{_local_scan(o, ident, wg, acc_ct)}
    {acc_ct} ex = (lid > 0) ? sh[lid - 1] : ({acc_ct}){ident};
    if (i < NT) part[m * NT + i] = carry {o} ex;
    carry = carry {o} sh[{wg} - 1];
    barrier(CLK_LOCAL_MEM_FENCE);
  }}
}}""")


def run(device, op, x, dim, out, acc_ct, reverse=False, scratch=None):
    """out = inclusive scan of x along `dim` (reverse: from the end); out has x's shape."""
    shape = x.shape
    nd = len(shape)
    kept = [d for d in range(nd) if d != dim]
    kshape, (kst, kso) = collapse(tuple(shape[d] for d in kept),
                                  [tuple(x._strides[d] for d in kept), tuple(out._strides[d] for d in kept)])
    K = shape[dim] if nd else 1
    xs = x._strides[dim] if nd else 0
    os = out._strides[dim] if nd else 0
    M = 1
    for s in kshape:
        M *= s
    if M == 0 or K == 0:
        return
    wg = 1 << (min(256, device.max_work_group_size).bit_length() - 1)
    if device.is_cpu:
        wg = min(wg, 64)
    big = x._storage.size >= 2**31 or out._storage.size >= 2**31 or M * K >= 2**31
    idx_t, it = ("long", np.int64) if big else ("int", np.int32)
    if scratch is None:
        scratch = _default_scratch(device)
    ct = (x.dtype.ctype, acc_ct, out.dtype.ctype, len(kshape), idx_t)
    head = [x._storage.buf, it(x._offset)]
    for n, s, o in zip(kshape, kst, kso):
        head += [it(n), it(s), it(o)]
    head += [it(xs), out._storage.buf, it(out._offset), it(os)]
    name = f"cum{op}"
    if not device.is_cpu and xs == 1 and K > 64:
        T = wg * _IPT
        NT = (K + T - 1) // T
        part = scratch(M * NT, acc_ct) if NT > 1 else out
        args = head + [part._storage.buf, it(M), it(K), it(NT), it(T)]
        gsize, lsize = (NT * wg, M), (wg, 1)
        if NT > 1:
            knl = device.programs.kernel(("tscan", op, *ct, "part", reverse, wg),
                                         lambda: (gen_tile(op, *ct, "part", reverse, wg), "tscan"))
            launch(device, knl, gsize, lsize, args, f"{name}_part")
            ck = device.programs.kernel(("tcarry", op, acc_ct, wg),
                                        lambda: (gen_tile_carry(op, acc_ct, wg), "tcarry"))
            launch(device, ck, (M * wg,), (wg,), [part._storage.buf, np.int64(NT)], f"{name}_carry")
        knl = device.programs.kernel(("tscan", op, *ct, "out", reverse, wg),
                                     lambda: (gen_tile(op, *ct, "out", reverse, wg), "tscan"))
        launch(device, knl, gsize, lsize, args, name)
        return
    target = 4 * device.compute_units * wg
    G = 1
    if M < target:
        G = max(1, min((target + M - 1) // M, K // 64))
    chunk = (K + G - 1) // G
    G = (K + chunk - 1) // chunk
    part = scratch(M * G, acc_ct) if G > 1 else out
    args = head + [part._storage.buf, it(M), it(K), it(G), it(chunk)]
    gsize = ((M * G + wg - 1) // wg * wg,)
    if G > 1:
        knl = device.programs.kernel(("scan", op, *ct, "part", reverse),
                                     lambda: (gen_scan(op, *ct, "part", reverse), "scan"))
        launch(device, knl, gsize, (wg,), args, f"{name}_part")
        ck = device.programs.kernel(("scan_carry", op, acc_ct), lambda: (gen_carry(op, acc_ct), "carry"))
        launch(device, ck, (M,), None, [part._storage.buf, np.int64(M), np.int64(G)], f"{name}_carry")
    knl = device.programs.kernel(("scan", op, *ct, "out", reverse),
                                 lambda: (gen_scan(op, *ct, "out", reverse), "scan"))
    launch(device, knl, gsize, (wg,), args, name)
