"""Row kernels: softmax / log_softmax (forward and backward), cross-entropy over class indices
(forward and backward), and the row machinery (layouts, plans, the Kern source builder) that
layer_norm.py's kernels use too.  Each is ONE kernel over the rows of a tensor (layer-norm
dweight/dbias: one column kernel; for narrow rows on GPUs plus a tiny second pass over blocks of rows).

A "row" is the line of elements along one dim; the other (kept) dims are collapsed and every row
tensor carries its own strides for them, so any strides work.  Launch layout:
  serial  one work-item per row (short rows, or strided rows on a GPU: neighbouring work-items
          then read neighbouring addresses);
  group   one work-group per row, lanes stride the row, row statistics through local memory.
  vec     (group, GPU, float/double, every row tensor with stride 1 along the row and the same
          alignment mod 4 elements): a scalar head up to a 16-byte boundary, aligned 4-wide
          vector loads/stores, a scalar tail.  Specialised on that layout class, never on sizes.
  flat    one work-item per element, (j, m) = global id: the cross-entropy backward (no row
          reduction) on CPUs, where PoCL vectorises across work-items.
On a GPU the softmax / cross-entropy statistics are ONLINE (one read: running max m and sum s,
s rescaled by exp(m_old - m_new) when the max grows; partials merged the same way); on a CPU
(PoCL: one work-item per row, the row stays in L1) a max pass then a sum pass, one exp per element.

Roofline (NVIDIA H200, ~4.3 TB/s achievable HBM, float32; the second read of a row inside one
kernel comes from L2, the row is at most a few tens of KB and in flight rows fit the 50 MB L2):
  softmax fwd 4096x4096     read 64 MB + write 64 MB = 128 MB       ~30 us
  softmax bwd 4096x4096     read g, y 128 MB + write dx 64 MB        ~45 us
  layer_norm fwd 4096x4096  read 64 MB + write 64 MB (+ 32 KB stats) ~30 us
  layer_norm bwd dx         read g, x 128 MB + write dx 64 MB        ~45 us
  layer_norm dw/db          read g, x 128 MB (mostly L2-cold)        ~30 us   one pass: work-groups of
                            32 adjacent columns x 32 row lanes (128 groups of 1024 at K = 4096), lane sums
                            meet in local memory; so the backward is 2 launches (dx, dw/db).  Narrow rows
                            on GPUs (K < 16 x compute units, e.g. 768): (column, block of rows) partials
                            + a tiny pass over the blocks (3 launches); CPUs: one block where it fills them.
  cross_entropy fwd 8192x50257   read 1.65 GB (per-row outputs 96 KB)   ~380 us
  cross_entropy bwd 8192x50257   read 1.65 GB + write 1.65 GB          ~770 us
  (PyTorch's cross_entropy = log_softmax + nll moves about 2x these bytes: it materialises the
  (N, C) log-probabilities forward and reads them again backward, after zero-filling a grad.)
"""
import numpy as np

from .elementwise import collapse
from .launch import launch


def _ext(src):
    if "double" in src:
        src = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" + src
    if "half" in src:
        src = "#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n" + src
    return src


# tests set this (force_gpu_paths) to run the GPU layouts (online statistics, 4-wide loads) on a CPU
FORCE_GPU_PATHS = [False]


# layout choices a probe may override to compare them on one device (benchmarks/probe_rows.py):
#   "online": None (GPUs online, CPUs two sweeps) | True | False  -- softmax / cross-entropy statistics
#   "ln_wb":  None (strip where it fills the device) | "strip" | "blocks"  -- layer-norm dweight/dbias
#   "vec":    None (where aligned) | False  -- 4-wide loads
#   "wg":     None | a power of two  -- work-group size of one-group-per-row kernels on GPUs
TUNE = {"online": None, "ln_wb": None, "vec": None, "wg": None}


def tune(**kw):
    """Set TUNE entries (None restores the default choice); returns the previous values."""
    old = {k: TUNE[k] for k in kw}
    TUNE.update(kw)
    _plans.clear()
    return old


def _online(device):
    return (not _cpu(device)) if TUNE["online"] is None else TUNE["online"]


def force_gpu_paths(on):
    """Use the GPU launch layouts on every device (tests); returns the previous setting."""
    old = FORCE_GPU_PATHS[0]
    FORCE_GPU_PATHS[0] = bool(on)
    _plans.clear()
    return old


