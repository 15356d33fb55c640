"""Adadelta (torch.optim.Adadelta): one fused kernel per group."""
from ._kernels import fused_step
from .optimizer import (Optimizer, _check_hparams, _init_state, _next_step, _params_with_grad, _run_closure,
                        _to_scalar, _use_grad)

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    _setstate_defaults = (("foreach", None), ("maximize", False), ("differentiable", False), ("capturable", False))

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        _check_hparams(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "capturable": capturable, "foreach": foreach, "differentiable": differentiable}
        super().__init__(params, defaults)

    @_use_grad
    def step(self, closure=None):
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr, rho, wd = _to_scalar(group["lr"]), group["rho"], group["weight_decay"]
            flags = {"wd": wd != 0, "maximize": bool(group["maximize"])}
            items = []
            for p, g, state in _params_with_grad(self, group):
                if len(state) == 0:
                    _init_state(state, p, "square_avg", "acc_delta")
                step = _next_step(state["step"])
                items.append((p, g, [state["square_avg"], state["acc_delta"]], [(state["step"], float(step))], {}))
            fused_step("adadelta", flags, items, {"wd": wd, "rho": rho, "c": 1 - rho, "eps": group["eps"],
                                                  "neg_lr": -lr})
        return loss
