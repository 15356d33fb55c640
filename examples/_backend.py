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
    """Wall-clock seconds spent in the training loop (device synchronised at stop)."""

    def __init__(self, torch):
        self.torch, self.total, self._t = torch, 0.0, None

    def start(self):
        self._t = time.perf_counter()

    def stop(self):
        synchronize(self.torch)
        self.total += time.perf_counter() - self._t
