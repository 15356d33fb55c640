"""RMSprop (torch.optim.RMSprop): alpha, eps, weight decay, momentum, centered; one fused kernel."""
from .. import zeros
from ._kernels import fused_step
from .optimizer import Optimizer, _check_grad, _check_lr, _new_step, _next_step, _run_closure, _to_scalar, _use_grad

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check_lr(lr)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                    "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)

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
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _check_grad(p)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _new_step(p)
                    state["square_avg"] = zeros(p.shape, dtype=p.dtype, device=p.device)
                    if momentum > 0:
                        state["momentum_buffer"] = zeros(p.shape, dtype=p.dtype, device=p.device)
                    if centered:
                        state["grad_avg"] = zeros(p.shape, dtype=p.dtype, device=p.device)
                step = _next_step(state["step"])
                states = [state["square_avg"]] + ([state["momentum_buffer"]] if momentum > 0 else []) + \
                    ([state["grad_avg"]] if centered else [])
                items.append((p, g, states, [(state["step"], float(step))], {}))
            fused_step("rmsprop", flags, items, {"wd": wd, "alpha": alpha, "c": 1 - alpha, "eps": group["eps"],
                                                 "momentum": momentum, "neg_lr": -lr})
        return loss
