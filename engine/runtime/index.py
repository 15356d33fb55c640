"""Generated index kernels: gather / scatter with index tensors, nonzero, tril/triu.

One work-item per element of an iteration shape.  Every operand (the written
tensor, the read tensor or scalar, each index tensor) is addressed through its
own strides over that shape; an index value, wrapped if negative, is multiplied
by a per-index stride and added to the offset of the *indexed* side:

  side "g" (gather):  out[o] = in[i + sum_k idx_k * st_k]
  side "s" (scatter): out[o + sum_k idx_k * st_k] (op)= in[i] | scalar

An out-of-range index is clamped (the element is skipped: a gather writes 0)
and reported in a small per-device error buffer: err[0] = 1, err[1] = which
index, err[2:4] = its value; `check_errors` reads it (a host sync) and raises.

Scatter accumulation uses atomics: 32-bit types through an atomic_cmpxchg loop
(OpenCL 1.2 core), 8/16-bit types through a cmpxchg on the containing 32-bit
word, 64-bit types through atom_cmpxchg when the device reports
cl_khr_int64_base_atomics, else a deterministic one-work-item serial kernel.

Kernels are specialised on dtypes, rank, the number of indices and the op;
sizes, strides and offsets are arguments.
"""
import numpy as np

from .elementwise import collapse
from . import launch as _launch
from .launch import INT_T, copy_to_host, fill_buffer, launch, round_up

_SIZE = {"uchar": 1, "char": 1, "short": 2, "half": 2, "int": 4, "float": 4, "long": 8, "double": 8}
_UNSIGNED = {"uchar": "uchar", "char": "uchar", "short": "ushort"}
_AS = {"float": ("as_float", "as_uint"), "int": ("as_int", "as_uint"),
       "double": ("as_double", "as_ulong"), "long": ("as_long", "as_ulong")}


def _combine(op, ct, a, b):
    if op == "add":
        return f"({a} + {b})"
    if op == "mul":
        return f"({a} * {b})"
    if op in ("max", "min"):
        cmp = ">" if op == "max" else "<"
        if ct in ("float", "double", "half"):  # NaN propagates, as torch's amax/amin
            return f"(({a} != {a}) ? {a} : ((({b}) {cmp} ({a}) || ({b}) != ({b})) ? ({b}) : ({a})))"
        return f"((({b}) {cmp} ({a})) ? ({b}) : ({a}))"
    if op == "or":
        return f"(({a}) || ({b}))"
    if op == "and":
        return f"(({a}) && ({b}))"
    raise ValueError(op)


def atomic_source(ct, op, idx_t, little_endian=True):
    """`void atomic_<op>_<ct>(__global ct* base, idx_t off, ct v)`: base[off] = combine(base[off], v)."""
    name = f"atomic_{op}_{ct}"
    sz = _SIZE[ct]
    head = f"inline void {name}(__global {ct}* base, {idx_t} off, {ct} v) {{\n"
    if ct == "int" and op == "add":
        return name, head + "  atomic_add((volatile __global int*)(base + off), v);\n}\n"
    if sz == 4:
        frm, to = _AS[ct]
        return name, head + (
            "  volatile __global uint* p = (volatile __global uint*)(base + off);\n"
            "  uint old = *p, assumed;\n"
            f"  do {{ assumed = old; {ct} cur = {frm}(assumed);\n"
            f"       old = atomic_cmpxchg(p, assumed, {to}(({ct}){_combine(op, ct, 'cur', 'v')})); }}"
            " while (old != assumed);\n}\n")
    if sz == 8:
        frm, to = _AS[ct]
        return name, head + (
            "  volatile __global ulong* p = (volatile __global ulong*)(base + off);\n"
            "  ulong old = *p, assumed;\n"
            f"  do {{ assumed = old; {ct} cur = {frm}(assumed);\n"
            f"       old = atom_cmpxchg(p, assumed, {to}(({ct}){_combine(op, ct, 'cur', 'v')})); }}"
            " while (old != assumed);\n}\n")
    # 8/16-bit: compare-and-swap the aligned 32-bit word that holds the element
    ut = _UNSIGNED[ct]
    shift = "(uint)(boff & 3) * 8" if little_endian else f"(uint)(4 - {sz} - (boff & 3)) * 8"
    return name, head + (
        f"  {idx_t} boff = off * {sz};\n"
        "  volatile __global uint* p = ((volatile __global uint*)base) + (boff >> 2);\n"
        f"  uint sh = {shift};\n"
        f"  uint mask = (uint)((1u << {8 * sz}) - 1u) << sh;\n"
        "  uint old = *p, assumed;\n"
        f"  do {{ assumed = old; {ct} cur = ({ct})({ut})((assumed & mask) >> sh);\n"
        f"       {ct} r = ({ct}){_combine(op, ct, 'cur', 'v')};\n"
        f"       uint nw = (assumed & ~mask) | ((((uint)({ut})r) << sh) & mask);\n"
        "       old = atomic_cmpxchg(p, assumed, nw); } while (old != assumed);\n}\n")


