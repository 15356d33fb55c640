"""The backward engine.

Walks the graph from the roots in dependency order: a node runs once every node
that feeds it a gradient has run; among ready nodes the most recently created
runs first (PyTorch's sequence-number priority) and AccumulateGrad sinks run as
soon as they are ready.  Each node's backward formula runs with grad mode set to
`create_graph`, so with create_graph=True the gradients have a graph of their own
(higher-order derivatives).  Iterative throughout: a 10,000-op chain is fine.
"""
import heapq
import sys

from ..tensor import Tensor
from . import grad_mode as _gm
from .function import FREED, FREED_MSG, AccumulateGrad, accumulate_node
from .hooks import run_tensor_hooks

_state = _gm.state
_recorders = []  # callbacks(node, grad_outputs, grad_inputs) installed by graph.record_backward
_getrefcount = sys.getrefcount


def _root_edge(t):
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    if t._rg:
        return (accumulate_node(t), 0)
    return None


def _make_grad(t, g, i):
    if g is None:
        if t.numel() != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        if not t.dtype.is_floating_point:
            raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {t.dtype}")
        from ..ops.creation import full_like
        return full_like(t, 1.0)
    if not isinstance(g, Tensor):
        from ..ops.creation import tensor
        g = tensor(g, dtype=t.dtype, device=t.device)
    if tuple(g.shape) != tuple(t.shape):
        raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and "
                           f"output[{i}] has a shape of {t.shape}.")
    if g.dtype is not t.dtype:
        g = g.to(t.dtype)
    return g


def _as_tuple(x):
    if isinstance(x, Tensor):
        return (x,)
    if x is None:
        return None
    return tuple(x)


