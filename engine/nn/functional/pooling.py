"""pooling functionals: one OpenCL kernel per forward (max: values + indices; avg; adaptive
windows) and a gather kernel per backward (engine/ops/conv.py).  1-D pooling is 2-D with H = 1."""
from ...ops.conv import AvgPool, MaxPool
from ...dtypes import bool_ as _bool
from ...tensor import Tensor

__all__ = ["max_pool1d", "max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices",
           "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool1d_with_indices",
           "adaptive_max_pool2d_with_indices", "lp_pool1d", "lp_pool2d"]


def _tup(v, n):
    if isinstance(v, (list, tuple)):
        v = tuple(int(a) for a in v)
        return v * n if len(v) == 1 else v
    return (int(v),) * n


def _out_size(i, k, p, s, d, ceil):
    o = (i + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    if ceil and (o - 1) * s >= i + p:
        o -= 1
    return o


_SNAME = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
          "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _not_impl(name, x):
    d = str(x.dtype).split(".")[-1]
    raise NotImplementedError(f'"{name}" not implemented for \'{_SNAME.get(d, d)}\'')


def _batch(x, nd, name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")
    if x.ndim not in (nd + 1, nd + 2) or any(s == 0 for s in x.shape[-(nd + 1):]):
        if nd == 2:
            raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
        raise RuntimeError(f"{name}: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size for "
                           f"input, but got: {list(x.shape)}")
    unb = x.ndim == nd + 1
    if unb:
        x = x.unsqueeze(0)
    if nd == 1:
        x = x.unsqueeze(2)
    return x, unb


def _unbatch(out, nd, unb):
    if nd == 1:
        out = out.squeeze(2)
    if unb:
        out = out.squeeze(0)
    return out


def _pool_geom(x4, nd, kernel_size, stride, padding, dilation, ceil_mode, name):
    k = _tup(kernel_size, nd)
    s = _tup(stride, nd) if stride is not None and stride != [] and stride != () else k
    p = _tup(padding, nd)
    d = _tup(dilation, nd)
    if len(k) != nd or len(s) != nd or len(p) != nd or len(d) != nd:
        raise RuntimeError(f"{name}: kernel_size, stride, padding and dilation must be a single int or a tuple of "
                           f"{nd} ints")
    if any(a <= 0 for a in k):
        raise RuntimeError(f"{name}: kernel_size must be greater than zero, but got {list(k)}")
    if any(a <= 0 for a in s):
        raise RuntimeError(f"{name}: stride must be greater than zero, but got {list(s)}")
    if any(a <= 0 for a in d):
        raise RuntimeError(f"{name}: dilation must be greater than zero, but got {list(d)}")
    for kk, pp, dd in zip(k, p, d):
        if pp < 0 or pp > ((kk - 1) * dd + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={pp}, "
                               f"kernel_size={kk} and dilation={dd}")
    N, C, H, W = x4.shape
    sp = (W,) if nd == 1 else (H, W)
    outs = tuple(_out_size(i, kk, pp, ss, dd, ceil_mode) for i, kk, pp, ss, dd in zip(sp, k, p, s, d))
    if any(o <= 0 for o in outs):
        if nd == 1 and name.startswith("max"):
            raise RuntimeError(f"max_pool1d() Invalid computed output size: {outs[0]}")
        ins = (C,) + ((1,) if nd == 1 else ()) + sp
        os_ = (C,) + ((1,) if nd == 1 else ()) + outs
        raise RuntimeError(f"Given input size: ({'x'.join(map(str, ins))}). Calculated output size: "
                           f"({'x'.join(map(str, os_))}). Output size is too small")
    if nd == 1:
        k, s, p, d, outs = (1,) + k, (1,) + s, (0,) + p, (1,) + d, (1,) + outs
    return (C, H, W, outs[0], outs[1], k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1])


def _max_pool(nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    name = f"max_pool{nd}d"
    x4, unb = _batch(input, nd, name)
    if x4.dtype is _bool or (nd == 1 and not x4.dtype.is_floating_point):
        _not_impl("max_pool1d_impl" if nd == 1 else name, x4)
    geom = _pool_geom(x4, nd, kernel_size, stride, padding, dilation, ceil_mode, name)
    out, idx = MaxPool.apply(x4, geom, False)
    out = _unbatch(out, nd, unb)
    if return_indices:
        return out, _unbatch(idx, nd, unb)
    return out


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    name = f"avg_pool{nd}d"
    x4, unb = _batch(input, nd, name)
    if x4.dtype is _bool:
        _not_impl(name, x4)
    if divisor_override is not None and nd == 2 and int(divisor_override) == 0:
        raise RuntimeError("divisor must be not zero")
    geom = _pool_geom(x4, nd, kernel_size, stride, padding, 1, ceil_mode, name)
    out = AvgPool.apply(x4, geom, False, bool(count_include_pad), divisor_override)
    return _unbatch(out, nd, unb)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def _adaptive_geom(x, nd, output_size, name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")
    if x.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{name}(): Expected {nd + 1}D or {nd + 2}D tensor, but got {list(x.shape)}")
    for i in range(1, x.ndim):
        if x.shape[i] == 0:
            raise RuntimeError(f"{name}(): Expected input to have non-zero size for non-batch dimensions, but input "
                               f"has sizes {list(x.shape)} with dimension {i} being empty")
    if isinstance(output_size, (list, tuple)):
        osz = tuple(output_size)
        if len(osz) == 1 and nd == 2:
            osz = osz * 2
        if len(osz) != nd:
            raise RuntimeError(f"{name}: output_size must be {nd}")
    else:
        osz = (output_size,) * nd
    sp = tuple(x.shape[-nd:])
    osz = tuple(int(i) if o is None else int(o) for o, i in zip(osz, sp))
    if any(o < 0 for o in osz):
        raise RuntimeError(f"{name}: elements of output_size must be greater than or equal to 0 but received "
                           f"{list(osz)}")
    if not x.dtype.is_floating_point:
        _not_impl(name[:-2] + "2d", x)
    unb = x.ndim == nd + 1
    x4 = x.unsqueeze(0) if unb else x
    if nd == 1:
        x4 = x4.unsqueeze(2)
    N, C, H, W = x4.shape
    OH, OW = (1, osz[0]) if nd == 1 else osz
    return x4, unb, osz, (C, H, W, OH, OW, 1, 1, 1, 1, 0, 0, 1, 1)


def adaptive_avg_pool1d(input, output_size):
    x4, unb, osz, geom = _adaptive_geom(input, 1, output_size, "adaptive_avg_pool1d")
    if osz == (1,) and x4.numel():
        out = x4.mean(3, keepdim=True)
    else:
        out = AvgPool.apply(x4, geom, True, True, None)
    return _unbatch(out, 1, unb)


def adaptive_avg_pool2d(input, output_size):
    x4, unb, osz, geom = _adaptive_geom(input, 2, output_size, "adaptive_avg_pool2d")
    if osz == (1, 1) and x4.numel():
        out = x4.mean((2, 3), keepdim=True)
    else:
        out = AvgPool.apply(x4, geom, True, True, None)
    return _unbatch(out, 2, unb)


def _adaptive_max(nd, input, output_size, return_indices):
    name = f"adaptive_max_pool{nd}d"
    x4, unb, osz, geom = _adaptive_geom(input, nd, output_size, name)
    out, idx = MaxPool.apply(x4, geom, True)
    out = _unbatch(out, nd, unb)
    if return_indices:
        return out, _unbatch(idx, nd, unb)
    return out


def adaptive_max_pool1d(input, output_size, return_indices=False):
    return _adaptive_max(1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _adaptive_max(2, input, output_size, return_indices)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=True):
    return _adaptive_max(1, input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=True):
    return _adaptive_max(2, input, output_size, True)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    k = kernel_size
    out = avg_pool1d(input.pow(norm_type), k, stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu()).mul(k).pow(1.0 / norm_type)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    kh, kw = _tup(kernel_size, 2)
    out = avg_pool2d(input.pow(norm_type), (kh, kw), stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu()).mul(kh * kw).pow(1.0 / norm_type)
