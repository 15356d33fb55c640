"""The backward engine: walk the graph from the roots in dependency order
(highest sequence number first among ready nodes, as PyTorch does), calling
each node's backward formula and routing gradients to the next nodes."""
import heapq

from ..tensor import Tensor
from . import grad_mode as _gm
from .function import AccumulateGrad, FunctionCtx, accumulate_node
from .hooks import run_tensor_hooks

_state = _gm.state
_recorders = []  # callbacks(event dict) installed by graph.record_backward


def _root_edge(t):
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    if t._rg:
        return (accumulate_node(t), 0)
    return None


def _ones_like(t):
    from ..ops.creation import full_like
    return full_like(t, 1.0)


def _check_grad(t, g):
    if g is None:
        if t.numel() != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return _ones_like(t)
    if not isinstance(g, Tensor):
        from ..ops.creation import tensor
        g = tensor(g, dtype=t.dtype, device=t.device)
    if tuple(g.shape) != tuple(t.shape):
        raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of {tuple(g.shape)} and "
                           f"output[0] has a shape of {tuple(t.shape)}.")
    return g


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    if isinstance(tensors, Tensor):
        tensors = (tensors,)
        grad_tensors = (grad_tensors,)
    elif grad_tensors is None:
        grad_tensors = (None,) * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = (grad_tensors,)
    if retain_graph is None:
        retain_graph = create_graph
    roots = []
    for t, g in zip(tensors, grad_tensors):
        if not t._rg:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        roots.append((_root_edge(t), _check_grad(t, g)))
    capture = None
    if inputs is not None:
        if isinstance(inputs, Tensor):
            inputs = (inputs,)
        capture = {}
        for x in inputs:
            e = _root_edge(x)
            if e is None:
                raise RuntimeError("One of the differentiated Tensors does not require grad")
            capture[e] = None
    _run(roots, retain_graph, create_graph, capture, accumulate=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    single_in = isinstance(inputs, Tensor)
    if isinstance(outputs, Tensor):
        outputs = (outputs,)
    if single_in:
        inputs = (inputs,)
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,)
    if retain_graph is None:
        retain_graph = create_graph
    roots = []
    for t, g in zip(outputs, grad_outputs):
        if not t._rg:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        roots.append((_root_edge(t), _check_grad(t, g)))
    capture = {}
    edges = []
    for x in inputs:
        if not x._rg:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
        e = _root_edge(x)
        edges.append(e)
        capture[e] = None
    _run(roots, retain_graph, create_graph, capture, accumulate=False)
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


def _add(a, b):
    if a is None:
        return b
    return a + b


