"""Adam (torch.optim.Adam): L2 or decoupled weight decay, amsgrad, maximize; one fused kernel."""
from ..tensor import Tensor
from ._kernels import fused_step
from .optimizer import (Optimizer, _check_fused, _check_hparams, _init_state, _next_step, _params_with_grad,
                        _run_closure, _to_scalar, _use_grad, _zeros_like_param)

__all__ = ["Adam"]


class Adam(Optimizer):
    _setstate_defaults = (("amsgrad", False), ("maximize", False), ("foreach", None), ("capturable", False),
                          ("differentiable", False), ("fused", None), ("decoupled_weight_decay", False))

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        if isinstance(lr, Tensor):
            if foreach and not capturable:
                raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
            if lr.numel() != 1:
                raise ValueError("Tensor lr must be 1-element")
        _check_hparams(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        if not ((isinstance(betas[0], float) and isinstance(betas[1], float))
                or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))):
            raise ValueError("betas must be either both floats or both Tensors")
        for i in (0, 1):
            if isinstance(betas[i], Tensor) and betas[i].numel() != 1:
                raise ValueError(f"Tensor betas[{i}] must be 1-element")
        betas = tuple(map(_to_scalar, betas))
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)
        _check_fused(fused, differentiable, foreach)

    @_use_grad
    def step(self, closure=None):
        """One fused kernel launch per group (up to 8 parameters each): p, exp_avg, exp_avg_sq (and max_exp_avg_sq,
        'step') updated together; bias corrections computed on the host, passed as arguments."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            beta1, beta2 = (_to_scalar(b) for b in group["betas"])
            wd = _to_scalar(group["weight_decay"])
            eps = group["eps"]
            amsgrad = bool(group["amsgrad"])
            flags = {"wd": wd != 0, "decoupled": bool(group.get("decoupled_weight_decay", False)),
                     "amsgrad": amsgrad, "maximize": bool(group["maximize"])}
            items = []
            for p, g, state in _params_with_grad(self, group):
                if len(state) == 0:
                    _init_state(state, p, "exp_avg", "exp_avg_sq")
                if amsgrad and "max_exp_avg_sq" not in state:  # also for a state loaded without amsgrad
                    state["max_exp_avg_sq"] = _zeros_like_param(p)
                step = float(_next_step(state["step"]))
                bc1 = 1 - beta1 ** step
                bc2 = 1 - beta2 ** step
                step_size = lr / bc1
                states = [state["exp_avg"], state["exp_avg_sq"]] + ([state["max_exp_avg_sq"]] if amsgrad else [])
                items.append((p, g, states, [(state["step"], step)],
                              {"bc2_sqrt": bc2 ** 0.5, "neg_step_size": -step_size}))
            fused_step("adam", flags, items, {"wd": wd, "decay": 1 - lr * wd, "w1": 1 - beta1, "beta2": beta2,
                                              "c2": 1 - beta2, "eps": eps})
        return loss
