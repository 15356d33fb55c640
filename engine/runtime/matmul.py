"""Batched GEMM: C[z] = alpha * A[z] @ B[z] (+ beta * D[z]) on strided operands.

Two back ends behind one entry point, `gemm()`:

* OpenCL (GPUs, and CPUs when forced): a register- and local-memory-tiled kernel.
  Every operand is (buffer, offset, strides) with two batch strides, a row and a
  column stride, so transposed / sliced / broadcast (stride-0) views go in as they
  are, with no copy.  A work-group of RN x RM work-items computes a TM x TN tile of C;
  each work-item owns WM x WN outputs held in registers, spread with strides RM / RN
  over the tile so that local-memory reads are bank-conflict free (the A value is a
  broadcast within a warp, the B values are consecutive) and the C stores coalesce.
  Per TK-slice of K the work-group stages A (TM x TK) and B (TK x TN) in local memory.
  The loader's thread->element mapping follows the operand's unit-stride dimension
  (layout flag 'r': inner dim contiguous, 'c': outer dim contiguous, 'g': general
  strides), so global reads coalesce for both plain and transposed operands.
  Sources are specialised on dtype, layout flags, bias epilogue, index width and
  the tile configuration -- never on M, N, K, which are kernel arguments.

  Roofline (H100 SXM / H200, FP32 on CUDA cores: 132 SMs x 128 FMA/clk x 1.98 GHz ~ 67 TFLOP/s;
  HBM3 ~3.3 TB/s on H100, HBM3e ~4.8 TB/s on H200; OpenCL exposes no tensor cores).  A 4096^3 SGEMM
  is 137 GFLOP over >= 200 MB (~700 FLOP/B): compute bound.  The GPT-step shapes are too: x @ W^T
  16384x1536x384 is 19.3 GFLOP over ~128 MB (150 FLOP/B, ~27 us of HBM against ~290 us of FMA at
  67 TFLOP/s).  The attention products (384 x 256x256x64: 3.2 GFLOP over ~150 MB, ~21 FLOP/B) sit
  near the balance point (67 / 4.8 = 14 FLOP/B): there the C traffic matters (vector stores).  A
  naive one-output-per-work-item kernel stalls on L1/L2 at ~1-3 TFLOP/s.  The 128x128 tile with 8x8
  outputs per work-item and float4 local reads issues 4 local loads per 64 FMAs and moves
  2 x 128 x 8 x 4 B from global memory per 2 x 128^2 x 8 FLOP (32 FLOP/B from L2), so FMA issue
  bounds it.  On top of that (PF bits of a tile configuration, see PF_* below): work-groups whose
  tile lies inside C load their K slices without bounds checks (one uniform branch per slice),
  with float4 global loads along each operand's unit-stride dim when pointer and stride are
  aligned, optionally into two local-memory stages (one barrier per slice), and store C as float4.
  The tuner (gemm_tune.py) picks tile + PF per shape class; weight gradients split K into chunks
  of 512 (_deep_split).  M == 1 or N == 1 goes to a GEMV kernel (memory bound: measured
  1.6-1.9 TFLOP/s-equivalent at 8192^2, PyTorch 1.5-2.0).

  Measured (H200, NVIDIA OpenCL, benchmarks/probe_gemm.py, TFLOP/s, both versions and PyTorch 2.11
  cuBLAS fp32 (TF32 off) in one run; GPU timings vary ~5-10 % run to run):
      shape                          before   after   torch
      x@W^T 16384x1152x384             32.5    37.8    41.0
      x@W^T 16384x1536x384             35.0    39.9    45.3
      x@W^T 16384x384x384              26.0    30.8    34.6
      g@W   16384x384x1536             32.3    39.7    45.8
      g@W   16384x1536x384             30.5    40.2    37.7-44.7
      g^T@x 1536x384, K 16384 (dW)     26.2    40.2    48.5
      g^T@x 1152x384, K 16384          28.7    37.1    34.5
      g^T@x 384x384, K 16384           20.1    26.4    42.3
      bmm 384 x 256x256x64             17.0    24.6    24.3
      bmm 384 x 256x64x256             20.2    26.8    32.0
      1024^3                           15.0    19.6    32.3
      4096^3                           40.2    43.2    50.7
      sum over the 21 probe shapes   10.54 ms  8.66 ms  7.5 ms (clgrad / torch 0.72 -> 0.87)
  What did not pay: double buffering with TK 8 (-10-20 %; it pays with TK 16), TK 8 vs 16 is
  shape dependent (both stay candidates).  Still behind cuBLAS: N = 65 (head: half of a 128-wide
  tile is padding, 7 vs 16 TFLOP/s) and small grids (1024^3).

* numpy (CPU devices, default): PoCL keeps buffers in host memory, and a GEMM
  written in OpenCL C runs far slower there than the host BLAS, so CPU devices map
  the operands (zero-copy), and a worker thread calls np.matmul (BLAS) into C's mapped
  buffer behind a user-event barrier (gemm_host.py, ASYNC_BLAS), like PyTorch's CPU back end
  calling MKL.  Set CLGRAD_MATMUL=opencl (or
  `engine.runtime.matmul.FORCE_OPENCL = True`) to use the kernel everywhere.
"""
import functools
import os

