"""Reverse-mode automatic differentiation."""
from . import graph  # noqa: F401
from .engine import backward, grad
from .function import Function, FunctionCtx, Node, once_differentiable
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["backward", "grad", "Function", "FunctionCtx", "Node", "once_differentiable", "no_grad", "gradcheck",
           "gradgradcheck",
           "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled", "graph"]


class detect_anomaly:
    """Accepted for compatibility (context manager / decorator); clgrad's errors
    already name the failing node, so it changes nothing."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        return fn


class set_detect_anomaly(detect_anomaly):
    def __init__(self, mode, check_nan=True):
        super().__init__(check_nan)


def Variable(data, requires_grad=False, volatile=False):
    """Legacy torch.autograd.Variable: returns a tensor (shares data when given a tensor)."""
    from ..tensor import Tensor
    t = data.detach() if isinstance(data, Tensor) else __import__("engine").tensor(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


__all__ += ["detect_anomaly", "set_detect_anomaly", "Variable", "GradcheckError"]
