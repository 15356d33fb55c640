"""Generated reduction kernels (and the fused softmax kernel, a reduction plus a write).

The input is viewed as (kept dims) x (reduced dims), each group collapsed.
One work-group reduces one output row through local memory (split over
several groups plus a second pass when there are few rows and long ones);
with short rows and many outputs each work-item reduces a row serially.

Expressions:
  `pre`  maps each loaded element: `v` is it cast to the accumulator type, `xv` the raw
         value in the input's own type, `p` the scalar argument, `a` the row's aux value.
  `post` maps the result `acc` (with `p` and `a`) before the cast to the output type.
An optional `aux` tensor (contiguous, one value per output row) feeds `a`: var uses the
row mean, logsumexp the row max.
"""
from types import SimpleNamespace

import numpy as np

from .elementwise import collapse
from .launch import launch
from .memory import Storage

# identity and combine step per reduction
_OPS = {
    "sum": ("0", "acc = acc + v;"),
    "prod": ("1", "acc = acc * v;"),
    "max": ("LOWEST", None),
    "min": ("HIGHEST", None),
}
_FLOAT_CT = ("float", "double", "half")


def _better(op, v, a, ct):
    """C test: `v` beats `a` for max/min; a NaN beats any number (NaN propagates)."""
    c = ">" if op == "max" else "<"
    if ct in _FLOAT_CT:
        return f"({v} {c} {a} || ({v} != {v} && {a} == {a}))"
    return f"({v} {c} {a})"


def _same(v, a, ct):
    return f"({v} == {a} || ({v} != {v} && {a} != {a}))" if ct in _FLOAT_CT else f"({v} == {a})"


def _step(op, ct):
    if _OPS[op][1] is not None:
        return _OPS[op][1]
    return f"if ({_better(op, 'v', 'acc', ct)}) acc = v;"
_LIMITS = {"float": ("-INFINITY", "INFINITY"), "double": ("-INFINITY", "INFINITY"),
           "int": ("INT_MIN", "INT_MAX"), "long": ("LONG_MIN", "LONG_MAX"),
           "uchar": ("0", "255"), "char": ("CHAR_MIN", "CHAR_MAX"), "short": ("SHRT_MIN", "SHRT_MAX")}
_NP = {"float": np.float32, "double": np.float64, "int": np.int32, "long": np.int64, "uchar": np.uint8,
       "char": np.int8, "short": np.int16}
_SIZE = {"float": 4, "double": 8, "int": 4, "long": 8, "uchar": 1, "char": 1, "short": 2}


def _fp64(src):
    if "double" in src:
        src = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" + src
    return src


def _index_expr(prefix, nd, idx_t, var, strides=("s",)):
    """Offsets of element number `var` in a strided group of `nd` dims (one per stride set)."""
    if nd == 0:
        return ["0" for _ in strides], []
    lines = [f"{idx_t} {prefix}r = {var};"]
    terms = [[] for _ in strides]
    for d in range(nd - 1, 0, -1):
        lines.append(f"{idx_t} {prefix}i{d} = {prefix}r % {prefix}n{d}; {prefix}r /= {prefix}n{d};")
        for t, s in zip(terms, strides):
            t.append(f"{prefix}i{d}*{prefix}{s}{d}")
    for t, s in zip(terms, strides):
        t.append(f"{prefix}r*{prefix}{s}0")
    return [" + ".join(t) for t in terms], lines


