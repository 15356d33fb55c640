"""Reverse-mode automatic differentiation."""
from . import graph  # noqa: F401
from .engine import backward, grad
from .function import Function, FunctionCtx, Node, once_differentiable
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["backward", "grad", "Function", "FunctionCtx", "Node", "once_differentiable", "no_grad", "gradcheck",
           "gradgradcheck",
           "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled", "graph"]
