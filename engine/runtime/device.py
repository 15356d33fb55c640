"""OpenCL device discovery and selection.

Every OpenCL device of every platform gets a global index, so `cl:N` names one
device in the process.  `cpu` is the first CPU device, `cuda[:i]` the i-th GPU,
so PyTorch tutorial code that says `.to("cuda")` or `device="cpu"` runs as is.
"""
import os
import sys

import numpy as np
import pyopencl as cl

from . import launch as _launch
from .memory import MemoryPool
from .program import ProgramCache

_TYPE_ORDER = (cl.device_type.GPU, cl.device_type.ACCELERATOR, cl.device_type.CPU)
_PROFILING = cl.command_queue_properties.PROFILING_ENABLE
# queues record OpenCL profiling events only while a profiler or debug level 2+ needs them
# (always with CLGRAD_PROFILE=1): on an H200 a profiling queue cost +5.5 us per small launch
# (12.2 -> 17.7 us), so the runtime switches back to a plain queue afterwards
_profiling = [bool(os.environ.get("CLGRAD_PROFILE")) or _launch.debug_level() >= 2]


class Device:
    """One OpenCL device with its context, in-order queue, memory pool and kernels."""

    def __init__(self, index, platform_index, device_index, cl_device):
        self.index = index
        self.platform_index = platform_index
        self.device_index = device_index
        self.cl_device = cl_device
        self.name = cl_device.name.strip()
        self.vendor = cl_device.vendor.strip()
        self.platform_name = cl_device.platform.name.strip()
        t = cl_device.type
        self.is_gpu = bool(t & cl.device_type.GPU)
        self.is_cpu = bool(t & cl.device_type.CPU)
        self.type = "gpu" if self.is_gpu else "cpu" if self.is_cpu else "accelerator"
        # PoCL's CPU device: its programs get runtime/cpu_math.py's prelude, its pool host-shared buffers
        self.is_pocl_cpu = self.is_cpu and "portable computing language" in self.platform_name.lower()
        ext = cl_device.extensions.split()
        self.extensions = ext
        self.fp64 = "cl_khr_fp64" in ext
        self.fp16 = "cl_khr_fp16" in ext
        self.int64_atomics = "cl_khr_int64_base_atomics" in ext
        self.compute_units = cl_device.max_compute_units
        self.global_mem = cl_device.global_mem_size
        self.local_mem = cl_device.local_mem_size
        self.max_work_group_size = cl_device.max_work_group_size
        self.driver_version = cl_device.driver_version
        self._ctx = None

    def _init(self):
        self._ctx = cl.Context([self.cl_device])
        self._queue = cl.CommandQueue(self._ctx, properties=_PROFILING if _profiling[0] else 0)
        if _launch.debug_level() >= 1:
            print(f"[clgrad] initialised cl:{self.index} {self.name} ({self.type}, {self.platform_name}, "
                  f"driver {self.driver_version})", file=sys.stderr)
        self._pool = MemoryPool(self)
        self._programs = ProgramCache(self)
        # elementwise work-group size: a multiple of the warp on GPUs; on PoCL 64
        # vectorises well and keeps the unguarded tail launch small
        self.wg = min(64 if self.is_cpu else 256, self.max_work_group_size)

    @property
    def context(self):
        if self._ctx is None:
            self._init()
        return self._ctx

    @property
    def queue(self):
        if self._ctx is None:
            self._init()
        return self._queue

    @property
    def pool(self):
        if self._ctx is None:
            self._init()
        return self._pool

    @property
    def programs(self):
        if self._ctx is None:
            self._init()
        return self._programs

    def enable_profiling(self, on=True):
        """Switch to an in-order queue that records profiling events (on=False: one that does
        not), once the old queue drained; a no-op when the queue already is that kind."""
        if self._ctx is not None and bool(self._queue.properties & _PROFILING) != on:
            self._queue.finish()
            self._queue = cl.CommandQueue(self._ctx, properties=_PROFILING if on else 0)

    def synchronize(self):
        if self._ctx is not None:
            self._queue.finish()

    def info(self):
        return {
            "index": self.index, "name": self.name, "vendor": self.vendor,
            "platform": self.platform_name, "type": self.type,
            "compute_units": self.compute_units, "global_mem": self.global_mem,
            "local_mem": self.local_mem, "max_work_group_size": self.max_work_group_size,
            "fp64": self.fp64, "fp16": self.fp16, "driver_version": self.driver_version,
            "spec": f"{self.platform_index}:{self.device_index}",
        }

    def __repr__(self):
        return f"<Device cl:{self.index} {self.name!r} ({self.type}, {self.platform_name})>"