_REPORT = """
inline void report_oob(__global int* err, int k, long raw) {
  if (atomic_cmpxchg((volatile __global int*)err, 0, 1) == 0) {
    err[1] = k; err[2] = (int)(raw & 0xffffffffL); err[3] = (int)(raw >> 32);
  }
}
"""


def _pragmas(src):
    p = ""
    if "double" in src:
        p += "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
    if "atom_cmpxchg" in src:
        p += "#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable\n"
    return p + src


def gen_index_source(ct, R, idx_cts, side, op, scalar, idx_t, wrap, serial, little_endian=True, two_d=False):
    """Source of kernel `idx`; see the module docstring for the operand layout.

    two_d: a 2-D range, axis 0 over the last dim and axis 1 over the others (`n` counts those), so
    only the outer dims are unravelled (with R == 2, no division at all)."""
    K = len(idx_cts)
    dims = range(R)
    params = [f"__global {ct}* out", f"{idx_t} o_off"] + [f"{idx_t} o_s{d}" for d in dims]
    if scalar:
        params.append(f"{ct} val")
    else:
        params += [f"__global const {ct}* in", f"{idx_t} i_off"] + [f"{idx_t} i_s{d}" for d in dims]
    for k, ict in enumerate(idx_cts):
        params += [f"__global const {ict}* ix{k}", f"{idx_t} x{k}_off"] + [f"{idx_t} x{k}_s{d}" for d in dims]
        params += [f"long x{k}_n", f"{idx_t} x{k}_st"]
    params += ["__global int* err", f"{idx_t} n"] + [f"{idx_t} d{d}" for d in range(1, R)]
    pre = _REPORT
    aname = None
    if op != "store":
        aname, asrc = atomic_source(ct, op, idx_t, little_endian)
        if not serial:
            pre += asrc
    body = [f"__kernel void idx({', '.join(params)}) {{"]
    if serial:
        body.append(f"  for ({idx_t} gid = 0; gid < n; ++gid) {{")
    elif two_d:
        body += [f"  {idx_t} i{R - 1} = get_global_id(0);", f"  {idx_t} gid = get_global_id(1);",
                 f"  if (i{R - 1} >= d{R - 1} || gid >= n) return;", "  {"]
    else:
        body += [f"  {idx_t} gid = get_global_id(0);", "  if (gid >= n) return;", "  {"]
    body.append(f"  {idx_t} r = gid;")
    for d in range(R - 1 - (1 if two_d else 0), 0, -1):
        body.append(f"  {idx_t} i{d} = r % d{d}; r /= d{d};")
    body.append(f"  {idx_t} i0 = r;")

    def pos(pfx):
        return " + ".join(f"i{d}*{pfx}{d}" for d in dims)
    body.append(f"  {idx_t} op_ = o_off + {pos('o_s')};")
    if not scalar:
        body.append(f"  {idx_t} ip = i_off + {pos('i_s')};")
    body.append("  int bad = 0;")
    tgt = "ip" if side == "g" else "op_"
    for k in range(K):
        body.append(f"  long v{k} = (long)ix{k}[x{k}_off + {pos(f'x{k}_s')}];")
        body.append(f"  long raw{k} = v{k};")
        if wrap:
            body.append(f"  if (v{k} < 0) v{k} += x{k}_n;")
        body.append(f"  if (v{k} < 0 || v{k} >= x{k}_n) {{ report_oob(err, {k}, raw{k}); bad = 1; v{k} = 0; }}")
        body.append(f"  {tgt} += ({idx_t})v{k} * x{k}_st;")
    skip = "continue;" if serial else "return;"
    if side == "g":
        body.append(f"  if (bad) {{ out[op_] = ({ct})0; {skip} }}")
        body.append("  out[op_] = in[ip];")
    else:
        body.append(f"  if (bad) {skip}")
        val = "val" if scalar else "in[ip]"
        if op == "store":
            body.append(f"  out[op_] = {val};")
        elif serial:
            body.append(f"  out[op_] = ({ct}){_combine(op, ct, 'out[op_]', val)};")
        else:
            body.append(f"  {aname}(out, op_, {val});")
    body += ["  }", "}"]
    return _pragmas(pre + "\n".join(body))


