"""Counter-based random numbers: Philox-4x32-10 (Salmon et al., SC'11; Random123) in OpenCL C.

The stream is a pure function of (key, counter): key = the 64-bit seed as (lo, hi) words,
counter = (c lo, c hi, c2, c3) with c = offset + k for the k-th counter of a call, c2 = c3 = 0
in normal use.  Each counter gives four uint32 words r.x, r.y, r.z, r.w.  Output element i of a
call uses counter offset + i / PER and the lanes of slot i % PER, where PER (elements per counter)
depends only on the distribution and the output dtype:

  uniform/exponential/cauchy/geometric/bernoulli/randint (range <= 2^32), float32/16 or integer
      out: PER = 4, one 32-bit lane each; floats in [0, 1) are (lane >> 8) * 2^-24
  uniform & co. into float64:   PER = 2, 53 bits from two lanes: ((a >> 5) * 2^26 + (b >> 6)) * 2^-53
  normal/log_normal, 32-bit:    PER = 4, Box-Muller on lanes (x, y) -> elements 0, 1 and (z, w) -> 2, 3
  normal/log_normal, float64:   PER = 2, Box-Muller on two 53-bit uniforms
  randint (range > 2^32), bits64: PER = 2, 64 bits from two lanes

Work sizes never enter the stream (a work-item handles one counter and its PER elements), and
FP_CONTRACT is off (no device-dependent fused multiply-adds), so the same seed gives bit-identical
integers, bernoulli draws and uniform floats (also uniform_(a, b)) on every device; normals,
exponentials etc. agree to the accuracy of the device's log/sin/cos.
"""
import numpy as np

from .launch import launch, round_up

PHILOX_SRC = r"""
#pragma OPENCL FP_CONTRACT OFF
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
inline uint4 philox4x32_10(uint4 c, uint2 k) {
    for (int i = 0; i < 10; i++) {
        uint hi0 = mul_hi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
        uint hi1 = mul_hi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
        c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
        k.x += PHILOX_W0; k.y += PHILOX_W1;
    }
    return c;
}
"""

_TWO_PI_F = "6.28318530717958647692f"
_TWO_PI_D = "6.28318530717958647692"


def _u24(w):  # [0, 1) float from the high 24 bits of a lane
    return f"((float)(({w}) >> 8) * 0x1.0p-24f)"


def _u24_open0(w):  # (0, 1] float
    return f"((float)((({w}) >> 8) + 1u) * 0x1.0p-24f)"


def _u53(a, b):  # [0, 1) double from two lanes
    return f"(((double)(({a}) >> 5) * 67108864.0 + (double)(({b}) >> 6)) * 0x1.0p-53)"


def _u53_open0(a, b):
    return f"(((double)(({a}) >> 5) * 67108864.0 + (double)(({b}) >> 6) + 1.0) * 0x1.0p-53)"


LANES = ("r.x", "r.y", "r.z", "r.w")

# per distribution: (parameter C types for float32-like / float64 outputs, PER for each)
MODES = ("uniform", "normal", "log_normal", "exponential", "cauchy", "geometric", "bernoulli",
         "randint", "randint64", "bits32", "bits64")


def per_of(mode, dbl):
    if mode in ("randint64", "bits64"):
        return 2
    if mode in ("randint", "bits32", "bernoulli"):
        return 4
    return 2 if dbl else 4


