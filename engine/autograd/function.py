"""Graph nodes and custom Functions.

`Function.apply` runs `forward` with grad recording off and, if any input
requires grad, makes the ctx object the graph node (as PyTorch does): it keeps
the saved tensors, the next nodes (one edge per Tensor input, like PyTorch's
`next_functions`) and the backward formula.  `backward` returns one gradient
per forward argument (None for non-Tensor arguments); the engine keeps the
ones for Tensor arguments.
"""
import itertools
import weakref

from ..tensor import Tensor, make
from . import grad_mode as _gm

_state = _gm.state
_seq = itertools.count(1)
_NONE_EDGE = (None, 0)
_FALSES = {}
_TPOS = {}
_NIG = {}
_METAS = {}  # (shape, dtype, device) -> the _meta tuple of one-output nodes, shared

# AccumulateGrad nodes run as soon as they are ready (PyTorch gives them the
# highest priority), other nodes in decreasing creation order.
ACCUMULATE_SEQ = 1 << 62


class Node:
    """Base of every graph node.

    `next_functions`: one (node, output_nr) pair per Tensor input of the op,
    (None, 0) for inputs that need no gradient.  `name()` is PyTorch's class
    name (e.g. 'MulBackward0')."""
    __slots__ = ()
    next_functions = ()
    _seq = 0
    _saved = None
    _pre_hooks = None
    _hooks = None
    _meta = None
    _n_outputs = 1

    def name(self):
        return type(self).__name__

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"

    def register_hook(self, fn):
        """fn(grad_inputs, grad_outputs) after this node ran; returns a removable handle.
        grad_inputs are the gradients the node passes on, grad_outputs those it received."""
        from .hooks import RemovableHandle
        if self._hooks is None:
            self._hooks = {}
        h = RemovableHandle(self._hooks)
        self._hooks[h.id] = fn
        return h

    def register_prehook(self, fn):
        """fn(grad_outputs) -> new grad_outputs or None, before this node runs."""
        from .hooks import RemovableHandle
        if self._pre_hooks is None:
            self._pre_hooks = {}
        h = RemovableHandle(self._pre_hooks)
        self._pre_hooks[h.id] = fn
        return h

    @property
    def metadata(self):
        d = getattr(self, "_metadata_dict", None)
        if d is None:
            d = {}
            object.__setattr__(self, "_metadata_dict", d)
        return d


class AccumulateGrad(Node):
    """Sink node of a leaf tensor: adds the incoming gradient into `.grad`."""
    __slots__ = ("variable", "_pre_hooks", "_hooks", "_metadata_dict", "_edge", "__weakref__")
    _seq = ACCUMULATE_SEQ

    def __init__(self, variable):
        self.variable = variable
        self._pre_hooks = None
        self._hooks = None
        self._edge = (self, 0)  # the (node, output_nr) edge every use of the leaf shares


def accumulate_node(t):
    n = t._accum
    if n is None:
        n = t._accum = AccumulateGrad(t)
    return n


class SavedTensor:
    __slots__ = ("tensor", "version", "output_nr")

    def __init__(self, tensor, output_nr):
        self.tensor = tensor
        self.version = tensor._storage.version
        self.output_nr = output_nr  # -1 for inputs


FREED = []  # marker: node._saved after the graph was freed

FREED_MSG = ("Trying to backward through the graph a second time (or directly access saved tensors "
             "after they have already been freed). Saved intermediate values of the graph are freed when "
             "you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
             "through the graph a second time or if you need to access saved tensors after calling backward.")


