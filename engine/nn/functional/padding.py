"""padding functionals: pad(input, pad, mode, value).

constant: one fill + one strided copy (negative pads crop); its backward is pad with the
negated pads (a crop of the grad, or zero-filling where the forward cropped), so double
backward works.  reflect / replicate / circular: index_select along each padded dim with a
cached index tensor (backward: index_add)."""
import numpy as np

from ...autograd.function import Function
from ...ops._core import copy_into
from ...ops.creation import fill_raw, tensor as _tensor
from ...tensor import Tensor, empty, make

__all__ = ["pad"]


class ConstantPad(Function):
    node_name = "ConstantPadNdBackward0"

    @staticmethod
    def forward(ctx, x, pads, value):
        ctx.pads = pads
        shape = list(x._shape)
        nd = len(shape)
        out_shape = list(shape)
        src_off, dst_off = [0] * nd, [0] * nd
        region = list(shape)
        for i in range(len(pads) // 2):
            d = nd - 1 - i
            a, b = pads[2 * i], pads[2 * i + 1]
            n = shape[d] + a + b
            if n < 0:
                raise RuntimeError(f"The input size {shape[d]}, plus negative padding {a} and {b} resulted in a "
                                   f"negative output size, which is invalid. Check dimension {d} of your input.")
            out_shape[d] = n
            src_off[d] = max(-a, 0)
            dst_off[d] = max(a, 0)
            region[d] = max(shape[d] - max(-a, 0) - max(-b, 0), 0)
        dev = x._storage.device
        out = empty(tuple(out_shape), x.dtype, dev)
        if any(r != o for r, o in zip(region, out_shape)):
            fill_raw(out, 0 if value is None else value)
        if all(region):
            dst = make(out._storage, tuple(region), out._strides,
                       out._offset + sum(o * s for o, s in zip(dst_off, out._strides)), out.dtype)
            src = make(x._storage, tuple(region), x._strides,
                       x._offset + sum(o * s for o, s in zip(src_off, x._strides)), x.dtype)
            copy_into(dst, src)
        return out

    @staticmethod
    def backward(ctx, g):
        return ConstantPad.apply(g, tuple(-p for p in ctx.pads), 0), None, None


_IDX = {}


def _index(mode, n, a, b, dev):
    key = (mode, n, a, b, dev)
    t = _IDX.get(key)
    if t is None:
        i = np.arange(-a, n + b)
        if mode == "reflect":
            period = 2 * (n - 1) if n > 1 else 1
            i = np.abs(i) % period
            i = np.where(i >= n, period - i, i)
        elif mode == "replicate":
            i = np.clip(i, 0, n - 1)
        else:
            i = i % n
        t = _tensor(i.astype(np.int64), device=dev)
        if len(_IDX) < 1024:
            _IDX[key] = t
    return t


def pad(input, pad, mode="constant", value=None):
    if not isinstance(input, Tensor):
        raise TypeError(f"pad(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {input.ndim}")
    if mode == "constant":
        return ConstantPad.apply(input, pad, value)
    if value is not None and value != 0:
        raise RuntimeError(f"Padding mode \"{mode}\" doesn't take in value argument")
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    k = len(pad) // 2
    if not (k in (1, 2, 3) and input.ndim in (k + 1, k + 2)):
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {input.ndim}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    x = input
    for i in range(k):
        d = x.ndim - 1 - i
        a, b = pad[2 * i], pad[2 * i + 1]
        n = x.shape[d]
        if mode == "reflect" and (a >= n or b >= n):
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input dimension, "
                               f"but got: padding ({a}, {b}) at dimension {d} of input {list(input.shape)}")
        if mode == "circular" and (a > n or b > n):
            raise RuntimeError("Padding value causes wrapping around more than once.")
        if mode == "replicate" and n == 0 and (a or b):
            raise RuntimeError(f"input tensor must have non-zero size at dimension {d}")
        if a == 0 and b == 0:
            continue
        if a < 0 or b < 0:          # negative pads crop first
            x = x.narrow(d, max(-a, 0), n - max(-a, 0) - max(-b, 0))
            n = x.shape[d]
            a, b = max(a, 0), max(b, 0)
        x = x.index_select(d, _index(mode, n, a, b, x.device))
    return x
