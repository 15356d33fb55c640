"""RMSprop (torch.optim.RMSprop): alpha, eps, weight decay, momentum, centered; one fused kernel."""
from ._kernels import fused_step
from .optimizer import (Optimizer, _check_hparams, _init_state, _next_step, _params_with_grad, _run_closure,
                        _to_scalar, _use_grad, _zeros_like_param)

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    _setstate_defaults = (("momentum", 0), ("centered", False), ("foreach", None), ("maximize", False),
                          ("differentiable", False), ("capturable", False))

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check_hparams(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                    "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    @_use_grad
    def step(self, closure=None):
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            wd = group["weight_decay"]
            momentum = group["momentum"]
            centered = bool(group["centered"])
            alpha = group["alpha"]
            flags = {"wd": wd != 0, "momentum": momentum > 0, "centered": centered,
                     "maximize": bool(group["maximize"])}
            items = []
            for p, g, state in _params_with_grad(self, group):
                if len(state) == 0:
                    _init_state(state, p, "square_avg")
                    if momentum > 0:
                        state["momentum_buffer"] = _zeros_like_param(p)
                    if centered:
                        state["grad_avg"] = _zeros_like_param(p)
                step = _next_step(state["step"])
                states = [state["square_avg"]] + ([state["momentum_buffer"]] if momentum > 0 else []) + \
                    ([state["grad_avg"]] if centered else [])
                items.append((p, g, states, [(state["step"], float(step))], {}))
            fused_step("rmsprop", flags, items, {"wd": wd, "alpha": alpha, "c": 1 - alpha, "eps": group["eps"],
                                                 "momentum": momentum, "neg_lr": -lr})
        return loss