_ENDIAN = {}


def _little_endian(device):
    r = _ENDIAN.get(device.index)
    if r is None:
        try:
            r = bool(device.cl_device.endian_little)
        except Exception:  # pragma: no cover
            r = True
        _ENDIAN[device.index] = r
    return r


# ---- per-device error flag ---------------------------------------------------------
_ERR = {}


def _err_buf(device):
    st = _ERR.get(device.index)
    if st is None:
        from .memory import Storage
        st = Storage(device, 16)
        fill_buffer(device, st.buf, np.zeros(1, np.int32), 0, 16)
        _ERR[device.index] = st
    return st.buf


def check_errors(device, message=None):
    """None if no index kernel reported an out-of-range index, else (which, value); resets the flag.
    `message(which, value)` makes the exception a deferred (compiled, replayed) check raises."""
    st = _ERR.get(device.index)
    if st is None:
        return None
    rec = _launch._REC[0]
    if rec is not None:  # engine.compile: replay checks the flag when a result is next read
        return rec.check(device, lambda: _read_flag(device, st), message)
    return _read_flag(device, st)


def _read_flag(device, st):
    h = np.zeros(4, np.int32)
    copy_to_host(device, st.buf, 0, h)
    if not h[0]:
        return None
    fill_buffer(device, st.buf, np.zeros(1, np.int32), 0, 16)
    val = (int(h[3]) << 32) | (int(h[2]) & 0xffffffff)
    return int(h[1]), val


