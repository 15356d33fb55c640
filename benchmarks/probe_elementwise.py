"""Probe: which elementwise kernel shape reaches the memory roofline on this device.

c = a*b computed by variants of one generated kernel; prints GB/s per variant.
Roofline: 12 bytes per element (two reads, one write)."""
import sys
import time

import numpy as np
import pyopencl as cl

n = 1 << 26
spec = sys.argv[1] if len(sys.argv) > 1 else "gpu"
devs = [d for p in cl.get_platforms() for d in p.get_devices()]
dev = next(d for d in devs if (d.type & cl.device_type.GPU) or spec == "cpu")
ctx = cl.Context([dev])
q = cl.CommandQueue(ctx)
mf = cl.mem_flags
A, B, C = (cl.Buffer(ctx, mf.READ_WRITE, n * 4) for _ in range(3))
V = {
    "scalar_guard": ("__kernel void k(__global float* o, int oo, __global const float* a, int ao, __global const float* b, int bo, int n)"
                     "{int i=get_global_id(0); if(i>=n) return; o[oo+i]=a[ao+i]*b[bo+i];}", 1),
    "scalar_4pt": ("__kernel void k(__global float* o, int oo, __global const float* a, int ao, __global const float* b, int bo, int n)"
                   "{int i=get_global_id(0)*4; if(i+3<n){ for(int j=0;j<4;j++) o[oo+i+j]=a[ao+i+j]*b[bo+i+j]; } else { for(int j=i;j<n;j++) o[oo+j]=a[ao+j]*b[bo+j]; }}", 4),
    "vload4": ("__kernel void k(__global float* o, int oo, __global const float* a, int ao, __global const float* b, int bo, int n)"
               "{int i=get_global_id(0); if(i*4+3<n){ float4 x=vload4(i,a+ao), y=vload4(i,b+bo); vstore4(x*y,i,o+oo);} else { for(int j=i*4;j<n;j++) o[oo+j]=a[ao+j]*b[bo+j]; }}", 4),
    "float4ptr": ("__kernel void k(__global float4* o, int oo, __global const float4* a, int ao, __global const float4* b, int bo, int n)"
                  "{int i=get_global_id(0); if(i*4<n) o[i]=a[i]*b[i];}", 4),
    "grid_stride": ("__kernel void k(__global float* o, int oo, __global const float* a, int ao, __global const float* b, int bo, int n)"
                    "{for(int i=get_global_id(0); i<n; i+=get_global_size(0)) o[oo+i]=a[ao+i]*b[bo+i];}", 0),
}
for name, (src, per) in V.items():
    k = cl.Program(ctx, src).build().k
    k.set_scalar_arg_dtypes([None, np.int32, None, np.int32, None, np.int32, np.int32])
    for wg in (128, 256, 512):
        if per:
            g = ((n + per - 1) // per + wg - 1) // wg * wg
        else:
            g = dev.max_compute_units * 2048
            g = g // wg * wg
        k.set_args(C, 0, A, 0, B, 0, n)
        for _ in range(3):
            cl.enqueue_nd_range_kernel(q, k, (g,), (wg,))
        q.finish()
        t = time.perf_counter()
        for _ in range(20):
            cl.enqueue_nd_range_kernel(q, k, (g,), (wg,))
        q.finish()
        dt = (time.perf_counter() - t) / 20
        print(f"{name:14s} wg={wg:4d} {12 * n / dt / 1e9:8.1f} GB/s", flush=True)
