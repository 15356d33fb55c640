"""Enqueue kernels: the one place that touches pyopencl's launch API."""
import os

import numpy as np
import pyopencl as cl

_enqueue = cl.enqueue_nd_range_kernel
_PROFILE = [None]  # a list of records while profiling, else None
INT_T = {"int": np.int32, "long": np.int64, "uint": np.uint32, "ulong": np.uint64,
         "float": np.float32, "double": np.float64, "uchar": np.uint8, "char": np.int8,
         "short": np.int16, "half": np.float16}


def _type_kernel(kernel, args):
    # declared scalar types let pyopencl pack arguments with struct (~15x faster than
    # its generic path); the first call's numpy scalars give the kernel's signature
    kernel.set_scalar_arg_dtypes([a.dtype if isinstance(a, np.generic) else None for a in args])
    kernel._typed = True


def launch(device, kernel, gsize, lsize, args, name=None, offset=None):
    if not getattr(kernel, "_typed", False):
        _type_kernel(kernel, args)
    kernel.set_args(*args)
    ev = _enqueue(device.queue, kernel, gsize, lsize, offset)
    if _PROFILE[0] is not None:
        _PROFILE[0].append((name or kernel.function_name, ev, gsize))
    return ev


def round_up(n, m):
    return (n + m - 1) // m * m


def debug_level():
    return int(os.environ.get("CLGRAD_DEBUG", "0") or 0)


def start_profiling():
    _PROFILE[0] = []


def stop_profiling():
    """Wait for the recorded kernels; return [(name, seconds, global_size)]."""
    recs, _PROFILE[0] = _PROFILE[0] or [], None
    out = []
    for name, ev, gs in recs:
        ev.wait()
        try:
            out.append((name, (ev.profile.end - ev.profile.start) * 1e-9, gs))
        except cl.RuntimeError:  # queue created without profiling
            out.append((name, float("nan"), gs))
    return out


def copy_to_device(device, buf, offset_bytes, host):
    cl.enqueue_copy(device.queue, buf, host, dst_offset=offset_bytes, is_blocking=True)


def copy_to_host(device, buf, offset_bytes, host):
    cl.enqueue_copy(device.queue, host, buf, src_offset=offset_bytes, is_blocking=True)


def copy_buffer(device, src, dst, nbytes, src_off=0, dst_off=0):
    if nbytes:
        cl.enqueue_copy(device.queue, dst, src, byte_count=nbytes, src_offset=src_off, dst_offset=dst_off)


def fill_buffer(device, buf, pattern, offset_bytes, nbytes):
    if nbytes:
        cl.enqueue_fill_buffer(device.queue, buf, pattern, offset_bytes, nbytes)


def map_read_write(device, buf, nbytes):
    """Map a buffer into host memory (zero-copy on CPU devices). Returns (array, unmap)."""
    arr, _ = cl.enqueue_map_buffer(device.queue, buf, cl.map_flags.READ | cl.map_flags.WRITE,
                                   0, (nbytes,), np.uint8, is_blocking=True)
    return arr
