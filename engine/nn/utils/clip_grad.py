"""Gradient clipping (torch.nn.utils.clip_grad): totals stay on the device (no host sync)."""
from ...autograd import no_grad
from ...ops.creation import tensor as _tensor
from ...ops.pointwise import clamp as _clamp, isinf as _isinf, isnan as _isnan, logical_or as _lor
from ...ops.reduce import norm as _norm
from ...ops.shape import stack as _stack
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _tensor_list(tensors):
    if isinstance(tensors, Tensor):
        return [tensors]
    return list(tensors)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The norm of the norms of `tensors` (as one vector): one 0-d device tensor."""
    tensors = [t for t in _tensor_list(tensors) if t is not None]
    norm_type = float(norm_type)
    if len(tensors) == 0:
        return _tensor(0.0)
    with no_grad():
        norms = [_norm(t, norm_type) for t in tensors]
        dt = norms[0].dtype
        norms = [n if n.dtype is dt else n.to(dt) for n in norms]
        total_norm = _norm(_stack(norms), norm_type)
    if error_if_nonfinite and bool(_lor(_isnan(total_norm), _isinf(total_norm))):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. To disable this error and scale the gradients by the "
                           "non-finite norm anyway, set `error_if_nonfinite=False`")
    return total_norm


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale every grad by min(1, max_norm / (total_norm + 1e-6)), computed on the device."""
    parameters = _tensor_list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    max_norm = float(max_norm)
    if len(grads) == 0:
        return
    with no_grad():
        clip_coef_clamped = _clamp(max_norm / (total_norm + 1e-6), max=1.0)
        for g in grads:
            c = clip_coef_clamped if clip_coef_clamped.dtype is g.dtype else clip_coef_clamped.to(g.dtype)
            g.mul_(c)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Clip the gradients' total norm to max_norm in place; returns the total norm (a 0-d tensor,
    left on the device: nothing here waits for the device)."""
    parameters = _tensor_list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    import warnings
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`torch.nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value, foreach=None):
    parameters = _tensor_list(parameters)
    clip_value = float(clip_value)
    with no_grad():
        for p in parameters:
            if p.grad is not None:
                p.grad.clamp_(min=-clip_value, max=clip_value)