def run_index(device, shape, out, inp, idx, side, op="store", wrap=True):
    """Launch an index kernel over `shape`.

    out: (storage, ctype, offset, strides) of the written tensor.
    inp: (storage, ctype, offset, strides) of the read tensor, or ("scalar", ctype, value).
    idx: list of (storage, ctype, offset, strides, size, step) per index tensor: values must lie in
         [-size, size) (or [0, size) without `wrap`) and move the indexed side by `step` each.
    side: "g" (indices address `inp`) or "s" (indices address `out`).
    op: "store" or, for side "s", an accumulation "add" / "mul" / "max" / "min" / "or" / "and".
    """
    n = 1
    for s in shape:
        n *= s
    if n == 0:
        return
    scalar = inp[0] == "scalar"
    ct = out[1]
    arrays = [out[3]] + ([] if scalar else [inp[3]]) + [x[3] for x in idx]
    shp, sts = collapse(tuple(shape), arrays)
    R = len(shp)
    big = n >= 2**31 or out[0].size >= 2**31 or (not scalar and inp[0].size >= 2**31) or \
        any(x[0].size >= 2**31 for x in idx)
    idx_t, it = ("long", np.int64) if big else ("int", np.int32)
    serial = op != "store" and _SIZE[ct] == 8 and not device.int64_atomics
    little = _little_endian(device)
    idx_cts = tuple(x[1] for x in idx)
    two_d = R >= 2 and not serial
    key = ("index", ct, R, idx_cts, side, op, scalar, idx_t, wrap, serial, two_d)
    knl = device.programs.kernel(key, lambda: (gen_index_source(ct, R, idx_cts, side, op, scalar, idx_t, wrap,
                                                                serial, little, two_d), "idx"))
    args = [out[0].buf, it(out[2])]
    args += [it(s) for s in sts[0]]
    j = 1
    if scalar:
        args.append(INT_T[ct](inp[2]))
    else:
        args += [inp[0].buf, it(inp[2])] + [it(s) for s in sts[1]]
        j = 2
    for k, x in enumerate(idx):
        args += [x[0].buf, it(x[2])] + [it(s) for s in sts[j + k]] + [np.int64(x[4]), it(x[5])]
    inner = shp[-1]
    args += [_err_buf(device), it(n // inner if two_d else n)] + [it(s) for s in shp[1:]]
    if serial:
        launch(device, knl, (1,), (1,), args, "index_serial")
    elif two_d:
        wg = device.wg
        l0 = 1
        while l0 < inner and l0 < wg:
            l0 *= 2
        l1 = max(1, wg // l0)
        launch(device, knl, (round_up(inner, l0), round_up(n // inner, l1)), (l0, l1), args, "index_" + side)
    else:
        wg = device.wg
        launch(device, knl, (round_up(n, wg),), (wg,), args, "index_" + side)


# ---- tril / triu -------------------------------------------------------------------
def gen_tri_source(ct, R, upper, idx_t):
    dims = range(R)
    params = [f"__global {ct}* out", f"{idx_t} o_off"] + [f"{idx_t} o_s{d}" for d in dims]
    params += [f"__global const {ct}* in", f"{idx_t} i_off"] + [f"{idx_t} i_s{d}" for d in dims]
    params += [f"{idx_t} n"] + [f"{idx_t} d{d}" for d in range(1, R)] + ["long k"]
    body = [f"__kernel void tri({', '.join(params)}) {{", f"  {idx_t} gid = get_global_id(0);",
            "  if (gid >= n) return;", f"  {idx_t} r = gid;"]
    for d in range(R - 1, 0, -1):
        body.append(f"  {idx_t} i{d} = r % d{d}; r /= d{d};")
    body.append(f"  {idx_t} i0 = r;")
    cmp = ">=" if upper else "<="
    body.append(f"  int keep = ((long)i{R - 1} - (long)i{R - 2}) {cmp} k;")
    ip = " + ".join(f"i{d}*i_s{d}" for d in dims)
    op_ = " + ".join(f"i{d}*o_s{d}" for d in dims)
    body.append(f"  out[o_off + {op_}] = keep ? in[i_off + {ip}] : ({ct})0;")
    body.append("}")
    return _pragmas("\n".join(body))


def run_tri(device, shape, out, inp, k, upper):
    """out = tril/triu(inp, k) over the last two dims; out/inp: (storage, ctype, offset, strides)."""
    n = 1
    for s in shape:
        n *= s
    if n == 0:
        return
    R = len(shape)
    ct = out[1]
    big = n >= 2**31 or out[0].size >= 2**31 or inp[0].size >= 2**31
    idx_t, it = ("long", np.int64) if big else ("int", np.int32)
    key = ("tri", ct, R, bool(upper), idx_t)
    knl = device.programs.kernel(key, lambda: (gen_tri_source(ct, R, upper, idx_t), "tri"))
    args = [out[0].buf, it(out[2])] + [it(s) for s in out[3]]
    args += [inp[0].buf, it(inp[2])] + [it(s) for s in inp[3]]
    args += [it(n)] + [it(s) for s in shape[1:]] + [np.int64(k)]
    wg = device.wg
    launch(device, knl, (round_up(n, wg),), (wg,), args, "triu" if upper else "tril")


# ---- nonzero -----------------------------------------------------------------------
def gen_nonzero_source(ct, R, idx_t, which):
    dims = range(R)
    xp = [f"__global const {ct}* x", f"{idx_t} x_off"] + [f"{idx_t} s{d}" for d in dims]
    xp += [f"{idx_t} n"] + [f"{idx_t} d{d}" for d in dims] + [f"{idx_t} chunk", f"{idx_t} G"]
    unravel = [f"    {idx_t} r = e;"]
    for d in range(R - 1, 0, -1):
        unravel.append(f"    {idx_t} c{d} = r % d{d}; r /= d{d};")
    unravel.append(f"    {idx_t} c0 = r;")
    posn = " + ".join(f"c{d}*s{d}" for d in dims)
    loop = [f"  {idx_t} g = get_global_id(0);", "  if (g >= G) return;",
            f"  {idx_t} lo = g * chunk; {idx_t} hi = min(n, lo + chunk);",
            f"  for ({idx_t} e = lo; e < hi; ++e) {{", *unravel, f"    if (x[x_off + {posn}] != 0) {{"]
    count = [f"__kernel void nz_count({', '.join(xp)}, __global long* counts) {{", "  long c = 0;", *loop,
             "      c++;", "    }", "  }", "  counts[g] = c;", "}"]
    scan = [f"__kernel void nz_scan(__global long* counts, {idx_t} G) {{",
            "  if (get_global_id(0) != 0) return;", "  long s = 0;",
            f"  for ({idx_t} g = 0; g < G; ++g) {{ long c = counts[g]; counts[g] = s; s += c; }}",
            "  counts[G] = s;", "}"]
    write = [f"__kernel void nz_write({', '.join(xp)}, __global const long* counts, __global long* out) {{",
             *loop[:2], "  long w = counts[g];", *loop[2:],
             *(f"      out[w * {R} + {d}] = (long)c{d};" for d in dims), "      w++;", "    }", "  }", "}"]
    return _pragmas("\n".join({"nz_count": count, "nz_scan": scan, "nz_write": write}[which]))


def nonzero_count(device, x, R, alloc):
    """Phase 1 (count + scan); returns (total, state).  x: (storage, ctype, offset, strides, shape).

    alloc(n) gives an int64 Storage-backed tensor-like object with `_storage`."""
    shape = x[4]
    n = 1
    for s in shape:
        n *= s
    big = n >= 2**31 or x[0].size >= 2**31
    idx_t, it = ("long", np.int64) if big else ("int", np.int32)
    G = max(1, min(4096, (n + 255) // 256))
    chunk = (n + G - 1) // G
    prog = device.programs
    key = ("nonzero", x[1], R, idx_t)
    kc = prog.kernel(key + ("count",), lambda: (gen_nonzero_source(x[1], R, idx_t, "nz_count"), "nz_count"))
    ks = prog.kernel(("nonzero_scan", idx_t), lambda: (gen_nonzero_source(x[1], R, idx_t, "nz_scan"), "nz_scan"))
    counts = alloc(G + 1)
    xargs = [x[0].buf, it(x[2])] + [it(s) for s in x[3]] + [it(n)] + [it(s) for s in shape] + [it(chunk), it(G)]
    wg = min(device.wg, 64)
    launch(device, kc, (round_up(G, wg),), (wg,), xargs + [counts._storage.buf], "nonzero_count")
    launch(device, ks, (1,), (1,), [counts._storage.buf, it(G)], "nonzero_scan")
    h = np.zeros(1, np.int64)
    copy_to_host(device, counts._storage.buf, G * 8, h)
    return int(h[0]), (xargs, counts, G, key, wg, idx_t)


def nonzero_write(device, x, R, state, out):
    xargs, counts, G, key, wg, idx_t = state
    kw = device.programs.kernel(key + ("write",), lambda: (gen_nonzero_source(x[1], R, idx_t, "nz_write"),
                                                                  "nz_write"))
    launch(device, kw, (round_up(G, wg),), (wg,), xargs + [counts._storage.buf, out._storage.buf],
           "nonzero_write")
