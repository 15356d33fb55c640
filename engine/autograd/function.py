"""Graph nodes and custom Functions.

`Function.apply` runs `forward` with grad recording off and, if any input
requires grad, makes the ctx object the graph node (as PyTorch does): it keeps
the saved tensors, the next nodes (one per input) and the backward formula.
"""
from ..tensor import Tensor, view_of
from . import grad_mode as _gm

_state = _gm.state
_seq = [0]


class Node:
    """Base of every graph node.  `next_functions` pairs (node, output_nr) per input."""
    __slots__ = ("next_functions", "_seq", "_saved", "_pre_hooks", "_hooks", "_meta", "__weakref__")
    _n_outputs = 1

    def name(self):
        return type(self).__name__

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"

    def register_hook(self, fn):
        """fn(grad_inputs, grad_outputs) after this node ran."""
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


class AccumulateGrad(Node):
    """Sink node of a leaf tensor: adds the incoming gradient into `.grad`."""
    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable
        self.next_functions = ()
        self._seq = -1
        self._saved = None
        self._pre_hooks = None
        self._hooks = None
        self._meta = None


def accumulate_node(t):
    n = t._accum
    if n is None:
        n = t._accum = AccumulateGrad(t)
    return n


class SavedTensor:
    __slots__ = ("tensor", "version", "is_output")

    def __init__(self, tensor, is_output):
        self.tensor = tensor
        self.version = tensor._storage.version
        self.is_output = is_output


_FREED_MSG = ("Trying to backward through the graph a second time (or directly access saved tensors "
              "after they have already been freed). Saved intermediate values of the graph are freed when "
              "you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
              "through the graph a second time or if you need to access saved tensors after calling backward.")


class FunctionCtx(Node):
    __slots__ = ("needs_input_grad", "_to_save", "_non_diff", "_materialize", "__dict__")

    def save_for_backward(self, *tensors):
        self._to_save = tensors

    def mark_non_differentiable(self, *tensors):
        self._non_diff = {id(t) for t in tensors}

    def mark_dirty(self, *tensors):
        pass

    def set_materialize_grads(self, value):
        self._materialize = bool(value)

    @property
    def saved_tensors(self):
        saved = self._saved
        if saved is None:
            if getattr(self, "_to_save", None) is not None and self.next_functions is None:
                return self._to_save  # forward-time access, before apply() wrapped them
            raise RuntimeError(_FREED_MSG)
        out = []
        for s in saved:
            if s is None:
                out.append(None)
                continue
            t = s.tensor
            if t._storage.version != s.version:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: [{t.dtype.name} {list(t.shape)}] is at version {t._storage.version}; "
                    f"expected version {s.version} instead. Hint: the backtrace further above shows the "
                    "operation that failed to compute its gradient.")
            if s.is_output and _state.enabled:
                t.grad_fn = self  # restore history for double backward
                t._rg = True
            out.append(t)
        return tuple(out)

    saved_variables = saved_tensors

    def _free(self):
        self._saved = None


def _collect_tensors(args, kwargs):
    return [a for a in args if isinstance(a, Tensor)]


class _FunctionMeta(type):
    def __init__(cls, name, bases, ns):
        super().__init__(name, bases, ns)
        node_name = ns.get("node_name") or f"{name}Backward"
        cls._backward_cls = type(node_name, (FunctionCtx,), {"_function": cls, "__slots__": ()})


class Function(metaclass=_FunctionMeta):
    """Subclass with `forward(ctx, *args)` and `backward(ctx, *grads)` staticmethods,
    then call `MyFn.apply(*args)`, as with torch.autograd.Function."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("You must implement the backward function for custom autograd.Function.")

    @classmethod
    def apply(cls, *args, **kwargs):
        need = False
        if _state.enabled:
            for a in args:
                if isinstance(a, Tensor) and a._rg:
                    need = True
                    break
        ctx = cls._backward_cls.__new__(cls._backward_cls)
        ctx.next_functions = None
        ctx._saved = None
        ctx._to_save = None
        ctx._non_diff = None
        ctx._materialize = True
        ctx._pre_hooks = None
        ctx._hooks = None
        ctx._meta = None
        if need:
            ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._rg for a in args)
        else:
            ctx.needs_input_grad = tuple(False for _ in args)
        prev = _state.enabled
        _state.enabled = False
        try:
            out = cls.forward(ctx, *args, **kwargs)
        finally:
            _state.enabled = prev
        if not need:
            return out
        multi = isinstance(out, tuple)
        outs = out if multi else (out,)
        nf = []
        for a in args:
            if isinstance(a, Tensor) and a._rg:
                fn = a.grad_fn
                nf.append((fn, a._output_nr) if fn is not None else (accumulate_node(a), 0))
            elif isinstance(a, Tensor):
                nf.append((None, 0))
            else:
                nf.append((None, 0))
        ctx.next_functions = tuple(nf)
        _seq[0] += 1
        ctx._seq = _seq[0]
        nd = ctx._non_diff
        o0 = outs[0]
        if isinstance(o0, Tensor):
            ctx._out_meta = (o0._shape, o0.dtype, o0._storage.device)
        if len(outs) > 1:
            ctx._n_outputs = len(outs)
            ctx._meta = [(o._shape, o.dtype, o._storage.device) if isinstance(o, Tensor) else None
                         for o in outs]
        results = []
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                results.append(o)
                continue
            if any(o is a for a in args):  # forward returned an input: give it its own identity
                o = view_of(o, o._shape, o._strides, o._offset)
            if (nd is None or id(o) not in nd) and o.dtype.is_floating_point:
                o.grad_fn = ctx
                o._output_nr = i
                o._rg = True
            results.append(o)
        ts = ctx._to_save
        if ts is not None:
            saved = []
            for t in ts:
                if t is None:
                    saved.append(None)
                    continue
                is_out = any(t is o for o in outs)
                if is_out:  # a detached alias, so the node does not keep itself alive
                    t = view_of(t, t._shape, t._strides, t._offset)
                saved.append(SavedTensor(t, is_out))
            ctx._saved = saved
            ctx._to_save = None
        else:
            ctx._saved = []
        return tuple(results) if multi else results[0]


class once_differentiable:
    def __new__(cls, fn):
        return fn
