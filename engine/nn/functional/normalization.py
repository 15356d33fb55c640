"""normalization functionals: layer_norm, group_norm, batch_norm, rms_norm, instance_norm, normalize.

layer_norm is one autograd node (LayerNorm below): the forward is var_mean (one reduction
pass) + one normalisation pass, the backward is the closed-form formula
    dx = rstd * (g*w - mean(g*w) - xhat * mean(g*w * xhat)),
    dw = sum(g * xhat), db = sum(g)
over Tensor ops (so create_graph works).  group_norm reuses it on an (N, G, -1) view.
"""
import math

from ... import dtypes as D
from ...autograd import grad_mode as _gm
from ...autograd.function import Function
from ...ops import norm as _norm_ops
from ...ops._core import contiguous_raw as _contig
from ...ops.reduce import var_mean as _var_mean

__all__ = ["layer_norm", "group_norm", "batch_norm", "rms_norm", "instance_norm"]


def _sum_to_last(t, n):
    """Sum t over every dim except the last n (into shape t.shape[-n:])."""
    lead = t.dim() - n
    if lead == 0:
        return t
    return t.sum(tuple(range(lead)))


class LayerNorm(Function):
    """One node: fused kernels (engine/ops/norm.py) for float32/float64; composite Tensor ops for
    other dtypes and for create_graph (double backward)."""
    node_name = "NativeLayerNormBackward0"

    @staticmethod
    def forward(ctx, x, nd, weight, bias, eps):
        dims = tuple(range(x.dim() - nd, x.dim()))
        ctx.nd, ctx.dims, ctx.eps = nd, dims, eps
        K = 1
        for n in x.shape[x.dim() - nd:]:
            K *= n
        ctx.K = K
        ctx.fused = x.dtype in (D.float32, D.float64) and x.numel() > 0
        if ctx.fused:
            M = x.numel() // K
            ctx.M = M
            y, mean, rstd = _norm_ops.layer_norm_fwd(_contig(x), M, K, None if weight is None else _contig(weight),
                                                     None if bias is None else _contig(bias), eps)
            ctx.save_for_backward(x, weight, mean, rstd)
            return y
        var, mean = _var_mean(x, dims, correction=0, keepdim=True)
        y = (x - mean) * (var + eps).rsqrt()
        if weight is not None:
            y = y * weight
        if bias is not None:
            y = y + bias
        ctx.save_for_backward(x, weight, None, None)
        return y

    @staticmethod
    def backward(ctx, g):
        x, weight, mean, rstd = ctx.saved_tensors
        need = ctx.needs_input_grad
        nd, dims = ctx.nd, ctx.dims
        nw = weight is not None and need[2]
        nb = len(need) > 3 and need[3]
        if ctx.fused and not _gm.is_grad_enabled():
            pshape = tuple(x.shape[x.dim() - nd:])
            dx, gw, gb = _norm_ops.layer_norm_bwd(g, _contig(x), ctx.M, ctx.K, pshape,
                                                  None if weight is None else _contig(weight), mean, rstd,
                                                  need[0], nw, nb)
            return dx, None, gw, gb, None
        var, mu = _var_mean(x, dims, correction=0, keepdim=True)
        rs = (var + ctx.eps).rsqrt()
        xhat = (x - mu) * rs
        gx = gw = gb = None
        if need[0]:
            gh = g * weight if weight is not None else g
            gx = rs * (gh - gh.mean(dims, keepdim=True) - xhat * (gh * xhat).mean(dims, keepdim=True))
        if nw:
            gw = _sum_to_last(g * xhat, nd)
        if nb:
            gb = _sum_to_last(g, nd)
        return gx, None, gw, gb, None


