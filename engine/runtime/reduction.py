"""Generated reduction kernels (and the fused softmax kernel, a reduction plus a write).

The input is viewed as M output rows of K elements: (kept dims) x (reduced dims), each group
collapsed.  Four kernel shapes, specialised on dtypes, ranks and mode, never on sizes:

  vec     rows whose elements are adjacent (the reduced dims collapse to one stride-1 dim) and
          long: a work-group reduces one chunk of a row.  Each work-item reads aligned 4-vectors
          through a `T4` pointer (16-byte loads on NVIDIA), `unroll` of them per iteration into
          4*unroll independent accumulators, then the work-group combines them in local memory.
          A scalar head and tail take the elements before the first aligned 4-vector and after
          the last (any view offset works).  GPUs: wg work-items interleaved, so neighbours
          read neighbouring vectors (coalesced); CPUs: wg = 1, so a work-item walks a
          contiguous chunk (SIMD loads, the hardware prefetcher; no barriers for PoCL).
  serial  one work-item per (row, chunk), neighbouring work-items on neighbouring rows: short
          rows, and strided rows the cols kernel does not take (several kept or reduced dims),
          where work-item m walks row m, so a GPU warp reads neighbouring elements (coalesced)
          and on a CPU neighbours share cache lines.  With one reduced dim the loop issues `unroll` loads
          before it accumulates them (memory-level parallelism).
  group   a work-group per (row, chunk), work-items strided by wg: float16 rows and rows that
          are several strided dims with a contiguous last one.
  cols    a column reduction (kept dims = one stride-1 dim, reduced = one strided dim): a work-item
          owns W adjacent columns and walks down the rows, reading W adjacent elements per row
          (GPU: W = 4, one aligned 4-vector, `unroll` rows in flight; CPU: W = 64 in a private
          array, <= 256 rows per work-item: a per-column walk on PoCL thrashed the TLB and the
          cache sets of a power-of-two stride, 0.2-0.5 GB/s).
When a row is cut into G > 1 chunks (few rows: the device needs more work-groups than rows) the
partials (M x G, accumulator type) get a second pass, a small reduction of the same family, or,
with TUNE["onepass"] on a GPU, the last work-group of each row folds them in the same launch.

Roofline (what the plans aim at): a sum of n floats reads 4n bytes and does n adds, so it is
memory-bound everywhere.  H200: HBM3e ~4.8 TB/s peak, a float4 elementwise kernel reaches
4.3 TB/s (benchmarks/RESULTS.md), so sum/mean over 2^26 floats (256 MB) -> ~62 us; rows
(dim=-1) or columns (dim=0) of 4096x4096 read 64 MB -> ~16 us, of 8192x8192 256 MB -> ~62 us.
The second pass reads M*G accumulators (1 x 528 floats for a full sum on 132 SMs): noise in
bytes, one more launch (a few us).  A column reduction must keep its reads coalesced; the split
into G row-chunks only makes enough work-items (M*G ~ compute_units * items_per_cu).
PoCL (2-core EPYC here): ~18-27 GB/s for a contiguous sum with 4x float4 accumulators per
work-item, ~9 GB/s scalar, 2.5 GB/s for the old wg-strided group kernel (the lanes of a PoCL
work-group run one after another, so a stride-64 walk touches every cache line 16 times).

Expressions:
  `pre`  maps each loaded element: `v` is it cast to the accumulator type, `xv` the raw
         value in the input's own type, `p` the scalar argument, `a` the row's aux value.
  `post` maps the result `acc` (with `p` and `a`) before the cast to the output type.
An optional `aux` tensor (contiguous, one value per output row) feeds `a`: var uses the
row mean, logsumexp the row max.
"""
import os
from types import SimpleNamespace

import numpy as np

from .elementwise import collapse
from .launch import fill_buffer, launch
from .memory import Storage

# identity and combine step per reduction
_OPS = {
    "sum": ("0", "acc = acc + v;"),
    "prod": ("1", "acc = acc * v;"),
    "max": ("LOWEST", None),
    "min": ("HIGHEST", None),
}
_FLOAT_CT = ("float", "double", "half")

