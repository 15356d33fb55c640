"""The Tensor: a strided view (shape, strides, offset) of a device Storage, plus
autograd fields.  Math lives in engine/ops, which binds its methods onto Tensor."""
import numpy as np

from . import dtypes as _dt
from .device import device as _device_cls, resolve as _resolve_device
from .runtime import launch as _launch
from .runtime.device import Device as _RtDevice
from .runtime.elementwise import contiguous_strides, cstrides as _cstrides
from .runtime.memory import Storage


class Size(tuple):
    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self):
        return f"engine.Size([{', '.join(map(str, self))}])"

    def __getitem__(self, i, _get=tuple.__getitem__):
        r = _get(self, i)
        return Size(r) if i.__class__ is slice else r

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))

    def __radd__(self, other):
        return Size(tuple(other) + tuple(self))

    def __mul__(self, n):
        return Size(tuple.__mul__(self, n))

    __rmul__ = __mul__


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


class Tensor:
    __slots__ = ("_storage", "_shape", "_strides", "_offset", "dtype", "_rg", "grad", "grad_fn",
                 "_output_nr", "_accum", "_hooks", "_retains_grad", "_base", "__dict__", "__weakref__")
    __array_priority__ = 1000  # numpy defers to our reflected operators

    def __new__(cls, *args, **kwargs):
        t = object.__new__(cls)
        t._rg = False
        t.grad = None
        t.grad_fn = None
        t._output_nr = 0
        t._accum = None
        t._hooks = None
        t._retains_grad = False
        t._base = None
        return t

    def __init__(self, *args, **kwargs):
        # engine.Tensor(data) / engine.Tensor(2, 3): legacy constructor, float32
        if not args and not kwargs:
            if not hasattr(self, "_storage"):
                _init_from(self, empty((0,), _dt.get_default_dtype(), None))
            return
        if not hasattr(self, "_storage") or kwargs.get("_internal") is None:
            if len(args) == 1 and not isinstance(args[0], int):
                from .ops.creation import tensor as _tensor
                src = _tensor(args[0], dtype=_dt.get_default_dtype(), device=kwargs.get("device"))
            else:
                src = empty(tuple(args), _dt.get_default_dtype(), kwargs.get("device"))
            _init_from(self, src)

    # ---- metadata -------------------------------------------------------------
    @property
    def shape(self):
        return self._shape

    def size(self, dim=None):
        if dim is None:
            return self._shape
        return self._shape[_wrap_dim(dim, len(self._shape))]

    def stride(self, dim=None):
        if dim is None:
            return self._strides
        return self._strides[_wrap_dim(dim, len(self._shape))]

    def storage_offset(self):
        return self._offset

    @property
    def ndim(self):
        return len(self._shape)

    def dim(self):
        return len(self._shape)

    ndimension = dim

    def numel(self):
        return _numel(self._shape)

    nelement = numel

    def element_size(self):
        return self.dtype.itemsize

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.numel() * self.dtype.itemsize

    @property
    def device(self):
        return _device_cls(self._storage.device)

    @property
    def is_cuda(self):
        return self._storage.device.is_gpu

    @property
    def is_cpu(self):
        return self._storage.device.is_cpu

    def get_device(self):
        return self._storage.device.index

    def is_floating_point(self):
        return self.dtype.is_floating_point

    def is_complex(self):
        return False

    def is_contiguous(self, memory_format=None):
        if 0 in self._shape:
            return True
        exp = 1
        for n, s in zip(reversed(self._shape), reversed(self._strides)):
            if n != 1 and s != exp:
                return False
            exp *= n
        return True

    def data_ptr(self):
        return id(self._storage) * 1024 + self._offset * self.dtype.itemsize

    def untyped_storage(self):
        return self._storage

    def resize_(self, *sizes, memory_format=None):
        """Resize in place (PyTorch semantics): same shape keeps the strides, otherwise
        contiguous strides; a storage too small grows in place (views keep sharing it)."""
        from .autograd.grad_mode import state
        if self._rg and state.enabled:
            raise RuntimeError("cannot resize variables that require grad")
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        sizes = tuple(int(n) for n in sizes)
        for n in sizes:
            if n < 0:
                raise RuntimeError(f"Trying to create tensor with negative dimension {n}: {list(sizes)}")
        if sizes == tuple(self._shape):
            return self
        need = (self._offset + _numel(sizes)) * self.dtype.itemsize
        st = self._storage
        if need > st.size:
            dev = st.device
            buf, size = dev.pool.alloc(need)
            if st.size:
                _launch.copy_buffer(dev, st.buf, buf, st.size)
            old = (st.buf, st.size)
            st.buf, st.size = buf, size
            dev.pool.release(*old)
        self._shape = Size(sizes)
        self._strides = contiguous_strides(sizes)
        return self

    def resize_as_(self, other, memory_format=None):
        return self.resize_(other.shape)

    def is_same_size(self, other):
        return tuple(self._shape) == tuple(other._shape)

    def dim_order(self):
        return tuple(sorted(range(self.ndim), key=lambda d: -self._strides[d]))

    def share_memory_(self):
        return self

    def is_shared(self):
        return False

    def pin_memory(self, device=None):
        return self

    def is_pinned(self, device=None):
        return False

    @property
    def _version(self):
        return self._storage.version

    # ---- autograd fields --------------------------------------------------------
    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value):
        value = bool(value)
        if self.grad_fn is not None and not value:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to "
                               "use a computed variable in a subgraph that doesn't require differentiation "
                               "use var_no_grad = var.detach().")
        if value and not self.dtype.is_floating_point:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self._rg = value

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self):
        return self.grad_fn is None

    def retain_grad(self):
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            self._retains_grad = True
            _own_edge(self)

    @property
    def retains_grad(self):
        return self._retains_grad

    def register_hook(self, hook):
        """hook(grad) -> Tensor or None, called when this tensor's gradient is computed."""
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        from .autograd.hooks import register_tensor_hook
        if self.grad_fn is not None:
            _own_edge(self)
        return register_tensor_hook(self, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from .autograd.engine import backward
        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) after a backward pass accumulated into this leaf's .grad."""
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        from .autograd.hooks import RemovableHandle
        d = self.__dict__.setdefault("_post_acc_hooks", {})
        h = RemovableHandle(d)
        d[h.id] = hook
        return h

    def detach(self):
        """A new tensor sharing storage (and version counter) with self, without history."""
        return make(self._storage, self._shape, self._strides, self._offset, self.dtype)

    def detach_(self):
        if self._base is not None and self._base._rg:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self.grad_fn = None
        self._rg = False
        return self

    @property
    def data(self):
        return self.detach()

    @data.setter
    def data(self, other):
        if not isinstance(other, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(other).__name__}")
        self._storage, self._shape, self._strides, self._offset, self.dtype = (
            other._storage, other._shape, other._strides, other._offset, other.dtype)

    @property
    def output_nr(self):
        return self._output_nr

    @property
    def layout(self):
        return "strided"

    is_sparse = False
    is_quantized = False
    is_meta = False
    is_nested = False
    is_mkldnn = False

    def is_inference(self):
        return False

    @property
    def T(self):
        if self.ndim > 2:
            return self.permute(*range(self.ndim - 1, -1, -1))
        return self.t()

    @property
    def mT(self):
        if self.ndim < 2:
            raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices. Got {self.ndim}-D tensor.")
        return self.transpose(-2, -1)

    @property
    def H(self):
        return self.T

    @property
    def mH(self):
        return self.mT

    # ---- host transfer (these wait for the queue) -----------------------------
    def numpy(self, force=False):
        if self._rg and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return to_numpy(self)

    def tolist(self):
        a = to_numpy(self)
        return a.tolist() if a.ndim else a.item()

    def item(self):
        if self.numel() != 1:
            raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        return to_numpy(self).reshape(()).item()

    def __array__(self, dtype=None, copy=None):
        a = to_numpy(self)
        return a.astype(dtype) if dtype is not None else a

    def __len__(self):
        if not self._shape:
            raise TypeError("len() of a 0-d tensor")
        return self._shape[0]

    def __iter__(self):
        if not self._shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._shape[0]))

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __complex__(self):
        return complex(self.item())

    def __reversed__(self):
        return self.flip(0) if self.ndim else self

    def __contains__(self, element):
        if isinstance(element, (Tensor, int, float, bool)):
            return bool((self == element).sum().item() > 0)
        raise RuntimeError(f"Tensor.__contains__ only supports Tensor or scalar, but you passed in a {type(element)}.")

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        from .ops.creation import tensor
        return tensor(data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False, **_):
        from .ops.creation import empty
        return empty(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False, **_):
        from .ops.creation import zeros
        return zeros(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False, **_):
        from .ops.creation import ones
        return ones(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False, **_):
        from .ops.creation import full
        return full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)

    def __hash__(self):
        return id(self)

    def __repr__(self):
        from ._printing import tensor_repr
        return tensor_repr(self)

    def __str__(self):
        return self.__repr__()

    def __format__(self, spec):
        if self.ndim == 0 and spec:
            return format(self.item(), spec)
        return object.__format__(self, spec) if spec else self.__repr__()

    def __reduce_ex__(self, proto):
        return (_rebuild, (to_numpy(self), str(self.device), self._rg))

    def __deepcopy__(self, memo):
        from .ops.creation import clone_tensor
        t = clone_tensor(self)
        if self._rg and self.grad_fn is None:
            t._rg = True
        if type(self) is not Tensor:
            t.__class__ = type(self)
            t.__dict__.update(self.__dict__)
        if self.grad is not None:
            t.grad = clone_tensor(self.grad)
        memo[id(self)] = t
        return t