def _cpu(device):
    return device.is_cpu and not FORCE_GPU_PATHS[0]


def acc_of(ct):
    return ("double", np.float64) if ct == "double" else ("float", np.float32)


# ---- launch plan ------------------------------------------------------------------------------
def plan(device, M, K, contig):
    """(mode, wg): 'serial' (one work-item per row) or 'group' (one work-group of wg per row).

    CPU (PoCL): many short rows go one per work-item; long rows, or few rows, to work-groups of 64.
    GPU: rows contiguous in memory go to work-groups (coalesced), wg shrunk for short rows so each
    lane has about 4+ elements; strided rows go one per work-item (neighbours coalesce)."""
    wg = 1 << (min(256, device.max_work_group_size).bit_length() - 1)   # a power of two
    if _cpu(device):
        wg = min(wg, 64)
        # rows of up to 16K elements (64 KB: the row stays in L2 between its passes) go one per work-item
        # once there are enough of them: no barriers, one walk of the row per pass.  2-core EPYC, PoCL:
        # softmax 4096^2 fwd 44.6 -> 35.9 ms, bwd 25.1 -> 12.3 ms; 2048 x 1024 5.5 -> 4.6 / 1.46 -> 1.33 ms;
        # layer norm unchanged (was K <= 1024)
        serial = K <= 32 or (M >= 4 * device.compute_units * wg and K <= 16384)
        return ("serial" if serial else "group"), wg
    if K <= 32 or not contig:
        return "serial", wg
    while wg > 32 and 4 * wg > K:   # a size class of the launch, not of the kernel source
        wg //= 2
    if TUNE["wg"]:
        wg = min(TUNE["wg"], 1 << (device.max_work_group_size.bit_length() - 1))
    return "group", wg


# ---- geometry ---------------------------------------------------------------------------------
class Geom:
    """Rows along `dim` of `shape`, for row tensors given as (offset, strides) pairs."""
    __slots__ = ("M", "K", "kshape", "kst", "rst", "offs", "it", "stat", "tail")

    def __init__(self, shape, dim, tens):
        kept = [d for d in range(len(shape)) if d != dim]
        self.kshape, self.kst = collapse(tuple(shape[d] for d in kept),
                                         [tuple(st[d] for d in kept) for _, st in tens])
        self.K = shape[dim] if len(shape) else 1
        self.rst = [st[dim] if len(shape) else 0 for _, st in tens]
        self.offs = [o for o, _ in tens]
        self.stat = self.it = self.tail = None
        M = 1
        for s in self.kshape:
            M *= s
        self.M = M

    def contig(self):
        return all(s == 1 for s in self.rst)

    def aligned4(self):
        """Every row of every tensor starts at the same element offset mod 4."""
        o0, k0 = self.offs[0], self.kst[0]
        return all((o - o0) % 4 == 0 and all((a - b) % 4 == 0 for a, b in zip(ks, k0))
                   for o, ks in zip(self.offs, self.kst))

    def args(self, it, bufs, offs):
        """Kernel arguments: per row tensor its buffer, offset (this call's), kept and row strides; then
        the kept sizes, M, K.  Everything but buffers and offsets is built once per plan."""
        if self.stat is None or self.it is not it:
            self.it = it
            self.stat = [[it(s) for s in ks] + [it(rs)] for ks, rs in zip(self.kst, self.rst)]
            self.tail = [it(n) for n in self.kshape] + [it(self.M), it(self.K)]
        out = []
        for b, o, st in zip(bufs, offs, self.stat):
            out.append(b)
            out.append(it(o))
            out += st
        return out + self.tail


def _idx(big):
    return ("long", np.int64) if big else ("int", np.int32)


