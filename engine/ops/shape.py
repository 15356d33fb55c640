"""Views (no copies: new shape/strides/offset over the same storage), contiguous / clone, and
as_strided / unfold; cat, stack and split (join_split.py) and repeat, flip, roll, diag (rearrange.py)
are re-exported from here.

Every view function has a no-autograd fast path that builds the view directly;
with autograd it goes through a Function whose node name is PyTorch's
(ViewBackward0, TransposeBackward0, SelectBackward0, ...).

Strided sub-views (slicing, select, narrow, diagonal) share one representation,
`geom = (out_shape, dims, fixed)`: per output dim `(src, start, step)` where src is
an input dim, None (a new size-1 dim; start is then the input dim that follows it,
for PyTorch's stride) or a tuple of input dims (a diagonal: their strides add up),
and `fixed` the `(dim, index)` pairs of dims indexed away.  The
geometry is independent of the input's strides, so the backward scatters the
gradient into a contiguous zero tensor through the same geom.
"""
import numbers

from .. import dtypes as D
from ..autograd.function import Function
from ..autograd.grad_mode import state as _state
from ..runtime.elementwise import contiguous_strides
from ..tensor import Size, Tensor, empty, make, view_of, wrap_dim
from ._core import broadcast_shapes as _bshapes, contiguous_raw, copy_into, ew_into, expand_raw, sum_to

__all__ = ["reshape", "permute", "transpose", "swapaxes", "swapdims", "t", "squeeze", "unsqueeze",
           "flatten", "unflatten", "narrow", "narrow_copy", "select", "cat", "concat", "concatenate", "stack",
           "hstack", "vstack", "dstack", "split", "tensor_split", "chunk", "unbind", "movedim", "moveaxis",
           "broadcast_to", "broadcast_tensors", "broadcast_shapes", "flip", "fliplr", "flipud", "roll",
           "diagonal", "as_strided", "tile", "atleast_1d", "atleast_2d", "atleast_3d", "clone", "diag",
           "diag_embed", "squeeze_copy", "column_stack", "ravel", "select_scatter", "slice_scatter",
           "diagonal_scatter", "adjoint"]


def _sizes(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list, Size)):
        args = tuple(args[0])
    out = []
    for a in args:
        if isinstance(a, Tensor):
            a = a.item()
        if not isinstance(a, numbers.Integral):
            raise TypeError(f"expected a sequence of integers, but got an element of type {type(a).__name__}")
        out.append(int(a))
    return tuple(out)


def _need(x):
    return x._rg and _state.enabled


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
        if known == 0:
            if numel == 0:
                raise RuntimeError(f"cannot reshape tensor of 0 elements into shape {shape} because the "
                                   "unspecified dimension size -1 can be any value and is ambiguous")
            raise RuntimeError(f"shape '{shape}' is invalid for input of size {numel}")
        if numel % known:
            raise RuntimeError(f"shape '{shape}' is invalid for input of size {numel}")
        shape[neg[0]] = numel // known
    elif known != numel:
        raise RuntimeError(f"shape '{shape}' is invalid for input of size {numel}")
    return tuple(shape)


def _view_strides(old_shape, old_strides, new_shape):
    """Strides that let `new_shape` view the same memory, or None (PyTorch's computeStride)."""
    if not old_shape:
        return contiguous_strides(new_shape)
    numel = 1
    for s in old_shape:
        numel *= s
    if numel == 0:
        if tuple(old_shape) == tuple(new_shape):
            return tuple(old_strides)
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


# ---- reshaping views ---------------------------------------------------------------
class View(Function):
    node_name = "ViewBackward0"

    @staticmethod
    def forward(ctx, x, shape, strides):
        ctx.in_shape = x._shape
        return view_of(x, shape, strides, x._offset)

    @staticmethod
    def backward(ctx, g):
        return reshape(g, ctx.in_shape), None, None


class UnsafeView(View):
    node_name = "UnsafeViewBackward0"


