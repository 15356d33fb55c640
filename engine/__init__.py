"""clgrad's engine: a PyTorch-style tensor and autograd library on OpenCL.

`import engine as torch` and most PyTorch tensor code runs unchanged.
"""
from . import dtypes as _dtypes
from .dtypes import (bool_ as bool, dtype, float16, float32, float64, get_default_dtype, int8, int16, int32,
                     int64, promote_types, result_type, set_default_dtype, uint8)
from .dtypes import float16 as half, float32 as float, float64 as double, int16 as short, int32 as int, int64 as long
from .tensor import Size, Tensor
from .device import device
from .runtime.device import set_default_device as _set_default_device
from .runtime.memory import OutOfMemoryError
from .runtime.program import CompileError
from . import autograd
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .autograd.grad_mode import is_inference_mode_enabled
from . import ops as _ops  # binds Tensor methods
from .ops.creation import *  # noqa: F401,F403
from .ops.pointwise import *  # noqa: F401,F403
from .ops.reduce import *  # noqa: F401,F403
from .ops.reduce import return_types  # noqa: F401
from .ops.shape import *  # noqa: F401,F403
from .ops.shape import view as _view  # noqa: F401
from .ops import extra as _extra  # noqa: F401
from .ops.extra import *  # noqa: F401,F403
from . import cuda, random
from .random import get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from ._printing import set_printoptions

__version__ = "0.1.0"
float32, float64, int32, int64 = _dtypes.float32, _dtypes.float64, _dtypes.int32, _dtypes.int64
bfloat16 = None
complex64 = None
uint16 = None


def set_default_device(spec):
    """Make `spec` ('gpu', 'cpu', 'cuda', 'cl:1', 'P:D', a vendor substring) the default device."""
    return device(_set_default_device(spec))


def get_default_device():
    from .runtime.device import default_device
    return device(default_device())


def devices():
    """Every OpenCL device: a list of dicts with name, type, compute units, memory, fp64/fp16 support."""
    from .runtime.device import all_devices, default_device
    d0 = default_device()
    return [dict(d.info(), device=f"cl:{d.index}", default=d is d0) for d in all_devices()]


def synchronize(dev=None):
    from .device import resolve
    resolve(dev).synchronize()


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_floating_point(t):
    return t.dtype.is_floating_point


def numel(t):
    return t.numel()


def typename(t):
    return t.type()


from . import nn, optim, utils  # noqa: E402  (they build on everything above)
from . import distributed  # noqa: E402,F401  (importing it does not start MPI)
from .serialization import load, save  # noqa: E402
from . import profiler  # noqa: E402
from .compiler import compile  # noqa: E402,F401
# torch's top-level aliases of a few nn.functional ops
from .nn.functional import (adaptive_avg_pool1d, adaptive_max_pool1d, avg_pool1d, conv1d, conv2d,  # noqa: E402,F401
                            conv_transpose1d, conv_transpose2d, layer_norm, max_pool1d, max_pool2d)
from .profiler import get_debug, set_debug  # noqa: E402