class Kern:
    """Source builder for one row kernel: the signature, row bases, loops and reductions."""

    def __init__(self, name, tens, nk, idx_t, mode, wg, contig, vec, a):
        # tens: [(name, ctype, writable)] row tensors, in Geom order
        self.name, self.tens, self.nk, self.it, self.mode, self.wg = name, tens, nk, idx_t, mode, wg
        self.contig, self.vec, self.a = contig, vec, a
        self.ct = {n: c for n, c, _ in tens}
        self.params = []
        for n, c, w in tens:
            self.params += [f"__global {'' if w else 'const '}{c}* {n}", f"{idx_t} {n}_o",
                            *(f"{idx_t} {n}_k{d}" for d in range(nk)), f"{idx_t} {n}_s"]
        self.params += [f"{idx_t} kn{d}" for d in range(nk)] + [f"{idx_t} M", f"{idx_t} K"]
        self.pre = []
        self.shared = False   # local arrays, once a row reduction is emitted

    def head(self, extra_params):
        it, a = self.it, self.a
        L = [*self.pre, f"__kernel void {self.name}({', '.join(self.params + extra_params)}) {{"]
        if self.mode == "flat":   # one work-item per element (no row reduction): (j, m) = global id
            L += [f"  {it} m = get_global_id(1), j = get_global_id(0);", "  if (j >= K) return;",
                  "  const int lid = 0;"]
        elif self.mode == "serial":
            L += [f"  {it} m = get_global_id(0);", "  if (m >= M) return;", "  const int lid = 0;"]
        else:
            L += [f"  {it} m = get_group_id(0);", "  const int lid = get_local_id(0);"]
            if self.shared:
                L.append(f"  __local {a} sh0[{self.wg}], sh1[{self.wg}];")
        L.append(f"  {it} r_ = m;")
        idx = []
        for d in range(self.nk - 1, 0, -1):
            L.append(f"  {it} i{d} = r_ % kn{d}; r_ /= kn{d};")
            idx.append(d)
        terms = {n: [f"r_ * {n}_k0"] + [f"i{d} * {n}_k{d}" for d in idx] for n, _, _ in self.tens}
        for n, _, _ in self.tens:
            L.append(f"  {it} {n}b = {n}_o + {' + '.join(terms[n]) if self.nk else '0'};")
        if self.vec:
            n0 = self.tens[0][0]
            L += [f"  {it} hd = (4 - ({n0}b & 3)) & 3; if (hd > K) hd = K;",
                  f"  {it} v4e = hd + ((K - hd) & ~(({it})3));"]
        return L

    def ld(self, n, j="j"):
        """Element j of the row of `n`, in the accumulator type."""
        s = "" if self.contig else f" * {n}_s"
        return f"(({self.a}){n}[{n}b + {j}{s}])"

    def st(self, n, val, j="j"):
        s = "" if self.contig else f" * {n}_s"
        return f"{n}[{n}b + {j}{s}] = ({self.ct[n]})({val});"

    def vld(self, n):
        return f"(*(__global const {self.ct[n]}4*)({n} + {n}b + j))"

    def vst(self, n, val):
        return f"*(__global {self.ct[n]}4*)({n} + {n}b + j) = {val};"

    def loop(self, body, vbody=None):
        """Lines running `body` for every j of the row (vbody for aligned 4-wide chunks)."""
        it, wg = self.it, self.wg
        if self.mode == "flat":
            return [f"  {{ {body} }}"]
        if self.mode == "serial":
            return [f"  for ({it} j = 0; j < K; ++j) {{ {body} }}"]
        if not self.vec or vbody is None:
            return [f"  for ({it} j = lid; j < K; j += {wg}) {{ {body} }}"]
        return [f"  for ({it} j = lid; j < hd; j += {wg}) {{ {body} }}",
                f"  for ({it} j = hd + 4 * lid; j < v4e; j += {4 * wg}) {{ {vbody} }}",
                f"  for ({it} j = v4e + lid; j < K; j += {wg}) {{ {body} }}"]

    def reduce(self, vars_, combine):
        """Combine per-lane values of vars_ (1 or 2 names) over the work-group; every lane gets the result.
        combine: C statement using u0/u1 (other lane's values), w0/w1 (own), writing r0/r1."""
        if self.mode in ("serial", "flat"):
            return []
        self.shared = True
        a, wg = self.a, self.wg
        L = [f"  sh{i}[lid] = {v};" for i, v in enumerate(vars_)]
        L += ["  barrier(CLK_LOCAL_MEM_FENCE);", f"  for (int st_ = {wg} / 2; st_ > 0; st_ >>= 1) {{",
              "    if (lid < st_) {"]
        for i in range(len(vars_)):
            L.append(f"      {a} u{i} = sh{i}[lid + st_], w{i} = sh{i}[lid], r{i};")
        L.append(f"      {combine}")
        L += [f"      sh{i}[lid] = r{i};" for i in range(len(vars_))]
        L += ["    }", "    barrier(CLK_LOCAL_MEM_FENCE);", "  }"]
        L += [f"  {v} = sh{i}[0];" for i, v in enumerate(vars_)]
        L.append("  barrier(CLK_LOCAL_MEM_FENCE);")
        return L

    def sum_reduce(self, *vars_):
        return self.reduce(vars_, " ".join(f"r{i} = w{i} + u{i};" for i in range(len(vars_))))

    def stats(self, online, load="LD", vload="VLD"):
        """Lines leaving the row max `mx` and sum of exp(v - mx) `s` (nan / inf rows as torch)."""
        a = self.a
        upd = (f"if (v > mx || v != v) {{ s *= exp(mx - v); mx = v; }} if (mx != -INFINITY) s += exp(v - mx);")
        if online:
            L = [f"  {a} mx = -INFINITY, s = 0;"]
            L += self.loop(f"{a} v = {load};" + upd,
                           f"{a}4 v4 = {vload}; {a} v = mx2(mx2(v4.x, v4.y), mx2(v4.z, v4.w));"
                           f" if (v > mx || v != v) {{ s *= exp(mx - v); mx = v; }}"
                           f" if (mx != -INFINITY) {{ {a}4 e = exp(v4 - mx); s += (e.x + e.y) + (e.z + e.w); }}")
            L += self.reduce(("mx", "s"), "r0 = mx2(w0, u0); r1 = (w1 == 0 ? 0 : w1 * exp(w0 - r0))"
                                          " + (u1 == 0 ? 0 : u1 * exp(u0 - r0));")
            self.pre.append(f"inline {a} mx2({a} p, {a} q) {{ return (q > p || q != q) ? q : p; }}")
            return L
        L = [f"  {a} mx = -INFINITY, s = 0;"]
        L += self.loop(f"{a} v = {load}; if (v > mx || v != v) mx = v;")
        L += self.reduce(("mx",), "r0 = (u0 > w0 || u0 != u0) ? u0 : w0;")
        L += self.loop(f"{a} v = {load}; s += exp(v - mx);")
        L += self.sum_reduce("s")
        return L

    def source(self, extra_params, body):
        return _ext("\n".join(self.head(extra_params) + body + ["}"]))


