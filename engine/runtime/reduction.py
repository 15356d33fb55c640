"""Generated reduction kernels.

The input is viewed as (kept dims) x (reduced dims), each group collapsed.
One work-group reduces one output row through local memory (split over
several groups plus a second pass when there are few rows and long ones);
with short rows and many outputs each work-item reduces a row serially.
`pre` maps each loaded value `v`, `post` maps the result `acc` (with scalar `p`).
"""
import numpy as np

from .elementwise import collapse
from .launch import launch

# identity and combine step per reduction
_OPS = {
    "sum": ("0", "acc = acc + v;"),
    "prod": ("1", "acc = acc * v;"),
    "max": ("LOWEST", "if (v > acc || v != v) acc = v;"),
    "min": ("HIGHEST", "if (v < acc || v != v) acc = v;"),
}
_LIMITS = {"float": ("-INFINITY", "INFINITY"), "double": ("-INFINITY", "INFINITY"),
           "int": ("INT_MIN", "INT_MAX"), "long": ("LONG_MIN", "LONG_MAX"),
           "uchar": ("0", "255"), "char": ("CHAR_MIN", "CHAR_MAX"), "short": ("SHRT_MIN", "SHRT_MAX")}


def _index_expr(prefix, nd, idx_t, var):
    """Offset of element number `var` in a strided group of `nd` dims."""
    if nd == 0:
        return "0", []
    lines = [f"{idx_t} {prefix}r = {var};"]
    terms = []
    for d in range(nd - 1, 0, -1):
        lines.append(f"{idx_t} {prefix}i{d} = {prefix}r % {prefix}n{d}; {prefix}r /= {prefix}n{d};")
        terms.append(f"{prefix}i{d}*{prefix}s{d}")
    terms.append(f"{prefix}r*{prefix}s0")
    return " + ".join(terms), lines


def gen_source(op, in_ct, acc_ct, out_ct, nk, nr, idx_t, pre, post, mode, wg, arg):
    ident, step = _OPS[op]
    lo, hi = _LIMITS.get(acc_ct, ("-INFINITY", "INFINITY"))
    ident = ident.replace("LOWEST", lo).replace("HIGHEST", hi)
    params = [f"__global const {in_ct}* x", f"{idx_t} x_off"]
    params += [f"{idx_t} kn{d}, {idx_t} ks{d}" for d in range(nk)]
    params += [f"{idx_t} rn{d}, {idx_t} rs{d}" for d in range(nr)]
    params += [f"__global {out_ct}* out", f"{idx_t} o_off", f"{idx_t} M", f"{idx_t} K",
               f"{idx_t} chunk", f"{acc_ct} p"]
    if arg:
        params.append("__global long* out_idx")
    kexpr, klines = _index_expr("k", nk, idx_t, "m")
    rexpr, rlines = _index_expr("r", nr, idx_t, "j")
    if arg:
        step = ("if (v > acc || (v != v && acc == acc)) { acc = v; ai = j; }" if op == "max" else
                "if (v < acc || (v != v && acc == acc)) { acc = v; ai = j; }")
    body = [f"__kernel void red({', '.join(params)}) {{"]
    load = [*("    " + line for line in rlines),
            f"    {acc_ct} v = ({acc_ct})x[base + {rexpr}];",
            f"    v = {pre};" if pre != "v" else "",
            f"    {step}"]
    if mode == "serial":
        body += [f"  {idx_t} m = get_global_id(0);", "  if (m >= M) return;",
                 *("  " + line for line in klines), f"  {idx_t} base = x_off + {kexpr};",
                 f"  {acc_ct} acc = {ident};", "  long ai = 0;",
                 f"  for ({idx_t} j = 0; j < K; ++j) {{", *load, "  }",
                 f"  out[o_off + m] = ({out_ct})({post});"]
        if arg:
            body.append("  out_idx[m] = ai;")
    else:
        # group g of row m covers j in [g*chunk, min(K, (g+1)*chunk)); partials go to out[m*G + g]
        body += [f"  {idx_t} m = get_group_id(1);", f"  {idx_t} g = get_group_id(0);",
                 f"  {idx_t} G = get_num_groups(0);", "  int lid = get_local_id(0);",
                 *("  " + line for line in klines), f"  {idx_t} base = x_off + {kexpr};",
                 f"  {acc_ct} acc = {ident};", "  long ai = 0;",
                 f"  {idx_t} j_end = min(K, (g + 1) * chunk);",
                 f"  for ({idx_t} j = g * chunk + lid; j < j_end; j += {wg}) {{", *load, "  }",
                 f"  __local {acc_ct} sh[{wg}];", "  __local long shi[%d];" % wg if arg else "",
                 "  sh[lid] = acc;", "  shi[lid] = ai;" if arg else "",
                 "  barrier(CLK_LOCAL_MEM_FENCE);",
                 f"  for (int s = {wg} / 2; s > 0; s >>= 1) {{",
                 "    if (lid < s) {",
                 f"      {acc_ct} v = sh[lid + s];"]
        if arg:
            cmp = ">" if op == "max" else "<"
            body += [f"      long j = shi[lid + s]; {acc_ct} a0 = sh[lid];",
                     f"      if (v {cmp} a0 || (v != v && a0 == a0) || ((v == a0 || (v != v && a0 != a0)) && j < shi[lid])) {{ sh[lid] = v; shi[lid] = j; }}"]
        else:
            body += [f"      {acc_ct} acc = sh[lid];", f"      {_OPS[op][1]}", "      sh[lid] = acc;"]
        body += ["    }", "    barrier(CLK_LOCAL_MEM_FENCE);", "  }",
                 "  if (lid == 0) {", "    acc = sh[0];",
                 f"    out[o_off + m * G + g] = (G == 1) ? ({out_ct})({post}) : ({out_ct})acc;"]
        if arg:
            body.append("    out_idx[m * G + g] = shi[0];")
        body.append("  }")
    body.append("}")
    src = "\n".join(line for line in body if line != "")
    if "double" in src:
        src = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" + src
    return src


