"""Pick the backend for the examples: clgrad's `engine` (default) or real PyTorch (`--torch`).

    torch, nn, F, DataLoader, TensorDataset = get_backend(use_torch)

Everything after that line in an example is plain PyTorch code; with clgrad it is the
same code with `import engine as torch` etc. in place of the torch imports.
"""
import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # so `engine` imports from a checkout without `pip install -e .`
    sys.path.insert(0, _ROOT)

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def get_backend(use_torch=False):
    """(torch, nn, F, DataLoader, TensorDataset) from PyTorch if `use_torch`, else from clgrad's engine."""
    if use_torch:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        from torch.utils.data import DataLoader, TensorDataset
    else:
        import engine as torch
        import engine.nn as nn
        import engine.nn.functional as F
        from engine.utils.data import DataLoader, TensorDataset
    return torch, nn, F, DataLoader, TensorDataset


def add_backend_args(parser):
    parser.add_argument("--torch", action="store_true", help="run on real PyTorch (CPU) instead of clgrad")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def backend_name(torch):
    if torch.__name__ == "torch":
        return f"PyTorch {torch.__version__} (cpu)"
    dev = torch.get_default_device()
    try:
        rt = dev.runtime
        return f"clgrad on {rt.name} ({rt.platform_name})"
    except Exception:
        return f"clgrad on {dev}"


def synchronize(torch):
    """Wait for queued device work (clgrad runs kernels asynchronously; PyTorch CPU is synchronous)."""
    if torch.__name__ != "torch":
        torch.synchronize()


class Timer:
    """Training steps/s: call step() after every training step; the first `warmup` steps (kernel builds,
    allocator warm-up) are left out, and the device is synchronised before each clock reading."""

    def __init__(self, torch, warmup=3):
        self.torch, self.warmup, self.count, self._t0, self._t = torch, warmup, 0, None, None

    def step(self):
        self.count += 1
        if self.count == self.warmup:
            synchronize(self.torch)
            self._t0 = time.perf_counter()

    def steps_per_s(self):
        synchronize(self.torch)
        if self._t0 is None or self.count == self.warmup:
            return float("nan")
        return (self.count - self.warmup) / (time.perf_counter() - self._t0)
