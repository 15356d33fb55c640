"""What one small kernel launch costs the host, by way of launching (issue 7's dispatch row).

    CLGRAD_DEVICE=gpu python benchmarks/probe_enqueue.py [--n 20000]

Ways, each timed over --n launches of a 16-float add (host time until the last enqueue returns, then a
finish; best of 5):
  pyopencl          kernel.set_args(...) + cl.enqueue_nd_range_kernel (what launch.py does; returns an Event)
  pyopencl call     kernel(queue, gsize, lsize, *args) (pyopencl's generated invoker)
  set_args only     kernel.set_args(...) alone
  ctypes, no event  kernel.set_args(...) + clEnqueueNDRangeKernel through ctypes with event = NULL
and, for scale, torch's `x + b` on 16 floats (CUDA when the device is a GPU).
"""
import argparse
import ctypes
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _libopencl():
    """The libOpenCL that pyopencl loaded (its handles are only valid through the same ICD loader)."""
    with open("/proc/self/maps") as f:
        for line in f:
            if "libOpenCL" in line:
                return ctypes.CDLL(line.split()[-1])
    return ctypes.CDLL("libOpenCL.so.1")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    a = ap.parse_args()
    import numpy as np
    import pyopencl as cl

    from engine.runtime import device as rt
    d = rt.default_device()
    ctx, q = d.context, d.queue
    prg = cl.Program(ctx, "__kernel void f(__global float *a, int ao, __global const float *b, int bo, int n)"
                          "{ int i = get_global_id(0); if (i < n) a[ao + i] += b[bo + i]; }").build()
    k = prg.f
    k.set_scalar_arg_dtypes([None, np.int32, None, np.int32, np.int32])
    mf = cl.mem_flags
    A = cl.Buffer(ctx, mf.READ_WRITE, 4096)
    B = cl.Buffer(ctx, mf.READ_WRITE, 4096)
    args = (A, np.int32(0), B, np.int32(0), np.int32(16))
    gs, ls = (64,), (64,)
    lib = _libopencl()
    enq = lib.clEnqueueNDRangeKernel
    enq.restype = ctypes.c_int32
    enq.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p,
                    ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p]
    qp, kp = q.int_ptr, k.int_ptr
    gsa, lsa = (ctypes.c_size_t * 1)(64), (ctypes.c_size_t * 1)(64)

    def w_pyopencl():
        for _ in range(a.n):
            k.set_args(*args)
            cl.enqueue_nd_range_kernel(q, k, gs, ls)

    def w_call():
        for _ in range(a.n):
            k(q, gs, ls, *args)

    def w_setargs():
        for _ in range(a.n):
            k.set_args(*args)

    def w_ctypes():
        for _ in range(a.n):
            k.set_args(*args)
            rc = enq(qp, kp, 1, None, gsa, lsa, 0, None, None)
            if rc:
                raise RuntimeError(rc)

    ways = [("pyopencl", w_pyopencl), ("pyopencl call", w_call), ("set_args only", w_setargs),
            ("ctypes, no event", w_ctypes)]
    print(f"device {d.name!r}, driver {d.cl_device.driver_version}; {a.n} launches, best of 5")
    for name, fn in ways:
        best = 1e9
        for _ in range(5):
            q.finish()
            t = time.perf_counter()
            fn()
            host = time.perf_counter() - t
            q.finish()
            best = min(best, host)
        print(f"  {name:18s} {best / a.n * 1e6:7.2f} us/launch")
    try:
        import torch
        tdev = "cuda" if d.is_gpu and torch.cuda.is_available() else "cpu"
        x, b = torch.randn(16, device=tdev), torch.randn(16, device=tdev)
        best = 1e9
        for _ in range(5):
            if tdev == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            y = x
            for _ in range(a.n):
                y = y + b
            best = min(best, time.perf_counter() - t)
            if tdev == "cuda":
                torch.cuda.synchronize()
        print(f"  {'torch x + b (' + tdev + ')':18s} {best / a.n * 1e6:7.2f} us/op")
    except ImportError:
        pass


if __name__ == "__main__":
    main()