_NP = {"float": np.float32, "double": np.float64, "int": np.int32, "long": np.int64, "uchar": np.uint8}


def run(device, op, x, red_dims, out, acc_ct, pre="v", post="acc", p=0, out_idx=None, scratch=None):
    """Reduce `x` over `red_dims` into the contiguous tensor `out` (shape = kept dims).

    `scratch(n, ct)` allocates a partials tensor of n elements of C type ct for the two-pass case.
    """
    shape, strides = x.shape, x._strides
    kept = [d for d in range(len(shape)) if d not in red_dims]
    kshape, (kst,) = collapse(tuple(shape[d] for d in kept), [tuple(strides[d] for d in kept)])
    rshape, (rst,) = collapse(tuple(shape[d] for d in red_dims), [tuple(strides[d] for d in red_dims)])
    M = 1
    for s in kshape:
        M *= s
    K = 1
    for s in rshape:
        K *= s
    if M == 0:
        return
    arg = out_idx is not None
    big = x._storage.size >= 2**31 or M * K >= 2**31
    idx_t, it = ("long", np.int64) if big else ("int", np.int32)
    wg = min(256, device.max_work_group_size)
    if device.is_cpu:
        wg = min(wg, 64)
    serial = K <= 32 or (M >= 4 * device.compute_units * wg and K <= 1024)
    G = 1
    if not serial:
        # enough groups to fill the device when there are few rows
        want = max(1, (device.compute_units * 8) // M)
        G = max(1, min(want, K // (wg * 8)))
    chunk = (K + G - 1) // G
    if K == 0:
        serial = True
    mode = "serial" if serial else "group"
    dst, dst_idx, dst_ct = out, out_idx, out.dtype.ctype
    if G > 1:
        dst = scratch(M * G, acc_ct)
        dst_idx = scratch(M * G, "long") if arg else None
        dst_ct = acc_ct
    key = ("red", op, x.dtype.ctype, acc_ct, dst_ct, len(kshape), len(rshape), idx_t, pre,
           post if G == 1 else "acc", mode, wg, arg)
    knl = device.programs.kernel(key, lambda: (gen_source(
        op, x.dtype.ctype, acc_ct, dst_ct, len(kshape), len(rshape), idx_t, pre,
        post if G == 1 else "acc", mode, wg, arg), "red"))
    args = [x._storage.buf, it(x._offset)]
    for n, s in zip(kshape, kst):
        args += [it(n), it(s)]
    for n, s in zip(rshape, rst):
        args += [it(n), it(s)]
    args += [dst._storage.buf, it(dst._offset), it(M), it(K), it(chunk), _NP[acc_ct](p)]
    if arg:
        args.append(dst_idx._storage.buf)
    if serial:
        launch(device, knl, ((M + wg - 1) // wg * wg,), (wg,), args, f"{op}_reduce")
    else:
        launch(device, knl, (G * wg, M), (wg, 1), args, f"{op}_reduce")
    if G > 1:
        if arg:
            _finish_arg(device, op, dst, dst_idx, out, out_idx, M, G, acc_ct, scratch)
        else:
            run(device, op, _as2d(dst, M, G), [1], out, acc_ct, "v", post, p, None, scratch)


def _as2d(t, M, G):
    from types import SimpleNamespace
    return SimpleNamespace(shape=(M, G), _strides=(G, 1), _offset=0, _storage=t._storage, dtype=t.dtype)


def _finish_arg(device, op, vals, idx, out, out_idx, M, G, acc_ct, scratch):
    """Second pass for arg-reductions: pick the best partial and its global index."""
    src = f"""
__kernel void argfin(__global const {acc_ct}* v, __global const long* ix, __global long* out, long o_off, long G, long M) {{
  long m = get_global_id(0); if (m >= M) return;
  {acc_ct} best = v[m*G]; long bi = ix[m*G];
  for (long g = 1; g < G; ++g) {{ {acc_ct} c = v[m*G+g]; long ci = ix[m*G+g];
    if (c {'>' if op == 'max' else '<'} best || (c != c && best == best)) {{ best = c; bi = ci; }} }}
  out[o_off + m] = bi;
}}"""
    if "double" in src:
        src = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" + src
    knl = device.programs.kernel(("argfin", op, acc_ct), lambda: (src, "argfin"))
    launch(device, knl, (M,), None, [vals._storage.buf, idx._storage.buf, out_idx._storage.buf,
                                      np.int64(out_idx._offset), np.int64(G), np.int64(M)], "arg_reduce")