# Plan knobs (benchmarks/probe_reduce.py compares them in one run; set_tuning() changes them
# and forgets cached plans).  Environment: CLGRAD_RED_<NAME>, e.g. CLGRAD_RED_WG=512.
TUNE = {
    "wg": 256,              # GPU work-group size of the vec and group kernels (a power of two)
    "unroll": 4,            # vec: 4-vectors per work-item per iteration; serial: loads per iteration
    "groups_per_cu": 4,     # GPU vec: a few long rows get ~compute_units * this many work-groups (4 x 256
                            # work-items fit on an SM at <= 64 registers: one wave, no tail)
    "items_per_cu": 1024,   # GPU serial: strided rows get ~compute_units * this many work-items
    "cpu_groups_per_cu": 4,  # CPU vec (one work-item per group): work-groups per compute unit
    "vec": 1,               # 0: never the vec kernel (the previous group kernel instead)
    "cols_w": 4,            # GPU cols kernel: columns per work-item (0: the serial kernel instead)
    "cpu_cols_w": 64,       # CPU cols kernel: columns per work-item (0: the serial kernel instead)
    "cols_max_m": 4096,     # GPU: column reductions of this many columns or more take the serial kernel (one
                            # column per work-item), measured faster there on an H200: dim=0 of 4096^2 2,046
                            # vs 1,324 GB/s, of 8192^2 3,612-3,656 vs 2,853-3,569; 1536 columns (a bias
                            # gradient) went either way between two runs (-3%, +15%), 384 columns -2%
    "onepass": 0,           # 1: GPU vec reductions of G > 1 chunks finish in one launch (last group folds)
    "gpu_plan": 0,          # 1: plan as for a GPU on any device (tests run the GPU kernels on PoCL)
}
for _k in TUNE:
    _v = os.environ.get("CLGRAD_RED_" + _k.upper())
    if _v:
        TUNE[_k] = int(_v)


def set_tuning(**kw):
    """Change plan knobs (see TUNE); returns the previous values of those given."""
    old = {k: TUNE[k] for k in kw}
    for k, v in kw.items():
        if k not in TUNE:
            raise ValueError(f"unknown reduction knob {k!r}; known: {', '.join(TUNE)}")
        TUNE[k] = int(v)
    _plans.clear()
    return old


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


def _stepf(op, ct, acc, ai=None, j=None):
    """Fold `v` into accumulator `acc` (and, for arg-reductions, its index `ai` = j)."""
    if ai is not None:
        return f"if ({_better(op, 'v', acc, ct)}) {{ {acc} = v; {ai} = {j}; }}"
    if _OPS[op][1] is None and ct in _FLOAT_CT:
        # a select LLVM vectorises (PoCL max 2^24: 5 -> ? GB/s); any NaN sticks, as in _better
        c = ">" if op == "max" else "<"
        return f"{acc} = (v {c} {acc} || v != v) ? v : {acc};"
    return _step(op, ct).replace("acc", acc)


def _merge(op, ct, dst, src, arg):
    """Fold accumulator `src` into `dst` (ties of arg-reductions keep the smaller index)."""
    if arg:
        return (f"{{ {ct} v = acc{src}; if ({_better(op, 'v', f'acc{dst}', ct)} || "
                f"({_same('v', f'acc{dst}', ct)} && ai{src} < ai{dst})) {{ acc{dst} = v; ai{dst} = ai{src}; }} }}")
    return f"{{ {ct} v = acc{src}; {_stepf(op, ct, f'acc{dst}')} }}"


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