def _shape_tuple(s):
    if isinstance(s, int):
        return (s,)
    return tuple(int(n) for n in s)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    ns = _shape_tuple(normalized_shape)
    nd = len(ns)
    if nd == 0:
        raise RuntimeError("Expected normalized_shape to be at least 1-dimensional, i.e., containing at least "
                           "one element, but got normalized_shape = []")
    if weight is not None and tuple(weight.shape) != ns:
        raise RuntimeError(f"Expected weight to be of same shape as normalized_shape, but got weight of shape "
                           f"{list(weight.shape)} and normalized_shape = {list(ns)}")
    if bias is not None and tuple(bias.shape) != ns:
        raise RuntimeError(f"Expected bias to be of same shape as normalized_shape, but got bias of shape "
                           f"{list(bias.shape)} and normalized_shape = {list(ns)}")
    if input.dim() < nd or tuple(input.shape[input.dim() - nd:]) != ns:
        raise RuntimeError(f"Given normalized_shape={list(ns)}, expected input with shape "
                           f"[*, {', '.join(str(n) for n in ns)}], but got input of size{list(input.shape)}")
    if not input.dtype.is_floating_point:
        name = {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
                "bool": "Bool"}.get(input.dtype.name, input.dtype.name)
        raise NotImplementedError(f"\"LayerNormKernelImpl\" not implemented for '{name}'")
    return LayerNorm.apply(input, nd, weight, bias, eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    ns = _shape_tuple(normalized_shape)
    nd = len(ns)
    if input.dim() < nd or tuple(input.shape[input.dim() - nd:]) != ns:
        raise RuntimeError(f"Given normalized_shape={list(ns)}, expected input with shape "
                           f"[*, {', '.join(str(n) for n in ns)}], but got input of size{list(input.shape)}")
    if eps is None:
        eps = 2.220446049250313e-16 if input.dtype is D.float64 else 1.1920928955078125e-07
    dims = tuple(range(input.dim() - nd, input.dim()))
    y = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
    if weight is not None:
        y = y * weight
    return y


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    if input.dim() < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.dim()}")
    N, C = input.shape[0], input.shape[1]
    if C % num_groups != 0:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input "
                           f"of shape {list(input.shape)} and num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.dim() != 1 or t.numel() != C):
            raise RuntimeError(f"Expected {name} to be a vector of size equal to the number of channels in "
                               f"input, but got {name} of shape {list(t.shape)} and input of shape "
                               f"{list(input.shape)}")
    if input.numel() == 0:
        y = input * 1.0
    else:
        y = LayerNorm.apply(input.reshape(N, num_groups, -1), 1, None, None, eps).reshape(input.shape)
    shape = [1, C] + [1] * (input.dim() - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def _bn_size_check(input):
    n = input.shape[0]
    for s in input.shape[2:]:
        n *= s
    if n == 1:
        raise ValueError("Expected more than 1 value per channel when training, got input size torch.Size(["
                         + ", ".join(str(s) for s in input.shape) + "])")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """momentum: a float, or (internal) a 0-d Tensor factor (BatchNorm with momentum=None)."""
    if training:
        _bn_size_check(input)
    else:
        if running_mean is None:
            raise RuntimeError("running_mean must be defined in evaluation mode")
        if running_var is None:
            raise RuntimeError("running_var must be defined in evaluation mode")
    if input.dim() < 2:
        raise ValueError(f"expected 2D or 3D input (got {input.dim()}D input)")
    C = input.shape[1]
    shape = [1, C] + [1] * (input.dim() - 2)
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and t.numel() != C:
            raise RuntimeError(f"{name} should contain {C} elements not {t.numel()}")
    if training or running_mean is None or running_var is None:
        dims = (0,) + tuple(range(2, input.dim()))
        var, mean = _var_mean(input, dims, correction=0)
        if training and (running_mean is not None or running_var is not None) and input.numel():
            n = input.numel() // C if C else 0
            with _gm.no_grad():
                m = momentum
                if running_mean is not None:
                    running_mean.add_((mean.detach() - running_mean) * m)
                if running_var is not None:
                    unb = var.detach() * (n / (n - 1) if n > 1 else float("nan"))
                    running_var.add_((unb - running_var) * m)
        scale = (var + eps).rsqrt()
        y = (input - mean.reshape(shape)) * scale.reshape(shape) if weight is None else \
            (input - mean.reshape(shape)) * (scale * weight).reshape(shape)
        if bias is not None:
            y = y + bias.reshape(shape)
        return y
    scale = (running_var + eps).rsqrt()
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return input * scale.reshape(shape) + shift.reshape(shape)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    if input.dim() < 3:
        raise ValueError(f"expected 3D or 4D input (got {input.dim()}D input)")
    N, C = input.shape[0], input.shape[1]
    if use_input_stats:
        if running_mean is not None or running_var is not None:
            x = input.reshape(1, N * C, *input.shape[2:])
            rm = running_mean.repeat(N) if running_mean is not None else None
            rv = running_var.repeat(N) if running_var is not None else None
            y = batch_norm(x, rm, rv, None, None, True, momentum, eps).reshape(input.shape)
            with _gm.no_grad():
                if running_mean is not None:
                    running_mean.copy_(rm.reshape(N, C).mean(0))
                if running_var is not None:
                    running_var.copy_(rv.reshape(N, C).mean(0))
        else:
            y = LayerNorm.apply(input.reshape(N, C, -1), 1, None, None, eps).reshape(input.shape)
        shape = [1, C] + [1] * (input.dim() - 2)
        if weight is not None:
            y = y * weight.reshape(shape)
        if bias is not None:
            y = y + bias.reshape(shape)
        return y
    return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