def _rebuild(arr, dev, rg):
    from .ops.creation import tensor
    try:
        t = tensor(arr, device=dev)
    except RuntimeError:
        t = tensor(arr)
    t._rg = rg
    return t


def _own_edge(t):
    # hooks and retain_grad of a non-leaf run when its grad_fn's output gradient is ready
    owners = t.grad_fn.__dict__.setdefault("_tensor_owners", {})
    owners[t._output_nr] = t


def _init_from(t, src):
    t._storage, t._shape, t._strides, t._offset, t.dtype = (
        src._storage, src._shape, src._strides, src._offset, src.dtype)


def _wrap_dim(d, ndim):
    n = max(ndim, 1)
    if not -n <= d < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
    return d + n if d < 0 else d


wrap_dim = _wrap_dim


def make(storage, shape, strides, offset, dtype):
    t = Tensor.__new__(Tensor)
    t._storage = storage
    t._shape = shape if type(shape) is Size else Size(shape)
    t._strides = strides
    t._offset = offset
    t.dtype = dtype
    return t


def _view_of(src, shape, strides, offset):
    t = make(src._storage, shape, strides, offset, src.dtype)
    t._base = src if src._base is None else src._base
    return t


view_of = _view_of


def empty(shape, dtype, device):
    dev = device if type(device) is _RtDevice else _resolve_device(device)
    if dtype is _dt.float64 and not dev.fp64:
        raise TypeError(f"float64 is not supported on device {dev.name} (no cl_khr_fp64); use float32")
    if type(shape) is not Size:
        shape = Size(shape)
    n = 1
    for s in shape:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(shape)}")
        n *= s
    t = Tensor.__new__(Tensor)
    t._storage = Storage(dev, n * dtype.itemsize)
    t._shape = shape
    t._strides = _cstrides(shape)
    t._offset = 0
    t.dtype = dtype
    return t