def gen_source(op, in_ct, acc_ct, out_ct, nk, nr, idx_t, pre, post, mode, wg, arg, aux_ct=None, unroll=1, width=4,
               onepass=False):
    """Source of kernel `red` (see the module docstring for the modes).  Every mode writes
    out[o_off + m*G + g] for row m, chunk g of G; chunk g covers j in [g*chunk, min(K, (g+1)*chunk))."""
    ident = _OPS[op][0]
    lo, hi = _LIMITS.get(acc_ct, ("-INFINITY", "INFINITY"))
    ident = ident.replace("LOWEST", lo).replace("HIGHEST", hi)
    params = [f"__global const {in_ct}* x", f"{idx_t} x_off"]
    params += [f"{idx_t} kn{d}, {idx_t} ks{d}" for d in range(nk)]
    params += [f"{idx_t} rn{d}, {idx_t} rs{d}" for d in range(nr)]
    params += [f"__global {out_ct}* out", f"{idx_t} o_off", f"{idx_t} M", f"{idx_t} K",
               f"{idx_t} chunk", f"{acc_ct} p", f"{idx_t} G"]
    if arg:
        params.append("__global long* out_idx")
    if aux_ct:
        params.append(f"__global const {aux_ct}* aux, {idx_t} aux_off")
    if onepass:
        params.append(f"__global {acc_ct}* part, __global int* cnt")
    (kexpr,), klines = _index_expr("k", nk, idx_t, "m")
    (rexpr,), rlines = _index_expr("r", nr, idx_t, "j")
    aux_line = f"  {acc_ct} a = ({acc_ct})aux[aux_off + m];" if aux_ct else ""
    pre_line = f"v = {pre};" if pre != "v" else ""

    def elem(src, acc, ai, j):
        """One element `src` (an in_ct expression) into accumulator `acc`."""
        if "xv" in pre:
            load = f"{in_ct} xv = {src}; {acc_ct} v = ({acc_ct})xv;"
        else:
            load = f"{acc_ct} v = ({acc_ct})({src});"
        return f"{{ {load} {pre_line} {_stepf(op, acc_ct, acc, ai if arg else None, j)} }}"

    head = [f"  {idx_t} m = grp / G, g = grp - m * G;", *("  " + line for line in klines),
            f"  {idx_t} base = x_off + {kexpr};", aux_line]
    body = [f"__kernel void red({', '.join(params)}) {{"]
    if mode == "serial":
        # work-item (m, g) = (gid % M, gid / M): neighbouring work-items take neighbouring rows
        body += [f"  {idx_t} gid = get_global_id(0);", "  if (gid >= M * G) return;",
                 f"  {idx_t} m = gid % M, g = gid / M;",
                 *("  " + line for line in klines), f"  {idx_t} base = x_off + {kexpr};", aux_line,
                 f"  {acc_ct} acc = {ident};", "  long ai = 0;",
                 f"  {idx_t} j = g * chunk, j_end = min(K, (g + 1) * chunk);"]
        if nr == 1 and unroll > 1:
            # issue `unroll` independent loads, then fold them in order (ties keep the first)
            body.append(f"  for (; j + {unroll - 1} < j_end; j += {unroll}) {{")
            body += [f"    {in_ct} y{u} = x[base + (j + {u}) * rs0];" for u in range(unroll)]
            body += ["    " + elem(f"y{u}", "acc", "ai", f"j + {u}") for u in range(unroll)]
            body.append("  }")
        body += ["  for (; j < j_end; ++j) {", *("    " + line for line in rlines),
                 "    " + elem(f"x[base + {rexpr}]", "acc", "ai", "j"), "  }",
                 f"  out[o_off + m * G + g] = ({out_ct})({post});"]
        if arg:
            body.append("  out_idx[m * G + g] = ai;")
        body.append("}")
        return _fp64("\n".join(line for line in body if line != ""))
    if mode == "cols":
        # one kept stride-1 dim, one reduced dim: work-item (b, g) = (gid % nb, gid / nb) reduces
        # columns [b*W, b*W + W) over rows j of chunk g, reading each row's W adjacent elements
        W = width
        aux_c = f"{acc_ct} a = ({acc_ct})aux[aux_off + m0 + c];" if aux_ct else ""
        body += [f"  {idx_t} gid = get_global_id(0), nb = (M + {W - 1}) / {W};", "  if (gid >= nb * G) return;",
                 f"  {idx_t} b = gid % nb, g = gid / nb, m0 = b * {W};",
                 f"  {idx_t} j = g * chunk, j_end = min(K, (g + 1) * chunk);",
                 f"  {acc_ct} accs[{W}];", f"  long ais[{W}];" if arg else "",
                 f"  for (int c = 0; c < {W}; ++c) {{ accs[c] = {ident};{' ais[c] = 0;' if arg else ''} }}",
                 f"  if (m0 + {W} <= M{' && ((x_off | rs0) & 3) == 0' if W == 4 else ''}) {{"]
        if W == 4:
            # GPU: aligned 4-vectors through a T4 pointer (16-byte loads; other views take the
            # scalar loop below), `unroll` rows in flight before they are folded (in row order)
            body.append(f"    __global const {in_ct}4* X4 = (__global const {in_ct}4*)(x + x_off + m0);")
            body.append(f"    {idx_t} rs4 = rs0 / 4;")
        if W == 4 and unroll > 1:
            body.append(f"    for (; j + {unroll - 1} < j_end; j += {unroll}) {{")
            body += [f"      {in_ct}4 y{u} = X4[(j + {u}) * rs4];" for u in range(unroll)]
            body += [f"      {{ int c = {c}; {aux_c} " + elem(f"y{u}.s{c}", "accs[c]", "ais[c]", f"j + {u}") + " }"
                     for u in range(unroll) for c in range(4)]
            body.append("    }")
        body += [f"    for (; j < j_end; ++j) {{",
                 f"      __global const {in_ct}* r = x + x_off + j * rs0 + m0;",
                 f"      for (int c4 = 0; c4 < {W // 4}; ++c4) {{",
                 f"        {in_ct}4 y = {'X4[j * rs4]' if W == 4 else 'vload4(c4, r)'};"]
        for c in range(4):
            body.append(f"        {{ int c = c4 * 4 + {c}; {aux_c} " + elem(f"y.s{c}", "accs[c]", "ais[c]", "j") + " }")
        # constant trip counts with a guard (no loop over M - m0): the array stays in registers
        body += ["      }", "    }", "  } else {",
                 f"    for (; j < j_end; ++j) for (int c = 0; c < {W}; ++c) if (m0 + c < M) {{ {aux_c} "
                 + elem("x[x_off + j * rs0 + m0 + c]", "accs[c]", "ais[c]", "j") + " }",
                 "  }",
                 f"  for (int c = 0; c < {W}; ++c) if (m0 + c < M) {{",
                 f"    {acc_ct} acc = accs[c]; {aux_c}",
                 f"    out[o_off + (m0 + c) * G + g] = ({out_ct})({post});",
                 "    out_idx[(m0 + c) * G + g] = ais[c];" if arg else "",
                 "  }", "}"]
        return _fp64("\n".join(line for line in body if line != ""))
    body += [f"  {idx_t} grp = get_group_id(0);", "  int lid = get_local_id(0);", *head]
    if mode == "vec":
        # aligned 4-vectors q in [qa, qb) (element 4q of the buffer); scalar head [h0, 4qa), tail [4qb, h1)
        n_acc = 4 * unroll
        body += [f"  {idx_t} h0 = base + g * chunk, h1 = base + min(K, (g + 1) * chunk);",
                 f"  {idx_t} qa = (h0 + 3) / 4, qb = max(qa, h1 / 4), hend = min(h1, qa * 4);",
                 f"  {acc_ct} " + ", ".join(f"acc{i} = {ident}" for i in range(n_acc)) + ";"]
        if arg:
            body.append("  long " + ", ".join(f"ai{i} = 0" for i in range(n_acc)) + ";")
        body += [f"  for ({idx_t} e = h0 + lid; e < hend; e += {wg}) " + elem("x[e]", "acc0", "ai0", "e - base"),
                 f"  __global const {in_ct}4* X4 = (__global const {in_ct}4*)x;",
                 f"  {idx_t} q = qa + lid;"]
        if unroll > 1:
            body.append(f"  for (; q + {(unroll - 1) * wg} < qb; q += {unroll * wg}) {{")
            body += [f"    {in_ct}4 y{u} = X4[q + {u * wg}];" for u in range(unroll)]
            body += ["    " + elem(f"y{u}.s{c}", f"acc{4 * u + c}", f"ai{4 * u + c}",
                                  f"(q + {u * wg}) * 4 + {c} - base")
                     for u in range(unroll) for c in range(4)]
            body.append("  }")
        body += [f"  for (; q < qb; q += {wg}) {{", f"    {in_ct}4 y0 = X4[q];",
                 *("    " + elem(f"y0.s{c}", f"acc{c}", f"ai{c}", f"q * 4 + {c} - base") for c in range(4)),
                 "  }",
                 f"  for ({idx_t} e = qb * 4 + lid; e < h1; e += {wg}) " + elem("x[e]", "acc0", "ai0", "e - base")]
        s = n_acc // 2
        while s:   # pairwise: acc0 = ((acc0 + acc_s) + ...)
            body += ["  " + _merge(op, acc_ct, i, i + s, arg) for i in range(s)]
            s //= 2
        body += [f"  {acc_ct} acc = acc0;", "  long ai = ai0;" if arg else ""]
    else:
        body += [f"  {acc_ct} acc = {ident};", "  long ai = 0;",
                 f"  {idx_t} j_end = min(K, (g + 1) * chunk);",
                 f"  for ({idx_t} j = g * chunk + lid; j < j_end; j += {wg}) {{", *("    " + line for line in rlines),
                 "    " + elem(f"x[base + {rexpr}]", "acc", "ai", "j"), "  }"]
    if wg > 1:
        tree = ["  sh[lid] = acc;", "  shi[lid] = ai;" if arg else "",
                "  barrier(CLK_LOCAL_MEM_FENCE);",
                f"  for (int s = {wg} / 2; s > 0; s >>= 1) {{",
                "    if (lid < s) {",
                f"      {acc_ct} v = sh[lid + s];"]
        if arg:
            tree += [f"      long j = shi[lid + s]; {acc_ct} a0 = sh[lid];",
                     f"      if ({_better(op, 'v', 'a0', acc_ct)} || ({_same('v', 'a0', acc_ct)} && j < shi[lid]))"
                     " { sh[lid] = v; shi[lid] = j; }"]
        else:
            tree += [f"      {acc_ct} acc = sh[lid];", f"      {_step(op, acc_ct)}", "      sh[lid] = acc;"]
        tree += ["    }", "    barrier(CLK_LOCAL_MEM_FENCE);", "  }"]
        body += [f"  __local {acc_ct} sh[{wg}];", "  __local long shi[%d];" % wg if arg else "", *tree]
        if onepass:
            # one launch for G > 1: each group writes its partial, then the last group to finish
            # (a per-row counter, atomic_inc after a global fence) folds the row's G partials
            # (volatile loads: from L2, not a stale L1) and resets the counter for the next call
            body += ["  __local int last;",
                     "  if (lid == 0) {", "    acc = sh[0];",
                     f"    if (G == 1) out[o_off + m] = ({out_ct})({post});",
                     "    else { part[m * G + g] = acc; mem_fence(CLK_GLOBAL_MEM_FENCE);",
                     "           last = atomic_inc(&cnt[m]) == G - 1; }", "  }",
                     "  barrier(CLK_LOCAL_MEM_FENCE);",
                     "  if (G > 1 && last) {", "    read_mem_fence(CLK_GLOBAL_MEM_FENCE);",
                     f"    acc = {ident};",
                     f"    for ({idx_t} k = lid; k < G; k += {wg}) "
                     f"{{ {acc_ct} v = ((volatile __global {acc_ct}*)part)[m * G + k]; {_step(op, acc_ct)} }}",
                     *("  " + line for line in tree),
                     "    if (lid == 0) {", "      acc = sh[0];", f"      out[o_off + m] = ({out_ct})({post});",
                     "      cnt[m] = 0;", "    }", "  }", "}"]
            return _fp64("\n".join(line for line in body if line != ""))
        body += ["  if (lid == 0) {", "    acc = sh[0];", "    ai = shi[0];" if arg else ""]
    else:
        body.append("  {")
    body.append(f"    out[o_off + m * G + g] = ({out_ct})({post});")
    if arg:
        body.append("    out_idx[m * G + g] = ai;")
    body += ["  }", "}"]
    return _fp64("\n".join(line for line in body if line != ""))