class FunctionCtx(Node):
    """The `ctx` of a Function, which becomes the graph node of its outputs."""
    __slots__ = ("__dict__", "__weakref__")
    _to_save = None
    _non_diff = None
    _dirty = None
    _materialize = True
    _tpos = None       # positions of the Tensor arguments when some arguments are not Tensors
    _nargs = 0
    _in_dtypes = None  # per edge, set when an input's dtype differs from the output's
    _in_shapes = None  # per edge, for custom (user-defined) Functions: validated
    _modules = None    # the nn.Module stack that was running when the node was made
    needs_input_grad = ()

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{tensors.index(t)} is of type {type(t).__name__}")
        self._to_save = tensors

    def save_for_forward(self, *tensors):
        pass

    def mark_non_differentiable(self, *tensors):
        self._non_diff = {id(t) for t in tensors}

    def mark_dirty(self, *tensors):
        self._dirty = {id(t) for t in tensors}

    def set_materialize_grads(self, value):
        self._materialize = bool(value)

    @property
    def saved_tensors(self):
        saved = self._saved
        if saved is None:
            if self._to_save is not None:
                return self._to_save  # forward-time access, before apply() wrapped them
            return ()
        if saved is FREED:
            raise RuntimeError(FREED_MSG)
        out = []
        for s in saved:
            if s is None:
                out.append(None)
                continue
            t = s.tensor
            if t._storage.version != s.version:
                what = (f", which is output {s.output_nr} of {self.name()}," if s.output_nr >= 0 else "")
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: [{t.dtype.name} {list(t.shape)}]{what} is at version {t._storage.version}; "
                    f"expected version {s.version} instead. Hint: enable anomaly detection to find the "
                    "operation that failed to compute its gradient.")
            if s.output_nr >= 0 and _state.enabled:
                t.grad_fn = self  # restore the output's history for double backward
                t._output_nr = s.output_nr
                t._rg = True
            out.append(t)
        return tuple(out)

    saved_variables = saved_tensors

    @property
    def _saved_tensors_meta(self):
        """(shape, dtype) of each saved tensor, without version checks (graph introspection)."""
        saved = self._saved
        if not saved or saved is FREED:
            return []
        return [(tuple(s.tensor.shape), s.tensor.dtype) for s in saved if s is not None]


class _FunctionMeta(type):
    def __init__(cls, name, bases, ns):
        super().__init__(name, bases, ns)
        node_name = ns.get("node_name") or f"{name}Backward"
        attrs = {"_function": cls, "__slots__": ()}
        # user-defined Functions get their gradients checked like PyTorch does
        attrs["_validate"] = not cls.__module__.startswith("engine.")
        cls._backward_cls = type(node_name, (FunctionCtx,), attrs)
        cls._custom_setup = "setup_context" in ns or any(
            "setup_context" in b.__dict__ for b in cls.__mro__[1:-1] if b is not Function)


def _intern(cache, t):
    """One shared tuple per distinct value (fewer objects per node for the cyclic GC)."""
    r = cache.get(t)
    if r is None:
        r = t
        if len(cache) < 4096:
            cache[t] = t
    return r


def _falses(n):
    r = _FALSES.get(n)
    if r is None:
        r = _FALSES[n] = (False,) * n
    return r


