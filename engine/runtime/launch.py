"""Enqueue kernels: the one place that touches pyopencl's launch API.

Profiling and debug tracing hang off one slot, `_PROFILE[0]`: None in normal runs (the
launch hot path pays one list read and one `is None` test), a `_Trace` while a profiler
is active (`engine.profiler.profile()`, `start_profiling()`) or the debug level is 2+.
"""
import os
import sys

import numpy as np
import pyopencl as cl

_enqueue = cl.enqueue_nd_range_kernel
_PROFILE = [None]  # the _Trace while profiling or debug tracing, else None
_REC = [None]      # the engine.compile Recorder while a call is being traced (runtime/record.py)
_DEBUG = [int(os.environ.get("CLGRAD_DEBUG", "0") or 0)]
INT_T = {"int": np.int32, "long": np.int64, "uint": np.uint32, "ulong": np.uint64,
         "float": np.float32, "double": np.float64, "uchar": np.uint8, "char": np.int8,
         "short": np.int16, "half": np.float16}


def _type_kernel(kernel, args):
    # declared scalar types let pyopencl pack arguments with struct (~15x faster than
    # its generic path); the first call's numpy scalars give the kernel's signature
    kernel.set_scalar_arg_dtypes([a.dtype if isinstance(a, np.generic) else None for a in args])
    kernel._typed = True


def launch(device, kernel, gsize, lsize, args, name=None, offset=None, nbytes=None):
    """Enqueue `kernel`; `name` is the op name profiles show, `nbytes` the bytes it moves
    if the caller knows them (else a profile counts the sizes of its buffer arguments)."""
    if _REC[0] is not None:
        return _REC[0].launch(device, kernel, gsize, lsize, args, name, offset, nbytes)
    if not getattr(kernel, "_typed", False):
        _type_kernel(kernel, args)
    kernel.set_args(*args)
    ev = _enqueue(device.queue, kernel, gsize, lsize, offset)
    if _PROFILE[0] is not None:
        _PROFILE[0].kernel(device, name or kernel.function_name, ev, gsize, lsize, args, nbytes)
    return ev


def host_call(device, fn, args, name):
    """Host-side work that belongs in the command stream (the CPU-BLAS matmul path): returns
    fn(*args).  `args` may hold cl.Buffers; engine.compile records the call as one step and
    runs it again, with that call's buffers, on replay."""
    if _REC[0] is not None:
        return _REC[0].host_call(device, fn, args, name)
    return fn(*args)


def round_up(n, m):
    return (n + m - 1) // m * m


# ---- profiling and debug tracing ---------------------------------------------------------
def _buffer_bytes(args):
    # an upper bound: a view's kernel gets its whole storage, and the pool rounds sizes up
    seen, n = set(), 0
    for a in args:
        if isinstance(a, cl.MemoryObject) and a.int_ptr not in seen:
            seen.add(a.int_ptr)
            n += a.size
    return n


class _Trace:
    """Collects raw launch/copy records for the active profilers and prints them at debug level 2+."""

    def __init__(self):
        self.records = []   # (kind, name, device, event, global size, local size, bytes)
        self.sessions = []  # start index in `records` of each active profiler
        self.debug = 0

    def kernel(self, device, name, ev, gsize, lsize, args, nbytes):
        rec = ("kernel", name, device, ev, tuple(gsize), None if lsize is None else tuple(lsize),
               _buffer_bytes(args) if nbytes is None else nbytes)
        if self.sessions:
            self.records.append(rec)
        if self.debug >= 2:
            _print_record(rec)

    def copy(self, device, name, ev, nbytes):
        rec = ("copy", name, device, ev, None, None, int(nbytes))
        if self.sessions:
            self.records.append(rec)
        if self.debug >= 3:
            _print_record(rec)


_TRACE = _Trace()


def _update_slot():
    """Point the launch slot at the trace while anything needs it; give the devices plain
    queues again (no profiling cost) once nothing does."""
    on = bool(_TRACE.sessions or _TRACE.debug >= 2)
    was = _PROFILE[0] is not None
    _PROFILE[0] = _TRACE if on else None
    if was and not on:
        from .device import enable_profiling
        enable_profiling(False)


def _event_times(ev):
    """(queued, start, end) in ns, or None when the queue was made without profiling."""
    try:
        ev.wait()
        p = ev.profile
        return p.queued, p.start, p.end
    except cl.Error:
        return None


def _print_record(rec):
    kind, name, device, ev, gs, ls, nb = rec
    t = _event_times(ev)
    us = f"{(t[2] - t[1]) * 1e-3:10.1f} us" if t else "         ? us"
    where = f"gsize={gs} lsize={ls}" if kind == "kernel" else ""
    print(f"[clgrad] cl:{device.index} {name:<24s} {us}  {nb:>12d} B  {where}", file=sys.stderr)


def begin_trace():
    """Start collecting launches and copies (nestable); returns a token for end_trace().
    Every device's queue records OpenCL profiling events from now on."""
    from .device import enable_profiling
    enable_profiling()
    _TRACE.sessions.append(len(_TRACE.records))
    _update_slot()
    return len(_TRACE.sessions)


