"""torch.device look-alike: names resolve to OpenCL devices of the runtime."""
from .runtime import device as _rt


class device:
    """`device("cl:0")`, `device("cpu")`, `device("cuda")`, `device("gpu")`, `device("cl", 1)`.

    `cpu` is the CPU OpenCL device and `cuda` the default OpenCL GPU, so code
    written for PyTorch runs unchanged; all devices print as `cl:N`.
    """
    __slots__ = ("_dev",)

    def __init__(self, spec, index=None):
        if isinstance(spec, device):
            self._dev = spec._dev
            return
        if isinstance(spec, _rt.Device):
            self._dev = spec
            return
        if index is not None:
            spec = f"{spec}:{index}"
        self._dev = _rt.find_device(spec)

    @property
    def type(self):
        return "cl"

    @property
    def index(self):
        return self._dev.index

    @property
    def runtime(self):
        return self._dev

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except RuntimeError:
                return False
        return isinstance(other, device) and other._dev is self._dev

    def __hash__(self):
        return hash(self._dev.index)

    def __str__(self):
        return f"cl:{self._dev.index}"

    def __repr__(self):
        return f"device(type='cl', index={self._dev.index})"


def resolve(spec):
    """A runtime Device from anything a user may pass as `device=`; None means the default."""
    if spec is None:
        return _rt.default_device()
    if isinstance(spec, device):
        return spec._dev
    if isinstance(spec, _rt.Device):
        return spec
    return _rt.find_device(spec)
