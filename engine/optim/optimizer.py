"""Optimizer: PyTorch's base class (param groups, per-parameter state, state_dict, hooks)."""
import functools
import warnings
from collections import OrderedDict, defaultdict
from copy import deepcopy
from itertools import chain

from ..autograd.hooks import add_hook
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Singleton class representing a required parameter for an Optimizer."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()

_global_pre_hooks = OrderedDict()
_global_post_hooks = OrderedDict()


def register_optimizer_step_pre_hook(hook):
    return add_hook(_global_pre_hooks, hook)


def register_optimizer_step_post_hook(hook):
    return add_hook(_global_post_hooks, hook)


def _typename(o):
    if isinstance(o, Tensor):
        return o.type().replace("engine.", "torch.")
    module = getattr(type(o), "__module__", "") or ""
    name = type(o).__qualname__
    return name if module in ("builtins", "__builtin__") else module + "." + name


def _to_scalar(x):
    if isinstance(x, Tensor):
        return x.item() if x.numel() == 1 else x
    return x


def _use_grad(fn):
    """Run an optimizer's step under no_grad (the closure re-enables grad)."""
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        from .. import no_grad
        with no_grad():
            return fn(self, *args, **kwargs)
    return wrapper


class Optimizer:
    """Base class for all optimizers (torch.optim.Optimizer)."""

    # (key, default) pairs that __setstate__ fills into every param group that lacks them, in
    # this order (torch's subclasses each do so in their own __setstate__)
    _setstate_defaults = ()

    def __init__(self, params, defaults):
        self.defaults = defaults
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()
        self._patch_step_function()
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got " + _typename(params))
        self.state = defaultdict(dict)
        self.param_groups = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    # ---- pickling / repr -------------------------------------------------------------
    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        for k in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
                  "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
                  "_optimizer_load_state_dict_post_hooks"):
            if k not in self.__dict__:
                setattr(self, k, OrderedDict())
        self._patch_step_function()
        self.defaults.setdefault("differentiable", False)
        # an old-format 'step' (a Python number) becomes torch's float32 scalar tensor
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p) if hasattr(self.state, "get") else None
                if st and "step" in st and not isinstance(st["step"], Tensor):
                    from .. import float32, tensor
                    v = float(st["step"])
                    st["step"] = tensor(v, dtype=float32, device=p.device)
                    st["step"]._host_step = int(v)
        # group options added to torch since older checkpoints: each subclass lists them, in torch's order
        for group in self.param_groups:
            for key, default in self._setstate_defaults:
                group.setdefault(key, default)

    def __repr__(self):
        format_string = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            format_string += "\n"
            format_string += f"Parameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    format_string += f"    {key}: {group[key]}\n"
        format_string += ")"
        return format_string

    # ---- step hooks ----------------------------------------------------------------
    def _patch_step_function(self):
        self._zero_grad_profile_name = f"Optimizer.zero_grad#{self.__class__.__name__}.zero_grad"
        hooked = getattr(self.__class__.step, "hooked", None)
        if not hooked:
            self.__class__.step = Optimizer.profile_hook_step(self.__class__.step)
            self.__class__.step.hooked = True

    @staticmethod
    def profile_hook_step(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            self, *_ = args
            for pre_hook in chain(_global_pre_hooks.values(), self._optimizer_step_pre_hooks.values()):
                result = pre_hook(self, args, kwargs)
                if result is not None:
                    if isinstance(result, tuple) and len(result) == 2:
                        args, kwargs = result
                    else:
                        raise RuntimeError(f"{func} must return None or a tuple of (new_args, new_kwargs), "
                                           f"but got {result}.")
            out = func(*args, **kwargs)
            self._optimizer_step_code()
            for post_hook in chain(self._optimizer_step_post_hooks.values(), _global_post_hooks.values()):
                post_hook(self, args, kwargs)
            return out
        return wrapper

    def _optimizer_step_code(self):
        pass

    def register_step_pre_hook(self, hook):
        return add_hook(self._optimizer_step_pre_hooks, hook)

    def register_step_post_hook(self, hook):
        return add_hook(self._optimizer_step_post_hooks, hook)

    def register_state_dict_pre_hook(self, hook, prepend=False):
        return add_hook(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend=False):
        return add_hook(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend=False):
        return add_hook(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend=False):
        return add_hook(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    # ---- state_dict ----------------------------------------------------------------
    def state_dict(self):
        """{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]} as torch's."""
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        param_mappings = {}
        start_index = 0

        def pack_group(group):
            nonlocal start_index
            packed = {k: v for k, v in group.items() if k != "params"}
            param_mappings.update({id(p): i for i, p in enumerate(group["params"], start_index)
                                   if id(p) not in param_mappings})
            packed["params"] = [param_mappings[id(p)] for p in group["params"]]
            start_index += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {(param_mappings[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        state_dict = {"state": packed_state, "param_groups": param_groups}
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            hook_result = post_hook(self, state_dict)
            if hook_result is not None:
                state_dict = hook_result
        return state_dict

    @staticmethod
    def _process_value_according_to_param_policy(param, value, param_id, param_groups, key=None):
        from .. import float32
        if key in ("step", "mu_product", "eta", "mu") and value.dim() == 0:  # float32 scalars the kernels write
            v = value.to(dtype=float32, device=param.device)
        elif param.is_floating_point():
            v = value.to(dtype=param.dtype, device=param.device)
        else:
            v = value.to(device=param.device)
        if not v.is_contiguous():  # the fused kernels index state buffers linearly
            v = v.contiguous()
        return v

    def load_state_dict(self, state_dict):
        state_dict = state_dict.copy()
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            hook_result = pre_hook(self, state_dict)
            if hook_result is not None:
                state_dict = hook_result
        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        param_lens = (len(g["params"]) for g in groups)
        saved_lens = (len(g["params"]) for g in saved_groups)
        if any(p_len != s_len for p_len, s_len in zip(param_lens, saved_lens)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))

        def _cast(param, value, param_id=None, param_groups=None, key=None):
            if isinstance(value, Tensor):
                return Optimizer._process_value_according_to_param_policy(param, value, param_id, param_groups,
                                                                          key)
            if isinstance(value, dict):
                return {k: _cast(param, v, param_id=param_id, param_groups=param_groups, key=k)
                        for k, v in value.items()}
            if isinstance(value, (list, tuple)) and not isinstance(value, str):
                return type(value)(_cast(param, v, param_id=param_id, param_groups=param_groups) for v in value)
            return value

        state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = _cast(param, v, param_id=k, param_groups=state_dict["param_groups"])
            else:
                state[k] = v

        def update_group(group, new_group):
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            return new_group

        param_groups = [update_group(g, ng) for g, ng in zip(groups, saved_groups)]
        self.__setstate__({"state": state, "param_groups": param_groups})
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    # ---- grads -----------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all optimized tensors (None, or zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        if p.grad.grad_fn is not None:
                            p.grad.detach_()
                        else:
                            p.grad.requires_grad_(False)
                        p.grad.zero_()

    def step(self, closure=None):
        raise NotImplementedError

    def add_param_group(self, param_group):
        """Add a param group (a dict with 'params' and optional per-group options)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering of "
                            "tensors in sets will change between runs. Please use a list instead.")
        else:
            param_group["params"] = list(params)
        tensors, names = [], []
        for param in param_group["params"]:
            if isinstance(param, tuple):
                names.append(param[0])
                tensors.append(param[1])
            else:
                tensors.append(param)
        param_group["params"] = tensors
        if names:
            if len(names) == len(tensors):
                param_group["param_names"] = names
            else:
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
        for param in param_group["params"]:
            if not isinstance(param, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is " + _typename(param))
            if not self.defaults.get("differentiable", None) and not (param.is_leaf or param.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        params = param_group["params"]
        if len(params) != len({id(p) for p in params}):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        param_set = set()
        for group in self.param_groups:
            param_set.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                current = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {current} to the optimizer")
        if not param_set.isdisjoint({id(p) for p in param_group["params"]}):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)


# ---- helpers shared by the optimizers ---------------------------------------------------
def _check_lr(lr):
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")


def _check_betas(betas):
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")


def _check_nonneg(name, value):
    """torch's `if not 0.0 <= value: raise ValueError(f"Invalid {name} value: {value}")`."""
    if not 0.0 <= value:
        raise ValueError(f"Invalid {name} value: {value}")


_HPARAM_NAMES = {"eps": "epsilon"}  # the name torch's messages use, where it differs from the argument's


def _check_hparams(**hparams):
    """torch's constructor checks, one per keyword, in the order given (so the first invalid one
    raises, as in torch): lr, betas, rho (within [0, 1]); any other must be >= 0."""
    for name, value in hparams.items():
        if name == "lr":
            _check_lr(value)
        elif name == "betas":
            _check_betas(value)
        elif name == "rho":
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Invalid rho value: {value}")
        else:
            _check_nonneg(_HPARAM_NAMES.get(name, name), value)


def _check_fused(fused, differentiable, foreach):
    if fused:
        if differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        if foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def _new_step(param):
    """The 'step' state entry: a float32 scalar tensor (torch's default), on the param's device
    (the fused kernel writes it, so no host sync per step); the host keeps the integer count."""
    from .. import float32, zeros
    t = zeros((), dtype=float32, device=param.device)
    t._host_step = 0
    return t


def _zeros_like_param(param):
    """A zero state buffer of the param's shape, dtype and device (contiguous, as the kernels want)."""
    from .. import zeros
    return zeros(param.shape, dtype=param.dtype, device=param.device)


def _init_state(state, param, *buffers):
    """torch's lazy state init: 'step', then a zero buffer per name, in this order."""
    state["step"] = _new_step(param)
    for name in buffers:
        state[name] = _zeros_like_param(param)


def _scalar_state(param, value):
    """A float32 scalar state tensor (torch's NAdam 'mu_product', ASGD 'eta'/'mu') on the param's
    device, with its float32 value kept beside it on the host (the kernel writes the tensor)."""
    import numpy as np
    from .. import float32, full
    t = full((), value, dtype=float32, device=param.device)
    t._host_val = np.float32(value)
    return t


def _next_step(step_t):
    """Advance the host-side count kept alongside a 'step' tensor; returns the new value."""
    n = getattr(step_t, "_host_step", None)
    if n is None:  # loaded from a state_dict or set by the user: one host read
        n = int(step_t.item())
    n += 1
    step_t._host_step = n
    return n


def _host_scalar(t):
    """The float32 value of a scalar state tensor, from the host copy kept beside it."""
    import numpy as np
    v = getattr(t, "_host_val", None)
    if v is None:
        v = np.float32(t.item())
    return v


def _grad_params(group):
    return [p for p in group["params"] if p.grad is not None]


def _params_with_grad(optimizer, group):
    """(param, grad, state) for each param of `group` that has a gradient, in order: the grad
    checked (and cast to the param's dtype) by _check_grad, the state from optimizer.state."""
    for p in group["params"]:
        if p.grad is None:
            continue
        g = _check_grad(p)
        yield p, g, optimizer.state[p]


def _check_grad(p):
    g = p.grad
    if getattr(g, "is_sparse", False):
        raise RuntimeError("sparse gradients are not supported")
    if g._storage.device is not p._storage.device:
        raise RuntimeError(f"Expected all tensors to be on the same device, but found the parameter on {p.device} "
                           f"and its gradient on {g.device}")
    if g._shape != p._shape:
        raise RuntimeError(f"grad shape {tuple(g._shape)} does not match param shape {tuple(p._shape)}")
    if g.dtype is not p.dtype:
        g = g.to(p.dtype)
    return g


def _run_closure(closure):
    loss = None
    if closure is not None:
        from .. import enable_grad
        with enable_grad():
            loss = closure()
    return loss
