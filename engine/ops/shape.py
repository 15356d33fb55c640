"""Views (no copies: new shape/strides/offset over the same storage) and
shape ops that copy (contiguous, cat, stack, repeat)."""
import numbers

from .. import dtypes as D
from ..autograd.function import Function
from ..runtime.elementwise import contiguous_strides
from ..tensor import Size, Tensor, empty, view_of, wrap_dim
from ._core import contiguous_raw, copy_into, device_of, expand_raw, sum_to

__all__ = ["reshape", "permute", "transpose", "swapaxes", "swapdims", "t", "squeeze", "unsqueeze",
           "flatten", "unflatten", "narrow", "select", "cat", "concat", "concatenate", "stack", "hstack",
           "vstack", "split", "chunk", "unbind", "movedim", "moveaxis", "broadcast_to", "broadcast_tensors",
           "flip", "roll", "diagonal", "as_strided", "tile", "atleast_1d", "atleast_2d", "clone", "diag",
           "diag_embed", "squeeze_copy", "column_stack"]


def _sizes(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list, Size)):
        args = tuple(args[0])
    return tuple(int(a) for a in args)


def _infer_size(shape, numel):
    shape = list(shape)
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape[neg[0]] = numel // known
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return tuple(shape)


def _view_strides(old_shape, old_strides, new_shape):
    """Strides that let `new_shape` view the same memory, or None (PyTorch's computeStride)."""
    if not old_shape:
        return contiguous_strides(new_shape)
    numel = 1
    for s in old_shape:
        numel *= s
    if numel == 0:
        return contiguous_strides(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base_stride = old_strides[-1]
    tensor_numel = 1
    view_numel = 1
    for tensor_d in range(len(old_shape) - 1, -1, -1):
        tensor_numel *= old_shape[tensor_d]
        if tensor_d == 0 or (old_shape[tensor_d - 1] != 1 and
                             old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base_stride = old_strides[tensor_d - 1]
                tensor_numel = 1
                view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


class View(Function):
    node_name = "ViewBackward0"

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        st = _view_strides(x.shape, x._strides, shape)
        if st is None:
            raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one "
                               "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
        return view_of(x, shape, st, x._offset)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.in_shape), None


def view(x, *shape):
    if len(shape) == 1 and (isinstance(shape[0], D.dtype) or isinstance(shape[0], str) or isinstance(shape[0], type)):
        return _view_dtype(x, D.to_dtype(shape[0]))
    shape = _infer_size(_sizes(shape), x.numel())
    if shape == x._shape:
        return View.apply(x, shape) if x._rg else view_of(x, x._shape, x._strides, x._offset)
    return View.apply(x, shape)


def _view_dtype(x, dt):
    if dt.itemsize != x.dtype.itemsize:
        raise RuntimeError("view(dtype) with a different element size is not supported")
    t = view_of(x, x._shape, x._strides, x._offset)
    t.dtype = dt
    return t


def reshape(x, *shape):
    shape = _infer_size(_sizes(shape), x.numel())
    if _view_strides(x.shape, x._strides, shape) is not None:
        return View.apply(x, shape)
    return View.apply(contiguous(x), shape)


class Contiguous(Function):
    node_name = "CloneBackward0"

    @staticmethod
    def forward(ctx, x):
        out = empty(x._shape, x.dtype, x._storage.device)
        copy_into(out, x)
        return out

    @staticmethod
    def backward(ctx, g):
        return g


def contiguous(x, memory_format=None):
    return x if x.is_contiguous() else Contiguous.apply(x)


def clone(x, memory_format=None):
    return Contiguous.apply(x)


class Permute(Function):
    node_name = "PermuteBackward0"

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return view_of(x, tuple(x._shape[d] for d in dims), tuple(x._strides[d] for d in dims), x._offset)

    @staticmethod
    def backward(ctx, g):
        inv = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inv[d] = i
        return g.permute(inv), None


def permute(x, *dims):
    dims = _sizes(dims)
    nd = x.ndim
    if len(dims) != nd:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
                           f"length of the desired ordering of dimensions i.e. input.dim() = {nd} is not equal "
                           f"to len(dims) = {len(dims)}")
    dims = tuple(wrap_dim(d, nd) for d in dims)
    if len(set(dims)) != nd:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return Permute.apply(x, dims)