def from_numpy_array(arr, device, dtype=None):
    dt = _dt.from_numpy_dtype(arr.dtype) if dtype is None else dtype
    if arr.dtype != dt.np:
        arr = arr.astype(dt.np)
    arr = np.ascontiguousarray(arr).reshape(arr.shape)  # keeps 0-d arrays 0-d
    t = empty(arr.shape, dt, device)
    if arr.size:
        _launch.copy_to_device(t._storage.device, t._storage.buf, 0, arr)
    return t


def to_numpy(t):
    """Copy to a new host array (waits for every kernel enqueued before)."""
    dev = t._storage.device
    n = t.numel()
    if n == 0:
        return np.empty(t._shape, dtype=t.dtype.np)
    if t.is_contiguous():
        out = np.empty(t._shape, dtype=t.dtype.np)
        _launch.copy_to_host(dev, t._storage.buf, t._offset * t.dtype.itemsize, out)
        return out
    # read the span the view covers, then let numpy apply the strides
    lo = t._offset + sum(s * (n - 1) for s, n in zip(t._strides, t._shape) if s < 0)
    hi = t._offset + sum(s * (n - 1) for s, n in zip(t._strides, t._shape) if s > 0)
    span = np.empty(hi - lo + 1, dtype=t.dtype.np)
    _launch.copy_to_host(dev, t._storage.buf, lo * t.dtype.itemsize, span)
    isz = t.dtype.itemsize
    v = np.lib.stride_tricks.as_strided(span[t._offset - lo:], t._shape, [s * isz for s in t._strides])
    return v.copy()
