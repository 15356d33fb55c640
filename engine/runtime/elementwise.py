"""Generated elementwise kernels.

One work-item per output element.  Kernels are specialised on the expression,
dtypes, (collapsed) rank and, per operand, whether it is contiguous, strided or a
scalar; sizes, strides and offsets are kernel arguments, so a new shape never
builds a new program.
"""
import re

import numpy as np

from . import launch as _launch
from .launch import INT_T, launch, round_up


def collapse(shape, strides_list):
    """Drop size-1 dims and merge dims that are contiguous for every operand."""
    dims = [i for i, s in enumerate(shape) if s != 1]
    if not dims:
        return (1,), [(0,) for _ in strides_list]
    shp = [shape[dims[0]]]
    sts = [[st[dims[0]]] for st in strides_list]
    for d in dims[1:]:
        n = shape[d]
        if all(s[-1] == st[d] * n for s, st in zip(sts, strides_list)):
            shp[-1] *= n
            for s, st in zip(sts, strides_list):
                s[-1] = st[d]
        else:
            shp.append(n)
            for s, st in zip(sts, strides_list):
                s.append(st[d])
    return tuple(shp), [tuple(s) for s in sts]


def contiguous_strides(shape):
    st = []
    acc = 1
    for n in reversed(shape):
        st.append(acc)
        acc *= n
    return tuple(reversed(st))


# A floating literal without a suffix (0.5, 1e-6) is a double in OpenCL C wherever the device has fp64:
# `0.5 * v1 * (1 + erf(v1 * 0.7071067811865476))` then ran erf and the products in double precision on
# NVIDIA (GELU forward 110 us, backward 165 us for 100 MB on an H200: 1.8 TB/s, where `add` reaches 3).
# Kernels whose operands are all single precision get float literals; torch computes those ops in float.
_FLOAT_LIT = re.compile(r"(?<![\w.])((?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)(?![\w.])")


# an operand of a generated expression: v1..vN (fusion rewrites them, GEMM epilogues substitute them)
OPERAND = re.compile(r"\bv(\d+)\b")


def single_precision(expr, out_ct, specs):
    """expr with float literals (an 'f' suffix) unless something in the kernel is double."""
    if "double" in expr or out_ct == "double" or any("double" in sp[1:] for sp in specs):
        return expr
    return _FLOAT_LIT.sub(r"\1f", expr)


def gen_source(expr, out_ct, specs, ndim, idx_t, name="ew", preamble="", guard=True):
    """specs: ('c'|'v', ctype, compute_ctype) per array operand or ('s', ctype) per scalar;
    specs[0] is the output.  `expr` uses v1..vN for the cast inputs."""
    expr = single_precision(expr, out_ct, specs)
    params, loads = [], []
    omode = specs[0][0]
    params.append(f"__global {out_ct}* out, {idx_t} o_off")
    if omode == "v":
        params.append(", ".join(f"{idx_t} o_s{d}" for d in range(ndim)))
    for i, sp in enumerate(specs[1:], 1):
        mode = sp[0]
        if mode == "s":
            params.append(f"{sp[1]} v{i}")
            continue
        ct, cct = sp[1], sp[2]
        params.append(f"__global const {ct}* in{i}, {idx_t} off{i}")
        if mode == "v":
            params.append(", ".join(f"{idx_t} s{i}_{d}" for d in range(ndim)))
            pos = " + ".join(f"i{d}*s{i}_{d}" for d in range(ndim))
            loads.append(f"    {cct} v{i} = ({cct})in{i}[off{i} + {pos}];")
        else:
            loads.append(f"    {cct} v{i} = ({cct})in{i}[off{i} + gid];")
    params.append(f"{idx_t} n")
    strided = omode == "v" or any(sp[0] == "v" for sp in specs[1:])
    if strided:
        params.append(", ".join(f"{idx_t} d{d}" for d in range(ndim)))
    lines = [f"__kernel void {name}({', '.join(params)}) {{",
             f"    {idx_t} gid = get_global_id(0);"]
    if guard:
        lines.append("    if (gid >= n) return;")
    if strided:
        lines.append(f"    {idx_t} r = gid;")
        for d in range(ndim - 1, 0, -1):
            lines.append(f"    {idx_t} i{d} = r % d{d}; r /= d{d};")
        lines.append(f"    {idx_t} i0 = r;")
    lines += loads
    opos = " + ".join(f"i{d}*o_s{d}" for d in range(ndim)) if omode == "v" else "gid"
    lines.append(f"    out[o_off + {opos}] = ({out_ct})({expr});")
    lines.append("}")
    src = preamble + "\n".join(lines)
    if "double" in src:
        src = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" + src
    return src