def transpose(x, dim0, dim1):
    nd = x.ndim
    if nd == 0:
        return view_of(x, (), (), x._offset) if not x._rg else Permute.apply(x, ())
    d0, d1 = wrap_dim(dim0, nd), wrap_dim(dim1, nd)
    dims = list(range(nd))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(x, tuple(dims))


swapaxes = swapdims = transpose


def t(x):
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D")
    return transpose(x, 0, 1) if x.ndim == 2 else Permute.apply(x, tuple(range(x.ndim)))


def movedim(x, source, destination):
    nd = x.ndim
    src = [wrap_dim(s, nd) for s in (source if isinstance(source, (tuple, list)) else [source])]
    dst = [wrap_dim(d, nd) for d in (destination if isinstance(destination, (tuple, list)) else [destination])]
    order = [None] * nd
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(d for d in range(nd) if d not in src)
    order = [o if o is not None else next(rest) for o in order]
    return Permute.apply(x, tuple(order))


moveaxis = movedim


class Expand(Function):
    node_name = "ExpandBackward0"

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        v = expand_raw(x, shape)
        return view_of(x, v._shape, v._strides, v._offset)

    @staticmethod
    def backward(ctx, g):
        return sum_to(g, ctx.in_shape), None


def expand(x, *sizes):
    sizes = _sizes(sizes)
    if len(sizes) < x.ndim:
        raise RuntimeError(f"expand(torch.FloatTensor{{{list(x.shape)}}}, size=[{', '.join(map(str, sizes))}]): the "
                           f"number of sizes provided ({len(sizes)}) must be greater or equal to the number of "
                           f"dimensions in the tensor ({x.ndim})")
    off = len(sizes) - x.ndim
    shape = tuple(x._shape[i - off] if s == -1 and i >= off else s for i, s in enumerate(sizes))
    if any(s < 0 for s in shape):
        raise RuntimeError(f"expand: the expanded size {list(sizes)} is invalid for a tensor of shape {list(x.shape)}")
    return Expand.apply(x, shape)


def expand_as(x, other):
    return expand(x, other.shape)


def broadcast_to(x, shape):
    return expand(x, shape)


def broadcast_tensors(*tensors):
    from ._core import broadcast_shapes
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(expand(t, shape) for t in tensors)


def unsqueeze(x, dim):
    d = wrap_dim(dim, x.ndim + 1)
    shape = list(x._shape)
    shape.insert(d, 1)
    return View.apply(x, tuple(shape))


def squeeze(x, dim=None):
    if dim is None:
        dims = [d for d, n in enumerate(x._shape) if n == 1]
    else:
        ds = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = [wrap_dim(d, x.ndim) for d in ds] if x.ndim else []
        dims = [d for d in dims if x._shape[d] == 1]
    shape = tuple(n for d, n in enumerate(x._shape) if d not in dims)
    return View.apply(x, shape)


