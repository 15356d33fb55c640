"""Shared plumbing for ops: broadcasting, output allocation, kernel calls without autograd."""
from .. import dtypes as D
from ..autograd import grad_mode as _gm
from ..runtime import elementwise as _ew
from ..runtime import reduction as _red
from ..runtime.memory import Storage as _Storage
from ..tensor import Tensor, empty, make, wrap_dim

state = _gm.state
_bcast_cache = {}


def broadcast_shapes(*shapes):
    key = shapes
    r = _bcast_cache.get(key)
    if r is not None:
        return r
    nd = max(len(s) for s in shapes)
    out = [1] * nd
    for s in shapes:
        for i, n in enumerate(s):
            j = nd - len(s) + i
            if n == out[j] or n == 1:
                continue
            if out[j] == 1:
                out[j] = n
            else:
                a = [x for x in shapes if len(x) >= nd - j and x[j - (nd - len(x))] != 1]
                raise RuntimeError(
                    f"The size of tensor a ({out[j]}) must match the size of tensor b ({n}) at non-singleton "
                    f"dimension {j}: shapes {' and '.join(str(list(x)) for x in shapes)} can't be broadcast together")
    r = tuple(out)
    if len(_bcast_cache) < 4096:
        _bcast_cache[key] = r
    return r


def expand_raw(t, shape):
    """A stride-0 broadcast view of t with `shape` (no autograd)."""
    if t._shape == shape:
        return t
    nd = len(shape)
    off = nd - t.ndim
    st = [0] * nd
    for i, (n, s) in enumerate(zip(t._shape, t._strides)):
        if n == shape[i + off]:
            st[i + off] = s if n != 1 else 0
        elif n == 1:
            st[i + off] = 0
        else:
            raise RuntimeError(f"The expanded size of the tensor ({shape[i + off]}) must match the existing "
                               f"size ({n}) at non-singleton dimension {i + off}.  Target sizes: {list(shape)}."
                               f"  Tensor sizes: {list(t._shape)}")
    return make(t._storage, shape, tuple(st), t._offset, t.dtype)


def device_of(args):
    dev = None
    for a in args:
        if isinstance(a, Tensor):
            d = a._storage.device
            if dev is None:
                dev = d
            elif d is not dev:
                raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two "
                                   f"devices, cl:{dev.index} and cl:{d.index}!")
    return dev


def check_dtype(dev, dt):
    if dt is D.float64 and not dev.fp64:
        raise TypeError(f"float64 is not supported on device {dev.name} (it does not report cl_khr_fp64); "
                        "use float32")
    if dt is D.float16 and not dev.fp16:
        raise TypeError(f"float16 is not supported on device {dev.name} (no cl_khr_fp16)")


def ew(op, expr, args, out_dtype, compute_dtype, out=None, preamble=""):
    """Elementwise kernel over broadcast `args` (Tensors or Python scalars): a new tensor."""
    cct = compute_dtype.ctype
    if out is None:
        na = len(args)
        if na == 2 and not preamble:
            r = _fast2(op, expr, args[0], args[1], out_dtype, cct)
            if r is not None:
                return r
        elif na == 1:
            a = args[0]
            if isinstance(a, Tensor):  # unary: nothing to broadcast or check
                dev = a._storage.device
                out = empty(a._shape, out_dtype, dev)
                _ew.run(dev, op, expr, out, [a], [cct], preamble)
                return out
    dev = device_of(args)
    shapes = [a._shape for a in args if isinstance(a, Tensor)]
    shape = broadcast_shapes(*shapes) if len(shapes) > 1 else shapes[0]
    ops = [expand_raw(a, shape) if isinstance(a, Tensor) else a for a in args]
    if out is None:
        out = empty(shape, out_dtype, dev)
    _ew.run(dev, op, expr, out, ops, [cct] * len(ops), preamble)
    return out


_BIG = 2**31


def _fast2(op, expr, a, b, out_dtype, cct):
    """ew's hot path (the runtime's run_fast): a contiguous tensor `a` whose C type is the
    compute type, and `b` a contiguous tensor of a's shape and dtype or a Python number
    (already converted by the caller). None when the general path is needed."""
    if not isinstance(a, Tensor):
        return None
    dt = a.dtype
    if dt.ctype != cct:
        return None
    shape = a._shape
    cs = _ew.cstrides(shape)
    st = a._storage
    if a._strides != cs or st.size >= _BIG:
        return None
    dev = st.device
    if isinstance(b, Tensor):
        if (b._shape != shape or b.dtype is not dt or b._strides != cs or b._storage.device is not dev
                or b._storage.size >= _BIG):
            return None
    elif type(b) is not float and type(b) is not int:
        return None
    if out_dtype is D.float64 and not dev.fp64:
        return None  # the general path raises the error
    n = 1
    for k in shape:
        n *= k
    nbytes = n * out_dtype.itemsize
    if nbytes >= _BIG or "gid" in expr:
        return None
    out = make(_Storage(dev, nbytes), shape, cs, 0, out_dtype)
    _ew.run_fast(dev, op, expr, out, a, b, cct, None)
    return out


def ew_into(op, expr, out, args, compute_dtype, preamble=""):
    """Elementwise kernel writing into the (possibly strided) tensor `out`."""
    dev = device_of([out, *args])
    shape = out._shape
    ops = [expand_raw(a, shape) if isinstance(a, Tensor) else a for a in args]
    _ew.run(dev, op, expr, out, ops, [compute_dtype.ctype] * len(ops), preamble)
    return out


