"""A caching allocator: freed buffers go back to per-size free lists, so a
steady-state training loop never allocates from the driver.

Safe without events because each device has one in-order queue: a buffer
handed out again is only touched by commands enqueued after the last use.
"""
import pyopencl as cl


class OutOfMemoryError(RuntimeError):
    """The device has no memory left for an allocation of `nbytes`."""

    def __init__(self, msg, nbytes=0):
        super().__init__(msg)
        self.nbytes = nbytes


def _round(nbytes):
    # 512-byte granules for small buffers, then 1/8th steps of the power of two
    if nbytes <= 512:
        return 512
    if nbytes <= (1 << 20):
        return (nbytes + 511) & ~511
    step = 1 << max(nbytes.bit_length() - 4, 9)
    return (nbytes + step - 1) // step * step


# PoCL's CPU device: buffers over host arrays we allocate (CL_MEM_USE_HOST_PTR, 128-byte aligned), which
# PoCL uses in place as device memory, so the host BLAS path reads and writes them through `buf.hostbuf`
# without a map.  Each map cost 13-16 us on an idle 2-core host and ~100 us while PoCL's threads ran
# kernels (tiny GPT step: ~125 maps, a third of its host time).  A probe at the first allocation checks
# that the device really shares the array (a fill, then a host read); where it does not, plain buffers.
HOST_ALIGN = 128


def _host_array(size):
    import numpy as np
    raw = np.empty(size + HOST_ALIGN, np.uint8)
    off = (-raw.ctypes.data) % HOST_ALIGN
    return raw[off:off + size]


class MemoryPool:
    def __init__(self, device):
        self.device = device
        self.free = {}
        self.allocated_bytes = 0   # live bytes handed to tensors
        self.reserved_bytes = 0    # bytes held from the driver (live + cached)
        self.driver_allocs = 0
        self.host_shared = None    # None: not probed yet; then whether buffers sit on host arrays

    def alloc(self, nbytes):
        size = _round(nbytes)
        lst = self.free.get(size)
        if lst:
            buf = lst.pop()
        else:
            buf = self._driver_alloc(size)
        self.allocated_bytes += size
        return buf, size

    def _probe_host_shared(self):
        dev = self.device
        if not dev.is_pocl_cpu:
            return False
        import os
        if os.environ.get("CLGRAD_HOST_BUFFERS", "1").strip().lower() in ("0", "false", "no", "off"):
            return False
        import numpy as np
        host = _host_array(512)
        host[:] = 0
        buf = cl.Buffer(dev.context, cl.mem_flags.READ_WRITE | cl.mem_flags.USE_HOST_PTR, hostbuf=host)
        cl.enqueue_fill_buffer(dev.queue, buf, np.uint8(0xA5), 0, 512)
        dev.queue.finish()
        ok = bool((host == 0xA5).all()) and buf.hostbuf is host
        buf.release()
        return ok

    def _driver_alloc(self, size):
        ctx = self.device.context
        if self.host_shared is None:
            self.host_shared = self._probe_host_shared()
        for attempt in range(2):
            try:
                if self.host_shared:
                    buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.USE_HOST_PTR,
                                    hostbuf=_host_array(size))
                else:
                    buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, size)
                self.driver_allocs += 1
                self.reserved_bytes += size
                return buf
            except (cl.MemoryError, cl.RuntimeError, MemoryError) as e:
                if attempt == 0 and self.free:
                    self.empty_cache()
                    continue
                raise OutOfMemoryError(
                    f"OpenCL out of memory on {self.device.name}: tried to allocate {size} bytes "
                    f"({self.allocated_bytes} bytes in use). Free tensors or use smaller batches. ({e})",
                    size) from None

    def release(self, buf, size):
        self.allocated_bytes -= size
        self.free.setdefault(size, []).append(buf)

    def empty_cache(self):
        self.device.queue.finish()
        for size, lst in self.free.items():
            for b in lst:
                b.release()
                self.reserved_bytes -= size
        self.free.clear()

    def stats(self):
        return {"allocated_bytes": self.allocated_bytes, "reserved_bytes": self.reserved_bytes,
                "driver_allocs": self.driver_allocs,
                "cached_bytes": sum(k * len(v) for k, v in self.free.items())}


class Storage:
    """A device buffer shared by a tensor and its views, with their version counter."""
    __slots__ = ("buf", "size", "device", "version", "__weakref__")

    def __init__(self, device, nbytes):
        self.device = device
        self.buf, self.size = device.pool.alloc(max(nbytes, 1))
        self.version = 0

    def __del__(self):
        try:
            self.device.pool.release(self.buf, self.size)
        except Exception:  # interpreter shutdown
            pass
