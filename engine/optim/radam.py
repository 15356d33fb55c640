"""RAdam (torch.optim.RAdam): rectified Adam, L2 or decoupled weight decay; one fused kernel per group."""
from ._kernels import fused_step
from .optimizer import (Optimizer, _check_hparams, _init_state, _next_step, _params_with_grad, _run_closure,
                        _to_scalar, _use_grad)

__all__ = ["RAdam"]


class RAdam(Optimizer):
    _setstate_defaults = (("foreach", None), ("maximize", False), ("differentiable", False),
                          ("decoupled_weight_decay", False), ("capturable", False))

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        _check_hparams(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable, "decoupled_weight_decay": decoupled_weight_decay,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    @_use_grad
    def step(self, closure=None):
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            beta1, beta2 = group["betas"]
            wd = group["weight_decay"]
            flags = {"wd": wd != 0, "decoupled": bool(group["decoupled_weight_decay"]),
                     "maximize": bool(group["maximize"])}
            rho_inf = 2 / (1 - beta2) - 1
            items = []
            for p, g, state in _params_with_grad(self, group):
                if len(state) == 0:
                    _init_state(state, p, "exp_avg", "exp_avg_sq")
                step = float(_next_step(state["step"]))
                bc1 = 1 - beta1 ** step
                bc2 = 1 - beta2 ** step
                rho_t = rho_inf - 2 * step * (beta2 ** step) / bc2
                use = rho_t > 5.0
                rect = (((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                        if use else 0.0)
                items.append((p, g, [state["exp_avg"], state["exp_avg_sq"]], [(state["step"], step)],
                              {"bc1": bc1, "bc2_sqrt": bc2 ** 0.5, "rect": rect, "use_rect": int(use)}))
            fused_step("radam", flags, items, {"wd": wd, "decay": 1 - lr * wd, "w1": 1 - beta1, "beta2": beta2,
                                               "c2": 1 - beta2, "eps": group["eps"], "lr": lr})
        return loss