def gen_source_vec4(expr, out_ct, specs, preamble=""):
    """All-contiguous kernel, 4 elements per work-item: vload4/vstore4 move the data
    (measured: scalar loads reach 3.4 TB/s on an H200, vload4 4.3 TB/s = PyTorch's),
    while `expr` stays scalar per component so its C semantics don't change."""
    expr = single_precision(expr, out_ct, specs)
    params = [f"__global {out_ct}* out, int o_off"]
    for i, sp in enumerate(specs[1:], 1):
        if sp[0] == "s":
            params.append(f"{sp[1]} v{i}")
        else:
            params.append(f"__global const {sp[1]}* in{i}, int off{i}")
    params.append("int n")
    arrays = [i for i, sp in enumerate(specs[1:], 1) if sp[0] != "s"]
    lines = [f"__kernel void ew({', '.join(params)}) {{",
             "    int gid = get_global_id(0);",
             "    int base = gid * 4;",
             "    if (base + 3 < n) {"]
    for i in arrays:
        lines.append(f"        {specs[i][1]}4 x{i} = vload4(gid, in{i} + off{i});")
    comps = []
    for c in range(4):
        e = expr
        # substitute array operands by their component, cast to the compute type
        for i in sorted(arrays, reverse=True):
            e = e.replace(f"v{i}", f"(({specs[i][2]})x{i}.s{c})")
        comps.append(f"({out_ct})({e})")
    lines.append(f"        vstore4(({out_ct}4)({', '.join(comps)}), gid, out + o_off);")
    lines.append("    } else {")
    lines.append("        for (int j = base; j < n; ++j) {")
    for i in arrays:
        lines.append(f"            {specs[i][2]} v{i} = ({specs[i][2]})in{i}[off{i} + j];")
    lines.append(f"            out[o_off + j] = ({out_ct})({expr});")
    lines += ["        }", "    }", "}"]
    src = preamble + "\n".join(lines)
    if "double" in src:
        src = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" + src
    return src


# None: vectorised contiguous kernels on GPUs only (on PoCL the scalar kernel is
# auto-vectorised and 3x faster); tests set True to run the vec4 path on any device
VEC4 = None
_cstr_cache = {}


def cstrides(shape):
    r = _cstr_cache.get(shape)
    if r is None:
        r = _cstr_cache[shape] = contiguous_strides(shape)
    return r


def run(device, op, expr, out, operands, compute_cts, preamble=""):
    """out[...] = expr(operands) elementwise over out.shape.

    out and array operands expose `shape`, `_strides`, `_offset`, `_storage.buf`
    and `dtype.ctype`; array operands are already broadcast to out.shape (stride 0).
    Scalars are Python numbers; compute_cts gives each operand's C type in `expr`.
    """
    rec = _launch._REC[0]
    if rec is not None:  # engine.compile: describe the launches for the fusion pass
        rec.ew_begin(_describe(rec, op, expr, out, operands, compute_cts, preamble))
        try:
            return _run(device, op, expr, out, operands, compute_cts, preamble)
        finally:
            rec.ew_end()
    return _run(device, op, expr, out, operands, compute_cts, preamble)


def _describe(rec, op, expr, out, operands, compute_cts, preamble):
    """(op, expr, out, operands, preamble) with each array as (buffer ref, shape, strides, offset,
    dtype, compute ctype) where buffer ref is a slot number or the constant buffer, and each
    scalar as ("s", value, ctype)."""
    def ref(t):
        buf = t._storage.buf
        if hasattr(buf, "slot"):
            return buf.slot
        s = rec.slot_of(buf)
        return buf if s is None else s
    ops = tuple((ref(o), o._shape, o._strides, o._offset, o.dtype, ct) if hasattr(o, "_storage")
                else ("s", o, ct) for o, ct in zip(operands, compute_cts))
    return (op, expr, (ref(out), out._shape, out._strides, out._offset, out.dtype, None), ops, preamble)