squeeze_copy = squeeze


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = wrap_dim(start_dim, x.ndim), wrap_dim(end_dim, x.ndim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    n = 1
    for d in range(s, e + 1):
        n *= x._shape[d]
    return reshape(x, x._shape[:s] + (n,) + x._shape[e + 1:])


def unflatten(x, dim, sizes):
    d = wrap_dim(dim, x.ndim)
    sizes = _infer_size(tuple(sizes), x._shape[d])
    return reshape(x, x._shape[:d] + sizes + x._shape[d + 1:])


# ---- strided sub-views (slicing): backward scatters into zeros -----------------
class SliceView(Function):
    """x[geom]: a view; the gradient is scattered into zeros of x's shape."""
    node_name = "SliceBackward0"

    @staticmethod
    def forward(ctx, x, geom):
        ctx.in_shape, ctx.geom = x.shape, geom
        shape, st, off = _geom_view(x, geom)
        return view_of(x, shape, st, off)

    @staticmethod
    def backward(ctx, g):
        return SliceScatter.apply(g, ctx.in_shape, ctx.geom), None


class SliceScatter(Function):
    node_name = "SliceScatterBackward0"

    @staticmethod
    def forward(ctx, g, in_shape, geom):
        ctx.geom = geom
        z = empty(in_shape, g.dtype, g._storage.device)
        from .creation import fill_raw
        fill_raw(z, 0)
        shape, st, off = _geom_view(z, geom)
        tgt = view_of(z, shape, st, off)
        copy_into(tgt, g)
        return z

    @staticmethod
    def backward(ctx, gg):
        return SliceView.apply(gg, ctx.geom), None, None


def _geom_view(t, geom):
    """geom = (out_shape, ((src_dim|None, start, step), ...), ((int_dim, index), ...))"""
    shape, dims, fixed = geom
    off = t._offset
    strides = []
    for src, start, step in dims:
        if src is None:
            strides.append(0)
        else:
            off += start * t._strides[src]
            strides.append(t._strides[src] * step)
    for d, i in fixed:
        off += i * t._strides[d]
    return shape, tuple(strides), off


def slice_view(x, geom):
    return SliceView.apply(x, geom)


def narrow(x, dim, start, length):
    d = wrap_dim(dim, x.ndim)
    if isinstance(start, Tensor):
        start = int(start.item())
    n = x._shape[d]
    if start < 0:
        start += n
    if not 0 <= start <= n or length < 0 or start + length > n:
        raise IndexError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    dims = tuple((i, start if i == d else 0, 1) for i in range(x.ndim))
    shape = tuple(length if i == d else s for i, s in enumerate(x._shape))
    return SliceView.apply(x, (shape, dims, ()))


def select(x, dim, index):
    d = wrap_dim(dim, x.ndim)
    n = x._shape[d]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(x.shape)} at dimension {d}")
    index = index + n if index < 0 else index
    dims = tuple((i, 0, 1) for i in range(x.ndim) if i != d)
    shape = tuple(s for i, s in enumerate(x._shape) if i != d)
    return SliceView.apply(x, (shape, dims, ((d, index),)))


def diagonal(x, offset=0, dim1=0, dim2=1):
    d1, d2 = wrap_dim(dim1, x.ndim), wrap_dim(dim2, x.ndim)
    n1, n2 = x._shape[d1], x._shape[d2]
    if offset >= 0:
        length = max(0, min(n1, n2 - offset))
        base = ((d2, offset),)
    else:
        length = max(0, min(n1 + offset, n2))
        base = ((d1, -offset),)
    rest = [i for i in range(x.ndim) if i not in (d1, d2)]
    shape = tuple(x._shape[i] for i in rest) + (length,)
    # the diagonal dim steps both d1 and d2: expressed as a custom stride below
    return Diagonal.apply(x, offset, d1, d2, shape, rest, base)


class Diagonal(Function):
    node_name = "DiagonalBackward0"

    @staticmethod
    def forward(ctx, x, offset, d1, d2, shape, rest, base):
        ctx.args = (x.shape, offset, d1, d2)
        off = x._offset + sum(i * x._strides[d] for d, i in base)
        st = tuple(x._strides[i] for i in rest) + (x._strides[d1] + x._strides[d2],)
        if 0 in shape:
            off = x._offset
        return view_of(x, shape, st, off)

    @staticmethod
    def backward(ctx, g):
        in_shape, offset, d1, d2 = ctx.args
        from .creation import zeros
        z = zeros(in_shape, dtype=g.dtype, device=g.device)
        z.diagonal(offset, d1, d2).copy_(g)
        return z, None, None, None, None, None, None


def as_strided(x, size, stride, storage_offset=None):
    off = x._offset if storage_offset is None else storage_offset
    return view_of(x, tuple(size), tuple(stride), off)


