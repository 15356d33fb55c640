"""Generated inclusive-scan kernels (cumsum, cumprod), optionally reversed.

The input is viewed as (kept dims, collapsed) x (scan dim of K elements).  Each row
is cut into G chunks of `chunk` elements and one work-item scans one chunk serially:
with G > 1 a first kernel writes each chunk's total, a second turns each row's totals
into exclusive prefixes (the chunk's carry-in), and the final kernel rescans each chunk
starting from its carry.  G is 1 when there are enough rows to fill the device.
"""
import numpy as np

from .elementwise import collapse
from .launch import launch
from .reduction import _default_scratch, _fp64, _index_expr

_OPS = {"sum": ("0", "+"), "prod": ("1", "*")}


def gen_scan(op, in_ct, acc_ct, out_ct, nk, idx_t, phase, reverse):
    ident, o = _OPS[op]
    params = [f"__global const {in_ct}* x", f"{idx_t} x_off"]
    params += [f"{idx_t} kn{d}, {idx_t} ks{d}, {idx_t} ko{d}" for d in range(nk)]
    params += [f"{idx_t} xs", f"__global {out_ct}* out", f"{idx_t} o_off", f"{idx_t} os",
               f"__global {acc_ct}* part", f"{idx_t} M", f"{idx_t} K", f"{idx_t} G", f"{idx_t} chunk"]
    (kx, ko), klines = _index_expr("k", nk, idx_t, "m", ("s", "o"))
    pos = "(K - 1 - j)" if reverse else "j"
    body = [f"__kernel void scan({', '.join(params)}) {{",
            f"  {idx_t} gid = get_global_id(0);", "  if (gid >= M * G) return;",
            f"  {idx_t} m = gid / G, g = gid - m * G;",
            *("  " + line for line in klines),
            f"  {idx_t} xb = x_off + {kx}, ob = o_off + {ko};",
            f"  {idx_t} j_end = min(K, (g + 1) * chunk);"]
    if phase == "part":
        body += [f"  {acc_ct} acc = {ident};",
                 f"  for ({idx_t} j = g * chunk; j < j_end; ++j) acc = acc {o} ({acc_ct})x[xb + {pos} * xs];",
                 "  part[gid] = acc;"]
    else:
        body += [f"  {acc_ct} acc = (G > 1) ? part[gid] : ({acc_ct}){ident};",
                 f"  for ({idx_t} j = g * chunk; j < j_end; ++j) {{",
                 f"    acc = acc {o} ({acc_ct})x[xb + {pos} * xs];",
                 f"    out[ob + {pos} * os] = ({out_ct})acc;", "  }"]
    body.append("}")
    return _fp64("\n".join(body))


def gen_carry(op, acc_ct):
    ident, o = _OPS[op]
    return _fp64(f"""__kernel void carry(__global {acc_ct}* part, long M, long G) {{
  long m = get_global_id(0); if (m >= M) return;
  {acc_ct} acc = {ident};
  for (long g = 0; g < G; ++g) {{ {acc_ct} t = part[m * G + g]; part[m * G + g] = acc; acc = acc {o} t; }}
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
    target = 4 * device.compute_units * wg
    G = 1
    if M < target:
        G = max(1, min((target + M - 1) // M, K // 64))
    chunk = (K + G - 1) // G
    G = (K + chunk - 1) // chunk
    big = x._storage.size >= 2**31 or out._storage.size >= 2**31 or M * K >= 2**31
    idx_t, it = ("long", np.int64) if big else ("int", np.int32)
    if scratch is None:
        scratch = _default_scratch(device)
    part = scratch(M * G, acc_ct) if G > 1 else out
    args = [x._storage.buf, it(x._offset)]
    for n, s, o in zip(kshape, kst, kso):
        args += [it(n), it(s), it(o)]
    args += [it(xs), out._storage.buf, it(out._offset), it(os), part._storage.buf, it(M), it(K), it(G),
             it(chunk)]
    gsize = ((M * G + wg - 1) // wg * wg,)
    ct = (x.dtype.ctype, acc_ct, out.dtype.ctype, len(kshape), idx_t)
    if G > 1:
        knl = device.programs.kernel(("scan", op, *ct, "part", reverse),
                                     lambda: (gen_scan(op, *ct, "part", reverse), "scan"))
        launch(device, knl, gsize, (wg,), args, f"cum{op}_part")
        ck = device.programs.kernel(("scan_carry", op, acc_ct), lambda: (gen_carry(op, acc_ct), "carry"))
        launch(device, ck, (M,), None, [part._storage.buf, np.int64(M), np.int64(G)], f"cum{op}_carry")
    knl = device.programs.kernel(("scan", op, *ct, "out", reverse),
                                 lambda: (gen_scan(op, *ct, "out", reverse), "scan"))
    launch(device, knl, gsize, (wg,), args, f"cum{op}")