def _vec_ok(device, mode, geom, cts):
    return (TUNE["vec"] is not False and not _cpu(device) and mode == "group" and geom.contig()
            and geom.aligned4()
            and all(c in ("float", "double") for c in cts) and len(set(cts)) == 1)


def _gsize(mode, wg, M):
    return ((M + wg - 1) // wg * wg,) if mode == "serial" else (M * wg,)


_plans = {}


def _cached(key, make):
    pl = _plans.get(key)
    if pl is None:
        if len(_plans) > 4096:
            _plans.clear()
        pl = _plans[key] = make()
    return pl


def _big(*ts):
    return any(t._storage.size >= 2**31 for t in ts)


# ---- softmax / log_softmax ----------------------------------------------------------------------
def gen_softmax_fwd(x_ct, o_ct, nk, idx_t, mode, wg, contig, vec, log, online):
    a = acc_of(x_ct)[0] if x_ct != "half" else "float"
    k = Kern("softmax", [("x", x_ct, False), ("o", o_ct, True)], nk, idx_t, mode, wg, contig, vec, a)
    if online:
        B = k.stats(online, k.ld("x"), k.vld("x"))
        if log:
            B += [f"  {a} ls = log(s);"]
            B += k.loop(k.st("o", "(" + k.ld("x") + " - mx) - ls"),
                        k.vst("o", f"({o_ct}4)(({k.vld('x')} - mx) - ls)"))
        else:
            B += [f"  {a} r = ({a})1 / s;"]
            B += k.loop(k.st("o", f"exp({k.ld('x')} - mx) * r"),
                        k.vst("o", f"({o_ct}4)(exp({k.vld('x')} - mx) * r)"))
    else:   # CPU: three sweeps, one exp per element (the exp is written, then scaled)
        B = [f"  {a} mx = -INFINITY, s = 0;"]
        B += k.loop(f"{a} v = {k.ld('x')}; if (v > mx || v != v) mx = v;")
        B += k.reduce(("mx",), "r0 = (u0 > w0 || u0 != u0) ? u0 : w0;")
        if log:
            B += k.loop(f"s += exp({k.ld('x')} - mx);")
            B += k.sum_reduce("s")
            B += [f"  {a} ls = log(s);"]
            B += k.loop(k.st("o", f"({k.ld('x')} - mx) - ls"))
        else:
            B += k.loop(f"{a} e = exp({k.ld('x')} - mx); s += e; " + k.st("o", "e"))
            B += k.sum_reduce("s")
            B += [f"  {a} r = ({a})1 / s;"]
            B += k.loop(k.st("o", f"{k.ld('o')} * r"))
    return k.source([], B)


def gen_softmax_bwd(ct, nk, idx_t, mode, wg, contig, vec, log):
    """dx = y * (g - sum(g*y)) (softmax); dx = g - exp(y) * sum(g) (log_softmax)."""
    a = acc_of(ct)[0] if ct != "half" else "float"
    k = Kern("softmax_bwd", [("y", ct, False), ("g", ct, False), ("dx", ct, True)], nk, idx_t, mode, wg, contig,
             vec, a)
    y, g, vy, vg = k.ld("y"), k.ld("g"), k.vld("y"), k.vld("g")
    B = [f"  {a} s = 0;"]
    if log:
        B += k.loop(f"s += {g};", f"{a}4 p = {vg}; s += (p.x + p.y) + (p.z + p.w);")
    else:
        B += k.loop(f"s += {g} * {y};", f"{a}4 p = {vg} * {vy}; s += (p.x + p.y) + (p.z + p.w);")
    B += k.sum_reduce("s")
    if log:
        B += k.loop(k.st("dx", f"{g} - exp({y}) * s"), k.vst("dx", f"{vg} - exp({vy}) * s"))
    else:
        B += k.loop(k.st("dx", f"{y} * ({g} - s)"), k.vst("dx", f"{vy} * ({vg} - s)"))
    return k.source([], B)


def _row_plan(device, kind, shape, dim, tens, flags, gen, flat_on_cpu=False):
    """Shared planning: geometry, mode, vec, kernel; returns (knl, geom, it, gsize, lsize).
    flat_on_cpu: a kernel without row reductions runs one work-item per element on CPUs (PoCL
    vectorises across work-items, not along a loop inside one)."""
    geom = Geom(shape, dim, [(t._offset, t._strides) for t in tens])
    if geom.M == 0 or geom.K == 0:
        return None
    big = _big(*tens) or geom.M * geom.K >= 2**31
    idx_t, it = _idx(big)
    contig = geom.contig()
    mode, wg = plan(device, geom.M, geom.K, contig)
    if flat_on_cpu and _cpu(device):
        mode = "flat"
    vec = _vec_ok(device, mode, geom, [t.dtype.ctype for t in tens])
    key = (kind, tuple(t.dtype.ctype for t in tens), len(geom.kshape), idx_t, mode, wg, contig, vec, flags)
    knl = device.programs.kernel(key, lambda: (gen(len(geom.kshape), idx_t, mode, wg, contig, vec), kind))
    if mode == "flat":
        return knl, geom, it, ((geom.K + wg - 1) // wg * wg, geom.M), (wg, 1)
    return knl, geom, it, _gsize(mode, wg, geom.M), (wg,)


def softmax_fwd(device, x, dim, out, log):
    """out = softmax(x) (or log_softmax) along `dim`; out has x's shape, any strides."""
    key = (device, "sm", x._shape, x._strides, x._offset % 4, out._strides, out._offset % 4, dim, x.dtype.ctype,
           out.dtype.ctype, log, _big(x, out))
    online = _online(device)
    pl = _cached(key, lambda: _row_plan(
        device, "softmax", x._shape, dim, [x, out], (log, online),
        lambda nk, idx_t, mode, wg, contig, vec: gen_softmax_fwd(x.dtype.ctype, out.dtype.ctype, nk, idx_t, mode,
                                                                 wg, contig, vec, log, online)))
    if pl is None:
        return
    knl, geom, it, gs, ls = pl
    launch(device, knl, gs, ls, geom.args(it, (x._storage.buf, out._storage.buf), (x._offset, out._offset)),
           "log_softmax" if log else "softmax")


def softmax_bwd(device, y, g, dim, dx, log):
    """dx (x's shape, any strides) = the softmax / log_softmax backward of g given the output y."""
    key = (device, "smb", y._shape, y._strides, y._offset % 4, g._strides, g._offset % 4, dx._strides,
           dx._offset % 4, dim, y.dtype.ctype, log, _big(y, g, dx))
    pl = _cached(key, lambda: _row_plan(
        device, "softmax_bwd", y._shape, dim, [y, g, dx], (log,),
        lambda nk, idx_t, mode, wg, contig, vec: gen_softmax_bwd(y.dtype.ctype, nk, idx_t, mode, wg, contig, vec,
                                                                 log)))
    if pl is None:
        return
    knl, geom, it, gs, ls = pl
    launch(device, knl, gs, ls, geom.args(it, (y._storage.buf, g._storage.buf, dx._storage.buf),
                                          (y._offset, g._offset, dx._offset)),
           "log_softmax_backward" if log else "softmax_backward")


# ---- cross-entropy over class indices -------------------------------------------------------------
_OOB = """inline void report_oob(__global int* err, int k, long raw) {
  if (atomic_cmpxchg((volatile __global int*)err, 0, 1) == 0) {
    err[1] = k; err[2] = (int)(raw & 0xffffffffL); err[3] = (int)(raw >> 32);
  }
}"""


def gen_ce_fwd(ct, nk, idx_t, mode, wg, contig, vec, has_w, online):
    """Per row m: lse = log(sum(exp(x))), t = target; loss = (lse - x[t]) * w_t (0 where ignored)."""
    a = acc_of(ct)[0] if ct != "half" else "float"
    k = Kern("ce_fwd", [("x", ct, False)], nk, idx_t, mode, wg, contig, vec, a)
    k.pre.append(_OOB)
    extra = ["__global const long* tg", f"{idx_t} tg_o", f"__global const {ct}* wt", f"{idx_t} wt_o",
             f"__global {ct}* loss", f"__global {ct}* lse_out", f"__global {ct}* w_out", "long ign",
             "__global int* err"]
    B = k.stats(online, k.ld("x"), k.vld("x"))
    B += ["  if (lid == 0) {",
          f"    {a} lse = mx + log(s), l = 0, w = 0;",
          "    long t = tg[tg_o + m];",
          "    if (t != ign) {",
          "      if (t < 0 || t >= K) report_oob(err, 0, t);",
          f"      else {{ w = {f'({a})wt[wt_o + t]' if has_w else '1'};"
          f" l = (lse - {k.ld('x', '(' + idx_t + ')t')}) * w; }}",
          "    }",
          f"    loss[m] = ({ct})l; lse_out[m] = ({ct})lse; w_out[m] = ({ct})w;",
          "  }"]
    return k.source(extra, B)


def gen_ce_bwd(ct, nk, idx_t, mode, wg, contig, vec, mean):
    """dx[m, j] = (exp(x - lse_m) - [j == t_m]) * c_m,  c_m = g_m * w_m (/ sum(w) for 'mean')."""
    a = acc_of(ct)[0] if ct != "half" else "float"
    k = Kern("ce_bwd", [("x", ct, False), ("dx", ct, True)], nk, idx_t, mode, wg, contig, vec, a)
    extra = ["__global const long* tg", f"{idx_t} tg_o", f"__global const {ct}* lse", f"__global const {ct}* wr",
             f"__global const {ct}* g", f"{idx_t} g_o", f"{idx_t} g_s", f"__global const {ct}* den"]
    B = [f"  {a} c = ({a})g[g_o + m * g_s] * ({a})wr[m], l = ({a})lse[m];"]
    if mean:
        B.append(f"  {a} W = ({a})den[0]; c = (W != 0) ? c / W : ({a})0;")
    B.append(f"  {idx_t} t = ({idx_t})tg[tg_o + m];")
    vb = (f"{a}4 e = exp({k.vld('x')} - l) - ({a}4)(({a})(j == t), ({a})(j + 1 == t), ({a})(j + 2 == t),"
          f" ({a})(j + 3 == t)); {k.vst('dx', 'e * c')}")
    B += k.loop(k.st("dx", f"(exp({k.ld('x')} - l) - ({a})(j == t)) * c"), vb)
    return k.source(extra, B)


def gen_ce_reduce(ct, wg, mean):
    """One work-group: out = sum(loss) (/ sum(w), nan where that is 0, for 'mean'); den = sum(w)."""
    a = acc_of(ct)[0] if ct != "half" else "float"
    src = f"""__kernel void ce_reduce(__global const {ct}* loss, __global const {ct}* w, long M,
                        __global {ct}* out, __global {ct}* den) {{
  const int lid = get_local_id(0);
  __local {a} sh0[{wg}], sh1[{wg}];
  {a} l = 0, s = 0;
  for (long i = lid; i < M; i += {wg}) {{ l += ({a})loss[i]; s += ({a})w[i]; }}
  sh0[lid] = l; sh1[lid] = s; barrier(CLK_LOCAL_MEM_FENCE);
  for (int st_ = {wg} / 2; st_ > 0; st_ >>= 1) {{
    if (lid < st_) {{ sh0[lid] += sh0[lid + st_]; sh1[lid] += sh1[lid + st_]; }}
    barrier(CLK_LOCAL_MEM_FENCE);
  }}
  if (lid == 0) {{
    l = sh0[0]; s = sh1[0];
    out[0] = ({ct})({'(s == 0) ? NAN : l / s' if mean else 'l'}); den[0] = ({ct})s;
  }}
}}"""
    return _ext(src)


def ce_fwd(device, x, dim, target, weight, ignore_index, loss, lse, wrow, err):
    """Per-row loss, lse, weight of class-index cross entropy; x rows along `dim`, target/loss/lse/wrow
    contiguous in the order of x's other dims.  Out-of-range targets set the error flag `err`."""
    ct = x.dtype.ctype
    online = _online(device)
    hw = weight is not None
    key = (device, "cef", x._shape, x._strides, x._offset % 4, dim, ct, hw, _big(x))
    pl = _cached(key, lambda: _row_plan(
        device, "ce_fwd", x._shape, dim, [x], (hw, online),
        lambda nk, idx_t, mode, wg, contig, vec: gen_ce_fwd(ct, nk, idx_t, mode, wg, contig, vec, hw, online)))
    if pl is None:
        return False
    knl, geom, it, gs, ls = pl
    w = weight if hw else x
    launch(device, knl, gs, ls, geom.args(it, (x._storage.buf,), (x._offset,)) + [
        target._storage.buf, it(target._offset), w._storage.buf, it(w._offset), loss._storage.buf,
        lse._storage.buf, wrow._storage.buf, np.int64(ignore_index), err], "cross_entropy")
    return True


def ce_reduce(device, loss, wrow, M, out, den, mean):
    ct = loss.dtype.ctype
    wg = 1 << (min(256, device.max_work_group_size).bit_length() - 1)
    if _cpu(device):
        wg = min(wg, 64)
    knl = device.programs.kernel(("ce_reduce", ct, wg, mean), lambda: (gen_ce_reduce(ct, wg, mean), "ce_reduce"))
    launch(device, knl, (wg,), (wg,), [loss._storage.buf, wrow._storage.buf, np.int64(M), out._storage.buf,
                                       den._storage.buf], "cross_entropy_reduce")


def ce_bwd(device, x, dim, target, lse, wrow, g, g_stride, den, dx):
    """dx (x's shape, any strides) of class-index cross entropy; g: per-row grads at g._offset + m*g_stride
    (stride 0: one scalar); den: sum of the weights for 'mean' (else None)."""
    ct = x.dtype.ctype
    mean = den is not None
    key = (device, "ceb", x._shape, x._strides, x._offset % 4, dx._strides, dx._offset % 4, dim, ct, mean,
           _big(x, dx))
    pl = _cached(key, lambda: _row_plan(
        device, "ce_bwd", x._shape, dim, [x, dx], (mean,),
        lambda nk, idx_t, mode, wg, contig, vec: gen_ce_bwd(ct, nk, idx_t, mode, wg, contig, vec, mean),
        flat_on_cpu=True))
    if pl is None:
        return
    knl, geom, it, gs, ls = pl
    d = den if mean else g
    launch(device, knl, gs, ls, geom.args(it, (x._storage.buf, dx._storage.buf), (x._offset, dx._offset)) + [
        target._storage.buf, it(target._offset), lse._storage.buf, wrow._storage.buf, g._storage.buf,
        it(g._offset), it(g_stride), d._storage.buf], "cross_entropy_backward")