import numpy as np

from . import gemm_epilogue as _epi
from . import gemm_small as _small
from . import gemm_split as _split
from . import launch as _launch
from . import gemm_tune as _tune
from .gemm_host import _gemm_numpy
from .launch import host_call, launch

# None: follow the environment (CLGRAD_MATMUL=opencl runs the kernel on CPU devices too; otherwise
# numpy/BLAS there, except for tiny products); True / False force the kernel / numpy on CPU devices.
# GPUs always run the kernel.
FORCE_OPENCL = None
CPU_KERNEL_MAX_WORK = 1 << 15   # M*N*K*batch up to this runs a kernel on CPU devices too (latency; see gemm_naive)
_MAX_GROUPS_YZ = _small.MAX_GROUPS_YZ
INT32_LIMIT = 2**31      # buffers of more elements get 64-bit index arithmetic
# loader-layout specialisation ('r' / 'c' / 'g' per operand): None = on GPUs only (PoCL builds one generic
# program per dtype); True = everywhere (the tests use it to run the GPU programs on PoCL)
LAYOUT_FLAGS = None
# route M == 1 / N == 1 products to the GEMV kernel (tests switch it off to cover the GEMM edges)
GEMV = True


def use_numpy(device, work=None):
    """Host BLAS for this product?  work = M*N*K*batch; None means 'large'."""
    if not device.is_cpu:
        return False
    f = FORCE_OPENCL
    if f is not None:
        return not f
    if os.environ.get("CLGRAD_MATMUL", "").strip().lower() == "opencl":
        return False
    # tiny products: the host path's maps, barrier and thread hand-off (~40 us of the enqueuing thread)
    # cost more than the kernel; the digits MLP's (64,256)@(256,10) products (work 163840) ran at
    # 140-230 us in the kernel and its step was fastest with them on the asynchronous BLAS path
    return work is None or work > CPU_KERNEL_MAX_WORK


# ---- tile configurations -------------------------------------------------------------------------
# (TM, TN, TK, WM, WN, V, PF): C tile per work-group, K slice, outputs per work-item, vector width of the
# local-memory reads (a work-item's WM rows are WM/V runs of V adjacent rows, read as one floatV), and PF,
# a bit set of code-generation options (0 and 1 keep their old meaning: no / register prefetch):
PF_PREFETCH = 1   # register prefetch of the next K slice (global loads overlap the FMAs)
PF_INTERIOR = 2   # work-groups whose tile lies inside M x N load full K slices without bounds checks
PF_VEC = 4        # ... with float2/float4 global loads along an operand's unit-stride dim when aligned
PF_DBUF = 8       # two local-memory stages: one barrier per K slice instead of two (implies prefetch)
PF_VSTORE = 16    # interior tiles store C rows as VT vectors when C is n-contiguous and aligned
PF_UNROLL2 = 32   # with PF_DBUF: the K loop unrolled by two slices, so each stage has a constant address
# GPU "big": 128x128 tile, 8x8 per work-item, 256 work-items, TK 16, all options but PF_UNROLL2 (the
#   heuristic's choice when the tuner is off; the tuner picks among gemm_tune.CANDIDATES).  H200, 4096^3:
#   44 TFLOP/s (TK 8 + PF 23: 44.8; the old TK 8 + prefetch only: 39-40; cuBLAS FP32 50-51).
# GPU "small": 64x64, 4x4 per work-item, 256 work-items; used when the big tile gives fewer work-groups
#   than SMs or K < 256, for 8-byte types (register pressure) and on GPUs of unknown vendors.
# CPU (PoCL, only when the kernel is forced): 32x32, 4x4 per work-item, 64 work-items; PoCL runs a
#   work-group as loops over work-items, so small groups and short register tiles vectorise best.
# CLGRAD_MATMUL_TILE="TM,TN,TK,WM,WN,V,PF" overrides the choice (tuning).
CONFIGS = {
    "big": (128, 128, 16, 8, 8, 4, 31),
    "small": (64, 64, 16, 4, 4, 4, 31),
    "cpu": (32, 32, 16, 4, 4, 4, 0),
}


# Causal attention's products (ops/attention.py) pass which triangle matters; the tiled kernel then skips
# the K slices of A's zero triangle or the C tiles nobody reads.  Other paths (GEMV, PoCL's naive kernel,
# host BLAS, split-K) compute the whole product, which is equally right: the masked entries are zeros.
TRI_NONE = 0
TRI_A_LOWER = 1   # A[m, k] == 0 for k > m (P @ V, dS @ K): K runs to the tile's last row
TRI_A_UPPER = 2   # A[m, k] == 0 for k < m (P^T @ dO, dS^T @ Q): K starts at the tile's first row
TRI_C_LOWER = 3   # only C[m, n] with n <= m is read (Q @ K^T, dO @ V^T): tiles wholly above are skipped
USE_TRI = os.environ.get("CLGRAD_GEMM_TRI", "1").strip() != "0"   # 0: full products (benchmarks' before/after)


