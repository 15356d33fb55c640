"""Build each generated kernel once per device and process.

pyopencl also keeps compiled binaries on disk (keyed by source, options and
device), so a second process skips the compiler.
"""
import os

import pyopencl as cl

from . import cpu_math


class CompileError(RuntimeError):
    """OpenCL failed to build a generated kernel; `.log` holds the build log, `.source` the code."""

    def __init__(self, msg, source="", log=""):
        super().__init__(msg)
        self.source = source
        self.log = log


class ProgramCache:
    def __init__(self, device):
        self.device = device
        self.kernels = {}
        self.builds = 0
        self.prelude = cpu_math.wanted(device)   # vectorisable math for PoCL (runtime/cpu_math.py)

    def kernel(self, key, gen):
        """Kernel for `key`; `gen()` returns (source, kernel_name) on a miss."""
        k = self.kernels.get(key)
        if k is None:
            src, name = gen()
            k = self.build(src, name)
            self.kernels[key] = k
        return k

    def build(self, src, name):
        if int(os.environ.get("CLGRAD_DEBUG", "0") or 0) >= 4:
            extra = " (after runtime/cpu_math.py's prelude)" if self.prelude else ""
            print(f"[clgrad] building {name} for {self.device.name}{extra}:\n{src}")
        try:
            full = cpu_math.with_prelude(src) if self.prelude else src
            prg = cl.Program(self.device.context, full).build(options=["-cl-std=CL1.2"])
        except cl.RuntimeError as e:
            raise CompileError(f"OpenCL build of kernel {name!r} failed on {self.device.name}:\n{e}",
                               src, str(e)) from None
        self.builds += 1
        return getattr(prg, name)