class Function(metaclass=_FunctionMeta):
    """Subclass with `forward(ctx, *args)` and `backward(ctx, *grads)` staticmethods,
    then call `MyFn.apply(*args)`, as with torch.autograd.Function.

    The `forward(*args)` + `setup_context(ctx, inputs, output)` style works too.
    `backward` returns one gradient per forward argument (None where there is none)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    vjp = backward

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @classmethod
    def apply(cls, *args):
        bc = cls._backward_cls
        ctx = bc.__new__(bc)
        if _state.enabled:
            nig = [isinstance(a, Tensor) and a._rg for a in args]
            need = True in nig
            if need:
                nig = tuple(nig)
                ctx.needs_input_grad = _intern(_NIG, nig)
            else:
                ctx.needs_input_grad = _falses(len(args))
            _state.enabled = False
            try:
                if cls._custom_setup:
                    out = cls.forward(*args)
                    cls.setup_context(ctx, args, out)
                else:
                    out = cls.forward(ctx, *args)
            finally:
                _state.enabled = True
        else:
            need = False
            ctx.needs_input_grad = _falses(len(args))
            if cls._custom_setup:
                out = cls.forward(*args)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args)
        d = ctx.__dict__
        if "_dirty" in d:
            _bump_dirty(ctx, args, out, need)
        if not need:
            return out
        if type(out) is Tensor and "_non_diff" not in d and "_dirty" not in d:
            return _record1(ctx, args, out, d)
        return _record(ctx, args, out)


def _bump_dirty(ctx, args, out, need):
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        if isinstance(o, Tensor) and id(o) in ctx._dirty:
            if need and o._rg and o.grad_fn is None:
                raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
            o._storage.version += 1


def _edges(ctx, args, odt):
    """ctx.next_functions, _tpos and _in_dtypes from the arguments (odt: the first output's dtype)."""
    nf = []
    tpos = None
    mixed = False
    for a in args:
        if isinstance(a, Tensor):
            if a._rg:
                fn = a.grad_fn
                if fn is not None:
                    nf.append((fn, a._output_nr))
                else:
                    acc = a._accum
                    nf.append(acc._edge if acc is not None else accumulate_node(a)._edge)
            else:
                nf.append(_NONE_EDGE)
            if a.dtype is not odt:
                mixed = True
        elif tpos is None:
            tpos = tuple([j for j, b in enumerate(args) if isinstance(b, Tensor)])
            tpos = _intern(_TPOS, tpos)
    ctx.next_functions = tuple(nf)
    ctx._seq = next(_seq)
    mods = _state.modules
    if mods is not None:
        ctx._modules = mods
    ctx._nargs = len(args)
    if tpos is not None:
        ctx._tpos = tpos
    if mixed and odt is not None:
        ctx._in_dtypes = [a.dtype for a in args if isinstance(a, Tensor)]
    if ctx._validate:
        ctx._in_shapes = [a._shape for a in args if isinstance(a, Tensor)]


def _record1(ctx, args, o, d):
    """_record for the common case: one plain Tensor output, nothing marked dirty or
    non-differentiable."""
    odt = o.dtype
    _edges(ctx, args, odt)
    key = (o._shape, odt, o._storage.device)
    m = _METAS.get(key)
    if m is None:
        m = (key,)
        if len(_METAS) < 4096:
            _METAS[key] = m
    ctx._meta = m  # shared: fewer objects per node for the cyclic GC to walk
    o0 = o
    for a in args:
        if o is a:  # forward returned an input: the output gets its own identity
            o = _alias(o)
            o._base = a if a._base is None else a._base
            break
    if odt.is_floating_point:
        o.grad_fn = ctx
        o._output_nr = 0
        o._rg = True
        if o._base is not None:
            register_view(o)
    ts = d.get("_to_save")
    if ts is not None:
        saved = []
        for t in ts:
            if t is None:
                saved.append(None)
            elif t is o or t is o0:  # a detached alias, so the node does not keep itself alive
                saved.append(SavedTensor(_alias(t), 0))
            else:
                saved.append(SavedTensor(t, -1))
        ctx._saved = saved
        ctx._to_save = None
    return o


def _record(ctx, args, out):
    """Make ctx the graph node of out (the grad-recording half of apply)."""
    multi = isinstance(out, tuple)
    outs = out if multi else (out,)
    o0 = outs[0]
    _edges(ctx, args, o0.dtype if isinstance(o0, Tensor) else None)
    if multi:
        ctx._n_outputs = len(outs)
        ctx._meta = tuple((o._shape, o.dtype, o._storage.device) if isinstance(o, Tensor) else None for o in outs)
    elif isinstance(o0, Tensor):
        ctx._meta = ((o0._shape, o0.dtype, o0._storage.device),)
    nd = ctx._non_diff
    dirty = ctx._dirty
    results = []
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            results.append(o)
            continue
        if dirty is None or id(o) not in dirty:
            for a in args:
                if o is a:  # forward returned an input: the output gets its own identity
                    o = _alias(o)
                    o._base = a if a._base is None else a._base
                    break
        if (nd is None or id(o) not in nd) and o.dtype.is_floating_point:
            o.grad_fn = ctx
            o._output_nr = i
            o._rg = True
            if o._base is not None:
                register_view(o)
        results.append(o)
    ts = ctx._to_save
    if ts is not None:
        saved = []
        for t in ts:
            if t is None:
                saved.append(None)
                continue
            nr = -1
            for i, o in enumerate(results):
                if t is o or t is outs[i]:
                    nr = i
                    break
            if nr >= 0:  # a detached alias, so the node does not keep itself alive
                t = _alias(t)
            saved.append(SavedTensor(t, nr))
        ctx._saved = saved
        ctx._to_save = None
    return tuple(results) if multi else results[0]


def register_view(v):
    """Remember a view with history on its base, so that an in-place op on the base
    (or on another view of it) can give the view a fresh grad_fn (PyTorch regenerates
    a stale view's grad_fn the same way)."""
    b = v._base
    d = b.__dict__
    views = d.get("_views")
    if views is None:
        views = d["_views"] = weakref.WeakSet()
    views.add(v)


def _alias(t):
    return make(t._storage, t._shape, t._strides, t._offset, t.dtype)


def once_differentiable(fn):
    """Decorator for a backward that is not itself differentiable: it runs with grad off."""
    import functools

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with _gm.no_grad():
            return fn(ctx, *args)
    return wrapper
