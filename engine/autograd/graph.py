"""Graph introspection: the public API the notebook layer (kernel_ext, widgets) uses.

Two entry points, neither of which makes callers reach into private fields:

`walk(tensor)` lists the nodes of the autograd graph behind a tensor::

    x = engine.tensor([1., 2.], requires_grad=True)
    y = engine.tensor([3., 4.], requires_grad=True)
    z = (x * y + x).sum()
    for n in walk(z):
        print(n.id, n.name, n.op, n.inputs, n.shape)
    # 0 SumBackward0 sum [1] ()
    # 1 AddBackward0 add [2, 3] (2,)
    # 2 MulBackward0 mul [3, 4] (2,)
    # 3 AccumulateGrad leaf [] (2,)      <- x
    # 4 AccumulateGrad leaf [] (2,)      <- y

`record_backward()` records a backward pass node by node::

    with record_backward() as events:
        z.backward()
    for ev in events:
        print(ev.name, [g.shape for g in ev.grad_outputs if g is not None])

Node names are PyTorch's (`MulBackward0`, `SumBackward1`, `AccumulateGrad`, ...).
"""
from collections import deque, namedtuple
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..tensor import Tensor
from .function import AccumulateGrad, Node, accumulate_node

__all__ = ["NodeInfo", "BackwardEvent", "walk", "record_backward"]


@dataclass
class NodeInfo:
    """One node of the autograd graph behind a tensor.

    id       int, stable within one walk() (0 is the root; ids follow walk order)
    name     PyTorch's node name: 'MulBackward0', 'SumBackward1', 'AccumulateGrad', ...
    op       short op name: 'mul', 'sum', ... and 'leaf' for AccumulateGrad nodes
    inputs   ids of the nodes this one sends gradients to (its next_functions, None edges
             dropped, one entry per edge: x * x lists x's leaf twice)
    is_leaf  True for AccumulateGrad nodes (one per leaf tensor that requires grad)
    shape, dtype, device
             the node's (first) output: shape tuple, dtype name ('float32'), device string
             ('cl:0'); for a leaf, the leaf tensor's
    saved    [(shape, dtype name)] of the tensors the node saved for backward
             (empty once the graph was freed by a backward without retain_graph)
    tensor   the leaf Tensor itself (AccumulateGrad nodes only; nn Parameters included)
    node     the graph node object (its .name(), .next_functions, .register_hook, ...)
    is_parameter  True when `tensor` is an nn Parameter (type name 'Parameter')
    modules  the nn.Modules whose forward made this node, outermost first (() outside any
             module); name them with `root.named_modules()`
    """
    id: int
    name: str
    op: str
    inputs: list
    is_leaf: bool
    shape: tuple = None
    dtype: str = None
    device: str = None
    saved: list = field(default_factory=list)
    tensor: Tensor = None
    node: Node = None
    modules: tuple = ()

    @property
    def is_parameter(self):
        return self.tensor is not None and any(c.__name__ == "Parameter" for c in type(self.tensor).__mro__)


def _op_name(name):
    i = name.find("Backward")
    base = name[:i] if i > 0 else name
    return base.lower()


def walk(root):
    """All nodes reachable from `root` (a Tensor or a graph node), in topological order:
    every node comes before the nodes it sends gradients to (root first), nodes that
    become ready together keep their next_functions order (deterministic).
    A leaf tensor that requires grad walks to its single AccumulateGrad node; a tensor
    without history gives []. Returns a list of NodeInfo. Iterative (deep graphs are fine)."""
    if isinstance(root, Tensor):
        start = root.grad_fn
        if start is None:
            if not root.requires_grad:
                return []
            start = accumulate_node(root)
    else:
        start = root
    if start is None:
        return []
    # collect the nodes and their in-degrees, then Kahn's algorithm with a FIFO queue:
    # a topological order in which siblings keep their next_functions order
    indeg = {start: 0}
    stack = [start]
    while stack:
        n = stack.pop()
        for nx, _ in n.next_functions:
            if nx is None:
                continue
            if nx in indeg:
                indeg[nx] += 1
            else:
                indeg[nx] = 1
                stack.append(nx)
    order = []
    queue = deque([start])
    while queue:
        n = queue.popleft()
        order.append(n)
        for nx, _ in n.next_functions:
            if nx is None:
                continue
            indeg[nx] -= 1
            if indeg[nx] == 0:
                queue.append(nx)
    ids = {n: i for i, n in enumerate(order)}
    out = []
    for n in order:
        leaf = isinstance(n, AccumulateGrad)
        info = NodeInfo(id=ids[n], name=n.name(), op="leaf" if leaf else _op_name(n.name()),
                        inputs=[ids[nx] for nx, _ in n.next_functions if nx is not None],
                        is_leaf=leaf, node=n)
        if leaf:
            t = n.variable
            info.tensor = t
            info.shape, info.dtype, info.device = tuple(t.shape), t.dtype.name, str(t.device)
        else:
            meta = n._meta
            if meta and meta[0] is not None:
                info.shape, info.dtype, info.device = tuple(meta[0][0]), meta[0][1].name, f"cl:{meta[0][2].index}"
            info.modules = getattr(n, "_modules", None) or ()
            sm = getattr(n, "_saved_tensors_meta", None)
            if sm:
                info.saved = [(s, d.name) for s, d in sm]
        out.append(info)
    return out


class BackwardEvent(namedtuple("BackwardEvent", ["node", "grad_outputs", "grad_inputs"])):
    """One executed node of a backward pass (a 3-tuple, unpackable as before).

    node          the graph node (AccumulateGrad for a leaf)
    grad_outputs  tuple of the gradients arriving at the node, one per node output
                  (None where an output received none)
    grad_inputs   tuple of the gradients the node passes on, one per next_functions edge
                  (None where an input gets none); () for AccumulateGrad
    """
    __slots__ = ()

    @property
    def name(self):
        return self.node.name()

    @property
    def is_leaf(self):
        return isinstance(self.node, AccumulateGrad)

    @property
    def tensor(self):
        """The leaf tensor, for AccumulateGrad events (else None)."""
        return self.node.variable if isinstance(self.node, AccumulateGrad) else None


@contextmanager
def record_backward(callback=None):
    """Record every node the backward engine runs, in execution order.

    The context value is a list that fills with BackwardEvent(node, grad_outputs,
    grad_inputs) tuples as backward passes run inside the block; `callback(node,
    grad_outputs, grad_inputs)`, if given, is called for each as well.  Leaves appear
    as AccumulateGrad events when their `.grad` is written (by backward(), not by
    autograd.grad()).  The recorded gradients are the engine's own tensors: treat
    them as read-only."""
    from . import engine
    events = []

    def rec(node, gout, gin):
        events.append(BackwardEvent(node, gout, gin))
        if callback is not None:
            callback(node, gout, gin)
    engine._recorders.append(rec)
    try:
        yield events
    finally:
        engine._recorders.remove(rec)
