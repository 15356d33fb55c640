"""Random sampling on the device: Philox-4x32-10 keyed by the generator's seed.

Each call reserves counters with `engine.random.next_offset` and element i of its (row-major)
output comes from counter offset + i // per (engine/runtime/philox.py gives `per`), so the same
seed gives the same numbers on every device, whatever its work-group sizes.
"""
import math
import numbers

from .. import dtypes as D
from ..device import resolve as _resolve
from ..random import Generator, default_generator, next_offset
from ..runtime import launch as _launch
from ..runtime import philox as _ph
from ..tensor import Tensor, empty as _empty
from ._core import broadcast_shapes, check_dtype, copy_into, ew, expand_raw, state
from .convert import check_inplace
from .creation import _finish, _shape_arg

__all__ = ["rand", "randn", "randint", "rand_like", "randn_like", "randint_like", "randperm", "normal",
           "bernoulli", "Generator", "default_generator"]

_TORCH_NAMES = {"bool": "Bool", "uint8": "Byte", "int8": "Char", "int16": "Short", "int32": "Int",
                "int64": "Long", "float16": "Half", "float32": "Float", "float64": "Double"}
_INT_MODES = ("randint", "randint64", "bits32", "bits64", "bernoulli")


def _tname(dt):
    return _TORCH_NAMES.get(dt.name, dt.name)


def _fill(t, mode, p1=0, p2=0, generator=None):
    """Overwrite t (any strides) with fresh samples of `mode` (no version bump, no autograd)."""
    n = t.numel()
    if n == 0:
        return t
    dev = t._storage.device
    dbl = t.dtype is D.float64 and mode not in _INT_MODES
    per = _ph.per_of(mode, dbl)
    ncount = (n + per - 1) // per
    seed, off = next_offset(ncount, generator)
    if _launch._REC[0] is not None:  # engine.compile: a replay draws fresh numbers
        _launch._REC[0].note_rng(lambda: next_offset(ncount, generator))
    dst = t if t.is_contiguous() else _empty(t._shape, t.dtype, dev)
    _ph.run(dev, mode, dst._storage.buf, dst._offset, dst.dtype.ctype, n, seed, off, p1, p2, dbl)
    if dst is not t:
        copy_into(t, dst)
    return t


def _size_from(size, kwargs):
    if "size" in kwargs:
        if size:
            raise TypeError("size given both positionally and as a keyword")
        return _shape_arg((kwargs.pop("size"),))
    return _shape_arg(size)


def _new(shape, dtype, device, default=None):
    dtype = D.to_dtype(dtype) or default or D.get_default_dtype()
    dev = _resolve(device)
    check_dtype(dev, dtype)
    return _empty(shape, dtype, dev)


def _need_float(t, kernel):
    if not t.dtype.is_floating_point:
        raise RuntimeError(f"\"{kernel}\" not implemented for '{_tname(t.dtype)}'")


def _out(r, out):
    if out is None:
        return r
    out.copy_(r) if tuple(out.shape) == tuple(r.shape) else out.resize_as_(r).copy_(r)
    return out


# ---- factories -------------------------------------------------------------------------------
def rand(*size, generator=None, dtype=None, device=None, requires_grad=False, out=None, **kwargs):
    """Uniform samples in [0, 1)."""
    t = _new(_size_from(size, kwargs), dtype, device)
    _need_float(t, "check_uniform_bounds")
    _fill(t, "uniform", 0.0, 1.0, generator)
    return _out(_finish(t, requires_grad), out)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False, out=None, **kwargs):
    """Standard normal samples (Box-Muller)."""
    t = _new(_size_from(size, kwargs), dtype, device)
    _need_float(t, "normal_kernel_cpu")
    _fill(t, "normal", 0.0, 1.0, generator)
    return _out(_finish(t, requires_grad), out)


def _check_range(low, high):
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")


def _fill_int(t, low, high, generator=None):
    """Integers uniform in [low, high) (modulo of 32 or 64 random bits, as PyTorch)."""
    _check_range(low, high)
    rng = high - low
    _fill(t, "randint" if rng <= 2 ** 32 else "randint64", low, rng, generator)
    return t


def _int_arg(v):
    if isinstance(v, Tensor):
        v = v.item()
    if isinstance(v, float):
        if not v.is_integer():
            raise TypeError(f"randint(): argument must be an integer, got {v}")
        v = int(v)
    return int(v)


