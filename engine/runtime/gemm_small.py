"""The GEMM kernels for products a tiled kernel serves badly (runtime/matmul.py picks them): GEMV, where
M or N is 1, and a one-work-item-per-output kernel for small products on CPU devices."""
import numpy as np

from .launch import launch

MAX_GROUPS_YZ = 65535   # CUDA's grid limit in y and z; NVIDIA's OpenCL enforces it too


# ---- small products on CPU devices ------------------------------------------------------------------
# PoCL runs a local-memory tiled kernel slowly (each barrier splits the work-item loops), and products
# this small (the host BLAS path serves larger ones) are latency-bound: one work-item per output with a
# plain k loop, work-items along n so PoCL vectorises over them, is 4-7x faster here (measured on the
# 2-core EPYC, PoCL: (64,128)@(128,10) 345 -> 50 us, 64^3 278 -> 120 us, 32^3 76 -> 24 us).
def gen_gemm_naive_source(ct, cmp, acc, has_bias, idx_t):
    lines = []
    if "double" in (ct, cmp, acc):
        lines.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
    if ct == "half":
        lines.append("#pragma OPENCL EXTENSION cl_khr_fp16 : enable")
    bias = "r += beta * (ACC)D[d_off + z0 * d_sb0 + z1 * d_sb1 + (IDX)m * d_sr + (IDX)n * d_sc];" if has_bias else ""
    lines.append(f"""#define T {ct}
#define ACC {acc}
#define IDX {idx_t}
__kernel void gemm_naive(const int M, const int N, const int K, const int nb1,
        __global const T* A, const IDX a_off, const IDX a_sb0, const IDX a_sb1, const IDX a_sr, const IDX a_sc,
        __global const T* B, const IDX b_off, const IDX b_sb0, const IDX b_sb1, const IDX b_sr, const IDX b_sc,
        __global T* C, const IDX c_off, const IDX c_sb0, const IDX c_sb1, const IDX c_sr, const IDX c_sc,
        __global const T* D, const IDX d_off, const IDX d_sb0, const IDX d_sb1, const IDX d_sr, const IDX d_sc,
        const ACC alpha, const ACC beta) {{
    const int n = get_global_id(0), m = get_global_id(1), z = get_global_id(2);
    if (n >= N || m >= M) return;
    const IDX z0 = z / nb1, z1 = z % nb1;
    const __global T* a = A + a_off + z0 * a_sb0 + z1 * a_sb1 + (IDX)m * a_sr;
    const __global T* b = B + b_off + z0 * b_sb0 + z1 * b_sb1 + (IDX)n * b_sc;
    ACC s = (ACC)0;
    for (int k = 0; k < K; ++k) s += (ACC)a[(IDX)k * a_sc] * (ACC)b[(IDX)k * b_sr];
    ACC r = alpha * s;
    {bias}
    C[c_off + z0 * c_sb0 + z1 * c_sb1 + (IDX)m * c_sr + (IDX)n * c_sc] = (T)r;
}}""")
    return "\n".join(lines)