class Unsqueeze(View):
    node_name = "UnsqueezeBackward0"


class Squeeze0(View):
    node_name = "SqueezeBackward0"


class Squeeze1(View):
    node_name = "SqueezeBackward1"


class Squeeze2(View):
    node_name = "SqueezeBackward2"


class Alias(View):
    node_name = "AliasBackward0"


def _view(cls, x, shape, strides):
    if x._rg and _state.enabled:
        return cls.apply(x, shape, strides)
    return view_of(x, shape, strides, x._offset)


def view(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (D.dtype, str, type)):
        return _view_dtype(x, D.to_dtype(shape[0]))
    shape = _infer_size(_sizes(shape), x.numel())
    st = _view_strides(x._shape, x._strides, shape)
    if st is None:
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one "
                           "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
    return _view(View, x, shape, st)


def _view_dtype(x, dt):
    if dt.itemsize != x.dtype.itemsize:
        raise RuntimeError("view(dtype) with a different element size is not supported")
    if dt is x.dtype:
        return view(x, x._shape)
    if x._rg and _state.enabled:
        raise RuntimeError("Cannot change data type of a tensor that requires grad: use x.detach().view(dtype)")
    t = view_of(x, x._shape, x._strides, x._offset)
    t.dtype = dt
    return t


def reshape(x, *shape, **kw):
    if "shape" in kw:
        shape = (kw.pop("shape"),)
    shape = _infer_size(_sizes(shape), x.numel())
    st = _view_strides(x._shape, x._strides, shape)
    if st is not None:
        return _view(View, x, shape, st)
    c = clone(x)  # not viewable: copy (CloneBackward0), then view it (UnsafeViewBackward0)
    return _view(UnsafeView, c, shape, contiguous_strides(shape))


def ravel(x):
    return reshape(x, -1)


def unsqueeze(x, dim):
    d = wrap_dim(dim, x.ndim + 1)
    shape = list(x._shape)
    shape.insert(d, 1)
    st = list(x._strides)
    st.insert(d, x._strides[d] * x._shape[d] if d < x.ndim else 1)
    return _view(Unsqueeze, x, tuple(shape), tuple(st))


def squeeze(x, dim=None):
    if dim is None:
        keep = [d for d, n in enumerate(x._shape) if n != 1]
        cls = Squeeze0
    else:
        multi = isinstance(dim, (tuple, list))
        ds = dim if multi else (dim,)
        drop = {wrap_dim(d, x.ndim) for d in ds}
        if x.ndim == 0:
            drop = set()
        keep = [d for d, n in enumerate(x._shape) if not (d in drop and n == 1)]
        cls = Squeeze2 if multi else Squeeze1
    return _view(cls, x, tuple(x._shape[d] for d in keep), tuple(x._strides[d] for d in keep))


squeeze_copy = squeeze


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = wrap_dim(start_dim, x.ndim), wrap_dim(end_dim, x.ndim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return x
    n = 1
    for d in range(s, e + 1):
        n *= x._shape[d]
    return reshape(x, x._shape[:s] + (n,) + x._shape[e + 1:])


def unflatten(x, dim, sizes):
    d = wrap_dim(dim, x.ndim)
    sizes = _sizes((sizes,))
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    n = x._shape[d]
    if sizes.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in sizes:
        if s != -1:
            known *= s
    if (-1 in sizes and (known == 0 or n % known)) or (-1 not in sizes and known != n):
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
                           f"({n}) in the input tensor")
    sizes = _infer_size(sizes, n)
    return view(x, x._shape[:d] + sizes + x._shape[d + 1:])


# ---- permutations --------------------------------------------------------------------
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
        return permute(g, inv), None


class Transpose(Permute):
    node_name = "TransposeBackward0"


class TBackward(Permute):
    node_name = "TBackward0"


def _permute(cls, x, dims):
    if x._rg and _state.enabled:
        return cls.apply(x, dims)
    return view_of(x, tuple(x._shape[d] for d in dims), tuple(x._strides[d] for d in dims), x._offset)