def _default_scratch(device):
    def scratch(n, ct):
        st = Storage(device, n * _SIZE[ct])
        return SimpleNamespace(_storage=st, _offset=0, dtype=SimpleNamespace(ctype=ct))
    return scratch


def _plan(device, M, K, contig=False, split=True):
    """(serial, G, wg) for the softmax and norm kernels (engine/ops/norm.py): G work-items per
    row (serial) or G work-groups of wg items per row.

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


def _pow2_le(n):
    return 1 << (max(1, n).bit_length() - 1)


def _red_plan(device, M, K, contig, vec_ok, cols_ok=False):
    """(mode, G, chunk, wg, unroll, width) of a plain reduction of M rows of K elements.

    contig: the last reduced dim has stride 1; vec_ok: the reduced dims are one stride-1 dim of a
    type with 4-vectors (not half), so the vec kernel can read the row; cols_ok: the kept dims are
    one stride-1 dim and the reduced dims one strided dim (a column reduction), so the cols kernel
    can read `width` adjacent rows (columns) at a time."""
    cu = device.compute_units
    U = max(1, TUNE["unroll"])
    M = max(M, 1)
    cdiv = lambda a, b: (a + b - 1) // b  # noqa: E731
    width = 4
    if device.is_cpu and not TUNE["gpu_plan"]:
        wg = min(64, _pow2_le(device.max_work_group_size))
        if cols_ok and K > 32 and TUNE["cpu_cols_w"] >= 4 and M >= 16:
            # a CPU walks the rows of a column block: one work-item sums cpu_cols_w adjacent
            # columns (a private array, vectorised by LLVM) over <= 256 rows
            mode, wg, width = "cols", 4, TUNE["cpu_cols_w"] // 4 * 4
            nb = cdiv(M, width)
            G = max(1, min(cdiv(cu * 64, nb), K // 32), cdiv(K, 256))
        elif K <= 32 or not contig or not (vec_ok and TUNE["vec"]) and M >= 4 * cu * wg and K <= 1024:
            # short rows, or many rows of <= 1 KB, or strided rows: one work-item each; a few long
            # rows are cut into chunks (neighbours still on neighbouring rows).  Strided rows get
            # chunks of <= 256 elements: a walk down a 4096-float column touches a new page per
            # element and missed the TLB every time (0.18 GB/s for 4096x4096 dim=0), while
            # neighbouring work-items on one chunk share its pages and cache lines
            G = max(1, min(cdiv(cu * 256, M), K // 256))
            if not contig:
                G = max(G, cdiv(K, 256))
            mode = "serial"
        elif vec_ok and TUNE["vec"]:
            wg, mode = 1, "vec"
            G = max(1, min(cdiv(cu * TUNE["cpu_groups_per_cu"], M), K // 4096))
        else:
            mode = "group"
            G = max(1, min(max(1, cu * 8 // M), K // (wg * 8)))
        if M * K < 1 << 18:
            G = 1   # small: one launch (a second pass costs more host time than it saves)
    else:
        wg = min(_pow2_le(TUNE["wg"]), _pow2_le(device.max_work_group_size))
        if K <= 32:
            mode, G = "serial", 1
        elif vec_ok and TUNE["vec"]:
            mode = "vec"
            while wg > 32 and wg * 8 > K:    # >= 2 vectors per lane (a size class, not a size)
                wg //= 2
            G = max(1, min(cdiv(cu * TUNE["groups_per_cu"], M), K // (wg * 4 * U)))
        elif contig:
            mode = "group"
            while wg > 32 and wg >= 2 * K:
                wg //= 2
            G = max(1, min(max(1, cu * 8 // M), K // (wg * 8)))
        elif cols_ok and TUNE["cols_w"] >= 4 and 4 <= M < TUNE["cols_max_m"]:
            # a column reduction: work-item b walks columns 4b..4b+3 (a 4-vector per row), so a
            # warp reads 512 adjacent bytes per row
            mode, width = "cols", TUNE["cols_w"] // 4 * 4
            nb = cdiv(M, width)
            G = max(1, min(cdiv(cu * TUNE["items_per_cu"] // 2, nb), K // 32))
        else:
            # strided rows (a column sum): work-item m walks row m; coalesced across m
            mode = "serial"
            G = max(1, min(cdiv(cu * TUNE["items_per_cu"], M), K // 32))
    if K == 0:
        mode, G = "serial", 1
    chunk = cdiv(K, G)
    if mode == "vec":
        chunk = cdiv(chunk, 4) * 4        # chunk boundaries stay 4-aligned within a row
    G = max(1, cdiv(K, chunk)) if K else 1
    return mode, G, chunk, wg, U, width


class _Plan:
    """Everything about a reduction launch that depends only on shapes, strides and expressions."""
    __slots__ = ("M", "K", "G", "mode", "wg", "knl", "it", "geom", "tail", "gsize", "lsize", "acc_np", "onepass")


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
    in_ct = x.dtype.ctype
    contig = rst[-1] == 1
    vec_ok = contig and len(rshape) == 1 and in_ct != "half"
    cols_ok = len(kshape) == 1 and kst[0] == 1 and len(rshape) == 1 and in_ct != "half"
    mode, G, chunk, wg, U, width = _red_plan(device, M, K, contig, vec_ok, cols_ok)
    width = width if mode == "cols" else 4
    if not (mode == "vec" or (mode == "cols" and width == 4) or (mode == "serial" and len(rshape) == 1 and K > 32)):
        U = 1
    onepass = bool(TUNE["onepass"]) and mode == "vec" and wg > 1 and not arg and G > 1
    dst_ct = acc_ct if G > 1 and not onepass else out_ct
    pst = post if G == 1 or onepass else "acc"
    key = ("red", op, in_ct, acc_ct, dst_ct, len(kshape), len(rshape), idx_t, pre, pst, mode, wg, arg,
           aux_ct, U, width, onepass)
    pl = _Plan()
    pl.knl = device.programs.kernel(key, lambda: (gen_source(
        op, in_ct, acc_ct, dst_ct, len(kshape), len(rshape), idx_t, pre, pst, mode, wg, arg, aux_ct, U, width,
        onepass),
        "red"))
    pl.M, pl.K, pl.G, pl.mode, pl.wg, pl.it, pl.acc_np = M, K, G, mode, wg, it, _NP[acc_ct]
    pl.onepass = onepass
    pl.geom = [it(v) for n, s in zip(kshape, kst) for v in (n, s)] + \
        [it(v) for n, s in zip(rshape, rst) for v in (n, s)]
    pl.tail = [it(M), it(K), it(chunk)]
    if mode == "serial":
        pl.gsize, pl.lsize = ((M * G + wg - 1) // wg * wg,), (wg,)
    elif mode == "cols":
        n = (M + width - 1) // width * G
        pl.gsize, pl.lsize = ((n + wg - 1) // wg * wg,), (wg,)
    else:
        pl.gsize, pl.lsize = (M * G * wg,), (wg,)
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
           arg, aux_ct, big, device.is_cpu)   # is_cpu: the plan follows it (tests flip it for GPU plans)
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
    if pl.onepass:
        part = (scratch or _default_scratch(device))(M * G, acc_ct)
        args = [x._storage.buf, it(x._offset), *pl.geom, out._storage.buf, it(out._offset), *pl.tail,
                pl.acc_np(p), it(G)]
        if aux_ct:
            args += [aux._storage.buf, it(aux._offset)]
        args += [part._storage.buf, _counters(device, M)]
        launch(device, pl.knl, pl.gsize, pl.lsize, args, f"{op}_reduce")
        return
    if G > 1:
        if scratch is None:
            scratch = _default_scratch(device)
        dst = scratch(M * G, acc_ct)
        dst_idx = scratch(M * G, "long") if arg else None
    args = [x._storage.buf, it(x._offset), *pl.geom, dst._storage.buf, it(dst._offset), *pl.tail, pl.acc_np(p),
            it(G)]
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


_counter_bufs = {}


def _counters(device, n):
    """A buffer of >= n zero ints that stays zero between one-pass launches (each resets its own)."""
    c = _counter_bufs.get(device)
    if c is None or c[1] < n:
        size = max(1024, 1 << (n - 1).bit_length())
        st = Storage(device, size * 4)
        fill_buffer(device, st.buf, np.int32(0), 0, size * 4)
        c = _counter_bufs[device] = (st, size)
    return c[0].buf


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