def _run(roots, retain_graph, create_graph, capture, accumulate):
    # dependency counts over the reachable graph
    deps = {}
    seen = set()
    stack = []
    for (node, _), _g in roots:
        if node not in seen:
            seen.add(node)
            stack.append(node)
    while stack:
        n = stack.pop()
        for nxt, _ in (n.next_functions or ()):
            if nxt is None:
                continue
            deps[nxt] = deps.get(nxt, 0) + 1
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    # prune to what matters: without accumulation only paths to captured edges
    if not accumulate:
        targets = {n for n, _ in capture}
        useful = {}

        def is_useful(n):
            r = useful.get(n)
            if r is None:
                useful[n] = False
                r = n in targets or any(nx is not None and is_useful(nx) for nx, _ in (n.next_functions or ()))
                useful[n] = r
            return r
        import sys
        lim = sys.getrecursionlimit()
        sys.setrecursionlimit(max(lim, 10 * len(seen) + 1000))
        try:
            for n in seen:
                is_useful(n)
        finally:
            sys.setrecursionlimit(lim)
    else:
        useful = None

    buffers = {}
    heap = []
    for (node, nr), g in roots:
        buf = buffers.get(node)
        if buf is None:
            buf = buffers[node] = [None] * node._n_outputs
        buf[nr] = _add(buf[nr], g)
    for node in list(buffers):
        if deps.get(node, 0) == 0:
            heapq.heappush(heap, (-node._seq, id(node), node))

    prev = _state.enabled
    _state.enabled = bool(create_graph)
    recorders = list(_recorders)
    try:
        while heap:
            _, _, node = heapq.heappop(heap)
            grads = buffers.pop(node)
            if capture is not None:
                for i, g in enumerate(grads):
                    if g is not None and (node, i) in capture:
                        c = capture[(node, i)]
                        capture[(node, i)] = g if c is None else c + g
            if isinstance(node, AccumulateGrad):
                if accumulate and grads[0] is not None and (capture is None or (node, 0) in capture):
                    _accumulate(node, grads[0], create_graph)
                    if recorders:
                        _record(recorders, node, grads, ())
                continue
            nexts = node.next_functions
            run = any(g is not None for g in grads)
            if run and useful is not None:
                run = any(nx is not None and useful[nx] for nx, _ in nexts)
            if run:
                if node._pre_hooks:
                    for fn in list(node._pre_hooks.values()):
                        r = fn(tuple(grads))
                        if r is not None:
                            grads = list(r)
                grads = _apply_retain_hooks(node, grads)
                out = _call_backward(node, grads)
                if node._hooks:
                    for fn in list(node._hooks.values()):
                        fn(out, tuple(grads))
                if recorders:
                    _record(recorders, node, grads, out)
                if not retain_graph:
                    node._saved = None
            else:
                out = (None,) * len(nexts)
            for (nxt, nr), g in zip(nexts, out):
                if nxt is None:
                    continue
                buf = buffers.get(nxt)
                if buf is None:
                    buf = buffers[nxt] = [None] * nxt._n_outputs
                if g is not None:
                    buf[nr] = _add(buf[nr], g)
                d = deps[nxt] - 1
                deps[nxt] = d
                if d == 0:
                    heapq.heappush(heap, (-nxt._seq, id(nxt), nxt))
    finally:
        _state.enabled = prev


def _apply_retain_hooks(node, grads):
    owners = getattr(node, "_tensor_owners", None)
    if not owners:
        return grads
    for i, t in list(owners.items()):
        if grads[i] is None:
            continue
        g = run_tensor_hooks(t, grads[i])
        grads[i] = g
        if t._retains_grad:
            t.grad = g if t.grad is None else t.grad + g
    return grads


def _call_backward(node, grads):
    fn = node._function
    if node._saved is None:
        raise RuntimeError("Trying to backward through the graph a second time (or directly access saved "
                           "tensors after they have already been freed). Saved intermediate values of the "
                           "graph are freed when you call .backward() or autograd.grad(). Specify "
                           "retain_graph=True if you need to backward through the graph a second time.")
    if node._materialize:
        for i, g in enumerate(grads):
            if g is None:
                grads[i] = _zeros_for(node, i)
    out = fn.backward(node, *grads)
    if not isinstance(out, tuple):
        out = (out,)
    n = len(node.next_functions)
    if len(out) < n:
        out = out + (None,) * (n - len(out))
    elif len(out) > n:
        if any(g is not None for g in out[n:]):
            raise RuntimeError(f"function {node.name()} returned an incorrect number of gradients "
                               f"(expected {n}, got {len(out)})")
        out = out[:n]
    return out


def _zeros_for(node, i):
    meta = node._meta
    if meta is None:
        raise RuntimeError(f"{node.name()}: missing gradient for output {i}")
    from ..ops.creation import zeros
    shape, dtype, dev = meta[i]
    return zeros(shape, dtype=dtype, device=dev)


def _accumulate(node, g, create_graph):
    t = node.variable
    g = run_tensor_hooks(t, g)
    if g is None:
        return
    if t.grad is None:
        # own the memory: the same gradient tensor may flow to several inputs
        t.grad = g if create_graph else g.detach().clone()
    elif create_graph:
        t.grad = t.grad + g
    else:
        t.grad.add_(g.detach())


def _record(recorders, node, grads_out, grads_in):
    for cb in recorders:
        cb(node, tuple(grads_out), tuple(grads_in))
