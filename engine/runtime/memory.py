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


class MemoryPool:
    def __init__(self, device):
        self.device = device
        self.free = {}
        self.allocated_bytes = 0   # live bytes handed to tensors
        self.reserved_bytes = 0    # bytes held from the driver (live + cached)
        self.driver_allocs = 0

    def alloc(self, nbytes):
        size = _round(nbytes)
        lst = self.free.get(size)
        if lst:
            buf = lst.pop()
        else:
            buf = self._driver_alloc(size)
        self.allocated_bytes += size
        return buf, size

    def _driver_alloc(self, size):
        ctx = self.device.context
        for attempt in range(2):
            try:
                buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, size)
                self.driver_allocs += 1
                self.reserved_bytes += size
                return buf
            except (cl.MemoryError, cl.RuntimeError) as e:
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
