"""ASGD (torch.optim.ASGD): averaged SGD; one fused kernel per group.

torch keeps 'eta' and 'mu' as float32 scalar tensors (read back with .item() every step);
here the host keeps their float32 values beside them and the kernel writes the tensors."""
import numpy as np

from ._kernels import fused_step
from .optimizer import (Optimizer, _check_hparams, _host_scalar, _new_step, _next_step, _params_with_grad,
                        _run_closure, _scalar_state, _to_scalar, _use_grad, _zeros_like_param)

__all__ = ["ASGD"]


class ASGD(Optimizer):
    _setstate_defaults = (("foreach", None), ("maximize", False), ("differentiable", False), ("capturable", False))

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        _check_hparams(lr=lr, weight_decay=weight_decay)
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        super().__init__(params, defaults)

    @_use_grad
    def step(self, closure=None):
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            lambd, alpha, t0, wd = group["lambd"], group["alpha"], group["t0"], group["weight_decay"]
            items = []
            for p, g, state in _params_with_grad(self, group):
                if len(state) == 0:
                    state["step"] = _new_step(p)
                    state["eta"] = _scalar_state(p, lr)
                    state["mu"] = _scalar_state(p, 1.0)
                    state["ax"] = _zeros_like_param(p)
                step = float(_next_step(state["step"]))
                eta = float(_host_scalar(state["eta"]))
                mu = _host_scalar(state["mu"])
                new_eta = np.float32(lr / ((1 + lambd * lr * step) ** alpha))
                new_mu = np.float32(1 / max(1, step - t0))
                state["eta"]._host_val, state["mu"]._host_val = new_eta, new_mu
                items.append((p, g, [state["ax"]],
                              [(state["step"], step), (state["eta"], float(new_eta)), (state["mu"], float(new_mu))],
                              {"decay": 1 - lambd * eta, "neg_eta": -eta, "mu_val": float(mu),
                               "mu_one": int(float(mu) == 1)}))
            fused_step("asgd", {"wd": wd != 0, "maximize": bool(group["maximize"])}, items, {"wd": wd})
        return loss