def _env_config():
    s = os.environ.get("CLGRAD_MATMUL_TILE")
    if not s:
        return None
    v = tuple(int(x) for x in s.split(","))
    if len(v) != 7:
        raise ValueError("CLGRAD_MATMUL_TILE must be 'TM,TN,TK,WM,WN,V,PREFETCH'")
    return v


def _fits(device, cfg, lbytes):
    tm, tn, tk, wm, wn, v, pf = cfg
    nt = (tm // wm) * (tn // wn)
    # float2 local reads with the interior / vector / double-buffer options faulted on an H200 (every
    # operand layout of a 32x32x16 V2 tile; found by running each GEMM test in its own process, since
    # a faulting kernel poisons its context); no tuned configuration uses V 2, so it keeps plain prefetch
    if v == 2 and pf & ~PF_PREFETCH:
        return False
    # the loaders step by NT / TK, NT / TM, NT / TN: every one must divide its tile edge
    if nt % tk or nt % tm or nt % tn or tm % (nt // tk) or tn % (nt // tk) or tk % (nt // tm) \
            or tk % (nt // tn):
        return False
    return (nt <= device.max_work_group_size and (tm * tk) % nt == 0 and (tk * tn) % nt == 0
            and wm % v == 0 and wn % v == 0 and tm % wm == 0 and tn % wn == 0
            and (2 if pf & PF_DBUF else 1) * tk * (tm + tn + 64) * lbytes <= device.local_mem)


def choose_config(device, dtype, M, N, K, nbatch):
    env = _env_config()
    lbytes = 8 if dtype.itemsize == 8 else 4
    if env is not None and _fits(device, env, lbytes):
        return env
    if device.is_cpu:
        cands = ["cpu", "small"]
    else:
        vendor = device.vendor.lower()
        known = any(v in vendor for v in ("nvidia", "advanced micro", "amd"))
        tiles_big = -(-M // 128) * -(-N // 128) * nbatch
        if known and lbytes == 4 and tiles_big >= device.compute_units and K >= 256 and min(M, N) >= 128:
            cands = ["big", "small"]
        else:
            cands = ["small"]
    for c in cands + ["cpu"]:
        if _fits(device, CONFIGS[c], lbytes):
            return CONFIGS[c]
    return (8, 8, 8, 1, 1, 1, 0)


# ---- kernel source --------------------------------------------------------------------------------
def _types(dtype):
    """(storage ctype, compute/local ctype, accumulator ctype, numpy type for alpha/beta)."""
    ct = dtype.ctype
    if dtype.is_floating_point:
        acc = "double" if ct == "double" else "float"
        return ct, acc, acc, np.float64 if acc == "double" else np.float32
    if dtype.itemsize == 8:
        return ct, "ulong", "ulong", np.uint64   # unsigned: wrap-around without undefined behaviour
    return ct, "uint", "uint", np.uint32


def _pad(t, tk, v, kfast):
    """Row padding of a local tile so that a k-fast loader's stores hit distinct banks (32 x 4 B):
    a warp stores 32/TK rows x TK k's; a row length = 32/TK (mod 32) spreads them over all banks.
    The padded row stays a multiple of the vector width V (aligned vector reads)."""
    if not kfast:
        return 0
    target = (32 // tk) % 32 if tk <= 32 else 0
    for p in range(0, 33, v):
        if (t + p) % 32 == target:
            return p
    return v


def _vec_width(tf, ts, nt, cnt):
    """Global-load vector width along a tile's fast dim (tf elements; ts along the slow dim, cnt loads
    per work-item): 4 or 2 when the thread mapping tiles exactly, else 1."""
    for g in (4, 2):
        thr = tf // g
        if tf % g == 0 and cnt % g == 0 and thr <= nt and nt % thr == 0 and ts % (nt // thr) == 0:
            return g
    return 1


def gen_source(ct, cmp, acc, cfg, la, lb, has_bias, idx_t, epi=None):
    """The tiled kernel; `epi` (gemm_epilogue.Epilogue, engine.compile only) applies an elementwise
    consumer to each result instead of (or besides) storing C."""
    tm, tn, tk, wm, wn, v, pf = cfg
    rm, rn = tm // wm, tn // wn
    nt = rm * rn
    dbuf = bool(pf & PF_DBUF)
    prefetch = bool(pf & PF_PREFETCH) or dbuf
    interior = bool(pf & (PF_INTERIOR | PF_VEC | PF_VSTORE))
    is_float = acc in ("float", "double")
    pad_a = _pad(tm, tk, v, la != "c")
    pad_b = _pad(tn, tk, v, lb == "c")
    if os.environ.get("CLGRAD_MATMUL_PAD"):   # tuning experiments only: "pad_a,pad_b"
        pad_a, pad_b = (int(x) for x in os.environ["CLGRAD_MATMUL_PAD"].split(","))
    vt = cmp if v == 1 else f"{cmp}{v}"
    comps = [""] if v == 1 else [f".s{c}" for c in "0123456789abcdef"[:v]]
    fma = "acc[i][j] = mad(av[i], bv[j], acc[i][j]);" if is_float else "acc[i][j] += av[i] * bv[j];"
    lines = []
    if "double" in (ct, cmp, acc):
        lines.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
    if ct == "half":
        lines.append("#pragma OPENCL EXTENSION cl_khr_fp16 : enable")

    # Loaders.  Operand X's tile has a fast dim (coalesced: the unit-stride one for 'r'/'c') of tf elements
    # and a slow dim of ts; work-item tid loads g consecutive fast elements at f0 = (tid % thr) * g
    # (thr = tf / g work-items per slow row) in slow rows s0 + l * NT / thr.  g > 1 only for vector
    # global loads (PF_VEC), on the unit-stride dim; the bounds-checked path loads the same elements
    # one by one, so both paths share the registers and the local-memory stores.
    # A: element (m, k) at m * a_sm + k * a_sk, local As[k * LDA + m];  B: (k, n) at k * b_sk + n * b_sn,
    # local Bs[k * LDB + n].
    ops = []
    for name, lay, kfast, t_other, other, lim, s_other, s_k, ld in (
            ("a", la, la != "c", tm, "mt0", "M", "1" if la == "c" else "a_sm", "1" if la == "r" else "a_sk", "LDA"),
            ("b", lb, lb == "c", tn, "nt0", "N", "1" if lb == "r" else "b_sn", "1" if lb == "c" else "b_sk", "LDB")):
        tf, ts = (tk, t_other) if kfast else (t_other, tk)
        cnt = tf * ts // nt
        g = _vec_width(tf, ts, nt, cnt) if (pf & PF_VEC) and lay != "g" and ct == cmp else 1
        ops.append(dict(name=name, lay=lay, kfast=kfast, tf=tf, ts=ts, cnt=cnt, g=g, thr=tf // g,
                        ldn=(tm + pad_a) if name == "a" else (tn + pad_b),
                        step=nt // (tf // g), other=other, lim=lim, s_other=s_other, s_k=s_k, ld=ld,
                        X=name.upper(), vty="CT" if g == 1 else f"{cmp}{g}"))

    def coords(o, c):
        """(k, other) tile coordinates of component c of load l, as C expressions."""
        f = f"({o['name']}_f0 + {c})" if o["g"] > 1 else f"{o['name']}_f0"
        s = f"({o['name']}_s0 + l * {o['step']})"
        return (f, s) if o["kfast"] else (s, f)

    def comp(o, c):
        return f".s{c}" if o["g"] > 1 else ""

    def gaddr(o, kk, oo, k0):
        return f"(IDX)({k0} + {kk}) * {o['s_k']} + (IDX)({o['other']} + {oo}) * {o['s_other']}"

    def load_checked(o, k0):
        out = []
        for c in range(o["g"]):
            kk, oo = coords(o, c)
            out.append(f"r{o['name']}[l]{comp(o, c)} = ({o['other']} + {oo} < {o['lim']} && {k0} + {kk} < K) ? "
                       f"(CT){o['X']}[{gaddr(o, kk, oo, k0)}] : (CT)0;")
        return f"""            #pragma unroll
            for (int l = 0; l < {o['cnt'] // o['g']}; l++) {{ {' '.join(out)} }}"""

    def load_fast(o, k0):
        if o["g"] > 1:
            kk, oo = coords(o, 0)
            body = f"r{o['name']}[l] = *(__global const {o['vty']}*)({o['X']} + {gaddr(o, kk, oo, k0)});"
        else:
            kk, oo = coords(o, 0)
            body = f"r{o['name']}[l] = (CT){o['X']}[{gaddr(o, kk, oo, k0)}];"
        return f"""            #pragma unroll
            for (int l = 0; l < {o['cnt'] // o['g']}; l++) {body}"""

    def loads(k0):
        checked = "\n".join(load_checked(o, k0) for o in ops)
        if not interior:
            return checked
        fast = "\n".join(load_fast(o, k0) for o in ops)
        return f"""        if (fast && {k0} + TK <= K) {{
{fast}
        }} else {{
{checked}
        }}"""

    def stores(stage):
        out = []
        for o in ops:
            arr = ("As" if o["name"] == "a" else "Bs") + stage
            # a vector local store needs an aligned address: the padded row length a multiple of g
            # (NVIDIA faults on a misaligned one; x86/PoCL does not, so the tests cannot see it)
            if o["g"] > 1 and not o["kfast"] and o["ldn"] % o["g"] == 0:
                kk, oo = coords(o, 0)
                body = f"*(__local {o['vty']}*)({arr} + {kk} * {o['ld']} + {oo}) = r{o['name']}[l];"
            else:
                body = " ".join(f"{arr}[{coords(o, c)[0]} * {o['ld']} + {coords(o, c)[1]}] = r{o['name']}[l]{comp(o, c)};"
                                for c in range(o["g"]))
            out.append(f"""        #pragma unroll
        for (int l = 0; l < {o['cnt'] // o['g']}; l++) {{ {body} }}""")
        return "\n".join(out)

    def compute(stage):
        ua = "\n".join(f"                av[s * V + {c}] = t{cp};" for c, cp in enumerate(comps))
        ub = "\n".join(f"                bv[s * V + {c}] = t{cp};" for c, cp in enumerate(comps))
        return f"""        #pragma unroll
        for (int k = 0; k < TK; k++) {{
            CT av[WM], bv[WN];
            #pragma unroll
            for (int s = 0; s < WM / V; s++) {{
                const VT t = As4{stage}[(k * LDA) / V + s * RM + ty];
{ua}
            }}
            #pragma unroll
            for (int s = 0; s < WN / V; s++) {{
                const VT t = Bs4{stage}[(k * LDB) / V + s * RN + tx];
{ub}
            }}
            #pragma unroll
            for (int i = 0; i < WM; i++)
                #pragma unroll
                for (int j = 0; j < WN; j++) {fma}
        }}"""

    regs = f"    {ops[0]['vty']} ra[{ops[0]['cnt'] // ops[0]['g']}];\n    {ops[1]['vty']} rb[{ops[1]['cnt'] // ops[1]['g']}];"
    if dbuf and pf & PF_UNROLL2:
        main = f"""{regs}
{loads("kb")}
{stores("")}
    barrier(CLK_LOCAL_MEM_FENCE);
    __local const VT* As4c0 = As4;
    __local const VT* Bs4c0 = Bs4;
    __local const VT* As4c1 = As4 + TK * LDA / V;
    __local const VT* Bs4c1 = Bs4 + TK * LDB / V;
    __local CT* Asn0 = As;
    __local CT* Bsn0 = Bs;
    __local CT* Asn1 = As + TK * LDA;
    __local CT* Bsn1 = Bs + TK * LDB;
    for (int kt = kb; kt < ke; kt += 2 * TK) {{
        int more = kt + TK < ke;
        if (more) {{
{loads("kt + TK")}
        }}
{compute("c0")}
        if (more) {{
{stores("n1")}
        }}
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!more) break;
        more = kt + 2 * TK < ke;
        if (more) {{
{loads("kt + 2 * TK")}
        }}
{compute("c1")}
        if (more) {{
{stores("n0")}
        }}
        barrier(CLK_LOCAL_MEM_FENCE);
    }}"""
    elif dbuf:
        # stage st is read by this slice's FMAs while the next slice goes into stage st ^ 1: the barrier at
        # the end of a slice orders both the stores (for the next slice) and the reads (of this one)
        main = f"""{regs}
{loads("kb")}
{stores("")}
    barrier(CLK_LOCAL_MEM_FENCE);
    int st = 0;
    for (int kt = kb; kt < ke; kt += TK) {{
        __local const VT* As4c = As4 + st * (TK * LDA / V);
        __local const VT* Bs4c = Bs4 + st * (TK * LDB / V);
        const int more = kt + TK < ke;
        if (more) {{
{loads("kt + TK")}
        }}
{compute("c")}
        if (more) {{
            __local CT* Asn = As + (st ^ 1) * (TK * LDA);
            __local CT* Bsn = Bs + (st ^ 1) * (TK * LDB);
{stores("n")}
        }}
        barrier(CLK_LOCAL_MEM_FENCE);
        st ^= 1;
    }}"""
    elif prefetch:
        main = f"""{regs}
{loads("kb")}
    for (int kt = kb; kt < ke; kt += TK) {{
{stores("")}
        barrier(CLK_LOCAL_MEM_FENCE);
        if (kt + TK < ke) {{
{loads("kt + TK")}
        }}
{compute("")}
        barrier(CLK_LOCAL_MEM_FENCE);
    }}"""
    else:
        main = f"""{regs}
    for (int kt = kb; kt < ke; kt += TK) {{
{loads("kt")}
{stores("")}
        barrier(CLK_LOCAL_MEM_FENCE);
{compute("")}
        barrier(CLK_LOCAL_MEM_FENCE);
    }}"""
    nstage = 2 if dbuf else 1
    fixes = []
    for o in ops:
        fixes.append(f"const int {o['name']}_f0 = (tid % {o['thr']}) * {o['g']}, {o['name']}_s0 = tid / {o['thr']};")
    # interior work-groups: the whole TM x TN tile inside C, and every vector-loaded operand aligned
    # (its pointer and its non-unit stride multiples of the vector width)
    align = []
    for o in ops:
        if o["g"] > 1:
            slow = o["s_other"] if o["kfast"] else o["s_k"]   # the stride of the slow (non-unit) dim
            align.append(f"((((size_t){o['X']} / sizeof(T)) | (size_t){slow}) & {o['g'] - 1}) == 0")
    fast_decl = ""
    if interior:
        fast_decl = ("    const int fast = mt0 + TM <= M && nt0 + TN <= N"
                     + "".join(f" && {x}" for x in align) + ";\n")
    bias = "    D += d_off + (IDX)zb0 * d_sb0 + (IDX)zb1 * d_sb1;\n" if has_bias else ""
    store = "(T)(alpha * acc[i][j] + beta * (ACC)D[(IDX)gm * d_sm + (IDX)gn * d_sn])" if has_bias \
        else "(T)(alpha * acc[i][j])"
    put = f"C[(IDX)gm * c_sm + (IDX)gn * c_sn] = {store};"
    if epi is not None:
        keep = "C[(IDX)gm * c_sm + (IDX)gn * c_sn] = c_; " if epi.keep_c else ""
        put = f"{{ const T c_ = {store}; {keep}{_epi.body(epi, 'IDX')} }}"
    epilogue = f"""    #pragma unroll
    for (int i = 0; i < WM; i++) {{
        const int gm = mt0 + ((i / V) * RM + ty) * V + (i % V);
        #pragma unroll
        for (int j = 0; j < WN; j++) {{
            const int gn = nt0 + ((j / V) * RN + tx) * V + (j % V);
            if (gm < M && gn < N) {put}
        }}
    }}"""
    if (pf & PF_VSTORE) and v > 1 and ct == acc and (epi is None or not epi.strided):
        dv = " + beta * (ACC)D[(IDX)gm * d_sm + (IDX)(gn + {c}) * d_sn]" if has_bias else ""
        vals = ", ".join(f"(T)(alpha * acc[i][jv * V + {c}]{dv.format(c=c)})" for c in range(v))
        put = f"*(__global {ct}{v}*)(C + (IDX)gm * c_sm + (IDX)gn) = ({ct}{v})({vals});"
        ok = ""
        if epi is not None:   # float4 loads and stores of the epilogue's operands too: 0.73x -> ? (H200)
            keep = f"*(__global {ct}{v}*)(C + (IDX)gm * c_sm + (IDX)gn) = c4; " if epi.keep_c else ""
            put = f"{{ const {ct}{v} c4 = ({ct}{v})({vals}); {keep}{_epi.vector_body(epi, v, 'IDX')} }}"
            ok = " && " + _epi.vector_ok(epi, v)
        epilogue = f"""    if (fast && c_sn == 1 && ((((size_t)C / sizeof(T)) | (size_t)c_sm) & {v - 1}) == 0{ok}) {{
        #pragma unroll
        for (int i = 0; i < WM; i++) {{
            const int gm = mt0 + ((i / V) * RM + ty) * V + (i % V);
            #pragma unroll
            for (int jv = 0; jv < WN / V; jv++) {{
                const int gn = nt0 + (jv * RN + tx) * V;
                {put}
            }}
        }}
    }} else {{
{epilogue}
    }}"""
    if epi is not None and epi.pre:
        lines.append(epi.pre)
    lines.append(f"""
#define TM {tm}
#define TN {tn}
#define TK {tk}
#define WM {wm}
#define WN {wn}
#define RM {rm}
#define RN {rn}
#define NT {nt}
#define V {v}
#define LDA {tm + pad_a}
#define LDB {tn + pad_b}
typedef {ct} T;
typedef {cmp} CT;
typedef {vt} VT;
typedef {acc} ACC;
typedef {idx_t} IDX;

__kernel __attribute__((reqd_work_group_size(RN, RM, 1)))
void gemm(const int M, const int N, const int K, const int nb1, const int m0, const int z0,
          __global const T* restrict A, const IDX a_off, const IDX a_sb0, const IDX a_sb1, const IDX a_sm, const IDX a_sk,
          __global const T* restrict B, const IDX b_off, const IDX b_sb0, const IDX b_sb1, const IDX b_sk, const IDX b_sn,
          __global T* restrict C, const IDX c_off, const IDX c_sb0, const IDX c_sb1, const IDX c_sm, const IDX c_sn,
          __global const T* restrict D, const IDX d_off, const IDX d_sb0, const IDX d_sb1, const IDX d_sm, const IDX d_sn,
          const ACC alpha, const ACC beta, const int tri{_epi.params(epi, idx_t) if epi is not None else ""})
{{
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int tid = ty * RN + tx;
    {fixes[0]}
    {fixes[1]}
    const int nt0 = get_group_id(0) * TN;
    const int mt0 = get_group_id(1) * TM + m0;
    const int z = get_group_id(2) + z0;
    const int zb0 = z / nb1, zb1 = z - zb0 * nb1;
    A += a_off + (IDX)zb0 * a_sb0 + (IDX)zb1 * a_sb1;
    B += b_off + (IDX)zb0 * b_sb0 + (IDX)zb1 * b_sb1;
    C += c_off + (IDX)zb0 * c_sb0 + (IDX)zb1 * c_sb1;
    // causal-attention products (TRI_*): only the slices of K, or the C tiles, that the mask lets through
    if (tri == {TRI_C_LOWER} && nt0 > mt0 + TM - 1) return;
    const int kb = tri == {TRI_A_UPPER} ? (mt0 / TK) * TK : 0;
    const int ke = tri == {TRI_A_LOWER} ? min(K, mt0 + TM) : K;
{fast_decl}    __local VT As4[{nstage} * TK * LDA / V];
    __local VT Bs4[{nstage} * TK * LDB / V];
    __local CT* As = (__local CT*)As4;
    __local CT* Bs = (__local CT*)Bs4;
    ACC acc[WM][WN];
    #pragma unroll
    for (int i = 0; i < WM; i++)
        #pragma unroll
        for (int j = 0; j < WN; j++) acc[i][j] = (ACC)0;
{main}
{bias}{epilogue}
}}
""")
    return "\n".join(lines)


# ---- entry point ----------------------------------------------------------------------------------
def _layout(rows, cols, s_r, s_c):
    """'r': the column (inner) stride is 1, 'c': the row stride is 1, 'g': neither.  Strides of
    size-1 dims are free, so they are set to whatever gives the best layout."""
    if s_c == 1 or cols <= 1:
        return "r", s_r, 1
    if s_r == 1 or rows <= 1:
        return "c", 1, s_c
    return "g", s_r, s_c


def gemm(device, dtype, M, N, K, nb, c, a, b, d=None, alpha=1, beta=0, tri=TRI_NONE):
    """C = alpha * A @ B + beta * D over a batch of nb = (nb0, nb1) matrices.

    c, a, b, d: (storage, offset, (s_batch0, s_batch1, s_row, s_col)) in elements; A is M x K,
    B is K x N, C and D are M x N (D may be None; D and the batch strides may be 0 = broadcast).
    tri: a TRI_* hint of which triangle of a square-ish attention product matters (see above).
    """
    nb0, nb1 = nb
    if M == 0 or N == 0 or nb0 == 0 or nb1 == 0:
        return
    if max(M, N, K, nb0 * nb1) >= 2**31:
        raise RuntimeError(f"matmul: dimensions of 2^31 or more are not supported (M={M}, N={N}, K={K}, "
                           f"batch={nb0 * nb1})")
    if d is not None and beta == 0:
        d = None
    if not USE_TRI:
        tri = TRI_NONE
    if use_numpy(device, M * N * max(K, 1) * nb0 * nb1):
        host_call(device, _gemm_numpy, (device, dtype, M, N, K, nb, c, a, b, d, alpha, beta), "gemm_blas")
    else:
        _gemm_cl(device, dtype, M, N, K, nb, c, a, b, d, alpha, beta, tri=tri)


def _gemm_cl(device, dtype, M, N, K, nb, c, a, b, d, alpha, beta, cfg=None, tri=TRI_NONE):
    nb0, nb1 = nb
    nz = nb0 * nb1
    ct, cmp, acc, anp = _types(dtype)
    big = any(x[0].size // dtype.itemsize >= INT32_LIMIT for x in (a, b, c) + ((d,) if d is not None else ()))
    idx_t, it = ("long", np.int64) if big else ("int", np.int32)
    al = anp(alpha % (1 << (8 * np.dtype(anp).itemsize))) if not dtype.is_floating_point else anp(alpha)
    be = anp(beta % (1 << (8 * np.dtype(anp).itemsize))) if not dtype.is_floating_point else anp(beta)
    if (M == 1 or N == 1) and GEMV:
        return _small.gemv_cl(device, (ct, cmp, acc), M, N, K, nb, c, a, b, d, it, idx_t, al, be, LAYOUT_FLAGS)
    if device.is_cpu and FORCE_OPENCL is None and os.environ.get("CLGRAD_MATMUL_TILE") is None:
        return _small.gemm_naive_cl(device, (ct, cmp, acc), M, N, K, nb, c, a, b, d, it, idx_t, al, be)
    a_st, b_st, c_st = list(a[2]), list(b[2]), list(c[2])
    if device.is_cpu and not LAYOUT_FLAGS:
        la = lb = "g"   # one program per dtype on PoCL: the loader mapping matters little there
    else:
        la, a_st[2], a_st[3] = _layout(M, K, a_st[2], a_st[3])
        lb, b_st[2], b_st[3] = _layout(K, N, b_st[2], b_st[3])   # 'r': n unit-stride, 'c': k unit-stride
    if cfg is None:
        cfg, S = _pick(device, dtype, M, N, K, nb, c, a, b, d, alpha, beta, la, lb, tri)
        if S > 1:   # few output tiles, long K (weight gradients): see gemm_split.py
            return _split.gemm_split_k(device, dtype, M, N, K, S, c, a, b, d, alpha, beta,
                                       functools.partial(_gemm_cl, cfg=cfg), acc, anp)
    has_bias = d is not None
    key = ("gemm", ct, cfg, la, lb, has_bias, idx_t)
    knl = device.programs.kernel(key, lambda: (gen_source(ct, cmp, acc, cfg, la, lb, has_bias, idx_t), "gemm"))
    tm, tn, tk, wm, wn, v, pf = cfg
    rm, rn = tm // wm, tn // wn
    if has_bias:
        dbuf, d_args = d[0].buf, [it(d[1])] + [it(s) for s in d[2]]
    else:
        dbuf, d_args = c[0].buf, [it(0)] * 5
    ngn = -(-N // tn)
    ngm = -(-M // tm)
    rec = _launch._REC[0]
    if rec is not None and ngm <= _MAX_GROUPS_YZ and nz <= _MAX_GROUPS_YZ:   # one launch: fusable
        rec.note_gemm(dict(ct=ct, cmp=cmp, acc=acc, cfg=cfg, la=la, lb=lb, has_bias=has_bias, idx_t=idx_t,
                           M=M, N=N, nb=(nb0, nb1), c_pos=18))
    for m_g0 in range(0, ngm, _MAX_GROUPS_YZ):
        gm = min(_MAX_GROUPS_YZ, ngm - m_g0)
        for z0 in range(0, nz, _MAX_GROUPS_YZ):
            gz = min(_MAX_GROUPS_YZ, nz - z0)
            args = [np.int32(M), np.int32(N), np.int32(K), np.int32(nb1), np.int32(m_g0 * tm), np.int32(z0),
                    a[0].buf, it(a[1]), it(a_st[0]), it(a_st[1]), it(a_st[2]), it(a_st[3]),
                    b[0].buf, it(b[1]), it(b_st[0]), it(b_st[1]), it(b_st[2]), it(b_st[3]),
                    c[0].buf, it(c[1]), it(c_st[0]), it(c_st[1]), it(c_st[2]), it(c_st[3]),
                    dbuf, *d_args, al, be, np.int32(tri)]
            launch(device, knl, (ngn * rn, gm * rm, gz), (rn, rm, 1), args, "gemm")


def _pick(device, dtype, M, N, K, nb, c, a, b, d, alpha, beta, la, lb, tri=TRI_NONE):
    """(tile config, split-K chunks) for this product: the CLGRAD_MATMUL_TILE override, else the
    tuner's measured choice on known GPUs (gemm_tune.py), else the fixed heuristic."""
    nz = nb[0] * nb[1]
    splittable = nz == 1 and not tri and dtype.is_floating_point and \
        (not device.is_cpu or os.environ.get("CLGRAD_SPLITK"))
    lbytes = 8 if dtype.itemsize == 8 else 4
    env = _env_config()
    # tuning runs the product several times: not when C is also an input (C += A @ B)
    if env is None and _tune.enabled(device) and (d is None or d[0].buf is not c[0].buf) \
            and os.environ.get("CLGRAD_SPLITK") is None:
        cands = []
        for cfg in _tune.CANDIDATES:
            if not _fits(device, cfg, lbytes):
                continue
            cands.append((cfg, 1))
            if splittable:
                S = _deep_split(K, _split.choose_splits(device, M, N, K, -(-M // cfg[0]) * -(-N // cfg[1])))
                if S > 1:
                    cands.append((cfg, S))
        if cands:
            acc, anp = _types(dtype)[2:]

            def run(cfg, S):
                if S > 1:
                    _split.gemm_split_k(device, dtype, M, N, K, S, c, a, b, d, alpha, beta,
                                        functools.partial(_gemm_cl, cfg=cfg), acc, anp)
                else:
                    _gemm_cl(device, dtype, M, N, K, nb, c, a, b, d, alpha, beta, cfg=cfg, tri=tri)
            key = _tune.class_key(dtype, la, lb, M, N, K, nz) + (f"|t{tri}" if tri else "")
            return _tune.choose(device, key, cands, run)
    cfg = choose_config(device, dtype, M, N, K, nz)
    return cfg, (_split_count(device, M, N, K, cfg) if splittable else 1)


def _split_count(device, M, N, K, cfg):
    env = os.environ.get("CLGRAD_SPLITK")   # tuning: "0" off, "S" force S chunks (when S divides K)
    if env is not None and env.strip():
        S = int(env)
        return S if S > 1 and K % S == 0 else 1
    return _deep_split(K, _split.choose_splits(device, M, N, K, -(-M // cfg[0]) * -(-N // cfg[1])))


def _deep_split(K, S):
    """Once K is split at all, split it finer: chunks of 512 (S up to 32).  Measured on an H200 (NVIDIA
    OpenCL), dW = X^T @ dY with K = 16384: fc 1536x384 30 -> 38-40 TFLOP/s (S 8 -> 32), qkv 1152x384
    33 -> 36 (16 -> 32): more work-groups than the ~2 waves gemm_split aims at even out the tail, and the
    extra partial-sum traffic (2 x S x M x N x 4 B) stays small against the GEMM."""
    if S <= 1:
        return S
    for s in (32, 16):
        if s > S and K % s == 0 and K // s >= 512:
            return s
    return S
