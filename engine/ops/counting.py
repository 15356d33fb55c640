"""repeat_interleave and bincount: ops whose output size depends on values.

Like PyTorch, both read a size from the device (the repeats, or the largest value) unless
it is given (`output_size`, a Python int of repeats); the work itself stays on the device:
repeat_interleave is one index_select (its backward is index_select's, an index_add),
bincount one index_add."""
import numpy as np

from ..tensor import Tensor, wrap_dim

__all__ = ["repeat_interleave", "bincount"]


def _index_of_counts(counts, device):
    from .creation import tensor
    counts = np.asarray(counts, dtype=np.int64)
    return tensor(np.repeat(np.arange(len(counts), dtype=np.int64), counts), device=device)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """torch.repeat_interleave: repeat each element (or slice along dim) `repeats` times.

    The one-argument form repeat_interleave(repeats_tensor) gives the indices
    [0]*r0 + [1]*r1 + ..."""
    if repeats is None:  # torch.repeat_interleave(repeats)
        reps = input
        if reps.dim() > 1:
            raise RuntimeError("repeats must be 0-dim or 1-dim tensor")
        if reps.dtype.is_floating_point or reps.dtype.name == "bool":
            raise RuntimeError("repeats has to be Long or Int tensor")
        counts = np.atleast_1d(reps.numpy())
        if (counts < 0).any():
            raise RuntimeError("repeats can not be negative")
        return _index_of_counts(counts, reps.device).to(reps.dtype)
    x = input
    if dim is None:
        x = x.reshape(-1)
        dim = 0
    d = wrap_dim(dim, x.dim())
    n = x.shape[d] if x.dim() else 1
    if isinstance(repeats, Tensor):
        if repeats.dim() > 1:
            raise RuntimeError("repeats must be 0-dim or 1-dim tensor")
        if repeats.dtype.is_floating_point:
            raise RuntimeError("repeats has to be Long or Int tensor")
        counts = np.atleast_1d(repeats.numpy()).astype(np.int64)
        if counts.size == 1:
            counts = np.full(n, counts[0])
        elif counts.size != n:
            raise RuntimeError("repeats must have the same size as input along dim, but got repeats.size(0) = "
                               f"{counts.size} and input.size({dim}) = {n}")
    else:
        r = int(repeats)
        counts = np.full(n, r, dtype=np.int64)
    if (counts < 0).any():
        raise RuntimeError("Repeats must be non-negative" if not isinstance(repeats, Tensor)
                           else "repeats can not be negative")
    if output_size is not None and int(counts.sum()) != output_size:
        raise RuntimeError(f"allocated size does not match required size: {output_size} vs {int(counts.sum())}")
    if x.dim() == 0:
        x = x.reshape(1)
    idx = _index_of_counts(counts, x.device)
    return x.index_select(d, idx)


def bincount(input, weights=None, minlength=0):
    """torch.bincount: counts (or sums of weights) of each non-negative integer value."""
    if input.dim() != 1 or input.dtype.is_floating_point or input.dtype.name == "bool":
        if input.dtype.is_floating_point:
            raise NotImplementedError(f'"bincount" not implemented for \'{str(input.dtype).split(".")[-1]}\'')
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    from .creation import zeros
    from .. import dtypes as _dt
    if weights is not None and tuple(weights.shape) != tuple(input.shape):
        raise RuntimeError("weights should be 1-d and have the same length as input")
    n = input.numel()
    if n:
        lo, hi = (int(v) for v in (input.min(), input.max()))
        if lo < 0:
            raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
        size = max(hi + 1, minlength)
    else:
        size = minlength
    if weights is None:
        out = zeros(size, dtype=_dt.int64, device=input.device)
        src = None
    else:
        odt = weights.dtype if weights.dtype in (_dt.float32, _dt.float64) else _dt.float64
        out = zeros(size, dtype=odt, device=input.device)
        src = weights.detach().to(odt)
    if n == 0:
        return out
    from .creation import ones
    if src is None:
        src = ones(n, dtype=out.dtype, device=input.device)
    return out.index_add_(0, input.to(_dt.int64), src)


Tensor.repeat_interleave = lambda self, repeats=None, dim=None, *, output_size=None: repeat_interleave(
    self, repeats, dim, output_size=output_size)
Tensor.bincount = lambda self, weights=None, minlength=0: bincount(self, weights, minlength)