def end_trace(token):
    """Stop the profiler `token`; wait for its commands and return them as dicts:
    kind ('kernel'|'copy'), name, device ('cl:N'), queued/start/end (device clock, ns),
    global_size, local_size, bytes.  Times are NaN where the queue could not profile."""
    if token != len(_TRACE.sessions):
        raise RuntimeError("profilers must stop in the reverse order of starting")
    first = _TRACE.sessions.pop()
    raw = _TRACE.records[first:]
    if not _TRACE.sessions:
        _TRACE.records = []
    out = []
    nan = float("nan")
    try:
        for kind, name, device, ev, gs, ls, nb in raw:
            t = _event_times(ev) or (nan, nan, nan)
            out.append({"kind": kind, "name": name, "device": f"cl:{device.index}", "queued": t[0],
                        "start": t[1], "end": t[2], "global_size": gs, "local_size": ls, "bytes": nb})
    finally:
        _update_slot()  # after the events were read
    return out


_LEGACY = []


def start_profiling():
    _LEGACY.append(begin_trace())


def stop_profiling():
    """Wait for the recorded kernels; return [(name, seconds, global_size)]."""
    if not _LEGACY:
        return []
    return [(r["name"], (r["end"] - r["start"]) * 1e-9, r["global_size"])
            for r in end_trace(_LEGACY.pop()) if r["kind"] == "kernel"]


def debug_level():
    return _DEBUG[0]


def set_debug_level(level):
    """0 off, 1 devices, 2 kernel launches with device times, 3 also copies, 4 generated source."""
    level = int(level)
    _DEBUG[0] = _TRACE.debug = level
    os.environ["CLGRAD_DEBUG"] = str(level)  # the program cache and child processes read it
    if level >= 2:
        from .device import enable_profiling
        enable_profiling()
    _update_slot()


_TRACE.debug = _DEBUG[0]
_update_slot()


# ---- transfers ------------------------------------------------------------------------------
def copy_to_device(device, buf, offset_bytes, host):
    if _REC[0] is not None:
        _REC[0].upload(device, buf, offset_bytes, host)
    ev = cl.enqueue_copy(device.queue, buf, host, dst_offset=offset_bytes, is_blocking=True)
    if _PROFILE[0] is not None:
        _PROFILE[0].copy(device, "memcpy_htod", ev, host.nbytes)


_PENDING = {}  # device -> [(read, message)]: index checks of replayed compiled calls, not yet read


def defer_check(device, read, message):
    """Check an index-error flag at the next host read instead of now (compiled replays)."""
    lst = _PENDING.setdefault(device, [])
    if not lst:
        lst.append((read, message))


def resolve_checks():
    """Read the deferred index-error flags; raise the first error found (as torch raises a
    device-side assert at the next synchronisation)."""
    items = list(_PENDING.items())
    _PENDING.clear()
    for device, lst in items:
        for read, message in lst:
            r = read()
            if r is not None:
                if message is None:
                    raise IndexError(f"index {r[1]} is out of bounds (found by a compiled call)")
                raise message(*r)


def copy_to_host(device, buf, offset_bytes, host):
    if _REC[0] is not None:
        _REC[0].host_read(device, buf)
    if _PENDING:
        resolve_checks()
    ev = cl.enqueue_copy(device.queue, host, buf, src_offset=offset_bytes, is_blocking=True)
    if _PROFILE[0] is not None:
        _PROFILE[0].copy(device, "memcpy_dtoh", ev, host.nbytes)


def copy_buffer(device, src, dst, nbytes, src_off=0, dst_off=0):
    if nbytes:
        if _REC[0] is not None:
            _REC[0].copy(device, src, dst, nbytes, src_off, dst_off)
        ev = cl.enqueue_copy(device.queue, dst, src, byte_count=nbytes, src_offset=src_off, dst_offset=dst_off)
        if _PROFILE[0] is not None:
            _PROFILE[0].copy(device, "memcpy_dtod", ev, 2 * nbytes)  # read + write


def fill_buffer(device, buf, pattern, offset_bytes, nbytes):
    if nbytes:
        if _REC[0] is not None:
            _REC[0].fill(device, buf, pattern, offset_bytes, nbytes)
        ev = cl.enqueue_fill_buffer(device.queue, buf, pattern, offset_bytes, nbytes)
        if _PROFILE[0] is not None:
            _PROFILE[0].copy(device, "memset", ev, nbytes)


def map_read_write(device, buf, nbytes):
    """Map a buffer into host memory (zero-copy on CPU devices). Returns (array, unmap)."""
    if _REC[0] is not None:
        _REC[0].host_read(device, buf)
    arr, _ = cl.enqueue_map_buffer(device.queue, buf, cl.map_flags.READ | cl.map_flags.WRITE,
                                   0, (nbytes,), np.uint8, is_blocking=True)
    return arr
