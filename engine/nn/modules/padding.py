"""padding modules (torch's attributes and extra_repr)."""
from ..functional.padding import pad as _pad
from .module import Module

__all__ = ["ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
           "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
           "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d"]


def _ntuple(v, n):
    if isinstance(v, (list, tuple)):
        return tuple(v)
    return (v,) * n


class _ConstantPadNd(Module):
    __constants__ = ["padding", "value"]
    _n = 2

    def __init__(self, padding, value):
        super().__init__()
        self.padding = _ntuple(padding, self._n)
        self.value = value

    def forward(self, input):
        return _pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    _n = 2


class ConstantPad2d(_ConstantPadNd):
    _n = 4


class ConstantPad3d(_ConstantPadNd):
    _n = 6


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad1d(_ZeroPadNd):
    _n = 2


class ZeroPad2d(_ZeroPadNd):
    _n = 4


class ZeroPad3d(_ZeroPadNd):
    _n = 6


class _ModePadNd(Module):
    __constants__ = ["padding"]
    _n = 2
    _mode = "reflect"

    def __init__(self, padding):
        super().__init__()
        self.padding = _ntuple(padding, self._n)

    def forward(self, input):
        return _pad(input, self.padding, self._mode)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_ModePadNd):
    _n, _mode = 2, "reflect"


class ReflectionPad2d(_ModePadNd):
    _n, _mode = 4, "reflect"


class ReflectionPad3d(_ModePadNd):
    _n, _mode = 6, "reflect"


class ReplicationPad1d(_ModePadNd):
    _n, _mode = 2, "replicate"


class ReplicationPad2d(_ModePadNd):
    _n, _mode = 4, "replicate"


class ReplicationPad3d(_ModePadNd):
    _n, _mode = 6, "replicate"


class CircularPad1d(_ModePadNd):
    _n, _mode = 2, "circular"


class CircularPad2d(_ModePadNd):
    _n, _mode = 4, "circular"


class CircularPad3d(_ModePadNd):
    _n, _mode = 6, "circular"
