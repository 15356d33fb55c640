"""Split-K for GEMMs with few output tiles and a long K (weight gradients: dW = X^T @ dY with
K = batch x tokens), on GPUs.

A (384 x 1152) output with K = 16384 has 27 tiles of 128 x 128: an H200 (132 SMs) would run it
on a fifth of its SMs.  Split K into S chunks and run them as a batch of S GEMMs (the batched
kernel's batch stride walks K), each writing its partial product into a scratch (S, M, N), then
one elementwise pass sums the S partials into C (with alpha, and beta * D).  Extra traffic:
2 x S x M x N x 4 bytes (S = 8: 28 MB, ~10 us at 3 TB/s) against a GEMM of 14.5 GFLOP (~0.35 ms).
"""
import numpy as np

from .launch import launch, round_up
from .memory import Storage

MIN_K_CHUNK = 256


def choose_splits(device, M, N, K, tiles):
    """How many K chunks (dividing K) bring the tile count to about 2 waves of the device; 1 = none."""
    if device.is_cpu or K < 2 * MIN_K_CHUNK:
        return 1
    cus = device.compute_units
    if tiles >= cus:
        return 1
    best = 1
    for s in (2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32):
        if K % s or K // s < MIN_K_CHUNK:
            continue
        best = s
        if tiles * s >= 2 * cus:
            break
    return best


def _sum_source(ct, acc, has_bias):
    bias = " + beta * (ACC)D[d_off + (long)m * d_sm + (long)n * d_sn]" if has_bias else ""
    dbl = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" if "double" in (ct, acc) else ""
    return f"""{dbl}typedef {ct} T;
typedef {acc} ACC;
__kernel void splitk_sum(const int M, const int N, const int S, __global const T* P,
                         __global T* C, const long c_off, const long c_sm, const long c_sn,
                         __global const T* D, const long d_off, const long d_sm, const long d_sn,
                         const ACC alpha, const ACC beta) {{
    const int n = get_global_id(0), m = get_global_id(1);
    if (n >= N || m >= M) return;
    const long mn = (long)M * N;
    const long i = (long)m * N + n;
    ACC s = 0;
    for (int k = 0; k < S; k++) s += (ACC)P[i + k * mn];
    C[c_off + (long)m * c_sm + (long)n * c_sn] = (T)(alpha * s{bias});
}}
"""


def gemm_split_k(device, dtype, M, N, K, S, c, a, b, d, alpha, beta, batched_gemm, acc_ct, anp):
    """C = alpha * A @ B (+ beta * D) as S partial GEMMs over K chunks plus a sum."""
    kc = K // S
    isz = dtype.itemsize
    part = Storage(device, S * M * N * isz)
    a_st, b_st = a[2], b[2]
    pa = (a[0], a[1], (0, kc * a_st[3], a_st[2], a_st[3]))
    pb = (b[0], b[1], (0, kc * b_st[2], b_st[2], b_st[3]))
    pc = (part, 0, (0, M * N, N, 1))
    batched_gemm(device, dtype, M, N, kc, (1, S), pc, pa, pb, None, 1, 0)
    has_bias = d is not None
    key = ("splitk_sum", dtype.ctype, acc_ct, has_bias)
    knl = device.programs.kernel(key, lambda: (_sum_source(dtype.ctype, acc_ct, has_bias), "splitk_sum"))
    i64 = np.int64
    c_st = c[2]
    if has_bias:
        dbuf, dargs = d[0].buf, [i64(d[1]), i64(d[2][2]), i64(d[2][3])]
    else:
        dbuf, dargs = part.buf, [i64(0), i64(0), i64(0)]
    args = [np.int32(M), np.int32(N), np.int32(S), part.buf, c[0].buf, i64(c[1]), i64(c_st[2]), i64(c_st[3]),
            dbuf, *dargs, anp(alpha), anp(beta)]
    launch(device, knl, (round_up(N, 64), M), (64, 1), args, "gemm_splitk_sum")