def gen_source(op, in_ct, acc_ct, out_ct, nk, nr, idx_t, pre, post, mode, wg, arg, aux_ct=None):
    ident = _OPS[op][0]
    step = _step(op, acc_ct)
    lo, hi = _LIMITS.get(acc_ct, ("-INFINITY", "INFINITY"))
    ident = ident.replace("LOWEST", lo).replace("HIGHEST", hi)
    params = [f"__global const {in_ct}* x", f"{idx_t} x_off"]
    params += [f"{idx_t} kn{d}, {idx_t} ks{d}" for d in range(nk)]
    params += [f"{idx_t} rn{d}, {idx_t} rs{d}" for d in range(nr)]
    params += [f"__global {out_ct}* out", f"{idx_t} o_off", f"{idx_t} M", f"{idx_t} K",
               f"{idx_t} chunk", f"{acc_ct} p"]
    if mode == "serial":
        params.append(f"{idx_t} G")
    if arg:
        params.append("__global long* out_idx")
    if aux_ct:
        params.append(f"__global const {aux_ct}* aux, {idx_t} aux_off")
    (kexpr,), klines = _index_expr("k", nk, idx_t, "m")
    (rexpr,), rlines = _index_expr("r", nr, idx_t, "j")
    if arg:
        step = f"if ({_better(op, 'v', 'acc', acc_ct)}) {{ acc = v; ai = j; }}"
    aux_line = f"  {acc_ct} a = ({acc_ct})aux[aux_off + m];" if aux_ct else ""
    body = [f"__kernel void red({', '.join(params)}) {{"]
    if "xv" in pre:
        load_v = [f"    {in_ct} xv = x[base + {rexpr}];", f"    {acc_ct} v = ({acc_ct})xv;"]
    else:
        load_v = [f"    {acc_ct} v = ({acc_ct})x[base + {rexpr}];"]
    load = [*("    " + line for line in rlines), *load_v,
            f"    v = {pre};" if pre != "v" else "",
            f"    {step}"]
    if mode == "serial":
        # work-item (m, g) = (gid % M, gid / M) reduces j in [g*chunk, min(K, (g+1)*chunk)) of row m
        # (G = 1: the whole row); neighbouring work-items take neighbouring rows
        body += [f"  {idx_t} gid = get_global_id(0);", "  if (gid >= M * G) return;",
                 f"  {idx_t} m = gid % M, g = gid / M;",
                 *("  " + line for line in klines), f"  {idx_t} base = x_off + {kexpr};", aux_line,
                 f"  {acc_ct} acc = {ident};", "  long ai = 0;",
                 f"  {idx_t} j_end = min(K, (g + 1) * chunk);",
                 f"  for ({idx_t} j = g * chunk; j < j_end; ++j) {{", *load, "  }",
                 f"  out[o_off + m * G + g] = ({out_ct})({post});"]
        if arg:
            body.append("  out_idx[m * G + g] = ai;")
    else:
        # group g of row m covers j in [g*chunk, min(K, (g+1)*chunk)); partials go to out[m*G + g]
        body += [f"  {idx_t} m = get_group_id(1);", f"  {idx_t} g = get_group_id(0);",
                 f"  {idx_t} G = get_num_groups(0);", "  int lid = get_local_id(0);",
                 *("  " + line for line in klines), f"  {idx_t} base = x_off + {kexpr};", aux_line,
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
            body += [f"      long j = shi[lid + s]; {acc_ct} a0 = sh[lid];",
                     f"      if ({_better(op, 'v', 'a0', acc_ct)} || ({_same('v', 'a0', acc_ct)} && j < shi[lid]))"
                     " { sh[lid] = v; shi[lid] = j; }"]
        else:
            body += [f"      {acc_ct} acc = sh[lid];", f"      {step}", "      sh[lid] = acc;"]
        body += ["    }", "    barrier(CLK_LOCAL_MEM_FENCE);", "  }",
                 "  if (lid == 0) {", "    acc = sh[0];",
                 f"    out[o_off + m * G + g] = (G == 1) ? ({out_ct})({post}) : ({out_ct})acc;"]
        if arg:
            body.append("    out_idx[m * G + g] = shi[0];")
        body.append("  }")
    body.append("}")
    return _fp64("\n".join(line for line in body if line != ""))


def _default_scratch(device):
    def scratch(n, ct):
        st = Storage(device, n * _SIZE[ct])
        return SimpleNamespace(_storage=st, _offset=0, dtype=SimpleNamespace(ctype=ct))
    return scratch


def _plan(device, M, K, contig=False, split=True):
    """(serial, G, wg): G work-items per row (serial) or G work-groups of wg items per row.

    `contig`: a row's elements are adjacent in memory.  On a GPU such rows go to work-groups
    (coalesced loads) unless they are very short, and strided rows (a column sum) go to work-items,
    neighbours on neighbouring rows (coalesced again), each row cut into G chunks when there are
    too few rows to fill the device (`split`).  On a CPU many rows go one per work-item."""
    wg = 1 << (min(256, device.max_work_group_size).bit_length() - 1)   # a power of two
    if device.is_cpu:
        wg = min(wg, 64)
    serial = K <= 32 or (M >= 4 * device.compute_units * wg and K <= 1024)
    if not device.is_cpu and K > 32:
        if contig and serial:
            serial = False
            while wg > 32 and wg >= 2 * K:   # no more lanes than elements (a size class, not a size)
                wg //= 2
        elif not contig:
            G = 1
            if split:
                target = device.compute_units * 1024
                G = max(1, min((target + M - 1) // M, K // 32))
            return True, G, wg
    G = 1
    if not serial:
        # enough groups to fill the device when there are few rows
        want = max(1, (device.compute_units * 8) // max(M, 1))
        G = max(1, min(want, K // (wg * 8)))
    return serial, G, wg


class _Plan:
    """Everything about a reduction launch that depends only on shapes, strides and expressions."""
    __slots__ = ("M", "K", "G", "serial", "wg", "knl", "it", "geom", "tail", "gsize", "lsize", "acc_np")


_plans = {}


def _make_plan(device, op, x, red_dims, out_ct, acc_ct, pre, post, arg, aux_ct, big):
    shape, strides = x._shape, x._strides
    kept = [d for d in range(len(shape)) if d not in red_dims]
    kshape, (kst,) = collapse(tuple(shape[d] for d in kept), [tuple(strides[d] for d in kept)])
    rshape, (rst,) = collapse(tuple(shape[d] for d in red_dims), [tuple(strides[d] for d in red_dims)])
    M = 1
    for s in kshape:
        M *= s
    K = 1
    for s in rshape:
        K *= s
    big = big or M * K >= 2**31
    idx_t, it = ("long", np.int64) if big else ("int", np.int32)
    serial, G, wg = _plan(device, M, K, rst[-1] == 1)
    if K == 0:
        serial, G = True, 1
    chunk = (K + G - 1) // G
    mode = "serial" if serial else "group"
    dst_ct = acc_ct if G > 1 else out_ct
    pst = post if G == 1 else "acc"
    key = ("red", op, x.dtype.ctype, acc_ct, dst_ct, len(kshape), len(rshape), idx_t, pre, pst, mode, wg, arg,
           aux_ct)
    pl = _Plan()
    pl.knl = device.programs.kernel(key, lambda: (gen_source(
        op, x.dtype.ctype, acc_ct, dst_ct, len(kshape), len(rshape), idx_t, pre, pst, mode, wg, arg, aux_ct),
        "red"))
    pl.M, pl.K, pl.G, pl.serial, pl.wg, pl.it, pl.acc_np = M, K, G, serial, wg, it, _NP[acc_ct]
    pl.geom = [it(v) for n, s in zip(kshape, kst) for v in (n, s)] + \
        [it(v) for n, s in zip(rshape, rst) for v in (n, s)]
    pl.tail = [it(M), it(K), it(chunk)]
    if serial:
        pl.gsize, pl.lsize = ((M * G + wg - 1) // wg * wg,), (wg,)
    else:
        pl.gsize, pl.lsize = (G * wg, M), (wg, 1)
    return pl


def run(device, op, x, red_dims, out, acc_ct, pre="v", post="acc", p=0, out_idx=None, scratch=None, aux=None):
    """Reduce `x` over `red_dims` into the contiguous tensor `out` (shape = kept dims).

    `scratch(n, ct)` allocates a partials tensor of n elements of C type ct for the two-pass case.
    `aux` (contiguous, one element per output) is the per-row value `a` in `pre`/`post`.
    """
    arg = out_idx is not None
    aux_ct = aux.dtype.ctype if aux is not None else None
    big = x._storage.size >= 2**31
    key = (device, op, x._shape, x._strides, tuple(red_dims), x.dtype.ctype, out.dtype.ctype, acc_ct, pre, post,
           arg, aux_ct, big)
    pl = _plans.get(key)
    if pl is None:
        if len(_plans) > 4096:
            _plans.clear()
        pl = _plans[key] = _make_plan(device, op, x, red_dims, out.dtype.ctype, acc_ct, pre, post, arg, aux_ct,
                                      big)
    M, G, it = pl.M, pl.G, pl.it
    if M == 0:
        return
    dst, dst_idx = out, out_idx
    if G > 1:
        if scratch is None:
            scratch = _default_scratch(device)
        dst = scratch(M * G, acc_ct)
        dst_idx = scratch(M * G, "long") if arg else None
    args = [x._storage.buf, it(x._offset), *pl.geom, dst._storage.buf, it(dst._offset), *pl.tail, pl.acc_np(p)]
    if pl.serial:
        args.append(it(G))
    if arg:
        args.append(dst_idx._storage.buf)
    if aux_ct:
        args += [aux._storage.buf, it(aux._offset)]
    launch(device, pl.knl, pl.gsize, pl.lsize, args, f"{op}_reduce")
    if G > 1:
        if arg:
            _finish_arg(device, op, dst, dst_idx, out, out_idx, M, G, acc_ct, post, p)
        else:
            run(device, op, _as2d(dst, M, G), (1,), out, acc_ct, "v", post, p, None, scratch, aux)


def _as2d(t, M, G):
    return SimpleNamespace(shape=(M, G), _shape=(M, G), _strides=(G, 1), _offset=0, _storage=t._storage,
                           dtype=t.dtype)


def _finish_arg(device, op, vals, idx, out, out_idx, M, G, acc_ct, post, p):
    """Second pass for arg-reductions: pick the best partial, write its value and global index."""
    out_ct = out.dtype.ctype
    src = _fp64(f"""
__kernel void argfin(__global const {acc_ct}* v, __global const long* ix, __global long* oi, long oi_off,
                     __global {out_ct}* out, long o_off, long G, long M, {acc_ct} p) {{
  long m = get_global_id(0); if (m >= M) return;
  {acc_ct} acc = v[m*G]; long bi = ix[m*G];
  for (long g = 1; g < G; ++g) {{ {acc_ct} c = v[m*G+g]; long ci = ix[m*G+g];
    if {_better(op, 'c', 'acc', acc_ct)} {{ acc = c; bi = ci; }} }}
  oi[oi_off + m] = bi;
  out[o_off + m] = ({out_ct})({post});
}}""")
    knl = device.programs.kernel(("argfin", op, acc_ct, out_ct, post), lambda: (src, "argfin"))
    launch(device, knl, (M,), None, [vals._storage.buf, idx._storage.buf, out_idx._storage.buf,
                                      np.int64(out_idx._offset), out._storage.buf, np.int64(out._offset),
                                      np.int64(G), np.int64(M), _NP[acc_ct](p)], "arg_reduce")


# ---- fused softmax / log_softmax ---------------------------------------------------------------
# Three sweeps over a row that stays in cache: the max; exp(v - max) summed (and, for softmax,
# written out); then the output scaled by 1/sum (softmax) or (v - max) - log(sum) (log_softmax).
# One exp per element, and torch's results for nan / inf rows (a max of +-inf gives nan).
_SM_REDUCE = """  sh[lid] = {var}; barrier(CLK_LOCAL_MEM_FENCE);
  for (int st = {wg} / 2; st > 0; st >>= 1) {{
    if (lid < st) {{ {a} u = sh[lid + st], w = sh[lid]; {combine} }}
    barrier(CLK_LOCAL_MEM_FENCE);
  }}
  {var} = sh[0]; barrier(CLK_LOCAL_MEM_FENCE);"""


def gen_softmax(in_ct, acc_ct, out_ct, nk, idx_t, mode, wg, log):
    params = [f"__global const {in_ct}* x", f"{idx_t} x_off"]
    params += [f"{idx_t} kn{d}, {idx_t} ks{d}, {idx_t} ko{d}" for d in range(nk)]
    params += [f"{idx_t} xs", f"__global {out_ct}* out", f"{idx_t} o_off", f"{idx_t} os", f"{idx_t} M",
               f"{idx_t} K"]
    (kx, ko), klines = _index_expr("k", nk, idx_t, "m", ("s", "o"))
    a = acc_ct
    loop = f"for ({idx_t} j = j0; j < K; j += js)"
    load = f"{a} v = ({a})x[xb + j * xs];"
    body = [f"__kernel void softmax({', '.join(params)}) {{"]
    if mode == "serial":
        body += [f"  {idx_t} m = get_global_id(0);", "  if (m >= M) return;", f"  {idx_t} j0 = 0, js = 1;"]
    else:
        body += [f"  {idx_t} m = get_group_id(0);", "  int lid = get_local_id(0);",
                 f"  {idx_t} j0 = lid, js = {wg};", f"  __local {a} sh[{wg}];"]
    body += [*("  " + line for line in klines),
             f"  {idx_t} xb = x_off + {kx}, ob = o_off + {ko};",
             f"  {a} mx = -INFINITY, s = 0;",
             f"  {loop} {{ {load} if (v > mx || v != v) mx = v; }}"]
    if mode != "serial":
        body.append(_SM_REDUCE.format(var="mx", wg=wg, a=a,
                                      combine="if (u > w || u != u) sh[lid] = u;"))
    if log:
        body.append(f"  {loop} {{ {load} s += exp(v - mx); }}")
    else:
        body.append(f"  {loop} {{ {load} {a} e = exp(v - mx); s += e; out[ob + j * os] = ({out_ct})e; }}")
    if mode != "serial":
        body.append(_SM_REDUCE.format(var="s", wg=wg, a=a, combine="sh[lid] = w + u;"))
    if log:
        body += [f"  {a} ls = log(s);",
                 f"  {loop} {{ {load} out[ob + j * os] = ({out_ct})((v - mx) - ls); }}"]
    else:
        body += [f"  {a} r = ({a})1 / s;",
                 f"  {loop} {{ {idx_t} o = ob + j * os; out[o] = ({out_ct})(({a})out[o] * r); }}"]
    body.append("}")
    return _fp64("\n".join(body))


def softmax_run(device, x, dim, out, acc_ct, log=False):
    """out = softmax(x) (or log_softmax) along `dim`; `out` has x's shape, any strides."""
    big = x._storage.size >= 2**31 or out._storage.size >= 2**31
    key = (device, "softmax", x._shape, x._strides, out._strides, dim, x.dtype.ctype, out.dtype.ctype, acc_ct, log,
           big)
    pl = _plans.get(key)
    if pl is None:
        if len(_plans) > 4096:
            _plans.clear()
        pl = _plans[key] = _softmax_plan(device, x, dim, out, acc_ct, log, big)
    if pl is None:
        return
    knl, it, geom, tail, gsize, lsize = pl
    launch(device, knl, gsize, lsize, [x._storage.buf, it(x._offset), *geom, out._storage.buf, it(out._offset),
                                       *tail], "log_softmax" if log else "softmax")


def _softmax_plan(device, x, dim, out, acc_ct, log, big):
    shape = x._shape
    kept = [d for d in range(len(shape)) if d != dim]
    kshape, (kst, kso) = collapse(tuple(shape[d] for d in kept),
                                  [tuple(x._strides[d] for d in kept), tuple(out._strides[d] for d in kept)])
    K = shape[dim] if len(shape) else 1
    xs = x._strides[dim] if len(shape) else 0
    os = out._strides[dim] if len(shape) else 0
    M = 1
    for s in kshape:
        M *= s
    if M == 0 or K == 0:
        return None
    big = big or M * K >= 2**31
    idx_t, it = ("long", np.int64) if big else ("int", np.int32)
    serial, _, wg = _plan(device, M, K, xs == 1, split=False)
    mode = "serial" if serial else "group"
    key = ("softmax", x.dtype.ctype, acc_ct, out.dtype.ctype, len(kshape), idx_t, mode, wg, log)
    knl = device.programs.kernel(key, lambda: (gen_softmax(
        x.dtype.ctype, acc_ct, out.dtype.ctype, len(kshape), idx_t, mode, wg, log), "softmax"))
    geom = [it(v) for n, s, o in zip(kshape, kst, kso) for v in (n, s, o)] + [it(xs)]
    tail = [it(os), it(M), it(K)]
    if serial:
        return knl, it, geom, tail, ((M + wg - 1) // wg * wg,), (wg,)
    return knl, it, geom, tail, (M * wg,), (wg,)
