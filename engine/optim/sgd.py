"""SGD with momentum, dampening, Nesterov, weight decay and maximize (torch.optim.SGD)."""
from .. import empty
from ._kernels import fused_step
from .optimizer import Optimizer, _check_fused, _check_grad, _run_closure, _to_scalar, _use_grad

__all__ = ["SGD"]


class SGD(Optimizer):
    _setstate_defaults = (("nesterov", False), ("maximize", False), ("foreach", None), ("differentiable", False),
                          ("fused", False))

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        from ..tensor import Tensor
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize, "foreach": foreach,
                    "differentiable": differentiable, "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)
        _check_fused(fused, differentiable, foreach)

    @_use_grad
    def step(self, closure=None):
        """One fused kernel launch for (up to 8) parameters of a group at a time."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            wd = _to_scalar(group["weight_decay"])
            momentum = group["momentum"]
            flags = {"wd": wd != 0, "momentum": momentum != 0, "nesterov": bool(group["nesterov"]),
                     "maximize": bool(group["maximize"])}
            items = []
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _check_grad(p)
                states, first = [], 0
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:  # torch: buf = grad.clone() on the first step
                        buf = empty(p.shape, dtype=p.dtype, device=p.device)
                        first = 1
                    states = [buf]
                    state["momentum_buffer"] = buf
                items.append((p, g, states, [], {"first": first}))
            fused_step("sgd", flags, items, {"wd": wd, "momentum": momentum, "damp1": 1 - group["dampening"],
                                             "neg_lr": -lr})
        return loss
