"""dropout functionals: one Philox mask kernel + one fused multiply (no host round-trip)."""
import warnings

from ... import dtypes as D
from ...autograd.function import Function
from ...ops._core import ew
from ...ops.convert import inplace as _inplace
from ...ops.random_ops import _fill
from ...tensor import empty as _empty

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout", "alpha_dropout"]


class _MaskScale(Function):
    """x * mask * scale (mask a broadcastable uint8 0/1 tensor); its own derivative."""
    node_name = "MulBackward0"

    @staticmethod
    def forward(ctx, x, mask, scale):
        ctx.mask, ctx.scale = mask, scale
        return ew("dropout_mask", "v1 * v2 * v3", [x, mask, scale], x.dtype, x.dtype)

    @staticmethod
    def backward(ctx, g):
        return _MaskScale.apply(g, ctx.mask, ctx.scale), None, None


def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _apply(input, p, mask_shape, inplace):
    if p == 1.0:
        fn = lambda x: x * 0.0  # noqa: E731
    else:
        if not input.dtype.is_floating_point:
            raise RuntimeError("result type Float can't be cast to the desired output type "
                               f"{input.dtype.name.capitalize()}")
        mask = _empty(mask_shape, D.uint8, input._storage.device)
        _fill(mask, "bernoulli", 1.0 - p)
        scale = 1.0 / (1.0 - p)
        fn = lambda x: _MaskScale.apply(x, mask, scale)  # noqa: E731
    return _inplace(input, fn) if inplace else fn(input)


def dropout(input, p=0.5, training=True, inplace=False):
    _check_p(p)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    return _apply(input, p, input._shape, inplace)


def _feature(input, p, training, inplace, name, batched_ndim):
    _check_p(p)
    nd = input.ndim
    if nd not in (batched_ndim - 1, batched_ndim):
        if name == "dropout2d" and nd == 3:
            pass
        else:
            raise RuntimeError(f"{name}: Expected {batched_ndim - 1}D or {batched_ndim}D input, but received a "
                               f"{nd}D input. Note that {name} exists to provide channel-wise dropout on inputs "
                               f"with {batched_ndim - 2} spatial dimension{'s' if batched_ndim > 3 else ''}, a "
                               f"channel dimension, and an optional batch dimension (i.e. "
                               f"{batched_ndim - 1}D or {batched_ndim}D inputs).")
    if not training or p == 0.0 or input.numel() == 0:
        return input
    unbatched = nd == batched_ndim - 1 and name != "dropout2d"
    lead = 1 if unbatched else 2
    mask_shape = tuple(input._shape[:lead]) + (1,) * (nd - lead)
    return _apply(input, p, mask_shape, inplace)


def dropout1d(input, p=0.5, training=True, inplace=False):
    return _feature(input, p, training, inplace, "dropout1d", 3)


def dropout2d(input, p=0.5, training=True, inplace=False):
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel dim. "
                      "This behavior will change in a future release to interpret the input as one without a "
                      "batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, "
                      "please switch to using dropout1d instead.")
    return _feature(input, p, training, inplace, "dropout2d", 4)


def dropout3d(input, p=0.5, training=True, inplace=False):
    return _feature(input, p, training, inplace, "dropout3d", 5)


_ALPHA = 1.6732632423543772848170429916717 * 1.0507009873554804934193349852946


def _alpha(input, p, training, mask_shape):
    _check_p(p)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        return input * 0.0
    mask = _empty(mask_shape, input.dtype, input._storage.device)
    _fill(mask, "bernoulli", 1.0 - p)
    a = (1.0 / ((_ALPHA * _ALPHA * p + 1) * (1 - p))) ** 0.5
    b = mask * 0.0 + (1 - mask) * (-_ALPHA)  # alpha' where dropped
    b = b * a + _ALPHA * a * p
    return input * (mask * a) + b


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    return _alpha(input, p, training, input._shape)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    return _alpha(input, p, training, tuple(input._shape[:2]) + (1,) * (input.ndim - 2))
