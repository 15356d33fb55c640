"""The CPU devices' GEMM: numpy's BLAS on the buffers, mapped in place (zero-copy on PoCL), on a worker
thread behind a user-event barrier in the device queue (runtime/matmul.py's `gemm()` picks this path
for CPU devices unless the OpenCL kernel is forced)."""
import numpy as np

import pyopencl as cl


# ---- CPU path: numpy / BLAS ------------------------------------------------------------------------
# PoCL keeps buffers in host memory, so mapping one is zero-copy: np.matmul reads the operands in place
# and writes C straight into its (mapped) buffer.  Reading through enqueue_copy instead cost more than
# the GEMV itself (64 MB at ~3.5 GB/s).  The maps are released before returning; the in-order queue
# orders them with every kernel before and after.
def _span(offset, shape, strides):
    lo = offset + sum(s * (n - 1) for s, n in zip(strides, shape) if s < 0)
    hi = offset + sum(s * (n - 1) for s, n in zip(strides, shape) if s > 0)
    return lo, hi


def _map_view(queue, maps, dtype, buf, offset, shape, strides, write=False, wait_for=None):
    """A numpy view of a strided operand on its buffer: straight on the host array of a host-shared pool
    buffer, else mapped without blocking (zero-copy on PoCL, the map appended to `maps`); valid once a
    marker enqueued after it has completed: the caller waits for that."""
    isz = dtype.itemsize
    if any(n == 0 for n in shape):
        return np.zeros(shape, dtype.np)
    lo, hi = _span(offset, shape, strides)
    host = buf.hostbuf
    if host is not None:   # a pool buffer on a host array (memory.py): no map; the caller's marker orders it
        span = host[lo * isz:(hi + 1) * isz].view(dtype.np)
        return np.lib.stride_tricks.as_strided(span[offset - lo:], shape, [s * isz for s in strides],
                                               writeable=bool(write))
    flags = cl.map_flags.READ if not write else cl.map_flags.WRITE_INVALIDATE_REGION if write == "new" else \
        cl.map_flags.READ | cl.map_flags.WRITE
    arr, ev = cl.enqueue_map_buffer(queue, buf, flags, lo * isz, ((hi - lo + 1) * isz,), np.uint8,
                                    is_blocking=False, wait_for=wait_for)
    maps.append((arr, ev))
    span = arr.view(dtype.np)
    return np.lib.stride_tricks.as_strided(span[offset - lo:], shape, [s * isz for s in strides],
                                           writeable=write)


def _blas_ready(x):
    """np.matmul hands a matrix to BLAS only if one of its last two dims is unit-stride."""
    isz = x.itemsize
    s_r, s_c = x.strides[-2:]
    r, c = x.shape[-2:]
    if (s_c == isz or c == 1) or (s_r == isz or r == 1):
        return x
    return np.ascontiguousarray(x)


# ASYNC_BLAS: the host GEMM runs on a worker thread, so the thread that enqueues never waits for the
# queue: it maps the operands (non-blocking), enqueues a barrier that waits on a user event (holding
# back every later command), releases the maps behind it and hands the views over; the worker waits for
# the maps, computes and completes the user event.  A synchronous call (map, wait, compute) cost a
# queue drain and a PoCL wake-up per GEMM and left the device idle while Python enqueued the next
# commands (digits MLP step: 4.1 -> 2.9-3.1 ms).  Measured worse: the worker mapping on a queue of its
# own after a marker (one more round trip per GEMM: 4.5-8.4 vs 4.3-5.5 ms/step under load).
# Jobs hold mapped arrays (and through them cl.Buffers), never Storages: a Storage's last reference
# must drop on the user's thread (its __del__ gives the buffer back to the pool, not thread-safe).
ASYNC_BLAS = True
_WORKERS = {}    # device -> _Worker