def _run(device, op, expr, out, operands, compute_cts, preamble=""):
    shape = out._shape
    n = 1
    for s in shape:
        n *= s
    if n == 0:
        return
    cs = cstrides(shape)
    if out._strides == cs and n < 2**31 and all(
            not hasattr(o, "_storage") or (o._strides == cs and o._storage.size < 2**31) for o in operands):
        # hot path: everything contiguous, one flat index
        specs = [("c", out.dtype.ctype, None)]
        args = [out._storage.buf, np.int32(out._offset)]
        for o, ct in zip(operands, compute_cts):
            if hasattr(o, "_storage"):
                specs.append(("c", o.dtype.ctype, ct))
                args.append(o._storage.buf)
                args.append(np.int32(o._offset))
            else:
                specs.append(("s", ct))
                args.append(INT_T[ct](o))
        args.append(np.int32(n))
        specs = tuple(specs)
        # expressions of the element index (arange, linspace) need the scalar kernel
        if (device.is_gpu if VEC4 is None else VEC4) and n >= 4096 and "gid" not in expr:
            key = ("ew4", op, expr, specs)
            knl = device.programs.kernel(key, lambda: (gen_source_vec4(expr, out.dtype.ctype, specs, preamble), "ew"))
            wg = device.wg
            launch(device, knl, (round_up((n + 3) // 4, wg),), (wg,), args, op)
            return
        _launch_ew(device, op, expr, out.dtype.ctype, specs, 1, "int", preamble, args, n)
        return
    allops = (out,) + tuple(operands)
    big = n >= 2**31 or any(a._storage.size >= 2**31 for a in allops if hasattr(a, "_storage"))
    # the strided path's layout work (collapse, specs, stride arguments) depends only on these: cached
    # (is_cpu: the tail guard follows it, and tests flip it to run GPU launch plans on PoCL)
    key = (device, device.is_cpu, op, expr, preamble, shape, big, tuple(compute_cts),
           tuple((a._strides, a.dtype) if hasattr(a, "_storage") else None for a in allops))
    plan = _strided_plans.get(key)
    if plan is None:
        if len(_strided_plans) >= 4096:   # many shapes (varying lengths): start over rather than grow
            _strided_plans.clear()
        plan = _strided_plans[key] = _strided_plan(device, op, expr, out, operands, compute_cts, preamble, n, big)
    knl, parts, tail, (gsize, lsize, rest) = plan
    it = np.int64 if big else np.int32
    args = []
    for k, extra in parts:
        o = allops[k]
        if extra is None:   # a scalar
            args.append(INT_T[compute_cts[k - 1]](o))
        else:
            args.append(o._storage.buf)
            args.append(it(o._offset))
            args += extra
    args += tail
    if gsize:
        launch(device, knl, gsize, lsize, args, op)
    if rest:
        launch(device, knl, (rest[1],), None, args, op, offset=(rest[0],))


_strided_plans = {}


def _strided_plan(device, op, expr, out, operands, compute_cts, preamble, n, big):
    """(kernel, per-operand (index, constant stride arguments or None for a scalar), trailing constant
    arguments, launch geometry) of a strided elementwise launch."""
    arrays = [out] + [o for o in operands if hasattr(o, "_storage")]
    shp, sts = collapse(out._shape, [a._strides for a in arrays])
    ndim = len(shp)
    cstr = contiguous_strides(shp)
    idx_t = "long" if big else "int"
    it = np.int64 if big else np.int32
    specs, parts = [], []
    ai = 0
    for k, o in enumerate([out] + list(operands)):
        if k and not hasattr(o, "_storage"):
            specs.append(("s", compute_cts[k - 1]))
            parts.append((k, None))
            continue
        st = sts[ai]
        ai += 1
        mode = "c" if st == cstr else "v"
        specs.append((mode, o.dtype.ctype, compute_cts[k - 1] if k else None))
        parts.append((k, [it(s) for s in st] if mode == "v" else []))
    specs = tuple(specs)
    tail = [it(n)] + ([it(s) for s in shp] if any(sp[0] == "v" for sp in specs) else [])
    knl, geometry = _ew_kernel(device, op, expr, out.dtype.ctype, specs, ndim, idx_t, preamble, n)
    return knl, parts, tail, geometry


def _ew_kernel(device, op, expr, out_ct, specs, ndim, idx_t, preamble, n):
    """(kernel, (gsize, lsize, tail)): GPUs round the grid up to whole work-groups and guard the tail.
    CPUs (PoCL): no guard, so the compiler can vectorise the work-group loop (3x faster measured);
    whole work-groups first, then the tail (offset, count) as a second launch."""
    guard = not device.is_cpu
    key = ("ew", op, expr, specs, ndim, idx_t, guard)
    knl = device.programs.kernel(key, lambda: (gen_source(expr, out_ct, specs, ndim, idx_t, preamble=preamble,
                                                          guard=guard), "ew"))
    wg = device.wg
    if guard:
        return knl, ((round_up(n, wg),), (wg,), None)
    main = n // wg * wg
    return knl, ((main,) if main else None, (wg,), (main, n - main) if n - main else None)


def _launch_ew(device, op, expr, out_ct, specs, ndim, idx_t, preamble, args, n):
    knl, (gsize, lsize, rest) = _ew_kernel(device, op, expr, out_ct, specs, ndim, idx_t, preamble, n)
    if gsize:
        launch(device, knl, gsize, lsize, args, op)
    if rest:
        launch(device, knl, (rest[1],), None, args, op, offset=(rest[0],))


_fast_cache = {}


def run_fast(device, op, expr, out, a, b, ct, vec4):
    """The dispatch hot path: out = expr(a, b) for contiguous same-shape tensors a (and b,
    a tensor or a Python scalar of C type ct) whose dtype is the compute type."""
    if _launch._REC[0] is not None:
        return run(device, op, expr, out, [a, b], [ct, ct])
    shape = out._shape
    n = 1
    for s in shape:
        n *= s
    if n == 0:
        return
    scalar = not hasattr(b, "_storage")
    # is_cpu in the key: the kernel's tail guard follows it, and tests flip it to run GPU launch plans here
    # (a guard-less kernel launched over a rounded-up grid wrote past the output)
    key = (device, op, expr, ct, out.dtype.ctype, scalar, device.is_cpu)
    ent = _fast_cache.get(key)
    if ent is None:
        bspec = ("s", ct) if scalar else ("c", ct, ct)
        specs = (("c", out.dtype.ctype, None), ("c", ct, ct), bspec)
        v4 = (device.is_gpu if VEC4 is None else VEC4)
        knl1 = device.programs.kernel(("ew", op, expr, specs, 1, "int", not device.is_cpu), lambda: (
            gen_source(expr, out.dtype.ctype, specs, 1, "int", guard=not device.is_cpu), "ew"))
        knl4 = device.programs.kernel(("ew4", op, expr, specs), lambda: (
            gen_source_vec4(expr, out.dtype.ctype, specs), "ew")) if v4 else None
        ent = _fast_cache[key] = (knl1, knl4, INT_T[ct])
    knl1, knl4, conv = ent
    i32 = np.int32
    args = (out._storage.buf, i32(out._offset), a._storage.buf, i32(a._offset),
            conv(b) if scalar else b._storage.buf) + ((i32(n),) if scalar else (i32(b._offset), i32(n)))
    wg = device.wg
    if knl4 is not None and n >= 4096:
        launch(device, knl4, (round_up((n + 3) // 4, wg),), (wg,), args, op)
    elif not device.is_cpu:
        launch(device, knl1, (round_up(n, wg),), (wg,), args, op)
    else:
        main = n // wg * wg
        if main:
            launch(device, knl1, (main,), (wg,), args, op)
        if n - main:
            launch(device, knl1, (n - main,), None, args, op, offset=(main,))
