"""Gradient clipping (torch.nn.utils.clip_grad): totals stay on the device (no host sync)."""
from ...autograd import no_grad
from ...runtime import multi_tensor as _mt
from ...ops.creation import tensor as _tensor
from ...ops.pointwise import clamp as _clamp, isinf as _isinf, isnan as _isnan, logical_or as _lor
from ...ops.reduce import norm as _norm
from ...ops.shape import stack as _stack
from ...tensor import Tensor, empty as _empty

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
    total_norm = _fused_total_norm(tensors, norm_type)
    if total_norm is None:
        total_norm = _total_norm_per_tensor(tensors, norm_type)
    if error_if_nonfinite and bool(_lor(_isnan(total_norm), _isinf(total_norm))):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. To disable this error and scale the gradients by the "
                           "non-finite norm anyway, set `error_if_nonfinite=False`")
    return total_norm


def _fusable(tensors):
    """(device, dtype) when one multi-tensor launch per pass can take every tensor: one device,
    one float dtype, each dense in row-major order; else None."""
    t0 = tensors[0]
    dev, dt = t0._storage.device, t0.dtype
    if dt.ctype not in ("float", "double"):
        return None
    for t in tensors:
        if t._storage.device is not dev or t.dtype is not dt or not t.is_contiguous():
            return None
    return dev, dt


def _items(tensors):
    return [(t._storage.buf, t._offset, t.numel()) for t in tensors]


def _fused_total_norm(tensors, p):
    fu = _fusable(tensors)
    if fu is None or not (p > 0) or (p == float("inf") and any(t.numel() == 0 for t in tensors)):
        return None   # (p = 0 counts non-zeros, -inf takes a min: the per-tensor path)
    dev, dt = fu
    items = _items(tensors)
    at = dt.ctype   # torch accumulates float32 norms in float32 (opmath) too
    part = _empty((_mt.partials(dev, items),), dt, dev)
    out = _empty((), dt, dev)
    _mt.total_norm(dev, dt.ctype, at, items, p, part._storage.buf, out._storage.buf, out._offset)
    return out


def _total_norm_per_tensor(tensors, norm_type):
    with no_grad():
        norms = [_norm(t, norm_type) for t in tensors]
        dt = norms[0].dtype
        norms = [n if n.dtype is dt else n.to(dt) for n in norms]
        return _norm(_stack(norms), norm_type)


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale every grad by min(1, max_norm / (total_norm + 1e-6)), computed on the device."""
    parameters = _tensor_list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    max_norm = float(max_norm)
    if len(grads) == 0:
        return
    fu = _fusable(grads)
    if fu is not None and isinstance(total_norm, Tensor) and total_norm.dtype is fu[1] and \
            total_norm._storage.device is fu[0] and total_norm.numel() == 1:
        _mt.clip_scale(fu[0], fu[1].ctype, _items(grads), total_norm._storage.buf, total_norm._offset, max_norm)
        for g in grads:
            g._storage.version += 1
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