def permute(x, *dims, **kw):
    if "dims" in kw:
        dims = (kw.pop("dims"),)
    dims = _sizes(dims)
    nd = x.ndim
    if len(dims) != nd:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
                           f"length of the desired ordering of dimensions i.e. input.dim() = {nd} is not equal "
                           f"to len(dims) = {len(dims)}")
    dims = tuple(wrap_dim(d, nd) for d in dims)
    if len(set(dims)) != nd:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return _permute(Permute, x, dims)


def transpose(x, dim0, dim1):
    nd = x.ndim
    d0, d1 = wrap_dim(dim0, nd), wrap_dim(dim1, nd)
    if nd == 0:
        return _permute(Transpose, x, ())
    dims = list(range(nd))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return _permute(Transpose, x, tuple(dims))


swapaxes = swapdims = transpose


def t(x):
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D")
    return _permute(TBackward, x, (1, 0) if x.ndim == 2 else tuple(range(x.ndim)))


def adjoint(x):
    return transpose(x, -2, -1)


def movedim(x, source, destination):
    nd = x.ndim
    src = list(source) if isinstance(source, (tuple, list)) else [source]
    dst = list(destination) if isinstance(destination, (tuple, list)) else [destination]
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({src} dims) should contain the "
                           f"same number of dims as destination ({dst} dims)")
    src = [wrap_dim(s, nd) for s in src]
    dst = [wrap_dim(d, nd) for d in dst]
    if len(set(src)) != len(src):
        raise RuntimeError(f"movedim: repeated dim in `source` ({list(source)})")
    if len(set(dst)) != len(dst):
        raise RuntimeError(f"movedim: repeated dim in `destination` ({list(destination)})")
    order = [None] * nd
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(d for d in range(nd) if d not in src)
    order = [o if o is not None else next(rest) for o in order]
    return _permute(Permute, x, tuple(order))


moveaxis = movedim


# ---- broadcasting views ----------------------------------------------------------------
class Expand(Function):
    node_name = "ExpandBackward0"

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x._shape
        return view_of(x, shape, _expand_strides(x, shape), x._offset)

    @staticmethod
    def backward(ctx, g):
        return sum_to(g, ctx.in_shape), None


def expand(x, *sizes):
    sizes = _sizes(sizes)
    if len(sizes) < x.ndim:
        raise RuntimeError(f"expand({x.type()}{{{list(x.shape)}}}, size={list(sizes)}): the number of sizes "
                           f"provided ({len(sizes)}) must be greater or equal to the number of dimensions in the "
                           f"tensor ({x.ndim})")
    off = len(sizes) - x.ndim
    shape = []
    for i, s in enumerate(sizes):
        if i < off:
            if s < 0:
                raise RuntimeError(f"The expanded size of the tensor ({s}) isn't allowed in a leading, "
                                   f"non-existing dimension {i}")
            shape.append(s)
        else:
            shape.append(x._shape[i - off] if s == -1 else s)
    shape = tuple(shape)
    if x._rg and _state.enabled:
        return Expand.apply(x, shape)
    return view_of(x, shape, _expand_strides(x, shape), x._offset)


def _expand_strides(x, shape):
    """PyTorch's inferExpandGeometry strides (errors from expand_raw's message)."""
    nd = len(shape)
    off = nd - x.ndim
    st = [0] * nd
    for i in range(nd - 1, -1, -1):
        j = i - off
        if j >= 0:
            n, s = x._shape[j], x._strides[j]
            if n != shape[i]:
                if n != 1:
                    expand_raw(x, shape)  # raises PyTorch's message
                s = 0
        else:
            s = shape[i + 1] * st[i + 1] if i + 1 < nd else 1
            if shape[i] != 1:
                s = 0
        st[i] = s
    return tuple(st)


def expand_as(x, other):
    return expand(x, other.shape)


