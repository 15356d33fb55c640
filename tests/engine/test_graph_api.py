"""The graph-introspection API (engine.autograd.graph): walk() and record_backward()."""
import pytest

import engine
from engine.autograd.graph import BackwardEvent, NodeInfo, record_backward, walk


class Parameter(engine.Tensor):
    """Stands in for nn.Parameter: walk() recognises it by its type name."""


def small_graph():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = engine.tensor([3.0, 4.0], requires_grad=True)
    z = (x * y + x).sum()
    return x, y, z


def test_walk_exact_structure():
    x, y, z = small_graph()
    nodes = walk(z)
    assert all(isinstance(n, NodeInfo) for n in nodes)
    assert [n.id for n in nodes] == [0, 1, 2, 3, 4]
    assert [n.name for n in nodes] == ["SumBackward0", "AddBackward0", "MulBackward0", "AccumulateGrad",
                                       "AccumulateGrad"]
    assert [n.op for n in nodes] == ["sum", "add", "mul", "leaf", "leaf"]
    assert [n.inputs for n in nodes] == [[1], [2, 3], [3, 4], [], []]
    assert [n.is_leaf for n in nodes] == [False, False, False, True, True]
    assert [n.shape for n in nodes] == [(), (2,), (2,), (2,), (2,)]
    assert {n.dtype for n in nodes} == {"float32"} and {n.device for n in nodes} == {str(x.device)}
    assert [n.saved for n in nodes] == [[], [], [((2,), "float32"), ((2,), "float32")], [], []]
    assert nodes[3].tensor is x and nodes[4].tensor is y
    assert [n.tensor for n in nodes[:3]] == [None, None, None]
    assert not any(n.is_parameter for n in nodes)
    assert nodes[0].node is z.grad_fn and nodes[3].node.variable is x


def test_walk_is_topological_and_matches_next_functions():
    x, y, z = small_graph()
    w = (z * x).exp() + (y - x).tanh()
    nodes = walk(w)
    pos = {n.id: i for i, n in enumerate(nodes)}
    for n in nodes:
        assert [m for m in n.inputs] == [
            next(k.id for k in nodes if k.node is nx) for nx, _ in n.node.next_functions if nx is not None]
        assert all(pos[i] > pos[n.id] for i in n.inputs)
    assert sum(n.is_leaf for n in nodes) == 2  # one AccumulateGrad per leaf, shared


def test_walk_leaf_no_history_and_node_root():
    x = engine.ones(3, requires_grad=True)
    nodes = walk(x)
    assert len(nodes) == 1 and nodes[0].is_leaf and nodes[0].tensor is x and nodes[0].inputs == []
    assert walk(engine.ones(3)) == []
    y = x * 2
    assert [n.name for n in walk(y.grad_fn)] == ["MulBackward0", "AccumulateGrad"]
    assert walk(y.detach()) == []


def test_walk_parameters():
    w = Parameter([1.0, 2.0])
    w.requires_grad_()
    b = engine.ones(2, requires_grad=True)
    out = (w * 3 + b).sum()
    leaves = [n for n in walk(out) if n.is_leaf]
    assert [n.tensor is b for n in leaves] == [True, False]  # b's sink is ready first (Kahn order)
    assert [n.is_parameter for n in leaves] == [False, True] and leaves[1].tensor is w


def test_walk_saved_freed_after_backward_and_multi_output():
    x, y, z = small_graph()
    z.backward()
    assert all(n.saved == [] for n in walk(z))
    a = engine.arange(6.0).reshape(2, 3).requires_grad_()
    parts = a.split(1, 0)
    nodes = walk(parts[1] * 2)
    assert [n.name for n in nodes] == ["MulBackward0", "SplitBackward0", "AccumulateGrad"]
    assert nodes[1].shape == (1, 3)


def test_walk_int_and_mixed_dtypes_and_views():
    x = engine.ones(2, 3, requires_grad=True)
    v = x.t()[1:]
    nodes = walk(v)
    assert [(n.name, n.shape) for n in nodes] == [("SliceBackward0", (2, 2)), ("TBackward0", (3, 2)),
                                                  ("AccumulateGrad", (2, 3))]


def test_record_backward_exact_events():
    x, y, z = small_graph()
    with record_backward() as events:
        z.backward()
    assert all(isinstance(e, BackwardEvent) for e in events)
    assert [e.name for e in events] == ["SumBackward0", "AddBackward0", "MulBackward0", "AccumulateGrad",
                                        "AccumulateGrad"]
    assert [e.tensor for e in events[3:]] == [x, y] and events[3].is_leaf and not events[0].is_leaf

    def tl(gs):
        return [None if g is None else g.tolist() for g in gs]
    assert tl(events[0].grad_outputs) == [1.0] and tl(events[0].grad_inputs) == [[1.0, 1.0]]
    assert tl(events[1].grad_outputs) == [[1.0, 1.0]] and tl(events[1].grad_inputs) == [[1.0, 1.0], [1.0, 1.0]]
    assert tl(events[2].grad_outputs) == [[1.0, 1.0]] and tl(events[2].grad_inputs) == [[3.0, 4.0], [1.0, 2.0]]
    # x's sink receives the sum of both paths (Add: 1, Mul: y), once
    assert tl(events[3].grad_outputs) == [[4.0, 5.0]] and events[3].grad_inputs == ()
    assert tl(events[4].grad_outputs) == [[1.0, 2.0]]
    node, gout, gin = events[2]  # events unpack as (node, grad_outputs, grad_inputs)
    assert node is z.grad_fn.next_functions[0][0].next_functions[0][0]
    assert x.grad.tolist() == [4.0, 5.0] and y.grad.tolist() == [1.0, 2.0]


def test_record_backward_callback_and_scope():
    x, y, z = small_graph()
    seen = []
    with record_backward(lambda node, gout, gin: seen.append(node.name())) as events:
        z.backward(retain_graph=True)
    assert seen == [e.name for e in events] and len(seen) == 5
    z.backward()  # outside the block: nothing recorded
    assert len(events) == 5


def test_record_backward_none_gradients_and_autograd_grad():
    x = engine.ones(2, requires_grad=True)
    c = engine.ones(2)
    out = (x * c).sum()
    with record_backward() as events:
        g, = engine.autograd.grad(out, x)
    # autograd.grad writes no .grad: no AccumulateGrad event
    assert [e.name for e in events] == ["SumBackward0", "MulBackward0"]
    assert events[1].grad_inputs[1] is None and events[1].grad_inputs[0].tolist() == [1.0, 1.0]


def test_record_backward_nested_blocks_and_create_graph():
    x = engine.tensor([2.0], requires_grad=True)
    with record_backward() as outer:
        g, = engine.autograd.grad((x ** 3).sum(), x, create_graph=True)
        with record_backward() as inner:
            g.sum().backward()
    assert len(inner) > 0 and len(outer) == 2 + len(inner)
    assert inner[-1].name == "AccumulateGrad" and x.grad.item() == pytest.approx(12.0)