def unfold(x, dimension, size, step):
    d = wrap_dim(dimension, x.ndim)
    n = (x._shape[d] - size) // step + 1
    shape = x._shape[:d] + (n,) + x._shape[d + 1:] + (size,)
    st = x._strides[:d] + (x._strides[d] * step,) + x._strides[d + 1:] + (x._strides[d],)
    return Unfold.apply(x, shape, st, d, size, step)


class Unfold(Function):
    node_name = "UnfoldBackward0"

    @staticmethod
    def forward(ctx, x, shape, st, d, size, step):
        ctx.args = (x.shape, d, size, step)
        return view_of(x, shape, st, x._offset)

    @staticmethod
    def backward(ctx, g):
        in_shape, d, size, step = ctx.args
        from .creation import zeros
        z = zeros(in_shape, dtype=g.dtype, device=g.device)
        n = g.shape[d]
        for k in range(size):  # overlapping windows: accumulate one window offset at a time
            idx = [slice(None)] * len(in_shape)
            idx[d] = slice(k, k + (n - 1) * step + 1, step)
            sel = g.select(g.ndim - 1, k)
            z[tuple(idx)] = z[tuple(idx)] + sel
        return z, None, None, None, None, None


# ---- copies ------------------------------------------------------------------------
class Cat(Function):
    node_name = "CatBackward0"

    @staticmethod
    def forward(ctx, dim, *ts):
        ref = ts[0]
        dev = device_of(ts)
        dt = ts[0].dtype
        for x in ts[1:]:
            dt = D.promote_types(dt, x.dtype)
        nd = ref.ndim
        for i, x in enumerate(ts):
            if x.ndim != nd:
                raise RuntimeError(f"Tensors must have same number of dimensions: got {nd} and {x.ndim}")
            for j in range(nd):
                if j != dim and x._shape[j] != ref._shape[j]:
                    raise RuntimeError(f"Sizes of tensors must match except in dimension {dim}. Expected size "
                                       f"{ref._shape[j]} but got size {x._shape[j]} for tensor number {i} in the list.")
        sizes = [x._shape[dim] for x in ts]
        ctx.sizes, ctx.dim = sizes, dim
        shape = list(ref._shape)
        shape[dim] = sum(sizes)
        out = empty(tuple(shape), dt, dev)
        pos = 0
        for x, n in zip(ts, sizes):
            if n:
                sub = view_of(out, x._shape, out._strides, out._offset + pos * out._strides[dim])
                copy_into(sub, x)
            pos += n
        return out

    @staticmethod
    def backward(ctx, g):
        return (None,) + tuple(g.split(ctx.sizes, ctx.dim))


def cat(tensors, dim=0, out=None):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    for x in tensors:
        if not isinstance(x, Tensor):
            raise TypeError(f"expected Tensor as element in argument 0, but got {type(x).__name__}")
    # legacy: 1-D empty tensors are skipped
    keep = [x for x in tensors if not (x.ndim == 1 and x._shape[0] == 0)] or tensors[:1]
    d = wrap_dim(dim, keep[0].ndim)
    r = Cat.apply(d, *keep)
    if out is not None:
        out.copy_(r)
        return out
    return r


concat = concatenate = cat


def stack(tensors, dim=0, out=None):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    s0 = tensors[0].shape
    for i, x in enumerate(tensors):
        if x.shape != s0:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(s0)} at entry 0 and "
                               f"{list(x.shape)} at entry {i}")
    d = wrap_dim(dim, len(s0) + 1)
    return cat([unsqueeze(x, d) for x in tensors], d, out=out)


def hstack(tensors):
    tensors = [atleast_1d(x) for x in tensors]
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([atleast_2d(x) for x in tensors], 0)


def column_stack(tensors):
    return hstack([x.reshape(-1, 1) if x.ndim <= 1 else x for x in tensors])


def atleast_1d(x):
    return reshape(x, (1,)) if x.ndim == 0 else x


def atleast_2d(x):
    return reshape(x, (1,) * (2 - x.ndim) + x.shape) if x.ndim < 2 else x