def broadcast_to(x, shape):
    return expand(x, tuple(shape))


def broadcast_shapes(*shapes):
    """torch.broadcast_shapes: the broadcast of shapes (ints count as 1-D shapes)."""
    return Size(_bshapes(*[(s,) if isinstance(s, numbers.Integral) else tuple(s) for s in shapes]))


def broadcast_tensors(*tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(expand(t, shape) for t in tensors)


# ---- strided sub-views (slicing, select, narrow, diagonal) ------------------------------
def _geom_view(t, geom):
    """(shape, strides, offset) of t viewed through geom (see the module docstring)."""
    shape, dims, fixed = geom
    off = t._offset
    tst = t._strides
    strides = []
    nd = len(tst)
    for src, start, step in dims:
        if src is None:  # a new size-1 dim: PyTorch's unsqueeze stride (start = the next input dim)
            strides.append(tst[start] * t._shape[start] if start < nd else 1)
        elif type(src) is tuple:
            s = 0
            for d in src:
                s += tst[d]
            off += start * s
            strides.append(s * step)
        else:
            s = tst[src]
            off += start * s
            strides.append(s * step)
    for d, i in fixed:
        off += i * tst[d]
    return shape, tuple(strides), off


class SliceView(Function):
    """x[geom]: a view; the gradient is scattered into zeros of x's shape."""
    node_name = "SliceBackward0"

    @staticmethod
    def forward(ctx, x, geom):
        ctx.in_shape, ctx.geom = x._shape, geom
        shape, st, off = _geom_view(x, geom)
        return view_of(x, shape, st, off)

    @staticmethod
    def backward(ctx, g):
        return SliceScatter.apply(g, ctx.in_shape, ctx.geom), None


class SelectView(SliceView):
    node_name = "SelectBackward0"


class UnsqueezeView(SliceView):
    node_name = "UnsqueezeBackward0"


class AliasView(SliceView):
    node_name = "AliasBackward0"


class DiagonalView(SliceView):
    node_name = "DiagonalBackward0"


class SliceScatter(Function):
    """zeros(in_shape) with g written at geom: the backward of a strided view."""
    node_name = "SliceBackwardBackward0"

    @staticmethod
    def forward(ctx, g, in_shape, geom):
        ctx.geom = geom
        z = empty(in_shape, g.dtype, g._storage.device)
        from .creation import fill_raw
        fill_raw(z, 0)
        shape, st, off = _geom_view(z, geom)
        copy_into(make(z._storage, shape, st, off, z.dtype), g)
        return z

    @staticmethod
    def backward(ctx, gg):
        return SliceView.apply(gg, ctx.geom), None, None


def slice_view(x, geom, cls=SliceView):
    if x._rg and _state.enabled:
        return cls.apply(x, geom)
    shape, st, off = _geom_view(x, geom)
    return view_of(x, shape, st, off)


def _full_dims(x, skip=-1):
    return tuple((i, 0, 1) for i in range(x.ndim) if i != skip)


def narrow(x, dim, start, length):
    if x.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = wrap_dim(dim, x.ndim)
    if isinstance(start, Tensor):
        start = int(start.item())
    n = x._shape[d]
    if not -n <= start <= n:
        raise IndexError(f"start out of range (expected to be in range of [{-n}, {n}], but got {start})")
    if start < 0:
        start += n
    if length < 0 or start + length > n:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    dims = tuple((i, start if i == d else 0, 1) for i in range(x.ndim))
    shape = tuple(length if i == d else s for i, s in enumerate(x._shape))
    return slice_view(x, (shape, dims, ()))


def narrow_copy(x, dim, start, length):
    return clone(narrow(x, dim, start, length))


def select(x, dim, index):
    if x.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = wrap_dim(dim, x.ndim)
    if isinstance(index, Tensor):
        index = int(index.item())
    n = x._shape[d]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(x.shape)} at dimension {d}")
    index = index + n if index < 0 else index
    shape = tuple(s for i, s in enumerate(x._shape) if i != d)
    return slice_view(x, (shape, _full_dims(x, d), ((d, index),)), SelectView)