def _values(mode, dbl):
    """C statements setting v0..v{PER-1} (compute type CT) from r, with parameters p1, p2."""
    per = per_of(mode, dbl)
    lines = []
    if mode in ("normal", "log_normal"):
        for j in range(per // 2):
            if dbl:
                u1 = _u53_open0(LANES[0], LANES[1])
                u2 = _u53(LANES[2], LANES[3])
                tp = _TWO_PI_D
            else:
                u1 = _u24_open0(LANES[2 * j])
                u2 = _u24(LANES[2 * j + 1])
                tp = _TWO_PI_F
            lines.append(f"    {{ CT rad = sqrt((CT)-2 * log({u1})); CT th = {tp} * {u2};"
                         f" v{2 * j} = rad * cos(th); v{2 * j + 1} = rad * sin(th); }}")
        for j in range(per):
            e = f"p1 + p2 * v{j}"
            lines.append(f"    v{j} = {'exp(' + e + ')' if mode == 'log_normal' else e};")
        return lines
    for j in range(per):
        if mode == "randint":
            lines.append(f"    v{j} = p1 + (long)((ulong){LANES[j]} % p2);")
        elif mode == "randint64":
            w = f"(((ulong){LANES[2 * j]} << 32) | (ulong){LANES[2 * j + 1]})"
            lines.append(f"    v{j} = p1 + (long)({w} % p2);")
        elif mode == "bits32":
            lines.append(f"    v{j} = (long){LANES[j]};")
        elif mode == "bits64":
            lines.append(f"    v{j} = (long)(((((ulong){LANES[2 * j]} << 32) | (ulong){LANES[2 * j + 1]})) >> 1);")
        elif mode == "bernoulli":
            lines.append(f"    v{j} = ({_u24(LANES[j])} < p1) ? 1 : 0;")
        else:
            u = _u53(LANES[2 * j], LANES[2 * j + 1]) if dbl else _u24(LANES[j])
            if mode == "uniform":
                lines.append(f"    v{j} = p1 + p2 * {u};")
            elif mode == "exponential":  # -log(1 - u) / lambda, 1 - u in (0, 1]
                lines.append(f"    v{j} = -log((CT)1 - {u}) / p1;")
            elif mode == "cauchy":
                lines.append(f"    v{j} = p1 + p2 * tan((CT)3.14159265358979323846 * ({u} - (CT)0.5));")
            elif mode == "geometric":  # p1 = log1p(-p)
                lines.append(f"    v{j} = fmax((CT)1, ceil(log((CT)1 - {u}) / p1));")
            else:
                raise ValueError(mode)
    return lines


def compute_ctype(mode, dbl):
    if mode in ("randint", "randint64", "bits32", "bits64"):
        return "long"
    if mode == "bernoulli":
        return "int"
    return "double" if dbl else "float"


def param_ctypes(mode, dbl):
    if mode in ("randint", "randint64"):
        return ("long", "ulong")
    if mode in ("bits32", "bits64"):
        return ("long", "long")
    if mode == "bernoulli":
        return ("float", "float")
    c = "double" if dbl else "float"
    return (c, c)


def gen_source(mode, out_ct, dbl):
    per = per_of(mode, dbl)
    ct = compute_ctype(mode, dbl)
    p1t, p2t = param_ctypes(mode, dbl)
    body = "\n".join(_values(mode, dbl))
    decl = ", ".join(f"v{j} = 0" for j in range(per))
    stores = "\n".join(f"    if (base + {j} < n) out[off + base + {j}] = ({out_ct})v{j};" for j in range(per))
    src = f"""{PHILOX_SRC}
#define CT {ct}
__kernel void philox_gen(__global {out_ct}* out, long off, long n, ulong ctr0, uint c2, uint c3,
                         uint k0, uint k1, {p1t} p1, {p2t} p2) {{
    long c = get_global_id(0);
    long base = c * {per};
    if (base >= n) return;
    ulong ctr = ctr0 + (ulong)c;
    uint4 r = philox4x32_10((uint4)((uint)ctr, (uint)(ctr >> 32), c2, c3), (uint2)(k0, k1));
    CT {decl};
{body}
{stores}
}}
"""
    if "double" in src:
        src = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" + src
    if out_ct == "half":
        src = "#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n" + src
    return src


_NP = {"float": np.float32, "double": np.float64, "long": np.int64, "ulong": np.uint64, "int": np.int32}


def run(device, mode, out_buf, out_off, out_ct, n, seed, offset, p1=0, p2=0, dbl=False, c2=0, c3=0):
    """Fill n contiguous elements of out_buf (element offset out_off) from counters
    offset, offset+1, ... under key `seed`; the caller reserved ceil(n / per_of(mode, dbl)) counters."""
    if n <= 0:
        return
    per = per_of(mode, dbl)
    key = ("philox", mode, out_ct, dbl)
    knl = device.programs.kernel(key, lambda: (gen_source(mode, out_ct, dbl), "philox_gen"))
    p1t, p2t = param_ctypes(mode, dbl)
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    args = [out_buf, np.int64(out_off), np.int64(n), np.uint64(int(offset) & 0xFFFFFFFFFFFFFFFF),
            np.uint32(c2 & 0xFFFFFFFF), np.uint32(c3 & 0xFFFFFFFF),
            np.uint32(seed & 0xFFFFFFFF), np.uint32(seed >> 32), _NP[p1t](p1), _NP[p2t](p2)]
    ncount = (n + per - 1) // per
    wg = min(64, device.max_work_group_size)
    launch(device, knl, (round_up(ncount, wg),), (wg,), args, "philox_" + mode)


def philox_reference(ctr, key):
    """Pure-Python Philox-4x32-10 of a 4-word counter and 2-word key (for tests and docs)."""
    M = 0xFFFFFFFF
    c = list(ctr)
    k0, k1 = key
    for _ in range(10):
        p0 = 0xD2511F53 * c[0]
        p1 = 0xCD9E8D57 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k0) & M, p1 & M, ((p0 >> 32) ^ c[3] ^ k1) & M, p0 & M]
        k0 = (k0 + 0x9E3779B9) & M
        k1 = (k1 + 0xBB67AE85) & M
    return tuple(c)
