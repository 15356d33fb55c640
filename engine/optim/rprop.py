"""Rprop (torch.optim.Rprop): resilient backpropagation; one fused kernel per group."""
from .. import full
from ._kernels import fused_step
from .optimizer import (Optimizer, _check_lr, _init_state, _next_step, _params_with_grad, _run_closure, _to_scalar,
                        _use_grad)

__all__ = ["Rprop"]


class Rprop(Optimizer):
    _setstate_defaults = (("foreach", None), ("maximize", False), ("differentiable", False), ("capturable", False))

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False, foreach=None,
                 maximize=False, differentiable=False):
        _check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {"lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    @_use_grad
    def step(self, closure=None):
        loss = _run_closure(closure)
        for group in self.param_groups:
            etaminus, etaplus = group["etas"]
            smin, smax = group["step_sizes"]
            items = []
            for p, g, state in _params_with_grad(self, group):
                if len(state) == 0:
                    _init_state(state, p, "prev")
                    state["step_size"] = full(tuple(p.shape), _to_scalar(group["lr"]), dtype=p.dtype, device=p.device)
                step = _next_step(state["step"])
                items.append((p, g, [state["prev"], state["step_size"]], [(state["step"], float(step))], {}))
            fused_step("rprop", {"maximize": bool(group["maximize"])}, items,
                       {"etaminus": etaminus, "etaplus": etaplus, "smin": smin, "smax": smax})
        return loss