_devices = None
_default = None


def all_devices():
    global _devices
    if _devices is None:
        found = []
        try:
            platforms = cl.get_platforms()
        except cl.LogicError:
            platforms = []
        for pi, p in enumerate(platforms):
            try:
                devs = p.get_devices()
            except cl.Error:
                continue
            for di, d in enumerate(devs):
                found.append(Device(len(found), pi, di, d))
        if not found:
            raise RuntimeError(
                "clgrad found no OpenCL device. Install an OpenCL driver, or the "
                "`pocl-binary-distribution` wheel for a CPU device.")
        _devices = found
    return _devices


def gpus():
    return [d for d in all_devices() if d.is_gpu]


def find_device(spec):
    """Resolve 'gpu', 'cpu', 'cuda:1', 'cl:0', 'P:D', an int, or a vendor/name substring."""
    devs = all_devices()
    if isinstance(spec, Device):
        return spec
    if isinstance(spec, int):
        spec = f"cl:{spec}"
    s = str(spec).strip()
    low = s.lower()
    kind, _, idx = low.partition(":")
    if kind in ("cl", "opencl"):
        i = int(idx or 0)
        if not 0 <= i < len(devs):
            raise RuntimeError(f"invalid device {s!r}: there are {len(devs)} OpenCL devices (cl:0..cl:{len(devs) - 1})")
        return devs[i]
    if kind in ("cuda", "gpu"):
        g = gpus()
        i = int(idx or 0)
        if not g:
            raise RuntimeError(f"device {s!r} requested but no OpenCL GPU is present; available: "
                               + ", ".join(f"cl:{d.index} {d.name}" for d in devs))
        if i >= len(g):
            raise RuntimeError(f"invalid device {s!r}: only {len(g)} OpenCL GPU(s)")
        if kind == "cuda" and not idx:
            d = default_device()
            return d if d.is_gpu else g[0]
        return g[i]
    if kind == "cpu":
        c = [d for d in devs if d.is_cpu]
        if not c:
            raise RuntimeError(f"device {s!r} requested but no OpenCL CPU device is present")
        return c[int(idx or 0)] if idx and int(idx) < len(c) else c[0]
    if kind in ("accelerator", "acc"):
        a = [d for d in devs if not d.is_cpu and not d.is_gpu]
        if a:
            return a[0]
    if kind.isdigit() and idx.isdigit():
        for d in devs:
            if d.platform_index == int(kind) and d.device_index == int(idx):
                return d
        raise RuntimeError(f"no OpenCL device at platform:device {s}")
    for d in devs:
        if low in d.name.lower() or low in d.vendor.lower() or low in d.platform_name.lower():
            return d
    raise RuntimeError(f"no OpenCL device matches {s!r}; available: "
                       + ", ".join(f"cl:{d.index} {d.name}" for d in devs))


def default_device():
    global _default
    if _default is None:
        spec = os.environ.get("CLGRAD_DEVICE")
        if spec:
            _default = find_device(spec)
        else:
            devs = all_devices()
            for t in _TYPE_ORDER:
                m = [d for d in devs if d.cl_device.type & t]
                if m:
                    _default = m[0]
                    break
            else:
                _default = devs[0]
    return _default


def set_default_device(spec):
    global _default
    _default = find_device(spec)
    return _default


def enable_profiling(on=True):
    """Every device's queue records profiling events from now on (engine.profiler uses it);
    on=False goes back to plain queues unless CLGRAD_PROFILE is set."""
    on = bool(on or os.environ.get("CLGRAD_PROFILE"))
    _profiling[0] = on
    for d in _devices or ():
        d.enable_profiling(on)


def np_scalar(dtype_np, value):
    return np.array(value, dtype=dtype_np)[()]