def gemm_naive_cl(device, types, M, N, K, nb, c, a, b, d, it, idx_t, al, be):
    ct, cmp, acc = types
    has_bias = d is not None
    key = ("gemm_naive", ct, has_bias, idx_t)
    knl = device.programs.kernel(key, lambda: (gen_gemm_naive_source(ct, cmp, acc, has_bias, idx_t), "gemm_naive"))
    if has_bias:
        dbuf, d_args = d[0].buf, [it(d[1])] + [it(s) for s in d[2]]
    else:
        dbuf, d_args = c[0].buf, [it(0)] * 5
    nz = nb[0] * nb[1]
    args = [np.int32(M), np.int32(N), np.int32(K), np.int32(nb[1])]
    for x in (a, b, c):
        args += [x[0].buf, it(x[1])] + [it(s) for s in x[2]]
    args += [dbuf, *d_args, al, be]
    wx = 16 if N >= 16 else 8 if N >= 8 else 1
    launch(device, knl, (-(-N // wx) * wx, M, nz), (wx, 1, 1), args, "gemm")


# ---- GEMV: M == 1 or N == 1 ------------------------------------------------------------------------
# A GEMM tile of 64-128 rows wastes all but one row when M or N is 1, and the product is then bound by
# reading the matrix once (2 FLOP per 4 B: at most ~1.6 TFLOP/s at H100's ~3.3 TB/s), and the tiled
# kernel's few work-groups are too few to saturate memory (measured 0.18 TFLOP/s at 8192 x 8192; this
# kernel 1.6-1.9, PyTorch 1.5-2.0, on an H200).  y[i] = alpha * sum_k X[i, k] v[k] (+ beta * D[i]):
#   'r'/'g': X's k is unit-stride (or neither is): one 32-lane row of work-items per output row, lanes
#            stride over k (coalesced), then a local-memory tree reduction; 8 rows per work-group.
#   'c':     X's i is unit-stride: a work-item per output, 16 work-items split k, coalesced over i.
GEMV_WX = 32


def _gemv_wy(device, lay):
    """Rows ('r'/'g') or k-splits ('c') per work-group: a power of two, WX * WY <= max work-group size."""
    wy = 16 if lay == "c" else 8
    while wy > 1 and GEMV_WX * wy > device.max_work_group_size:
        wy //= 2
    return wy


def gen_gemv_source(ct, cmp, acc, lay, has_bias, idx_t, wy):
    lines = []
    if "double" in (ct, cmp, acc):
        lines.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
    if ct == "half":
        lines.append("#pragma OPENCL EXTENSION cl_khr_fp16 : enable")
    xsk = "1" if lay == "r" else "x_sk"
    xsi = "1" if lay == "c" else "x_si"
    if lay == "c":
        body = f"""    const int i = get_group_id(0) * WX + lx;
    ACC acc = (ACC)0;
    if (i < P) {{
        const __global T* xr = X + (IDX)i;
        #pragma unroll 4
        for (int k = ly; k < K; k += WY) acc += (ACC)xr[(IDX)k * x_sk] * (ACC)v[(IDX)k * v_sk];
    }}
    __local ACC red[WY][WX];
    red[ly][lx] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WY / 2; s > 0; s >>= 1) {{
        if (ly < s) red[ly][lx] += red[ly + s][lx];
        barrier(CLK_LOCAL_MEM_FENCE);
    }}
    const int leader = ly == 0;
    const ACC r = red[0][lx];"""
    else:
        body = f"""    const int i = get_group_id(0) * WY + ly;
    ACC acc = (ACC)0;
    if (i < P) {{
        const __global T* xr = X + (IDX)i * {xsi};
        #pragma unroll 4
        for (int k = lx; k < K; k += WX) acc += (ACC)xr[(IDX)k * {xsk}] * (ACC)v[(IDX)k * v_sk];
    }}
    __local ACC red[WY][WX + 1];
    red[ly][lx] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WX / 2; s > 0; s >>= 1) {{
        if (lx < s) red[ly][lx] += red[ly][lx + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }}
    const int leader = lx == 0;
    const ACC r = red[ly][0];"""
    store = "(T)(alpha * r + beta * (ACC)D[(IDX)i * d_si])" if has_bias else "(T)(alpha * r)"
    dadj = "        D += d_off + (IDX)zb0 * d_sb0 + (IDX)zb1 * d_sb1;\n" if has_bias else ""
    lines.append(f"""
#define WX {GEMV_WX}
#define WY {wy}
typedef {ct} T;
typedef {acc} ACC;
typedef {idx_t} IDX;

__kernel __attribute__((reqd_work_group_size(WX, WY, 1)))
void gemv(const int P, const int K, const int nb1, const int z0,
          __global const T* restrict X, const IDX x_off, const IDX x_sb0, const IDX x_sb1, const IDX x_si, const IDX x_sk,
          __global const T* restrict v, const IDX v_off, const IDX v_sb0, const IDX v_sb1, const IDX v_sk,
          __global T* restrict Y, const IDX y_off, const IDX y_sb0, const IDX y_sb1, const IDX y_si,
          __global const T* restrict D, const IDX d_off, const IDX d_sb0, const IDX d_sb1, const IDX d_si,
          const ACC alpha, const ACC beta)
{{
    const int lx = get_local_id(0), ly = get_local_id(1);
    const int z = get_group_id(2) + z0;
    const int zb0 = z / nb1, zb1 = z - zb0 * nb1;
    X += x_off + (IDX)zb0 * x_sb0 + (IDX)zb1 * x_sb1;
    v += v_off + (IDX)zb0 * v_sb0 + (IDX)zb1 * v_sb1;
{body}
    if (leader && i < P) {{
        Y += y_off + (IDX)zb0 * y_sb0 + (IDX)zb1 * y_sb1;
{dadj}        Y[(IDX)i * y_si] = {store};
    }}
}}
""")
    return "\n".join(lines)


def gemv_cl(device, types, M, N, K, nb, c, a, b, d, it, idx_t, al, be, layout_flags):
    """y = alpha * X @ v (+ beta * D) for a product with M == 1 or N == 1 (types: storage, compute and
    accumulator C types; layout_flags: matmul.LAYOUT_FLAGS, the GPUs' per-layout programs on PoCL too)."""
    nb0, nb1 = nb
    nz = nb0 * nb1
    ct, cmp, acc = types
    (as0, as1, a_sm, a_sk), (bs0, bs1, b_sk, b_sn), (cs0, cs1, c_sm, c_sn) = a[2], b[2], c[2]
    if N == 1:      # y = A @ b[:, 0]
        P, X, xs, V, vs, ys = M, a, (as0, as1, a_sm, a_sk), b, (bs0, bs1, b_sk), (cs0, cs1, c_sm)
        ds = d and (d[2][0], d[2][1], d[2][2])
    else:           # M == 1: y = B^T @ a[0, :]
        P, X, xs, V, vs, ys = N, b, (bs0, bs1, b_sn, b_sk), a, (as0, as1, a_sk), (cs0, cs1, c_sn)
        ds = d and (d[2][0], d[2][1], d[2][3])
    x_si, x_sk = xs[2], xs[3]
    if device.is_cpu and not layout_flags:
        lay = "c" if (x_si == 1 and x_sk != 1 and P > 1) else "g"
    elif x_sk == 1 or K == 1:
        lay, x_sk = "r", 1
    elif x_si == 1 or P == 1:
        lay, x_si = "c", 1
    else:
        lay = "g"
    xs = (xs[0], xs[1], x_si, x_sk)
    has_bias = d is not None
    wy = _gemv_wy(device, lay)
    key = ("gemv", ct, lay, has_bias, idx_t, wy)
    knl = device.programs.kernel(key, lambda: (gen_gemv_source(ct, cmp, acc, lay, has_bias, idx_t, wy), "gemv"))
    per_group = GEMV_WX if lay == "c" else wy
    ng = -(-P // per_group)
    if has_bias:
        dbuf, d_args = d[0].buf, [it(d[1])] + [it(s) for s in ds]
    else:
        dbuf, d_args = c[0].buf, [it(0)] * 4
    for z0 in range(0, nz, MAX_GROUPS_YZ):
        gz = min(MAX_GROUPS_YZ, nz - z0)
        args = [np.int32(P), np.int32(K), np.int32(nb1), np.int32(z0),
                X[0].buf, it(X[1]), *(it(s) for s in xs),
                V[0].buf, it(V[1]), *(it(s) for s in vs),
                c[0].buf, it(c[1]), *(it(s) for s in ys),
                dbuf, *d_args, al, be]
        launch(device, knl, (ng * GEMV_WX, wy, gz), (GEMV_WX, wy, 1), args, "gemv")
