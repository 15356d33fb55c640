"""loss functionals (torch.nn.functional): cross_entropy, nll_loss, mse_loss, l1_loss,
binary_cross_entropy(_with_logits), smooth_l1_loss, huber_loss, kl_div.

cross_entropy over class indices is one node of fused row kernels (engine/ops/loss.py: the
loss per row and its reduction forward, one kernel backward); ignore_index and class weights
are a per-element weight, so the weighted mean is sum(w * loss) / sum(w) as torch (nan when
every target is ignored).  nll_loss is a gather of the target column (no one-hot).
No host round-trips: bounds of targets are checked on the device by gather/index_select.
"""
import warnings

from ... import dtypes as D
from ...autograd.function import Function
from ...ops.loss import CrossEntropyIdx as _CrossEntropyIdx, NllLossIdx as _NllLossIdx
from ...ops.pointwise import where as _where
from ...tensor import Tensor

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "smooth_l1_loss", "huber_loss", "kl_div",
           "soft_margin_loss", "poisson_nll_loss", "gaussian_nll_loss"]


def _legacy_reduction(size_average, reduce, emit_warning=True):
    if size_average is None:
        size_average = True
    if reduce is None:
        reduce = True
    if size_average and reduce:
        ret = "mean"
    elif reduce:
        ret = "sum"
    else:
        ret = "none"
    if emit_warning:
        warnings.warn("size_average and reduce args will be deprecated, please use reduction='{}' instead."
                      .format(ret))
    return ret


def _reduction(size_average, reduce, reduction):
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _apply_reduction(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()


def _tsize(t):
    return "torch.Size([" + ", ".join(str(n) for n in t.shape) + "])"


# ---------------------------------------------------------------- nll / cross entropy
def _check_nll_shapes(input, target):
    if input.dim() < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.dim()})")
    if input.dim() >= 2 and target.dim() >= 1 and input.shape[0] != target.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0]}).")
    if input.dim() == 1:
        if target.dim() > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    elif input.dim() == 2:
        if target.dim() != 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    else:
        if target.dim() != input.dim() - 1:
            if input.dim() == 4:
                raise RuntimeError(f"only batches of spatial targets supported (3D tensors) but got targets "
                                   f"of dimension: {target.dim()}")
            raise RuntimeError(f"Expected target size {list(input.shape[:1]) + list(input.shape[2:])}, "
                               f"got {list(target.shape)}")
        exp = tuple(input.shape[:1]) + tuple(input.shape[2:])
        if tuple(target.shape) != exp:
            raise RuntimeError(f"Expected target size {list(exp)}, got {list(target.shape)}")


def _check_target_dtype(target):
    if target.dtype not in (D.int64, D.uint8):
        name = {"int32": "Int", "int16": "Short", "int8": "Char", "float32": "Float", "float64": "Double",
                "bool": "Bool", "float16": "Half"}.get(target.dtype.name, target.dtype.name)
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {name}")


def _check_weight(weight, C):
    if weight is not None and (weight.dim() != 1 or weight.shape[0] != C):
        raise RuntimeError(f"weight tensor should be defined either for all {C} classes or no classes but got "
                           f"weight tensor of shape: {list(weight.shape)}")


def _nll_parts(logp, target, weight, ignore_index):
    """(loss per element, weight per element, ignored mask) for class-index targets; logp (N, C, ...) or (C,)."""
    cdim = 0 if logp.dim() == 1 else 1
    t = target.long() if target.dtype is not D.int64 else target
    loss, w = _NllLossIdx.apply(logp, t, weight, ignore_index, cdim)
    return loss, w, t == ignore_index


def _safe_div(num, den):
    """num / den, nan where den == 0 with a zero gradient there (torch's nll backward writes nothing)."""
    bad = den == 0
    return (num / den.masked_fill(bad, 1.0)).masked_fill(bad, float("nan"))


def _nll_reduce(loss, w, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return _safe_div(loss.sum(), w.sum())


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    _check_nll_shapes(input, target)
    _check_target_dtype(target)
    C = input.shape[0] if input.dim() == 1 else input.shape[1]
    _check_weight(weight, C)
    loss, w, _ = _nll_parts(input, target, weight, ignore_index)
    return _nll_reduce(loss, w, reduction)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    reduction = _reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.dim() < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.dim()})")
    cdim = 0 if input.dim() == 1 else 1
    C = input.shape[cdim]
    wshape = [1] * input.dim()
    wshape[cdim] = C
    if target.dtype.is_floating_point:  # class probabilities
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(f"Expected floating point type target to have the same shape as input: "
                               f"got input of shape {list(input.shape)} and target of shape "
                               f"{list(target.shape)}" if input.dim() > 1 else
                               "0D or 1D target tensor expected, multi-target not supported")
        _check_weight(weight, C)
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / C
        prod = input.log_softmax(cdim) * target
        if weight is not None:
            prod = prod * weight.reshape(wshape)
        loss = -prod.sum(cdim)
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        n = input.numel() // C if C else 0
        return loss.sum() / n if n else loss.sum() / 0.0
    _check_nll_shapes(input, target)
    _check_target_dtype(target)
    _check_weight(weight, C)
    if label_smoothing <= 0:  # one node: fused row kernels, no (N, C) log_softmax kept
        t = target if target.dtype is D.int64 else target.long()
        return _CrossEntropyIdx.apply(input, t, weight, ignore_index, cdim, reduction)
    logp = input.log_softmax(cdim)
    loss, w, ign = _nll_parts(logp, target, weight, ignore_index)
    nll = _nll_reduce(loss, w, reduction)
    if label_smoothing <= 0:
        return nll
    lp = logp * weight.reshape(wshape) if weight is not None else logp
    smooth = (-lp.sum(cdim)).masked_fill(ign, 0.0)
    if reduction == "none":
        ret = smooth
    elif reduction == "sum":
        ret = smooth.sum()
    elif weight is not None:
        ret = _safe_div(smooth.sum(), w.sum())
    else:
        ret = _safe_div(smooth.sum(), ign.logical_not().sum().to(smooth.dtype))
    return nll * (1 - label_smoothing) + ret * (label_smoothing / C)