def _diag_geom(x, offset, d1, d2):
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {d1}, {d2}")
    n1, n2 = x._shape[d1], x._shape[d2]
    if offset >= 0:
        length = max(0, min(n1, n2 - offset))
        fixed = ((d2, offset),)
    else:
        length = max(0, min(n1 + offset, n2))
        fixed = ((d1, -offset),)
    if length == 0:
        fixed = ()
    rest = tuple((i, 0, 1) for i in range(x.ndim) if i not in (d1, d2))
    shape = tuple(x._shape[i] for i, _, _ in rest) + (length,)
    return shape, rest + (((d1, d2), 0, 1),), fixed


def diagonal(x, offset=0, dim1=0, dim2=1):
    d1, d2 = wrap_dim(dim1, x.ndim), wrap_dim(dim2, x.ndim)
    return slice_view(x, _diag_geom(x, offset, d1, d2), DiagonalView)


diagonal_fn = diagonal


# ---- scatters into a copy (torch.select_scatter & co.) ---------------------------------
class ViewScatter(Function):
    """base with its `geom` region replaced by src (out of place)."""
    node_name = "SliceScatterBackward0"

    @staticmethod
    def forward(ctx, base, src, geom):
        ctx.geom = geom
        out = empty(base._shape, base.dtype, base._storage.device)
        copy_into(out, base)
        shape, st, off = _geom_view(out, geom)
        copy_into(make(out._storage, shape, st, off, out.dtype), src)
        return out

    @staticmethod
    def backward(ctx, g):
        gb = gs = None
        if ctx.needs_input_grad[0]:
            from .creation import zeros
            shape = ctx.geom[0]
            gb = ViewScatter.apply(g, zeros(shape, dtype=g.dtype, device=g.device), ctx.geom)
        if ctx.needs_input_grad[1]:
            gs = SliceView.apply(g, ctx.geom) if _state.enabled else slice_view(g, ctx.geom)
        return gb, gs, None


def _scatter(base, src, geom):
    if tuple(src.shape) != tuple(geom[0]):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = {list(src.shape)}, "
                           f"slice size = {list(geom[0])}")
    return ViewScatter.apply(base, src, geom)