def _roots(tensors, grad_tensors):
    roots = []
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected a Tensor as element {i} of the outputs, got {type(t).__name__}")
        g = grad_tensors[i] if grad_tensors is not None and i < len(grad_tensors) else None
        if not t._rg:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        roots.append((_root_edge(t), _make_grad(t, g, i)))
    return roots


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None,
             inputs=None):
    """Accumulate d(tensors)/d(leaf) into every leaf's `.grad` (or only into `inputs`'s)."""
    tensors = _as_tuple(tensors)
    grad_tensors = _as_tuple(grad_tensors if grad_tensors is not None else grad_variables)
    if grad_tensors is not None and len(grad_tensors) != len(tensors):
        raise RuntimeError(f"grad_tensors has {len(grad_tensors)} elements but tensors has {len(tensors)}")
    if retain_graph is None:
        retain_graph = create_graph
    roots = _roots(tensors, grad_tensors)
    capture = None
    nonleaf = None
    if inputs is not None:
        inputs = _as_tuple(inputs)
        if not inputs:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        capture = {}
        nonleaf = []
        for x in inputs:
            e = _root_edge(x)
            if e is None:
                raise RuntimeError("One of the differentiated Tensors does not require grad")
            capture[e] = None
            if x.grad_fn is not None:
                nonleaf.append((x, e))
    _run(roots, retain_graph, create_graph, capture, True)
    if nonleaf:
        for x, e in nonleaf:
            g = capture[e]
            if g is not None:
                _accumulate(x, g, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of `outputs` with respect to `inputs` (a tuple), without touching `.grad`."""
    if is_grads_batched:
        raise NotImplementedError("is_grads_batched=True is not supported")
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    grad_outputs = _as_tuple(grad_outputs)
    if grad_outputs is not None and len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad requires one grad_output per output: got {len(grad_outputs)} grad_outputs "
                           f"and {len(outputs)} outputs")
    if allow_unused is None:
        allow_unused = materialize_grads
    elif materialize_grads and not allow_unused:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, "
                         "but got: allow_unused=False.")
    if retain_graph is None:
        retain_graph = create_graph
    roots = _roots(outputs, grad_outputs)
    capture = {}
    edges = []
    for x in inputs:
        if not isinstance(x, Tensor):
            raise TypeError(f"grad(): inputs must be Tensors, got {type(x).__name__}")
        if not x._rg:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
        e = _root_edge(x)
        edges.append(e)
        capture[e] = None
    _run(roots, retain_graph, create_graph, capture, False)
    res = []
    for x, e in zip(inputs, edges):
        g = capture[e]
        if g is None:
            if materialize_grads:
                from ..ops.creation import zeros_like
                g = zeros_like(x)
            elif not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been used in the "
                                   "graph. Set allow_unused=True if this is the desired behavior.")
        res.append(g)
    return tuple(res)


def _discover(root_nodes):
    """deps[n]: how many edges from reachable nodes point at n."""
    deps = {}
    seen = set(root_nodes)
    stack = list(seen)
    while stack:
        n = stack.pop()
        for nxt, _ in n.next_functions:
            if nxt is None:
                continue
            deps[nxt] = deps.get(nxt, 0) + 1
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return deps, seen


def _needed(root_nodes, deps, targets):
    """Nodes from which a target is reachable (targets included), and the dependency
    counts restricted to them."""
    indeg = dict(deps)
    ready = [n for n in set(root_nodes) if not indeg.get(n)]
    topo = []
    while ready:
        n = ready.pop()
        topo.append(n)
        for nxt, _ in n.next_functions:
            if nxt is None:
                continue
            d = indeg[nxt] - 1
            indeg[nxt] = d
            if d == 0:
                ready.append(nxt)
    needed = set()
    for n in reversed(topo):
        if n in targets:
            needed.add(n)
            continue
        for nxt, _ in n.next_functions:
            if nxt is not None and nxt in needed:
                needed.add(n)
                break
    ndeps = {}
    for n in needed:
        for nxt, _ in n.next_functions:
            if nxt is not None and nxt in needed:
                ndeps[nxt] = ndeps.get(nxt, 0) + 1
    return needed, ndeps


def _run(roots, retain_graph, create_graph, capture, accumulate):
    root_nodes = [e[0] for e, _ in roots]
    deps, _seen = _discover(root_nodes)
    needed = None
    if capture is not None:
        needed, deps = _needed(root_nodes, deps, {n for n, _ in capture})

    buffers = {}
    for (node, nr), g in roots:
        if needed is not None and node not in needed:
            continue
        buf = buffers.get(node)
        if buf is None:
            buf = buffers[node] = [None] * node._n_outputs
        buf[nr] = g if buf[nr] is None else buf[nr] + g
    heap = []
    tick = 0
    for node in buffers:
        if not deps.get(node):
            heap.append((-node._seq, tick, node))
            tick += 1
    heapq.heapify(heap)

    prev = _state.enabled
    _state.enabled = bool(create_graph)
    recorders = list(_recorders)
    heappush, heappop = heapq.heappush, heapq.heappop
    from ..ops.methods import _fast_inplace as iadd
    acc_cls = AccumulateGrad
    try:
        while heap:
            node = heappop(heap)[2]
            grads = buffers.pop(node)
            if type(node) is acc_cls:
                g = grads[0]
                grads[0] = None
                if g is None:
                    continue
                t = node.variable
                if t._hooks:
                    g = run_tensor_hooks(t, g)
                if node._pre_hooks:
                    for fn in list(node._pre_hooks.values()):
                        r = fn((g,))
                        if r is not None:
                            g = r[0]
                if capture is not None:
                    key = (node, 0)
                    if key in capture:
                        c = capture[key]
                        capture[key] = g if c is None else c + g
                    elif accumulate:
                        continue
                if accumulate and g is not None:
                    if recorders:
                        _record(recorders, node, (g,), ())
                    out = None  # drop the last node's outputs: _accumulate counts references to g
                    _accumulate(t, g, create_graph)
                    d = t.__dict__
                    if d and "_post_acc_hooks" in d:
                        for fn in list(d["_post_acc_hooks"].values()):
                            fn(t)
                continue

            d = node.__dict__
            owners = d.get("_tensor_owners")
            if owners:
                _apply_tensor_hooks(node, owners, grads, create_graph)
            if capture is not None:
                for i, g in enumerate(grads):
                    if g is not None:
                        key = (node, i)
                        if key in capture:
                            c = capture[key]
                            capture[key] = g if c is None else c + g
            nexts = node.next_functions
            if len(grads) == 1:
                run = grads[0] is not None
            else:
                run = False
                for g in grads:
                    if g is not None:
                        run = True
                        break
            if run and needed is not None:
                run = False
                for nx, _ in nexts:
                    if nx is not None and nx in needed:
                        run = True
                        break
            out = None
            if run:
                if node._pre_hooks:
                    for fn in list(node._pre_hooks.values()):
                        r = fn(tuple(grads))
                        if r is not None:
                            grads = list(r)
                out = _call_backward(node, grads)
                if node._hooks:
                    for fn in list(node._hooks.values()):
                        r = fn(out, tuple(grads))
                        if r is not None:
                            out = tuple(r)
                if recorders:
                    _record(recorders, node, grads, out)
                if not retain_graph and node._saved:
                    node._saved = FREED
            grads = None  # (the incoming gradients can be freed, or added into in place, from here on)
            for k, (nxt, nr) in enumerate(nexts):
                if nxt is None or (needed is not None and nxt not in needed):
                    continue
                buf = buffers.get(nxt)
                if buf is None:
                    buf = buffers[nxt] = [None] * nxt._n_outputs
                if out is not None:
                    g = out[k]
                    if g is not None:
                        c = buf[nr]
                        if c is None:
                            buf[nr] = g
                        elif (create_graph or c._rg or c.dtype is not g.dtype or c._shape != g._shape
                              or _getrefcount(c) != 3 or _getrefcount(c._storage) != 2
                              or iadd("add", "v1 + v2", c, g) is None):
                            buf[nr] = c + g
                        # else: nothing else saw c (refcounts: buf, c, the argument), a contiguous
                        # tensor: g was added into it in place, no temporary
                        c = None
                dn = deps[nxt] - 1
                deps[nxt] = dn
                if dn == 0:
                    heappush(heap, (-nxt._seq, tick, nxt))
                    tick += 1
    finally:
        _state.enabled = prev


def _apply_tensor_hooks(node, owners, grads, create_graph):
    """Hooks registered on non-leaf tensors, then retain_grad, before the node runs
    (retain_grad only where the tensor's current history is this node: after an
    in-place op, .grad is the gradient of the new value, as in PyTorch)."""
    for i, t in list(owners.items()):
        g = grads[i]
        if g is None:
            continue
        if t._hooks:
            g = run_tensor_hooks(t, g)
            grads[i] = g
        if t._retains_grad and t.grad_fn is node and t._output_nr == i:
            if t.grad is None:
                t.grad = g if create_graph else _clone(g)
            else:
                t.grad = t.grad + g


def _clone(g):
    from ..ops.creation import clone_tensor
    return clone_tensor(g)


def _call_backward(node, grads):
    saved = node._saved
    if saved is FREED:
        raise RuntimeError(FREED_MSG)
    if len(grads) == 1:
        g = grads[0]
        if g is None and node._materialize:
            g = grads[0] = _zeros_for(node, 0)
        out = node._function.backward(node, g)
    else:
        if node._materialize:
            for i, g in enumerate(grads):
                if g is None:
                    grads[i] = _zeros_for(node, i)
        out = node._function.backward(node, *grads)
    if type(out) is not tuple:
        out = tuple(out) if isinstance(out, list) else (out,)
    if node._validate:
        return _validate(node, out)
    tpos = node._tpos
    if tpos is not None:
        n = len(out)
        out = tuple(out[i] if i < n else None for i in tpos)
    n = len(node.next_functions)
    if len(out) != n:
        if len(out) < n:
            out = out + (None,) * (n - len(out))
        else:
            if any(g is not None for g in out[n:]):
                raise RuntimeError(f"function {node.name()} returned an incorrect number of gradients "
                                   f"(expected {n}, got {len(out)})")
            out = out[:n]
    dts = node._in_dtypes
    if dts is not None:
        out = tuple(g if g is None or g.dtype is dt or not dt.is_floating_point else g.to(dt)
                    for g, dt in zip(out, dts))
    return out


def _validate(node, out):
    """Checks PyTorch applies to a custom Function's gradients."""
    name = node.name()
    if len(out) != node._nargs:
        raise RuntimeError(f"function {name} returned an incorrect number of gradients (expected "
                           f"{node._nargs}, got {len(out)})")
    tpos = node._tpos
    if tpos is not None:
        tset = set(tpos)
        for i, g in enumerate(out):
            if g is not None and i not in tset:
                raise RuntimeError(f"function {name} returned a gradient different than None at position "
                                   f"{i + 1}, but the corresponding forward input was not a Variable")
        out = tuple(out[i] for i in tpos)
    res = []
    dts = node._in_dtypes
    for k, ((nxt, _), g, shape) in enumerate(zip(node.next_functions, out, node._in_shapes)):
        if g is None or nxt is None:
            res.append(None)
            continue
        if not isinstance(g, Tensor):
            raise TypeError(f"function {name} returned a gradient of type {type(g).__name__} at index {k}; "
                            "expected a Tensor or None")
        if g._shape != shape:
            from ..ops._core import broadcast_shapes, sum_to
            try:
                ok = broadcast_shapes(shape, g._shape) == tuple(g._shape)
            except RuntimeError:
                ok = False
            if not ok:
                raise RuntimeError(f"Function {name} returned an invalid gradient at index {k} - got "
                                   f"{list(g.shape)} but expected shape compatible with {list(shape)}")
            g = sum_to(g, shape)
        if dts is not None and g.dtype is not dts[k] and dts[k].is_floating_point:
            g = g.to(dts[k])
        res.append(g)
    return tuple(res)


def _zeros_for(node, i):
    meta = node._meta
    if meta is None or meta[i] is None:
        raise RuntimeError(f"{node.name()}: missing gradient for output {i}")
    from ..ops.creation import zeros
    shape, dtype, dev = meta[i]
    return zeros(shape, dtype=dtype, device=dev)


def _accumulate(t, g, create_graph):
    """t.grad += g, as PyTorch's AccumulateGrad: the first gradient is stolen when
    nothing else references it (else copied), later ones are added in place.

    The references to g when nothing else holds it: the caller's local, this
    parameter and getrefcount's argument (3); its storage: g's and the argument."""
    old = t.grad
    if old is None:
        if (g.dtype is t.dtype and g._shape == t._shape and _getrefcount(g._storage) == 2
                and _getrefcount(g) <= 3 and g.is_contiguous() and (create_graph or not g._rg)):
            t.grad = g  # a fresh gradient nobody else holds: no copy
        elif create_graph:
            from ..ops.shape import clone
            t.grad = clone(g)  # differentiable copy
        else:
            from ..ops.creation import clone_tensor
            t.grad = clone_tensor(g)
    elif create_graph or old._rg:
        t.grad = old + g
    else:
        old.add_(g)


def _record(recorders, node, grads_out, grads_in):
    for cb in recorders:
        cb(node, tuple(grads_out), tuple(grads_in))