# ---------------------------------------------------------------- pointwise regression losses
def _warn_size(input, target):
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({_tsize(target)}) that is different to the input size "
                      f"({_tsize(input)}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=3)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _reduction(size_average, reduce, reduction)
    _warn_size(input, target)
    d = input - target
    loss = d * d
    if weight is not None:
        loss = loss * weight
    return _apply_reduction(loss, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _reduction(size_average, reduce, reduction)
    _warn_size(input, target)
    loss = (input - target).abs()
    if weight is not None:
        loss = loss * weight
    return _apply_reduction(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    reduction = _reduction(size_average, reduce, reduction)
    _warn_size(input, target)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    d = (input - target).abs()
    if beta == 0:
        loss = d
    else:
        loss = _where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _apply_reduction(loss, reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    _warn_size(input, target)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    d = (input - target).abs()
    loss = _where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    if weight is not None:
        loss = loss * weight
    return _apply_reduction(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # xlogy(target, target) - target * input; 0 where target == 0
        tl = _where(target > 0, target * target.clamp_min(1e-45).log(), target * 0.0)
        loss = tl - target * input
    if reduction == "batchmean":
        if input.dim() != 0:
            return loss.sum() / input.shape[0]
        return loss.sum()
    return _apply_reduction(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    loss = (-target * input).exp().log1p()
    return _apply_reduction(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        import math
        st = target * target.clamp_min(1e-45).log() - target + (target * (2 * math.pi)).clamp_min(1e-45).log() * 0.5
        loss = loss + _where(target > 1, st, target * 0.0)
    return _apply_reduction(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    import math
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not a valid value for reduction")
    if var.dim() == input.dim() - 1 and tuple(var.shape) == tuple(input.shape[:-1]):
        var = var.unsqueeze(-1)
    v = var.clamp_min(eps)
    loss = 0.5 * (v.log() + (input - target) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _apply_reduction(loss, reduction)


# ---------------------------------------------------------------- binary cross entropy
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({_tsize(target)}) that is different to the input size "
                         f"({_tsize(input)}) is deprecated. Please ensure they have the same size.")
    loss = _BCE.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _apply_reduction(loss, reduction)


class _BCE(Function):
    """-(t*max(log x, -100) + (1-t)*max(log(1-x), -100)); backward as torch: (x-t)/max(x(1-x), 1e-12)."""
    node_name = "BinaryCrossEntropyBackward0"

    @staticmethod
    def forward(ctx, x, t):
        ctx.save_for_backward(x, t)
        return -(t * x.log().clamp_min(-100.0) + (1 - t) * (1 - x).log().clamp_min(-100.0))

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved_tensors
        gx = g * (x - t) / (x * (1 - x)).clamp_min(1e-12)
        gt = None
        if ctx.needs_input_grad[1]:
            gt = g * ((1 - x).log() - x.log())
        return gx, gt


class _BCELogits(Function):
    """(1-t)*x + lw*softplus(-x), lw = 1 + (pw-1)*t; softplus(-x) = log1p(exp(-|x|)) + max(-x, 0)."""
    node_name = "BinaryCrossEntropyWithLogitsBackward0"

    @staticmethod
    def forward(ctx, x, t, pw):
        sp = (-x.abs()).exp().log1p() + (-x).clamp_min(0.0)
        ctx.save_for_backward(x, t, pw, sp)
        lw = (pw - 1) * t + 1
        return (1 - t) * x + lw * sp

    @staticmethod
    def backward(ctx, g):
        x, t, pw, sp = ctx.saved_tensors
        from ...ops._core import sum_to
        pt = pw * t
        need = ctx.needs_input_grad
        gx = sum_to(g * ((pt + 1 - t) * x.sigmoid() - pt), x.shape) if need[0] else None
        gt = sum_to(g * ((pw - 1) * sp - x), t.shape) if need[1] else None
        gpw = sum_to(g * t * sp, pw.shape) if need[2] else None
        return gx, gt, gpw


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({_tsize(target)}) must be the same as input size ({_tsize(input)})")
    pw = pos_weight if pos_weight is not None else input.new_ones(())
    loss = _BCELogits.apply(input, target, pw)
    if weight is not None:
        loss = loss * weight
    return _apply_reduction(loss, reduction)
