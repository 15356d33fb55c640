"""Multi-tensor kernels for gradient clipping (torch's _foreach_norm / _foreach_mul_ path of
clip_grad_norm_): the p-norm of many tensors taken together, and an in-place scale of many
tensors by min(1, max_norm / (norm + 1e-6)) read on the device.

Why: clipping a GPT's 76 gradients one tensor at a time cost ~230 launches (a norm and a
multiply each, then a stack) and their Python; here it is ceil(76 / K) launches per pass plus one.
A launch takes K tensors (as many as the 1 KiB argument budget allows, capped at MAX_SLOTS);
work-group w belongs to the first slot whose cumulative work-group end exceeds w, so no tensor
needs copying into one buffer and no table needs uploading.

Norm: each work-group reduces one chunk of one tensor to a partial (sum of |x|^p, or max |x|
for p = inf) in the accumulator type; a one-work-group kernel reduces the partials and takes the
root.  Mathematically torch's norm of the per-tensor norms; the order of float additions differs.
"""
import numpy as np

from .launch import launch, round_up

MAX_SLOTS = 32
_ARG_BUDGET = 1024   # CL_DEVICE_MAX_PARAMETER_SIZE's guaranteed minimum, in bytes
FINISH_WG = 256


def slots(idx_t):
    isz = 8 if idx_t == "long" else 4
    return max(1, min(MAX_SLOTS, (_ARG_BUDGET - 64) // (8 + 3 * isz)))


def _mode(p):
    """('sq' | 'abs' | 'max' | 'pow'): the per-element term of a p-norm."""
    if p == 2.0:
        return "sq"
    if p == 1.0:
        return "abs"
    if p == float("inf"):
        return "max"
    return "pow"


def _comb(mode):
    # NaN-propagating max (OpenCL's fmax drops NaN; torch's inf-norm of a NaN is NaN)
    return "MAXN" if mode == "max" else "ADD"


_PRE = """{ext}#define T {t}
#define A {a}
#define ADD(x, y) ((x) + (y))
#define MAXN(x, y) ((x) > (y) || isnan(x) ? (x) : (y))
"""


def _slot_select(K, idx_t, ptr, end):
    """Lines that set X (the slot's data), n and s0 (the slot's first id) from id `w`."""
    lines = []
    for k in range(K):
        cond = f"if (w < {end}{k})" if k == 0 else f"else if (w < {end}{k})"
        prev = "0" if k == 0 else f"{end}{k - 1}"
        lines.append(f"    {cond} {{ X = x{k} + off{k}; n = n{k}; s0 = {prev}; }}")
    lines.append("    else return;")
    return lines


def _slot_params(K, ptr, idx_t, end):
    return ", ".join(f"{ptr} x{k}, {idx_t} off{k}, {idx_t} n{k}, {idx_t} {end}{k}" for k in range(K))


def _tree(comb, wg):
    """Lines folding each work-item's `acc` into red[0] (local-memory tree)."""
    return ["    red[lid] = acc;",
            "    barrier(CLK_LOCAL_MEM_FENCE);",
            f"    for (int s = {wg} / 2; s > 0; s >>= 1) {{",
            f"        if (lid < s) red[lid] = {comb}(red[lid], red[lid + s]);",
            "        barrier(CLK_LOCAL_MEM_FENCE);",
            "    }"]


def norm_source(ct, at, idx_t, mode, K, wg):
    ext = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" if "double" in (ct, at) else ""
    term = {"sq": "v * v", "abs": "v", "max": "v", "pow": "pow(v, p)"}[mode]
    comb = _comb(mode)
    L = [_PRE.format(ext=ext, t=ct, a=at),
         f"__kernel __attribute__((reqd_work_group_size({wg}, 1, 1)))",
         f"void mt_norm({_slot_params(K, '__global const T*', idx_t, 'we')}, "
         f"__global A* part, {idx_t} pbase, {idx_t} chunk, A p) {{",
         f"    __local A red[{wg}];",
         f"    {idx_t} w = get_group_id(0);",
         "    int lid = get_local_id(0);",
         f"    __global const T* X; {idx_t} n, s0;"]
    L += _slot_select(K, idx_t, "__global const T*", "we")
    L += [f"    {idx_t} start = (w - s0) * chunk;",
          f"    {idx_t} stop = min(start + chunk, n);",
          "    A acc = 0;",
          f"    for ({idx_t} i = start + lid; i < stop; i += {wg}) {{",
          "        A v = fabs((A)X[i]);",
          f"        acc = {comb}(acc, {term});",
          "    }",
          *_tree(comb, wg),
          "    if (lid == 0) part[pbase + w] = red[0];",
          "}"]
    return "\n".join(L) + "\n", "mt_norm"


def finish_source(ct, at, mode, wg):
    ext = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" if "double" in (ct, at) else ""
    comb = _comb(mode)
    root = {"sq": "sqrt(r)", "abs": "r", "max": "r", "pow": "pow(r, (A)1 / p)"}[mode]
    L = [_PRE.format(ext=ext, t=ct, a=at),
         f"__kernel __attribute__((reqd_work_group_size({wg}, 1, 1)))",
         "void mt_norm_finish(__global const A* part, int nparts, __global T* out, int out_off, A p) {",
         f"    __local A red[{wg}];",
         "    int lid = get_local_id(0);",
         "    A acc = 0;",
         f"    for (int i = lid; i < nparts; i += {wg}) acc = {comb}(acc, part[i]);",
         *_tree(comb, wg),
         f"    if (lid == 0) {{ A r = red[0]; out[out_off] = (T)({root}); }}",
         "}"]
    return "\n".join(L) + "\n", "mt_norm_finish"


def scale_source(ct, idx_t, K):
    ext = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" if ct == "double" else ""
    L = [_PRE.format(ext=ext, t=ct, a=ct),
         f"__kernel void mt_clip_scale({_slot_params(K, '__global T*', idx_t, 'end')}, "
         f"__global const T* norm, {idx_t} norm_off, T max_norm) {{",
         f"    {idx_t} w = get_global_id(0);",
         f"    __global T* X; {idx_t} n, s0;"]
    L += _slot_select(K, idx_t, "__global T*", "end")
    L += [f"    {idx_t} i = w - s0;",
          "    if (i >= n) return;",
          # torch: clip_coef = max_norm / (total_norm + 1e-6); clamp(max=1.0) keeps a NaN
          "    T c = max_norm / (norm[norm_off] + (T)1e-6);",
          "    c = c > (T)1 ? (T)1 : c;",
          "    X[i] = X[i] * c;",
          "}"]
    return "\n".join(L) + "\n", "mt_clip_scale"


def _idx_t(items):
    return "long" if any(off + n >= 2**31 for _b, off, n in items) or \
        sum(n for _b, _o, n in items) + len(items) >= 2**31 else "int"


def _np_idx(idx_t):
    return np.int64 if idx_t == "long" else np.int32


def total_norm(dev, ct, at, items, p, part_buf, out_buf, out_off):
    """Write the p-norm of the elements of every (buffer, offset, numel) in `items` (dtype ct,
    contiguous) to out_buf[out_off].  part_buf: room for `partials(dev, items)` values of type at."""
    mode = _mode(p)
    idx_t = _idx_t(items)
    it, af = _np_idx(idx_t), (np.float64 if at == "double" else np.float32)
    K, wg = slots(idx_t), dev.wg
    chunk = _chunk(dev)
    knl = dev.programs.kernel(("mt_norm", ct, at, idx_t, mode, K, wg),
                              lambda: norm_source(ct, at, idx_t, mode, K, wg))
    pbase = 0
    for c in range(0, len(items), K):
        args, we = _slot_args(items[c:c + K], K, it, lambda n: -(-n // chunk))
        if we:
            launch(dev, knl, (we * wg,), (wg,), args + [part_buf, it(pbase), it(chunk), af(p)], "clip_norm")
        pbase += we
    fw = min(FINISH_WG, dev.max_work_group_size)
    fk = dev.programs.kernel(("mt_norm_finish", ct, at, mode, fw), lambda: finish_source(ct, at, mode, fw))
    launch(dev, fk, (fw,), (fw,), [part_buf, np.int32(pbase), out_buf, np.int32(out_off), af(p)], "clip_norm")


def _slot_args(group, K, it, ids):
    """Kernel arguments of K slots (buffer, offset, n, cumulative end of the slot's ids) for `group`,
    padded with empty slots; ids(n): how many ids (work-groups or work-items) a tensor of n takes."""
    args, end = [], 0
    for k in range(K):
        buf, off, n = group[min(k, len(group) - 1)]
        if k < len(group):
            end += ids(n)
        else:
            n = 0
        args += [buf, it(off), it(n), it(end)]
    return args, end


def _chunk(dev):
    # elements per work-group: enough that the partials stay few; PoCL wants big work-groups' worth
    return dev.wg * (64 if dev.is_cpu else 16)


def partials(dev, items):
    chunk = _chunk(dev)
    return max(1, sum(-(-n // chunk) for _b, _o, n in items))


def clip_scale(dev, ct, items, norm_buf, norm_off, max_norm):
    """Every (buffer, offset, numel) in `items` *= min(1, max_norm / (norm + 1e-6)), in place."""
    idx_t = _idx_t(items)
    it = _np_idx(idx_t)
    tf = np.float64 if ct == "double" else np.float32
    K, wg = slots(idx_t), dev.wg
    knl = dev.programs.kernel(("mt_clip_scale", ct, idx_t, K), lambda: scale_source(ct, idx_t, K))
    for c in range(0, len(items), K):
        args, end = _slot_args(items[c:c + K], K, it, lambda n: n)
        if end:
            launch(dev, knl, (round_up(end, wg),), (wg,), args + [norm_buf, it(norm_off), tf(max_norm)],
                   "clip_scale")