def split(x, split_size_or_sections, dim=0):
    d = wrap_dim(dim, x.ndim)
    n = x._shape[d]
    if isinstance(split_size_or_sections, numbers.Integral):
        s = int(split_size_or_sections)
        if s <= 0 and n:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
        sizes = [min(s, n - i) for i in range(0, n, s)] if s else [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size "
                               f"at dimension {d}), but got split_sizes={sizes}")
    out = []
    pos = 0
    for s in sizes:
        out.append(narrow(x, d, pos, s))
        pos += s
    return tuple(out)


def chunk(x, chunks, dim=0):
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0")
    n = x._shape[wrap_dim(dim, x.ndim)]
    size = -(-n // chunks) if n else 0
    if size == 0:
        return split(x, [0] * 1 if not n else 1, dim)
    return split(x, size, dim)


def unbind(x, dim=0):
    d = wrap_dim(dim, x.ndim)
    return tuple(select(x, d, i) for i in range(x._shape[d]))


def repeat(x, *sizes):
    sizes = _sizes(sizes)
    if len(sizes) < x.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    xs = reshape(x, (1,) * (len(sizes) - x.ndim) + x.shape)
    # expand an interleaved (r, n) view, then merge: a copy via reshape
    inter = []
    shape = []
    for r, n in zip(sizes, xs.shape):
        inter += [1, n]
        shape += [r, n]
    e = expand(reshape(xs, tuple(inter)), tuple(shape))
    return reshape(contiguous(e), tuple(r * n for r, n in zip(sizes, xs.shape)))


def tile(x, dims):
    dims = tuple(dims)
    if len(dims) < x.ndim:
        dims = (1,) * (x.ndim - len(dims)) + dims
    return repeat(x, dims)


def flip(x, dims):
    from .indexing import index_select
    from .creation import arange
    dims = [dims] if isinstance(dims, int) else dims
    out = x
    for d in dims:
        d = wrap_dim(d, x.ndim)
        n = x._shape[d]
        out = index_select(out, d, arange(n - 1, -1, -1, device=x.device))
    return out


def roll(x, shifts, dims=None):
    if dims is None:
        return roll(flatten(x), shifts, 0).reshape(x.shape)
    shifts = [shifts] if isinstance(shifts, int) else list(shifts)
    dims = [dims] if isinstance(dims, int) else list(dims)
    out = x
    for s, d in zip(shifts, dims):
        d = wrap_dim(d, x.ndim)
        n = x._shape[d]
        if n == 0:
            continue
        s %= n
        if s:
            out = cat([narrow(out, d, n - s, s), narrow(out, d, 0, n - s)], d)
    return out


def diag(x, diagonal=0):
    if x.ndim == 1:
        n = x._shape[0] + abs(diagonal)
        from .creation import zeros
        z = zeros(n, n, dtype=x.dtype, device=x.device)
        return diag_embed_into(z, x, diagonal)
    return diagonal_fn(x, diagonal)


def diag_embed_into(z, x, k):
    # differentiable: z + scatter of x onto the diagonal
    return DiagEmbed.apply(x, z.shape[0], k)


class DiagEmbed(Function):
    @staticmethod
    def forward(ctx, x, n, k):
        ctx.k = k
        from .creation import zeros
        z = zeros(n, n, dtype=x.dtype, device=x.device)
        copy_into(Diagonal.forward(None if False else _Null(), z, k, 0, 1, (x._shape[0],), [],
                                   ((1, k),) if k >= 0 else ((0, -k),)), x)
        return z

    @staticmethod
    def backward(ctx, g):
        return diagonal_fn(g, ctx.k), None, None


class _Null:
    def __setattr__(self, k, v):
        pass


diagonal_fn = diagonal


def diag_embed(x, offset=0, dim1=-2, dim2=-1):
    return stack([diag(r, offset) for r in x.reshape(-1, x.shape[-1])]).reshape(x.shape[:-1] + (x.shape[-1] + abs(offset),) * 2)
