"""Adagrad (torch.optim.Adagrad): lr_decay, weight decay, initial accumulator; one fused kernel."""
from .. import full
from ._kernels import fused_step
from .optimizer import (Optimizer, _check_fused, _check_hparams, _new_step, _next_step, _params_with_grad,
                        _run_closure, _to_scalar, _use_grad)

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    _setstate_defaults = (("foreach", None), ("maximize", False), ("differentiable", False), ("fused", None))

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_hparams(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                       initial_accumulator_value=initial_accumulator_value, eps=eps)
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        _check_fused(fused, differentiable, foreach)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = _new_step(p)
                init = group["initial_accumulator_value"]
                state["sum"] = full(tuple(p.shape), init, dtype=p.dtype, device=p.device)

    def share_memory(self):
        pass

    @_use_grad
    def step(self, closure=None):
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            wd = group["weight_decay"]
            flags = {"wd": wd != 0, "maximize": bool(group["maximize"])}
            items = []
            for p, g, state in _params_with_grad(self, group):
                step = _next_step(state["step"])
                clr = lr / (1 + (float(step) - 1) * group["lr_decay"])
                items.append((p, g, [state["sum"]], [(state["step"], float(step))], {"neg_clr": -clr}))
            fused_step("adagrad", flags, items, {"wd": wd, "eps": group["eps"]})
        return loss
