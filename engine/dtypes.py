"""dtypes and PyTorch's type-promotion rules."""
import builtins

import numpy as np


class dtype:
    __slots__ = ("name", "np", "ctype", "itemsize", "kind", "is_floating_point", "is_signed")

    def __init__(self, name, npd, ctype, kind):
        self.name = name
        self.np = np.dtype(npd)
        self.ctype = ctype
        self.itemsize = self.np.itemsize
        self.kind = kind  # 0 bool, 1 integer, 2 floating
        self.is_floating_point = kind == 2
        self.is_signed = kind != 0

    @property
    def is_complex(self):
        return False

    def __repr__(self):
        return f"engine.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


bool_ = dtype("bool", np.bool_, "uchar", 0)
uint8 = dtype("uint8", np.uint8, "uchar", 1)
int8 = dtype("int8", np.int8, "char", 1)
int16 = dtype("int16", np.int16, "short", 1)
int32 = dtype("int32", np.int32, "int", 1)
int64 = dtype("int64", np.int64, "long", 1)
float16 = dtype("float16", np.float16, "half", 2)
float32 = dtype("float32", np.float32, "float", 2)
float64 = dtype("float64", np.float64, "double", 2)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
_NAMES = {d.name: d for d in ALL}
_NAMES.update({"bool": bool_, "float": float32, "double": float64, "half": float16,
               "int": int32, "long": int64, "short": int16})
_FROM_NP = {d.np: d for d in ALL}
_default_float = [float32]


def _by_name(name):
    return _NAMES[name]


def get_default_dtype():
    return _default_float[0]


def set_default_dtype(d):
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_float[0] = d


def to_dtype(d):
    """Accept an engine dtype, a numpy dtype, a torch dtype, a Python type or a name."""
    if d is None or isinstance(d, dtype):
        return d
    if d is builtins.bool:
        return bool_
    if d is builtins.int:
        return int64
    if d is builtins.float:
        return _default_float[0]
    if isinstance(d, str):
        if d in _NAMES:
            return _NAMES[d]
        raise TypeError(f"unknown dtype {d!r}")
    s = str(d)
    if s.startswith("torch."):
        return _NAMES[s[6:]]
    try:
        return from_numpy_dtype(np.dtype(d))
    except TypeError:
        raise TypeError(f"unsupported dtype {d!r}") from None


def from_numpy_dtype(npd):
    npd = np.dtype(npd)
    if npd in _FROM_NP:
        return _FROM_NP[npd]
    if npd.kind == "u":
        return int64
    raise TypeError(f"can't convert numpy dtype {npd} to an engine dtype; supported: "
                    "bool, uint8, int8, int16, int32, int64, float16, float32, float64")


_ORDER = {d: i for i, d in enumerate(ALL)}


def promote_types(a, b):
    """The smallest dtype that holds both (torch.promote_types)."""
    if a is b:
        return a
    if a.kind != b.kind:
        return a if a.kind > b.kind else b
    if a.kind == 1 and {a, b} == {uint8, int8}:
        return int16
    return a if _ORDER[a] > _ORDER[b] else b


def scalar_kind(v):
    if isinstance(v, builtins.bool) or isinstance(v, np.bool_):
        return 0
    if isinstance(v, (builtins.int, np.integer)):
        return 1
    return 2


def result_type(*operands):
    """torch.result_type: dimensioned tensors beat zero-dim tensors beat Python scalars,
    and a lower group only matters when its kind (bool < int < float) is higher."""
    dim_t = zero_t = None
    scalar = -1
    for o in operands:
        d = getattr(o, "dtype", None)
        if isinstance(d, dtype):
            if o.ndim:
                dim_t = d if dim_t is None else promote_types(dim_t, d)
            else:
                zero_t = d if zero_t is None else promote_types(zero_t, d)
        else:
            scalar = max(scalar, scalar_kind(o))
    res = dim_t
    if zero_t is not None and (res is None or zero_t.kind > res.kind):
        res = zero_t if res is None else promote_types(res, zero_t) if zero_t.kind > res.kind else res
    if scalar >= 0 and (res is None or scalar > res.kind):
        res = (bool_, int64, _default_float[0])[scalar]
    return res
