"""Adadelta (torch.optim.Adadelta): one fused kernel per group."""
from .. import zeros
from ._kernels import fused_step
from .optimizer import Optimizer, _check_grad, _check_lr, _new_step, _next_step, _run_closure, _to_scalar, _use_grad

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        _check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "capturable": capturable, "foreach": foreach, "differentiable": differentiable}
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
            lr, rho, wd = _to_scalar(group["lr"]), group["rho"], group["weight_decay"]
            flags = {"wd": wd != 0, "maximize": bool(group["maximize"])}
            items = []
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _check_grad(p)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _new_step(p)
                    state["square_avg"] = zeros(p.shape, dtype=p.dtype, device=p.device)
                    state["acc_delta"] = zeros(p.shape, dtype=p.dtype, device=p.device)
                step = _next_step(state["step"])
                items.append((p, g, [state["square_avg"], state["acc_delta"]], [(state["step"], float(step))], {}))
            fused_step("adadelta", flags, items, {"wd": wd, "rho": rho, "c": 1 - rho, "eps": group["eps"],
                                                  "neg_lr": -lr})
        return loss