class _Worker:
    def __init__(self, device):
        import queue
        import threading
        self.jobs = queue.SimpleQueue()
        self.errors = []   # the first exception of a job, raised by the next GEMM call
        threading.Thread(target=self._run, name=f"clgrad-blas-{device.index}", daemon=True).start()
        if not _WORKERS:
            import atexit
            atexit.register(_drain)

    def _run(self):
        while True:
            job = self.jobs.get()
            if not isinstance(job, tuple):   # _drain's marker: every earlier job is done
                job.set()
                continue
            ev, uev, args = job
            try:
                if ev is not None:
                    ev.wait()
                _gemm_host(*args)
            except BaseException as e:
                if not self.errors:
                    self.errors.append(e)
            finally:
                uev.set_status(cl.command_execution_status.COMPLETE)
            del job, ev, uev, args


def _drain(timeout=30):
    """Wait for the queued host GEMMs (at exit: a daemon thread stopped mid-job would leave the
    device queue waiting on its user event)."""
    import threading
    for w in list(_WORKERS.values()):
        done = threading.Event()
        w.jobs.put(done)
        done.wait(timeout)


def _worker(device):
    w = _WORKERS.get(device)
    if w is None:
        w = _WORKERS[device] = _Worker(device)
    return w


def _gemm_numpy(device, dtype, M, N, K, nb, c, a, b, d, alpha, beta):
    nb0, nb1 = nb
    c_st = c[2]
    # C may be any non-overlapping layout (attention writes its output and gradients in the inputs' dim
    # order): np.matmul takes a strided `out`, and BLAS writes it in place while rows are unit-stride
    dense = (c_st[3] == 1 or N == 1) and (c_st[2] == N or M == 1) and \
        (c_st[1] == M * N or nb1 == 1) and (c_st[0] == nb1 * M * N or nb0 == 1)
    w = _worker(device) if ASYNC_BLAS else None
    if w is not None and w.errors:
        raise w.errors.pop()   # an earlier asynchronous GEMM failed (e.g. out of host memory)
    queue = device.queue
    maps = []
    try:
        av = _map_view(queue, maps, dtype, a[0].buf, a[1], (nb0, nb1, M, K), a[2])
        bv = _map_view(queue, maps, dtype, b[0].buf, b[1], (nb0, nb1, K, N), b[2])
        dv = _map_view(queue, maps, dtype, d[0].buf, d[1], (nb0, nb1, M, N), d[2]) if d is not None else None
        # read-write where C shares a buffer with an operand, or leaves gaps in its span that other
        # tensors own (the joint dq/dk/dv buffer): an invalidating map may drop what it does not write
        c_rw = not dense or any(x is not None and x[0] is c[0] for x in (a, b, d))
        cv = _map_view(queue, maps, dtype, c[0].buf, c[1], (nb0, nb1, M, N), c_st,
                       write=True if c_rw else "new")
        # what the worker waits for: a marker, not the last map's event.  PoCL 3.0 sometimes completed
        # that event (C's WRITE_INVALIDATE_REGION map, which needs no data) before the kernels enqueued
        # earlier had finished, so the worker read half-written operands (a transformer gradient test
        # failed 1 run in ~100 under load; 0 in 200 with the marker).
        ev = cl.enqueue_marker(queue)
        if w is None:
            if ev is not None:
                ev.wait()
            _gemm_host(dtype, av, bv, cv, dv, alpha, beta)
            return
        uev = cl.UserEvent(queue.context)
        cl.enqueue_barrier(queue, wait_for=[uev])
        w.jobs.put((ev, uev, (dtype, av, bv, cv, dv, alpha, beta)))
    finally:
        for arr, _ev in maps:
            arr.base.release(queue)   # (asynchronous: behind the barrier)


def _gemm_host(dtype, av, bv, cv, dv, alpha, beta):
    av, bv = _blas_ready(av), _blas_ready(bv)
    if dtype.ctype == "half":   # numpy's float16 matmul has no BLAS and rounds per step: compute in float32
        r = np.matmul(av.astype(np.float32), bv.astype(np.float32))
        if alpha != 1:
            r *= np.float32(alpha)
        if dv is not None:
            r += dv.astype(np.float32) * np.float32(beta)
        cv[...] = r
        return
    np.matmul(av, bv, out=cv)
    if alpha != 1:
        cv *= np.asarray(alpha, dtype=cv.dtype)
    if dv is not None:
        cv += dv if beta == 1 else dv * np.asarray(beta, dtype=dv.dtype)