def randint(*args, size=None, low=None, high=None, generator=None, dtype=None, device=None,
            requires_grad=False, out=None, **_):
    """randint(high, size) / randint(low, high, size): integers in [low, high)."""
    args = list(args)
    if args and isinstance(args[-1], (tuple, list)):
        size = args.pop()
    if len(args) == 2:
        low, high = args
    elif len(args) == 1:
        if high is None:
            high = args[0]
        else:
            low = args[0]
    elif len(args) > 2:
        raise TypeError("randint() takes (high, size) or (low, high, size)")
    if high is None or size is None:
        raise TypeError("randint() missing required arguments: 'high' and 'size' (e.g. randint(0, 10, (3,)))")
    low = 0 if low is None else _int_arg(low)
    high = _int_arg(high)
    t = _new(_shape_arg((size,) if isinstance(size, numbers.Integral) else (tuple(size),)), dtype, device, D.int64)
    _fill_int(t, low, high, generator)
    return _out(_finish(t, requires_grad), out)


def rand_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None, generator=None, **_):
    return rand(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad, generator=generator)


def randn_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None, generator=None, **_):
    return randn(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                 requires_grad=requires_grad, generator=generator)


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False, memory_format=None,
                 generator=None, **_):
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype, device=device or input.device,
                   requires_grad=requires_grad, generator=generator)


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False, out=None, **_):
    """A random permutation of 0..n-1: argsort of 63-bit random keys (ties broken by index)."""
    n = _int_arg(n)
    if n < 0:
        raise RuntimeError(f"n must be non-negative, got{n}")
    dtype = D.to_dtype(dtype) or D.int64
    dev = _resolve(device)
    keys = _empty((n,), D.int64, dev)
    _fill(keys, "bits64", 0, 0, generator)
    from .sort import _argsort_raw
    idx = _argsort_raw(keys, 0, False)
    if dtype is not D.int64:
        r = _empty((n,), dtype, dev)
        copy_into(r, idx)
        idx = r
    return _out(_finish(idx, requires_grad), out)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, out=None, dtype=None, device=None,
           requires_grad=False, **_):
    """normal(mean, std) with tensor mean and/or std (broadcast), or normal(mean, std, size) with floats."""
    tm, ts = isinstance(mean, Tensor), isinstance(std, Tensor)
    if not tm and not ts:
        if size is None:
            raise TypeError("normal(): with float mean and std, pass size (e.g. normal(0., 1., size=(3,)))")
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        shape = _shape_arg((size,) if isinstance(size, numbers.Integral) else (tuple(size),))
        t = _new(shape, dtype, device)
        _need_float(t, "normal_kernel_cpu")
        _fill(t, "normal", float(mean), float(std), generator)
        return _out(_finish(t, requires_grad), out)
    if ts is False and std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    tens = [x for x in (mean, std) if isinstance(x, Tensor)]
    dt = D.result_type(*tens)
    if not dt.is_floating_point:
        raise RuntimeError(f"\"normal_kernel_cpu\" not implemented for '{_tname(dt)}'")
    shape = broadcast_shapes(*[x.shape for x in tens]) if size is None else \
        _shape_arg((size,) if isinstance(size, numbers.Integral) else (tuple(size),))
    dev = tens[0]._storage.device
    z = _empty(shape, dt, dev)
    _fill(z, "normal", 0.0, 1.0, generator)
    m = expand_raw(mean, shape) if tm else float(mean)
    s = expand_raw(std, shape) if ts else float(std)
    r = ew("normal_affine", "v2 + v3 * v1", [z, m, s], dt, dt)
    return _out(r, out)


def _uniform_like(t, generator):
    u = _empty(t._shape, D.float32, t._storage.device)
    return _fill(u, "uniform", 0.0, 1.0, generator)


def bernoulli(input, p=None, *, generator=None, out=None):
    """0/1 samples: bernoulli(probs) draws each element with its own probability; bernoulli(x, p) with p."""
    if p is None:
        _need_float(input, "bernoulli_tensor_cpu_p_")
        u = _uniform_like(input, generator)
        r = ew("bernoulli_t", "(v1 < v2) ? 1 : 0", [u, input], input.dtype, input.dtype)
        return _out(r, out)
    r = _empty(input._shape, input.dtype, input._storage.device)
    _bernoulli_into(r, p, generator)
    return _out(r, out)


def _bernoulli_into(t, p, generator):
    if isinstance(p, Tensor):
        if broadcast_shapes(p.shape, t.shape) != t.shape:
            raise RuntimeError(f"bernoulli_: p of shape {list(p.shape)} can't be broadcast to {list(t.shape)}")
        u = _uniform_like(t, generator)
        cd = p.dtype if p.dtype.is_floating_point else D.float32
        r = ew("bernoulli_t", "(v1 < v2) ? 1 : 0", [u, expand_raw(p, t.shape)], t.dtype, cd)
        copy_into(t, r)
        return t
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
    return _fill(t, "bernoulli", p, 0.0, generator)


