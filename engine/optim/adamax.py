"""Adamax (torch.optim.Adamax): one fused kernel per group."""
from .. import zeros
from ._kernels import fused_step
from .optimizer import (Optimizer, _check_betas, _check_grad, _check_lr, _new_step, _next_step, _run_closure,
                        _to_scalar, _use_grad)

__all__ = ["Adamax"]


class Adamax(Optimizer):
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        _check_lr(lr)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        _check_betas(betas)
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)

    @_use_grad
    def step(self, closure=None):
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            beta1, beta2 = group["betas"]
            wd = group["weight_decay"]
            flags = {"wd": wd != 0, "maximize": bool(group["maximize"])}
            items = []
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _check_grad(p)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _new_step(p)
                    state["exp_avg"] = zeros(p.shape, dtype=p.dtype, device=p.device)
                    state["exp_inf"] = zeros(p.shape, dtype=p.dtype, device=p.device)
                step = float(_next_step(state["step"]))
                clr = lr / (1 - beta1 ** step)
                items.append((p, g, [state["exp_avg"], state["exp_inf"]], [(state["step"], step)], {"neg_clr": -clr}))
            fused_step("adamax", flags, items, {"wd": wd, "w1": 1 - beta1, "beta2": beta2, "eps": group["eps"]})
        return loss
