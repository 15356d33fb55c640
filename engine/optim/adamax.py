"""Adamax (torch.optim.Adamax): one fused kernel per group."""
from ._kernels import fused_step
from .optimizer import (Optimizer, _check_hparams, _init_state, _next_step, _params_with_grad, _run_closure,
                        _to_scalar, _use_grad)

__all__ = ["Adamax"]


class Adamax(Optimizer):
    _setstate_defaults = (("foreach", None), ("maximize", False), ("differentiable", False), ("capturable", False))

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        _check_hparams(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    @_use_grad
    def step(self, closure=None):
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            beta1, beta2 = group["betas"]
            wd = group["weight_decay"]
            flags = {"wd": wd != 0, "maximize": bool(group["maximize"])}
            items = []
            for p, g, state in _params_with_grad(self, group):
                if len(state) == 0:
                    _init_state(state, p, "exp_avg", "exp_inf")
                step = float(_next_step(state["step"]))
                clr = lr / (1 - beta1 ** step)
                items.append((p, g, [state["exp_avg"], state["exp_inf"]], [(state["step"], step)], {"neg_clr": -clr}))
            fused_step("adamax", flags, items, {"wd": wd, "w1": 1 - beta1, "beta2": beta2, "eps": group["eps"]})
        return loss