# ---- in-place Tensor methods -------------------------------------------------------------------
def _inplace(t, fill):
    """Overwrite t with samples: bumps the version; any autograd history of t is cut (the new
    values do not depend on it)."""
    check_inplace(t)
    if state.enabled and t._rg and t.grad_fn is not None:
        if t._base is not None and t._base._rg:
            raise RuntimeError("in-place sampling into a view of a tensor that requires grad is not supported "
                               "by clgrad's autograd; sample into a new tensor instead")
        t.grad_fn = None
        t._rg = False
    prev = state.enabled
    state.enabled = False
    try:
        fill(t)
    finally:
        state.enabled = prev
    t._storage.version += 1
    return t


def uniform_(self, from_=0.0, to=1.0, *, generator=None, **kwargs):
    from_ = kwargs.pop("from", from_)
    _need_float(self, "check_uniform_bounds")
    if from_ > to:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={from_} > to={to}")
    return _inplace(self, lambda t: _fill(t, "uniform", float(from_), float(to) - float(from_), generator))


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    _need_float(self, "normal_kernel_cpu")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    return _inplace(self, lambda t: _fill(t, "normal", float(mean), float(std), generator))


def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
    _need_float(self, "log_normal_cpu")
    if std <= 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
    return _inplace(self, lambda t: _fill(t, "log_normal", float(mean), float(std), generator))


def exponential_(self, lambd=1.0, *, generator=None):
    _need_float(self, "exponential_cpu")
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
    return _inplace(self, lambda t: _fill(t, "exponential", float(lambd), 0.0, generator))


def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
    _need_float(self, "cauchy_cpu")
    if not sigma > 0:
        raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
    return _inplace(self, lambda t: _fill(t, "cauchy", float(median), float(sigma), generator))


def geometric_(self, p, *, generator=None):
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    if self.dtype.is_floating_point:
        return _inplace(self, lambda t: _fill(t, "geometric", math.log1p(-p), 0.0, generator))
    tmp = _empty(self._shape, D.float64 if self._storage.device.fp64 else D.float32, self._storage.device)

    def fill(t):
        _fill(tmp, "geometric", math.log1p(-p), 0.0, generator)
        copy_into(t, tmp)
    return _inplace(self, fill)


def bernoulli_(self, p=0.5, *, generator=None):
    return _inplace(self, lambda t: _bernoulli_into(t, p, generator))


_RANDOM_TOP = {"float16": 2 ** 11, "float32": 2 ** 24, "float64": 2 ** 53, "bool": 1, "uint8": 255,
               "int8": 127, "int16": 2 ** 15 - 1, "int32": 2 ** 31 - 1, "int64": 2 ** 63 - 1}
_INT_LOW = {"bool": 0, "uint8": 0, "int8": -128, "int16": -2 ** 15, "int32": -2 ** 31, "int64": -2 ** 63}


_NOARG = object()


def random_(self, from_=_NOARG, to=_NOARG, *, generator=None, **kwargs):
    """random_(): integers in [0, 2^mantissa] (floats) or [0, max]; random_(to): [0, to);
    random_(from, to): [from, to), to=None meaning up to the dtype's max."""
    if "from" in kwargs:
        from_ = kwargs.pop("from")
    top = _RANDOM_TOP[self.dtype.name] + 1
    if from_ is _NOARG:
        low, high = 0, (top if to is _NOARG or to is None else _int_arg(to))
    elif to is _NOARG:
        low, high = 0, _int_arg(from_)
    else:
        low = _int_arg(from_)
        high = top if to is None else _int_arg(to)
    if low < _INT_LOW.get(self.dtype.name, -2 ** 63):
        raise RuntimeError(f"random_ expects 'from' to be in the range of {_tname(self.dtype)}, got {low}")
    return _inplace(self, lambda t: _fill_int(t, low, high, generator))


def _bernoulli_method(self, p=None, *, generator=None):
    return bernoulli(self, p, generator=generator)


for _n, _f in (("uniform_", uniform_), ("normal_", normal_), ("log_normal_", log_normal_),
               ("exponential_", exponential_), ("cauchy_", cauchy_), ("geometric_", geometric_),
               ("bernoulli_", bernoulli_), ("random_", random_), ("bernoulli", _bernoulli_method)):
    setattr(Tensor, _n, _f)
