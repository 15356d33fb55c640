"""Adagrad (torch.optim.Adagrad): lr_decay, weight decay, initial accumulator; one fused kernel."""
from .. import full
from ._kernels import fused_step
from .optimizer import Optimizer, _check_grad, _check_lr, _new_step, _next_step, _run_closure, _to_scalar, _use_grad

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_lr(lr)
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        if fused:
            if differentiable:
                raise RuntimeError("`fused` does not support `differentiable`")
            if foreach:
                raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = _new_step(p)
                init = group["initial_accumulator_value"]
                state["sum"] = full(tuple(p.shape), init, dtype=p.dtype, device=p.device)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("fused", None)

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
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _check_grad(p)
                state = self.state[p]
                step = _next_step(state["step"])
                clr = lr / (1 + (float(step) - 1) * group["lr_decay"])
                items.append((p, g, [state["sum"]], [(state["step"], float(step))], {"neg_clr": -clr}))
            fused_step("adagrad", flags, items, {"wd": wd, "eps": group["eps"]})
        return loss
