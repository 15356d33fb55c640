"""activation functionals (torch.nn.functional): thin wrappers over engine's fused elementwise ops."""
import warnings

from ...ops import pointwise as _P
from ...ops import softmax as _S
from ...ops.convert import inplace as _inplace

__all__ = ["relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu", "celu", "gelu", "silu",
           "mish", "tanh", "sigmoid", "hardtanh", "hardtanh_", "softplus", "softsign", "tanhshrink", "threshold",
           "threshold_", "prelu", "logsigmoid", "hardsigmoid", "hardswish", "softmax", "log_softmax", "softmin", "glu", "hardshrink",
           "softshrink"]


def _ip(fn, input, *args):
    """fn applied in place to input (autograd-safe through engine's inplace helper)."""
    return _inplace(input, fn, *args)


def relu(input, inplace=False):
    return _ip(_P.relu, input) if inplace else _P.relu(input)


def relu_(input):
    return _ip(_P.relu, input)


def relu6(input, inplace=False):
    return _ip(_P.relu6, input) if inplace else _P.relu6(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    if inplace:
        return _ip(_P.leaky_relu, input, negative_slope)
    return _P.leaky_relu(input, negative_slope)


def leaky_relu_(input, negative_slope=0.01):
    return _ip(_P.leaky_relu, input, negative_slope)


def elu(input, alpha=1.0, inplace=False):
    return _ip(_P.elu, input, alpha) if inplace else _P.elu(input, alpha)


def elu_(input, alpha=1.0):
    return _ip(_P.elu, input, alpha)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu(x):
    return _P.elu(x, _SELU_ALPHA) * _SELU_SCALE


def selu(input, inplace=False):
    return _ip(_selu, input) if inplace else _selu(input)


def _celu(x, alpha):
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError")
    return _P.elu(x * (1.0 / alpha), 1.0) * alpha


def celu(input, alpha=1.0, inplace=False):
    return _ip(_celu, input, alpha) if inplace else _celu(input, alpha)


def gelu(input, approximate="none"):
    return _P.gelu(input, approximate)


def silu(input, inplace=False):
    return _ip(_P.silu, input) if inplace else _P.silu(input)


def mish(input, inplace=False):
    return _ip(_P.mish, input) if inplace else _P.mish(input)


def tanh(input):
    return _P.tanh(input)


def sigmoid(input):
    return _P.sigmoid(input)


def _hardtanh(x, min_val, max_val):
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _P.clamp(x, min_val, max_val)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if inplace:
        return _ip(_hardtanh, input, min_val, max_val)
    return _hardtanh(input, min_val, max_val)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return _ip(_hardtanh, input, min_val, max_val)


def softplus(input, beta=1.0, threshold=20.0):
    return _P.softplus(input, beta, threshold)


def softsign(input):
    return input / (_P.abs(input) + 1)


def tanhshrink(input):
    return input - _P.tanh(input)


def _threshold(x, threshold, value):
    return _P.where(x > threshold, x, value)


def threshold(input, threshold, value, inplace=False):
    return _ip(_threshold, input, threshold, value) if inplace else _threshold(input, threshold, value)


def threshold_(input, threshold, value):
    return _ip(_threshold, input, threshold, value)


def prelu(input, weight):
    """max(0, x) + weight * min(0, x), weight (C,) broadcast along dim 1 (or a single value)."""
    if weight.numel() != 1:
        if input.ndim == 0:
            raise RuntimeError("Not allow zero-dim input tensor.")
        c = input.shape[1] if input.ndim >= 2 else input.shape[0]
        if weight.numel() != c:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                               f"{weight.numel()} and channel size = {c}.")
        if input.ndim >= 2:
            weight = weight.reshape((c,) + (1,) * (input.ndim - 2))
    return _P.where(input > 0, input, weight * input)


def logsigmoid(input):
    return -_P.softplus(-input)


def _hardsigmoid(x):
    return _P.relu6(x + 3.0) * (1.0 / 6.0)


def hardsigmoid(input, inplace=False):
    return _ip(_hardsigmoid, input) if inplace else _hardsigmoid(input)


def _hardswish(x):
    return x * _P.relu6(x + 3.0) * (1.0 / 6.0)


def hardswish(input, inplace=False):
    return _ip(_hardswish, input) if inplace else _hardswish(input)


def glu(input, dim=-1):
    if input.dim() == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    n = input.shape[dim]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim % input.dim()} is size {n}")
    a, b = input.chunk(2, dim)
    return a * _P.sigmoid(b)


def hardshrink(input, lambd=0.5):
    return _P.where((input > lambd) | (input < -lambd), input, 0.0)


def softshrink(input, lambd=0.5):
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return _P.where(input > lambd, input - lambd, _P.where(input < -lambd, input + lambd, 0.0))


def _get_softmax_dim(name, ndim, stacklevel=3):
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                  "as an argument.", stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _get_softmax_dim("softmax", input.dim(), _stacklevel)
    return _S.softmax(input, dim, dtype=dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _get_softmax_dim("log_softmax", input.dim(), _stacklevel)
    return _S.log_softmax(input, dim, dtype=dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _get_softmax_dim("softmin", input.dim(), _stacklevel)
    if dtype is not None:
        input = input.to(dtype)
    return _S.softmax(-input, dim)