def select_scatter(input, src, dim, index):
    d = wrap_dim(dim, input.ndim)
    n = input._shape[d]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(input.shape)} at "
                         f"dimension {d}")
    index = index % n
    shape = tuple(s for i, s in enumerate(input._shape) if i != d)
    return _scatter(input, src, (shape, _full_dims(input, d), ((d, index),)))


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    d = wrap_dim(dim, input.ndim)
    s, e, _ = slice(start, end, step).indices(input._shape[d])
    length = max(0, (e - s + step - 1) // step)
    dims = tuple((i, s if i == d else 0, step if i == d else 1) for i in range(input.ndim))
    shape = tuple(length if i == d else n for i, n in enumerate(input._shape))
    return _scatter(input, src, (shape, dims, ()))


def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    d1, d2 = wrap_dim(dim1, input.ndim), wrap_dim(dim2, input.ndim)
    return _scatter(input, src, _diag_geom(input, offset, d1, d2))


# ---- as_strided -------------------------------------------------------------------------
def _span(geom):
    shape, strides, off = geom
    lo = hi = off
    for n, s in zip(shape, strides):
        if n == 0:
            return None
        if s > 0:
            hi += s * (n - 1)
        else:
            lo += s * (n - 1)
    return lo, hi


def _overlaps(shape, strides):
    dims = sorted((abs(s), n) for n, s in zip(shape, strides) if n > 1)
    reach = 0
    for s, n in dims:
        if s <= reach:
            return True
        reach += s * (n - 1)
    return False


def _scatter_add(buf, shape, strides, off, g):
    """buf[geometry] += g, correct where the geometry's elements overlap in memory:
    split along a dim until each piece is overlap-free."""
    if not _overlaps(shape, strides):
        region = make(buf._storage, shape, strides, off, buf.dtype)
        ew_into("add", "v1 + v2", region, [region, g], g.dtype)
        return
    d = next(i for i, n in enumerate(shape) if n > 1)
    sub_shape = shape[:d] + shape[d + 1:]
    sub_st = strides[:d] + strides[d + 1:]
    gst = g._strides[:d] + g._strides[d + 1:]
    for i in range(shape[d]):
        gi = make(g._storage, sub_shape, gst, g._offset + i * g._strides[d], g.dtype)
        _scatter_add(buf, sub_shape, sub_st, off + i * strides[d], gi)


class Restride(Function):
    """g laid out in memory at geometry a (scatter-add), read back at geometry b:
    the backward of as_strided (and, swapped, its own backward)."""
    node_name = "AsStridedBackwardBackward0"

    @staticmethod
    def forward(ctx, g, a, b):
        ctx.geoms = (a, b)
        from .creation import fill_raw
        dev = g._storage.device
        sa, sb = _span(a), _span(b)
        if sb is None:
            out = empty(b[0], g.dtype, dev)
            return out
        lo, hi = sb if sa is None else (min(sa[0], sb[0]), max(sa[1], sb[1]))
        buf = fill_raw(empty((hi - lo + 1,), g.dtype, dev), 0)
        if sa is not None:
            shape, strides, off = a
            zero = tuple(i for i, (n, s) in enumerate(zip(shape, strides)) if s == 0 and n > 1)
            if zero:  # several output elements alias one memory element: their gradients add up
                g = g.sum(dim=zero, keepdim=True)
                shape = tuple(1 if i in zero else n for i, n in enumerate(shape))
            _scatter_add(buf, shape, strides, off - lo, g)
        shape, strides, off = b
        return contiguous_raw(make(buf._storage, shape, strides, off - lo, g.dtype))

    @staticmethod
    def backward(ctx, gg):
        a, b = ctx.geoms
        return Restride.apply(gg, b, a), None, None


class AsStrided(Function):
    node_name = "AsStridedBackward0"

    @staticmethod
    def forward(ctx, x, size, stride, offset):
        ctx.geoms = ((x._shape, x._strides, x._offset), (size, stride, offset))
        return view_of(x, size, stride, offset)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.geoms
        return Restride.apply(g, b, a), None, None, None


def as_strided(x, size, stride, storage_offset=None):
    size, stride = _sizes((size,)), _sizes((stride,))
    if len(size) != len(stride):
        raise RuntimeError(f"mismatch in length of strides and shape: {len(stride)} vs {len(size)}")
    off = x._offset if storage_offset is None else int(storage_offset)
    if off < 0 or any(s < 0 for s in stride):
        raise RuntimeError("as_strided: negative strides and storage offsets are not supported")
    span = _span((size, stride, off))
    if span is not None and (span[1] + 1) * x.dtype.itemsize > x._storage.size:
        raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {off}, and "
                           f"itemsize {x.dtype.itemsize} requiring a storage size of "
                           f"{(span[1] + 1) * x.dtype.itemsize} are out of bounds for storage of size "
                           f"{x._storage.size}")
    if x._rg and _state.enabled:
        return AsStrided.apply(x, size, stride, off)
    return view_of(x, size, stride, off)


# ---- unfold (sliding windows, a view) ------------------------------------------------------
def unfold(x, dimension, size, step):
    d = wrap_dim(dimension, x.ndim)
    n0 = x._shape[d] if x.ndim else 1
    if size > n0:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n0} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if x.ndim == 0:
        return reshape(x, (1,))
    n = (n0 - size) // step + 1
    shape = x._shape[:d] + (n,) + x._shape[d + 1:] + (size,)
    st = x._strides[:d] + (x._strides[d] * step,) + x._strides[d + 1:] + (x._strides[d],)
    if x._rg and _state.enabled:
        return Unfold.apply(x, shape, st, d, size, step)
    return view_of(x, shape, st, x._offset)


