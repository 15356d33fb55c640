"""Graph introspection: the public API the notebook layer (kernel_ext, widgets) uses.

`walk(tensor)` lists the nodes behind a tensor; `record_backward()` records a
backward pass node by node.  Neither reaches into private fields for its callers.
"""
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..tensor import Tensor
from .function import AccumulateGrad, Node


@dataclass
class NodeInfo:
    """One node of the autograd graph behind a tensor."""
    id: int                     # stable within one walk
    name: str                   # e.g. 'MulBackward0', 'AccumulateGrad'
    op: str                     # short op name: 'mul', 'leaf'
    inputs: list                # ids of the nodes this one feeds gradients to
    is_leaf: bool
    shape: tuple = None         # output shape (leaf: the tensor's shape)
    dtype: str = None
    device: str = None
    saved: list = field(default_factory=list)   # (shape, dtype) of saved tensors
    tensor: Tensor = None       # the leaf tensor, for AccumulateGrad nodes
    node: Node = None           # the node object itself

    @property
    def is_parameter(self):
        return self.tensor is not None and type(self.tensor).__name__ == "Parameter"


def _op_name(name):
    base = name.replace("Backward", " ").split(" ")[0]
    return base.lower() if base else name.lower()


def walk(root):
    """All nodes reachable from `root` (a Tensor or a grad_fn), in topological
    order (root first, leaves last).  Returns a list of NodeInfo."""
    start = root.grad_fn if isinstance(root, Tensor) else root
    if start is None:
        if isinstance(root, Tensor) and root.requires_grad:
            from .function import accumulate_node
            start = accumulate_node(root)
        else:
            return []
    order, seen = [], {}
    stack = [(start, False)]
    while stack:  # iterative DFS post-order, reversed = topological
        n, done = stack.pop()
        if done:
            order.append(n)
            continue
        if n in seen:
            continue
        seen[n] = True
        stack.append((n, True))
        for nx, _ in (n.next_functions or ()):
            if nx is not None and nx not in seen:
                stack.append((nx, False))
    order.reverse()
    ids = {n: i for i, n in enumerate(order)}
    out = []
    for n in order:
        leaf = isinstance(n, AccumulateGrad)
        info = NodeInfo(id=ids[n], name=n.name(), op="leaf" if leaf else _op_name(n.name()),
                        inputs=[ids[nx] for nx, _ in (n.next_functions or ()) if nx is not None],
                        is_leaf=leaf, node=n)
        if leaf:
            t = n.variable
            info.tensor = t
            info.shape, info.dtype, info.device = tuple(t.shape), t.dtype.name, str(t.device)
        else:
            meta = getattr(n, "_out_meta", None)
            if meta is not None:
                info.shape, info.dtype, info.device = tuple(meta[0]), meta[1].name, f"cl:{meta[2].index}"
            if n._saved:
                info.saved = [(tuple(s.tensor.shape), s.tensor.dtype.name) for s in n._saved if s is not None]
        out.append(info)
    return out


@contextmanager
def record_backward(callback=None):
    """Record every node the backward engine runs, in execution order.

    `callback(node, grad_outputs, grad_inputs)` is called per node, if given; the
    context value is a list of (node, grad_outputs, grad_inputs) tuples, where
    grad_outputs are the gradients arriving at the node and grad_inputs the
    gradients it passes on (None where an input gets none)."""
    from . import engine
    events = []

    def rec(node, gout, gin):
        events.append((node, gout, gin))
        if callback is not None:
            callback(node, gout, gin)
    engine._recorders.append(rec)
    try:
        yield events
    finally:
        engine._recorders.remove(rec)