def copy_into(dst, src):
    """dst[...] = src (broadcast, cast), any strides."""
    dev = dst._storage.device
    if isinstance(src, Tensor):
        if src._storage.device is not dev:
            device_of((dst, src))  # raises
        shape = dst._shape
        if src._shape != shape:
            bs = broadcast_shapes(shape, src._shape)
            if bs != shape:
                raise RuntimeError(f"output with shape {list(shape)} doesn't match the broadcast shape {list(bs)}")
            src = expand_raw(src, shape)
        ct = src.dtype.ctype
    else:
        ct = dst.dtype.ctype
    _ew.run(dev, "copy", "(v1 != 0)" if dst.dtype is D.bool_ else "v1", dst, [src], [ct])
    return dst


def contiguous_raw(t):
    if t.is_contiguous():
        return t
    out = empty(t._shape, t.dtype, t._storage.device)
    ew_into("copy", "v1", out, [t], t.dtype)
    return out


def acc_ctype(dt):
    if dt.is_floating_point:
        return "double" if dt is D.float64 else "float"
    return "long"


def reduce_raw(op, x, dims, keepdim, out_dtype, pre="v", post="acc", p=0, with_index=False):
    """Reduce x over `dims` (normalised tuple); returns (values, indices or None)."""
    dev = x._storage.device
    nd = x.ndim
    kept_shape = tuple(n for d, n in enumerate(x._shape) if d not in dims)
    out = empty(kept_shape, out_dtype, dev)
    idx = empty(kept_shape, D.int64, dev) if with_index else None
    acc = acc_ctype(x.dtype) if op in ("sum", "prod") or x.dtype.is_floating_point else acc_ctype(out_dtype)
    if op in ("max", "min"):
        acc = x.dtype.ctype if x.dtype is not D.bool_ else "uchar"
        if x.dtype.is_floating_point:
            acc = "double" if x.dtype is D.float64 else "float"

    def scratch(n, ct):
        dt = {"float": D.float32, "double": D.float64, "long": D.int64, "int": D.int32,
              "uchar": D.uint8}[ct]
        return empty((n,), dt, dev)
    _red.run(dev, op, x, list(dims), out, acc, pre, post, p, idx, scratch)
    if keepdim:
        ks = tuple(1 if d in dims else n for d, n in enumerate(x._shape))
        out = make(out._storage, ks, _ew.contiguous_strides(ks), 0, out.dtype)
        if idx is not None:
            idx = make(idx._storage, ks, _ew.contiguous_strides(ks), 0, idx.dtype)
    return out, idx


def norm_dims(dim, nd):
    """Normalise an int / tuple / None dim argument to a sorted tuple."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(nd))
    if isinstance(dim, (tuple, list)):
        ds = tuple(sorted(wrap_dim(d, nd) for d in dim))
        if len(set(ds)) != len(ds):
            raise RuntimeError(f"dim {ds[0]} appears multiple times in the list of dims")
        return ds if nd else ()
    d = wrap_dim(dim, nd)
    return (d,) if nd else ()


def sum_to(g, shape):
    """Sum a broadcast gradient back to `shape` (the backward of broadcasting)."""
    if g._shape == tuple(shape):
        return g
    nd = g.ndim
    lead = nd - len(shape)
    dims = list(range(lead))
    for i, n in enumerate(shape):
        if n == 1 and g._shape[lead + i] != 1:
            dims.append(lead + i)
    if not dims:
        return g.reshape(shape)
    # without keepdim where that already gives `shape`: a bias gradient is then a fresh tensor, not a
    # view of one, which the leaf's AccumulateGrad can take without a copy
    r = g.sum(dim=tuple(dims))
    return r if r._shape == tuple(shape) else r.reshape(shape)


def result_dtype(*args):
    """torch.result_type; the common two-operand cases without the general walk."""
    if len(args) == 2:
        a, b = args
        if isinstance(a, Tensor):
            da = a.dtype
            if isinstance(b, Tensor):
                if b.dtype is da:
                    return da
            else:
                tb = type(b)
                if tb is float:
                    if da.kind == 2:
                        return da
                elif tb is int and da.kind:
                    return da
    return D.result_type(*args)


def to_float_dtype(dt):
    return dt if dt.is_floating_point else D.get_default_dtype()


def fast_binary(op, expr, a, b):
    """The per-op hot path for `a <op> b` without autograd: contiguous same-shape,
    same-dtype tensors, or a tensor and a Python number of no higher kind. Returns
    None when the general path (broadcasting, promotion, autograd) is needed."""
    if state.enabled and (a._rg or (isinstance(b, Tensor) and b._rg)):
        return None
    dt = a.dtype
    if dt.kind == 0:
        return None
    shape = a._shape
    cs = _ew.cstrides(shape)
    if a._strides != cs:
        return None
    if isinstance(b, Tensor):
        if b._shape != shape or b.dtype is not dt or b._strides != cs or b._storage.device is not a._storage.device:
            return None
    else:
        tb = type(b)
        if tb is float:
            if dt.kind != 2:
                return None
        elif tb is not int or not -2**31 <= b < 2**31:
            return None
    dev = a._storage.device
    out = make(_Storage(dev, a.numel() * dt.itemsize), shape, cs, 0, dt)
    _ew.run_fast(dev, op, expr, out, a, b, dt.ctype, None)
    return out
