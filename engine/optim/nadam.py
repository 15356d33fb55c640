"""NAdam (torch.optim.NAdam): Nesterov Adam with momentum decay; one fused kernel per group.

torch keeps 'mu_product' as a float32 scalar tensor updated in float32; the host keeps the
same float32 value beside it, and the kernel writes it, so no per-step host sync."""
import numpy as np

from ._kernels import fused_step
from .optimizer import (Optimizer, _check_hparams, _host_scalar, _new_step, _next_step, _params_with_grad,
                        _run_closure, _scalar_state, _to_scalar, _use_grad, _zeros_like_param)

__all__ = ["NAdam"]


class NAdam(Optimizer):
    _setstate_defaults = (("maximize", False), ("foreach", None), ("capturable", False), ("differentiable", False),
                          ("decoupled_weight_decay", False))

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check_hparams(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay, momentum_decay=momentum_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay, "decoupled_weight_decay": decoupled_weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    @_use_grad
    def step(self, closure=None):
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            beta1, beta2 = group["betas"]
            wd = group["weight_decay"]
            md = group["momentum_decay"]
            flags = {"wd": wd != 0, "decoupled": bool(group["decoupled_weight_decay"]),
                     "maximize": bool(group["maximize"])}
            items = []
            for p, g, state in _params_with_grad(self, group):
                if len(state) == 0:
                    state["step"] = _new_step(p)
                    state["mu_product"] = _scalar_state(p, 1.0)
                    state["exp_avg"] = _zeros_like_param(p)
                    state["exp_avg_sq"] = _zeros_like_param(p)
                step = float(_next_step(state["step"]))
                mp_t = state["mu_product"]
                mp = _host_scalar(mp_t)
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * md)))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * md)))
                mp = np.float32(mp * np.float32(mu))  # torch: mu_product *= mu, in float32
                mp_t._host_val = mp
                mp_next = float(mp) * mu_next
                items.append((p, g, [state["exp_avg"], state["exp_avg_sq"]],
                              [(state["step"], step), (mp_t, float(mp))],
                              {"bc2": 1 - beta2 ** step, "cg": -lr * (1.0 - mu) / (1.0 - float(mp)),
                               "cm": (-lr * mu_next) / (1.0 - mp_next)}))
            fused_step("nadam", flags, items, {"wd": wd, "decay": 1 - lr * wd, "w1": 1 - beta1, "beta2": beta2,
                                               "c2": 1 - beta2, "eps": group["eps"]})
        return loss