class Unfold(Function):
    node_name = "UnfoldBackward0"

    @staticmethod
    def forward(ctx, x, shape, st, d, size, step):
        ctx.args = (x._shape, d, size, step)
        return view_of(x, shape, st, x._offset)

    @staticmethod
    def backward(ctx, g):
        in_shape, d, size, step = ctx.args
        return UnfoldGrad.apply(g, in_shape, d, size, step), None, None, None, None, None


class UnfoldGrad(Function):
    """Sum of the overlapping windows back into the input's shape."""
    node_name = "UnfoldBackwardBackward0"

    @staticmethod
    def forward(ctx, g, in_shape, d, size, step):
        ctx.args = (d, size, step)
        from .creation import fill_raw
        z = fill_raw(empty(in_shape, g.dtype, g._storage.device), 0)
        n = g._shape[d]
        if n and size:
            zst = z._strides
            for k in range(size):  # one window offset at a time: overlapping windows add up
                region = make(z._storage, tuple(g._shape[:-1]),
                              zst[:d] + (zst[d] * step,) + zst[d + 1:], k * zst[d], z.dtype)
                sel = make(g._storage, g._shape[:-1], g._strides[:-1], g._offset + k * g._strides[-1], g.dtype)
                ew_into("add", "v1 + v2", region, [region, sel], g.dtype)
        return z

    @staticmethod
    def backward(ctx, gg):
        d, size, step = ctx.args
        return unfold(gg, d, size, step), None, None, None, None


# ---- copies ------------------------------------------------------------------------
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


# cat / stack / split / chunk / unbind (join_split.py) and repeat / tile / flip / roll / diag
# (rearrange.py) build on the views above; imported here, after them, so `ops.shape` still offers them all
from .join_split import (  # noqa: E402,F401
    _check_cat, adjacent_view, atleast_1d, atleast_2d, atleast_3d, Cat, cat, chunk, column_stack,
    concat, concatenate, dstack, hstack, Split, split, SplitWithSizes, Stack, stack, tensor_split,
    Unbind, unbind, vstack)
from .rearrange import (  # noqa: E402,F401
    diag, diag_embed, DiagEmbed, Flip, flip, fliplr, flipud, Repeat, repeat, Roll, roll, tile)


# ---- in-place view methods (metadata only) ---------------------------------------------
def _inplace_view(t, fn, *args):
    from .convert import check_inplace
    check_inplace(t)
    r = fn(t, *args)
    t._shape, t._strides, t._offset = r._shape, r._strides, r._offset
    t._storage.version += 1  # as in PyTorch: saved tensors see the metadata change
    if r.grad_fn is not None:
        t.grad_fn, t._output_nr = r.grad_fn, r._output_nr
    return t


Tensor.squeeze_ = lambda self, dim=None: _inplace_view(self, squeeze, dim)
Tensor.unsqueeze_ = lambda self, dim: _inplace_view(self, unsqueeze, dim)
Tensor.transpose_ = lambda self, dim0, dim1: _inplace_view(self, transpose, dim0, dim1)
Tensor.swapaxes_ = Tensor.swapdims_ = Tensor.transpose_
Tensor.t_ = lambda self: _inplace_view(self, t)
Tensor.as_strided_ = lambda self, size, stride, storage_offset=None: _inplace_view(
    self, as_strided, size, stride, storage_offset)
for _n in ("narrow_copy", "ravel", "adjoint", "fliplr", "flipud", "tensor_split", "select_scatter", "slice_scatter",
           "diagonal_scatter", "expand", "expand_as"):
    setattr(Tensor, _n, globals()[_n])
Tensor.flip = lambda self, *dims, **kw: flip(self, *dims, **kw)
Tensor.sum_to_size = lambda self, *size: sum_to(self, _sizes(size))
