"""Autograd core: graph building, the backward engine, grad modes, hooks, custom
Functions, higher-order gradients, error cases; compared with PyTorch."""
import gc
import threading
import weakref

import numpy as np
import pytest
import torch

import engine
from engine.autograd import Function
from .helpers import assert_close, check_op, rand


def pair(a, requires_grad=True):
    """The same values as an engine tensor and a torch tensor."""
    a = np.asarray(a, dtype=np.float32)
    return engine.tensor(a, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad)


# ---- requires_grad, leaves, grad_fn ------------------------------------------------------
def test_requires_grad_propagation_and_is_leaf():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    c = engine.tensor([3.0, 4.0])
    assert x.requires_grad and x.is_leaf and x.grad_fn is None
    assert not c.requires_grad and c.is_leaf
    y = x * c
    assert y.requires_grad and not y.is_leaf
    z = c * 2
    assert not z.requires_grad and z.is_leaf and z.grad_fn is None
    assert (x > 1).grad_fn is None and not (x > 1).requires_grad  # bool results never require grad


@pytest.mark.parametrize("fn,name", [
    (lambda x, y: x + y, "AddBackward0"), (lambda x, y: x * y, "MulBackward0"),
    (lambda x, y: x - y, "SubBackward0"), (lambda x, y: x / y, "DivBackward0"),
    (lambda x, y: x.exp(), "ExpBackward0"), (lambda x, y: x.tanh(), "TanhBackward0"),
    (lambda x, y: x.sum(0), "SumBackward1"), (lambda x, y: x.mean(0), "MeanBackward1"),
    (lambda x, y: x.view(6), "ViewBackward0"), (lambda x, y: x.reshape(3, 2), "ViewBackward0"),
    (lambda x, y: x.t(), "TBackward0"), (lambda x, y: x.transpose(0, 1), "TransposeBackward0"),
    (lambda x, y: x.permute(1, 0), "PermuteBackward0"), (lambda x, y: x.unsqueeze(0), "UnsqueezeBackward0"),
    (lambda x, y: x[None], "UnsqueezeBackward0"),
    (lambda x, y: x.unsqueeze(0).squeeze(), "SqueezeBackward0"),
    (lambda x, y: x.unsqueeze(0).squeeze(0), "SqueezeBackward1"),
    (lambda x, y: x.unsqueeze(0).squeeze((0,)), "SqueezeBackward2"),
    (lambda x, y: x.expand(4, 2, 3), "ExpandBackward0"), (lambda x, y: x[0], "SelectBackward0"),
    (lambda x, y: x[:, 1:], "SliceBackward0"), (lambda x, y: x[1:], "SliceBackward0"),
    (lambda x, y: x[..., 0], "SelectBackward0"), (lambda x, y: x[...], "AliasBackward0"),
    (lambda x, y: x[0, 1:], "SliceBackward0"), (lambda x, y: x[:, 0], "SelectBackward0"),
    (lambda x, y: x.narrow(1, 0, 2), "SliceBackward0"), (lambda x, y: x.select(1, 0), "SelectBackward0"),
    (lambda x, y: x.diagonal(), "DiagonalBackward0"), (lambda x, y: x.clone(), "CloneBackward0"),
    (lambda x, y: x.t().contiguous(), "CloneBackward0"), (lambda x, y: x.t().reshape(6), "UnsafeViewBackward0"),
    (lambda x, y: x.flatten(), "ViewBackward0"), (lambda x, y: x.to(engine.float64 if isinstance(x, engine.Tensor)
                                                                    else torch.float64), "ToCopyBackward0"),
    (lambda x, y: x.split(1)[0], "SplitBackward0"), (lambda x, y: x.split([1, 1])[0], "SplitWithSizesBackward0"),
    (lambda x, y: x.chunk(2)[1], "SplitBackward0"), (lambda x, y: x.unbind(1)[0], "UnbindBackward0"),
    (lambda x, y: x.repeat(2, 1), "RepeatBackward0"), (lambda x, y: x.flip(0), "FlipBackward0"),
    (lambda x, y: x.roll(1, 0), "RollBackward0"), (lambda x, y: x.movedim(0, 1), "PermuteBackward0"),
    (lambda x, y: x.unfold(1, 2, 1), "UnfoldBackward0"), (lambda x, y: x.as_strided((2, 2), (1, 1)),
                                                          "AsStridedBackward0"),
    (lambda x, y: x.mT, "TransposeBackward0"), (lambda x, y: x.diag_embed(), "DiagEmbedBackward0"),
])
def test_grad_fn_names_match_torch(fn, name):
    a, b = rand((2, 3)), rand((2, 3), positive=True)
    xe, xt = pair(a)
    ye, yt = pair(b)
    re_, rt = fn(xe, ye), fn(xt, yt)
    assert rt.grad_fn.name() == name  # the expectation itself is PyTorch's
    assert re_.grad_fn.name() == name
    assert type(re_.grad_fn).__name__ == name


def test_cat_and_stack_names_and_next_functions():
    x = engine.ones(2, requires_grad=True)
    c = engine.ones(2)
    r = engine.cat([x, c, x])
    assert r.grad_fn.name() == "CatBackward0"
    nf = r.grad_fn.next_functions
    assert len(nf) == 3 and nf[1] == (None, 0)
    assert nf[0][0] is nf[2][0] and nf[0][0].name() == "AccumulateGrad" and nf[0][0].variable is x
    assert engine.stack([x, x]).grad_fn.name() == "StackBackward0"


def test_next_functions_only_tensor_inputs():
    x = engine.ones(3, requires_grad=True)
    s = (x * x).sum()
    assert len(s.grad_fn.next_functions) == 1
    mul = s.grad_fn.next_functions[0][0]
    assert mul.name() == "MulBackward0"
    assert [n.name() for n, _ in mul.next_functions] == ["AccumulateGrad", "AccumulateGrad"]
    assert mul.next_functions[0][0] is mul.next_functions[1][0]


# ---- backward basics ----------------------------------------------------------------------
def test_simple_backward_matches_torch():
    a, b = rand((3, 4)), rand((3, 4))
    res = []
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        y = T.tensor(b, requires_grad=True)
        z = ((x * y + x.exp()) / (1 + y * y)).sum()
        z.backward()
        res.append((z, x.grad, y.grad))
    assert_close(res[0][0], res[1][0])
    assert_close(res[0][1], res[1][1], rtol=1e-5)
    assert_close(res[0][2], res[1][2], rtol=1e-5)


def test_backward_with_explicit_gradient():
    a, g = rand((2, 3)), rand((2, 3))
    xe, xt = pair(a)
    (xe * 3).backward(engine.tensor(g))
    (xt * 3).backward(torch.tensor(g))
    assert_close(xe.grad, xt.grad)


def test_backward_nonscalar_without_gradient_raises():
    x = engine.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2).backward()


def test_backward_gradient_shape_mismatch_raises():
    x = engine.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(engine.ones(2))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        engine.ones(2).sum().backward()


def test_single_element_non_scalar_backward():
    x = engine.ones(1, 1, requires_grad=True)
    (x * 5).backward()
    assert x.grad.tolist() == [[5.0]]


def test_leaf_backward_itself():
    x = engine.tensor(2.0, requires_grad=True)
    x.backward()
    assert x.grad.item() == 1.0


def test_gradient_accumulates_across_backward_calls():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    g = x.grad
    assert x.grad.tolist() == [2.0, 4.0]
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    assert x.grad is g  # accumulated in place, as PyTorch does
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    x.grad.zero_()
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_grad_is_not_aliased_with_other_gradients():
    # a + b passes the same gradient to both inputs, a view passes a view of it:
    # the leaves' .grad must still be independent tensors
    x = engine.ones(2, 3, requires_grad=True)
    y = engine.ones(6, requires_grad=True)
    z = x.view(6) + y
    z.backward(engine.ones(6))
    x.grad.add_(1)
    assert y.grad.tolist() == [1.0] * 6
    assert x.grad.tolist() == [[2.0] * 3] * 2
    # and the caller's gradient tensor is never adopted
    w = engine.ones(3, requires_grad=True)
    g = engine.full((3,), 2.0)
    w.backward(g)
    w.grad.add_(1)
    assert g.tolist() == [2.0, 2.0, 2.0]


def test_fresh_gradient_is_stolen_not_copied():
    holder = []

    class Twice(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            r = g * 2
            holder.append(weakref.ref(r))
            return r
    x = engine.ones(3, requires_grad=True)
    Twice.apply(x).sum().backward()
    assert x.grad is holder[0]()  # no extra copy of a gradient nobody else holds


def test_x_used_twice_and_shared_subexpressions():
    a = rand((4,))
    res = []
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        s = x * x          # x used twice in one op
        u = s.exp()
        z = (u * s + u / (1 + s) + x).sum()   # s and u shared by several consumers
        z.backward()
        res.append(x.grad)
    assert_close(res[0], res[1], rtol=1e-4)


def test_diamond_graph():
    a = rand((3,))
    res = []
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        top = x * 2
        left, right = top.sin(), top.cos()
        bottom = (left * right + left).sum()
        bottom.backward()
        res.append(x.grad)
    assert_close(res[0], res[1], rtol=1e-5)


def test_deep_chain_no_recursion_error():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x
    for _ in range(10000):
        y = y * 1.0001
    y.sum().backward()
    assert_close(x.grad, torch.full((2,), 1.0001 ** 10000), rtol=1e-3)
    # autograd.grad and walk() prune/traverse iteratively too
    y = x
    for _ in range(10000):
        y = y + x * 0.0
    g, = engine.autograd.grad(y.sum(), x)
    assert g.tolist() == [1.0, 1.0]
    assert len(engine.autograd.graph.walk(y)) > 10000
    del y
    gc.collect()


def test_gradients_through_noncontiguous_views():
    a = rand((4, 5))
    check_op(lambda T, x: (x.t()[1:, ::2] * 3).exp(), a)
    check_op(lambda T, x: x.transpose(0, 1).reshape(-1) * 2, a, noncontig=True)
    check_op(lambda T, x: x[::2, 1::2].sum(0), a, noncontig=True)


def test_integer_inputs_get_no_gradient():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    i = engine.tensor([3, 4])
    y = x * i
    assert y.dtype is engine.float32
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 4.0]


def test_mixed_float_dtypes_cast_gradients_back():
    from .helpers import fp64
    if not fp64():
        pytest.skip("no float64 on this device")
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    w = engine.tensor([3.0, 4.0], dtype=engine.float64, requires_grad=True)
    y = x * w
    assert y.dtype is engine.float64
    y.sum().backward()
    assert x.grad.dtype is engine.float32 and w.grad.dtype is engine.float64
    assert x.grad.tolist() == [3.0, 4.0]


# ---- retain_graph, freed buffers, in-place checks -----------------------------------------------
def test_second_backward_through_freed_graph_raises():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.clone()
    y.backward()
    assert_close(x.grad, torch.tensor(g1.numpy() * 2))


def test_second_backward_without_saved_tensors_is_fine():
    # as in PyTorch: only nodes whose saved tensors were freed complain
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = (x + 1).sum()
    y.backward()
    y.backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_saved_tensors_freed_after_backward():
    x = engine.ones(3, requires_grad=True)
    y = x.exp()
    node = y.grad_fn
    assert len(node.saved_tensors) == 1
    y.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        node.saved_tensors


def test_inplace_modification_of_saved_tensor_raises():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = y.exp()     # saves its output
    w = y * y       # saves y
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        w.sum().backward()
    z.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        engine.autograd.grad(z.sum(), x)


def test_inplace_on_leaf_requiring_grad_raises():
    x = engine.ones(3, requires_grad=True)
    for op in (lambda: x.add_(1), lambda: x.mul_(2), lambda: x.zero_(), lambda: x.fill_(1.0),
               lambda: x.copy_(engine.zeros(3))):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            op()
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x[0] = 5.0
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        x[1:].zero_()
    with engine.no_grad():
        x.mul_(3)
        x[0] = 0.0
    assert x.tolist() == [0.0, 3.0, 3.0] and x.is_leaf and x.requires_grad


def test_inplace_ops_with_autograd_match_torch():
    a, b = rand((3, 4)), rand((3, 4))

    def f(T, x, y):
        z = x * 1
        z.mul_(y)
        z.add_(x.exp())
        z[0] = y[1] * 2            # setitem on a non-leaf
        z[:, 1:3].mul_(y[:, :2])   # in place on a view of a non-leaf
        z.t()[0].add_(1.5)
        return z * z
    check_op(f, a, b)


def test_inplace_on_tensor_not_requiring_grad_with_grad_value():
    a, b = rand((4,)), rand((2,))

    def f(T, w, v):
        buf = T.zeros(4)
        buf.mul_(1.0)
        buf[1:3] = v          # buf takes history through CopySlices
        buf.add_(w)
        base = T.zeros(2, 4)
        base[0].copy_(w)      # in place on a view: the base takes the history
        return buf * buf, base
    check_op(f, a, b)


def test_copy_slices_node_name():
    x = engine.ones(4, requires_grad=True)
    y = x * 2
    y[1:3] = engine.zeros(2)
    t = torch.ones(4, requires_grad=True) * 2
    t[1:3] = torch.zeros(2)
    assert t.grad_fn.name().endswith("CopySlices")
    assert y.grad_fn.name() == "CopySlices"


def test_detach_shares_storage_and_allows_inplace():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    d.zero_()     # allowed: torch lets detached tensors be modified in place
    assert y.tolist() == [0.0, 0.0]
    assert x.detach()._version == x._version
    xd = x.detach()
    xd.add_(1)
    assert x.tolist() == [2.0, 3.0]
    assert x._version == xd._version


def test_detach_inplace():
    x = engine.ones(2, requires_grad=True)
    y = x * 2
    y.detach_()
    assert y.grad_fn is None and not y.requires_grad and y.is_leaf
    v = (x * 2)[0:1]
    with pytest.raises(RuntimeError, match="Can't detach views in-place"):
        v.detach_()


def test_requires_grad_rules():
    with pytest.raises(RuntimeError, match="only Tensors of floating point"):
        engine.ones(2, dtype=engine.int64).requires_grad_()
    with pytest.raises(RuntimeError, match="Only Tensors of floating point and complex dtype"):
        engine.tensor([1, 2], requires_grad=True)
    x = engine.ones(2, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)
    y.requires_grad_(True)  # a no-op on a non-leaf that requires grad
    x.requires_grad_(False)
    assert not x.requires_grad
    assert x.requires_grad_() is x and x.requires_grad


# ---- autograd.grad -------------------------------------------------------------------------------
def test_autograd_grad_basic_and_does_not_touch_dot_grad():
    a = rand((3,))
    xe, xt = pair(a)
    ge, = engine.autograd.grad((xe ** 3).sum(), xe)
    gt, = torch.autograd.grad((xt ** 3).sum(), xt)
    assert_close(ge, gt)
    assert xe.grad is None
    ye, yt = pair(rand((3,)))
    ge = engine.autograd.grad((xe * ye).sum(), [xe, ye])
    gt = torch.autograd.grad((xt * yt).sum(), [xt, yt])
    assert isinstance(ge, tuple) and len(ge) == 2
    assert_close(ge, gt)


def test_autograd_grad_allow_unused_and_materialize():
    x = engine.ones(2, requires_grad=True)
    y = engine.ones(2, requires_grad=True)
    out = (x * 2).sum()
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        engine.autograd.grad(out, [x, y], retain_graph=True)
    gx, gy = engine.autograd.grad(out, [x, y], allow_unused=True, retain_graph=True)
    assert gy is None and gx.tolist() == [2.0, 2.0]
    gx, gy = engine.autograd.grad(out, [x, y], materialize_grads=True)
    assert gy.tolist() == [0.0, 0.0]


def test_autograd_grad_grad_outputs_and_multiple_outputs():
    a, u1, u2 = rand((3,)), rand((3,)), rand((3,))
    res = []
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        o1, o2 = x.sin(), x * x
        res.append(T.autograd.grad([o1, o2], x, grad_outputs=[T.tensor(u1), T.tensor(u2)]))
    assert_close(res[0], res[1], rtol=1e-5)


def test_autograd_grad_wrt_intermediate_and_input_errors():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    out = (h * h).sum()
    gh, = engine.autograd.grad(out, h, retain_graph=True)
    assert gh.tolist() == [6.0, 12.0]
    with pytest.raises(RuntimeError, match="does not require grad"):
        engine.autograd.grad(out, engine.ones(2))
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        engine.autograd.grad(engine.ones(2).sum(), x)


def test_autograd_grad_prunes_unneeded_branches():
    ran = []

    class Spy(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            ran.append(1)
            return g
    x = engine.ones(2, requires_grad=True)
    w = engine.ones(2, requires_grad=True)
    out = (x * 2 + Spy.apply(w)).sum()
    engine.autograd.grad(out, x)
    assert ran == []  # w's branch is not needed for d out / d x


def test_backward_inputs_restricts_accumulation():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    w = engine.tensor([3.0, 4.0], requires_grad=True)
    (x * w).sum().backward(inputs=[x])
    assert x.grad.tolist() == [3.0, 4.0] and w.grad is None
    # a non-leaf input gets its .grad populated, as in PyTorch
    y = x * 2
    (y * y).sum().backward(inputs=[y])
    assert y.grad.tolist() == [4.0, 8.0]
    with pytest.raises(RuntimeError, match="cannot be empty"):
        (x * 2).sum().backward(inputs=[])


def test_module_level_backward():
    x = engine.ones(2, requires_grad=True)
    engine.autograd.backward([(x * 2).sum(), (x * 3).sum()])
    assert x.grad.tolist() == [5.0, 5.0]
    x.grad = None
    engine.autograd.backward(x * 2, engine.ones(2))
    assert x.grad.tolist() == [2.0, 2.0]


# ---- higher-order gradients -----------------------------------------------------------------------
@pytest.mark.parametrize("f", [lambda T, x: x ** 3, lambda T, x: x.tanh(), lambda T, x: x.exp(),
                               lambda T, x: x.sin() * x, lambda T, x: x.sigmoid(), lambda T, x: 1 / (1 + x * x),
                               lambda T, x: (x * x).sqrt()])
def test_second_derivative_matches_torch(f):
    a = rand((5,), positive=True)
    res = []
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        g, = T.autograd.grad(f(T, x).sum(), x, create_graph=True)
        assert g.requires_grad
        g2, = T.autograd.grad(g.sum(), x)
        res.append((g, g2))
    assert_close(res[0][0], res[1][0], rtol=1e-4)
    assert_close(res[0][1], res[1][1], rtol=1e-4, atol=1e-4)


def test_third_derivative_of_cube():
    x = engine.tensor([2.0], requires_grad=True)
    g1, = engine.autograd.grad((x ** 3).sum(), x, create_graph=True)
    g2, = engine.autograd.grad(g1.sum(), x, create_graph=True)
    g3, = engine.autograd.grad(g2.sum(), x)
    assert g1.item() == pytest.approx(12.0) and g2.item() == pytest.approx(12.0) and g3.item() == pytest.approx(6.0)


def test_hessian_vector_product():
    a, b, v = rand((4,)), rand((4,)), rand((4,))
    res = []
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        w = T.tensor(b)
        f = ((x * w).tanh() * x).sum() + (x * x * x).sum()
        g, = T.autograd.grad(f, x, create_graph=True)
        hv, = T.autograd.grad((g * T.tensor(v)).sum(), x)
        res.append(hv)
    assert_close(res[0], res[1], rtol=1e-4, atol=1e-5)


def test_backward_create_graph_keeps_graph_on_grad():
    x = engine.tensor([3.0], requires_grad=True)
    (x ** 2).sum().backward(create_graph=True)
    assert x.grad.requires_grad and x.grad.item() == 6.0
    g = x.grad
    x.grad = None
    g.sum().backward()
    assert x.grad.item() == 2.0


def test_double_backward_through_views_and_shape_ops():
    a = rand((3, 4))
    res = []
    for T in (engine, torch):
        x = T.tensor(a, requires_grad=True)
        y = (x.t()[1:, ::2] ** 2).sum() + T.cat([x, x * x], 1).sum() + (x.unsqueeze(0).expand(2, 3, 4) ** 3).sum()
        g, = T.autograd.grad(y, x, create_graph=True)
        g2, = T.autograd.grad((g * g).sum(), x)
        res.append(g2)
    assert_close(res[0], res[1], rtol=1e-4, atol=1e-4)


def test_gradcheck_float64():
    from .helpers import fp64
    if not fp64():
        pytest.skip("no float64 on this device")
    x = engine.tensor(rand((3,), np.float64), requires_grad=True)
    y = engine.tensor(rand((3,), np.float64), requires_grad=True)
    assert engine.autograd.gradcheck(lambda a, b: (a * b).exp() + a / (1 + b * b), (x, y))


# ---- grad modes ------------------------------------------------------------------------------------
def test_no_grad_context_and_decorator():
    x = engine.ones(2, requires_grad=True)
    with engine.no_grad():
        y = x * 2
        assert not engine.is_grad_enabled()
    assert engine.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None

    @engine.no_grad()
    def f(t):
        return t * 2

    @engine.no_grad
    def g(t):
        return t * 2
    assert not f(x).requires_grad and not g(x).requires_grad
    assert f.__name__ == "f" and engine.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = engine.ones(2, requires_grad=True)
    with engine.no_grad():
        with engine.enable_grad():
            y = x * 2
        z = x * 2

        @engine.enable_grad()
        def f():
            return x * 2
        assert f().requires_grad
    assert y.requires_grad and not z.requires_grad


def test_set_grad_enabled_all_forms():
    x = engine.ones(2, requires_grad=True)
    with engine.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert engine.is_grad_enabled()
    engine.set_grad_enabled(False)  # a plain call
    try:
        assert not engine.is_grad_enabled()
        assert not (x * 2).requires_grad
    finally:
        engine.set_grad_enabled(True)
    assert (x * 2).requires_grad

    @engine.set_grad_enabled(False)
    def f():
        return x * 2
    assert engine.is_grad_enabled()  # decorating does not change the mode
    assert not f().requires_grad and engine.is_grad_enabled()


def test_inference_mode():
    x = engine.ones(2, requires_grad=True)
    with engine.inference_mode():
        assert engine.is_inference_mode_enabled() and not engine.is_grad_enabled()
        assert not (x * 2).requires_grad
        with engine.inference_mode(False):
            assert not engine.is_inference_mode_enabled() and engine.is_grad_enabled()
    assert not engine.is_inference_mode_enabled() and engine.is_grad_enabled()

    @engine.inference_mode()
    def f():
        return x * 2

    @engine.inference_mode
    def g():
        return x * 2
    assert not f().requires_grad and not g().requires_grad


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with engine.no_grad():
            raise ValueError
    assert engine.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = []
    with engine.no_grad():
        t = threading.Thread(target=lambda: seen.append(engine.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_no_grad_generator_decorator():
    x = engine.ones(2, requires_grad=True)

    @engine.no_grad()
    def gen():
        for _ in range(2):
            yield x * 2
    assert [t.requires_grad for t in gen()] == [False, False]


# ---- hooks ---------------------------------------------------------------------------------------
def test_leaf_hook_modifies_grad_and_is_removable():
    x = engine.ones(3, requires_grad=True)
    calls = []
    h = x.register_hook(lambda g: calls.append(g.tolist()) or g * 2)
    (x * 3).sum().backward()
    assert calls == [[3.0] * 3] and x.grad.tolist() == [6.0] * 3
    h.remove()
    (x * 3).sum().backward()
    assert len(calls) == 1 and x.grad.tolist() == [9.0] * 3


def test_nonleaf_hook_and_retain_grad():
    xe, xt = pair([1.0, 2.0])
    out = []
    for x in (xe, xt):
        y = x * 2
        y.retain_grad()
        seen = []
        y.register_hook(lambda g: seen.append(g.tolist()) or g * 10)
        (y * y).sum().backward()
        out.append((seen, y.grad.tolist(), x.grad.tolist(), y.retains_grad))
    assert out[0] == out[1]


def test_hooks_run_with_autograd_grad_too():
    xe, xt = pair([1.0, 2.0])
    res = []
    for T, x in ((engine, xe), (torch, xt)):
        x.register_hook(lambda g: g * 2)
        y = x * 3
        y.retain_grad()
        y.register_hook(lambda g: g + 1)
        g, = T.autograd.grad((y * y).sum(), x)
        res.append((g.tolist(), y.grad.tolist()))
    assert res[0] == res[1]


def test_hook_errors_and_handle_context():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        engine.ones(2).register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="can't retain_grad on Tensor that has requires_grad=False"):
        engine.ones(2).retain_grad()
    x = engine.ones(2, requires_grad=True)
    with x.register_hook(lambda g: g * 0):
        (x * 1).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_node_hooks_and_post_accumulate_hook():
    x = engine.ones(2, requires_grad=True)
    y = x * 2
    seen = {}

    def pre(gout):
        seen["pre"] = [g.tolist() for g in gout]

    def post(gin, gout):
        seen["post"] = ([g.tolist() for g in gin], [g.tolist() for g in gout])
    y.grad_fn.register_prehook(pre)
    y.grad_fn.register_hook(post)
    x.register_post_accumulate_grad_hook(lambda t: seen.setdefault("acc", t.grad.tolist()))
    y.sum().backward()
    assert seen == {"pre": [[1.0, 1.0]], "post": ([[2.0, 2.0]], [[1.0, 1.0]]), "acc": [2.0, 2.0]}
    # a pre-hook may replace the incoming gradients
    x.grad = None
    z = x * 2
    z.grad_fn.register_prehook(lambda gout: (gout[0] * 10,))
    z.sum().backward()
    assert x.grad.tolist() == [20.0, 20.0]


def test_retain_grad_on_leaf_is_noop_and_intermediate_grad_none_by_default():
    x = engine.ones(2, requires_grad=True)
    x.retain_grad()
    y = x * 2
    (y * 1).sum().backward()
    assert y.grad is None and x.grad.tolist() == [2.0, 2.0]


# ---- custom Functions ------------------------------------------------------------------------------
class MulConst(Function):
    @staticmethod
    def forward(ctx, x, k, y):
        ctx.k = k
        ctx.save_for_backward(x, y)
        return x * k * y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False, ctx.needs_input_grad[2])
        gx = g * ctx.k * y if ctx.needs_input_grad[0] else None
        gy = g * ctx.k * x if ctx.needs_input_grad[2] else None
        return gx, None, gy


def test_custom_function_basic():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = engine.tensor([3.0, 4.0], requires_grad=True)
    z = MulConst.apply(x, 2.0, y)
    assert z.grad_fn.name() == "MulConstBackward"
    assert len(z.grad_fn.next_functions) == 2  # one per Tensor argument
    z.sum().backward()
    assert x.grad.tolist() == [6.0, 8.0] and y.grad.tolist() == [2.0, 4.0]
    c = engine.tensor([1.0, 1.0])
    z = MulConst.apply(x, 3.0, c)
    z.sum().backward()
    assert x.grad.tolist() == [9.0, 11.0]


def test_custom_function_double_backward():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return g * 3 * x * x
    x = engine.tensor([2.0], requires_grad=True)
    g, = engine.autograd.grad(Cube.apply(x), x, create_graph=True)
    g2, = engine.autograd.grad(g, x)
    assert g.item() == 12.0 and g2.item() == 12.0


def test_custom_function_saved_output_and_multiple_outputs():
    class ExpAndSquare(Function):
        @staticmethod
        def forward(ctx, x):
            e = x.exp()
            ctx.save_for_backward(e, x)
            return e, x * x

        @staticmethod
        def backward(ctx, ge, gs):
            e, x = ctx.saved_tensors
            return ge * e + gs * 2 * x
    a = rand((3,))
    x = engine.tensor(a, requires_grad=True)
    e, s = ExpAndSquare.apply(x)
    assert e.grad_fn is s.grad_fn and e.output_nr == 0 and s.output_nr == 1
    (e.sum() + 2 * s.sum()).backward()
    xt = torch.tensor(a, requires_grad=True)
    (xt.exp().sum() + 2 * (xt * xt).sum()).backward()
    assert_close(x.grad, xt.grad, rtol=1e-5)
    # only one output used: the other's gradient is materialised as zeros
    x.grad = None
    e, s = ExpAndSquare.apply(x)
    s.sum().backward()
    assert_close(x.grad, torch.tensor(2 * a), rtol=1e-5)


def test_custom_function_non_differentiable_and_materialize():
    class SortLike(Function):
        @staticmethod
        def forward(ctx, x):
            idx = (x > 0).long()
            flag = x > 0
            ctx.mark_non_differentiable(flag)
            ctx.set_materialize_grads(False)
            return x * 2, idx, flag

        @staticmethod
        def backward(ctx, g, gi, gf):
            assert gi is None and gf is None
            return None if g is None else g * 2
    x = engine.tensor([1.0, -1.0], requires_grad=True)
    y, idx, flag = SortLike.apply(x)
    assert y.requires_grad and not idx.requires_grad and not flag.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_custom_function_mark_non_differentiable_float_output():
    class F(Function):
        @staticmethod
        def forward(ctx, x):
            a, b = x * 2, x * 3
            ctx.mark_non_differentiable(b)
            return a, b

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2
    x = engine.ones(2, requires_grad=True)
    a, b = F.apply(x)
    assert a.requires_grad and not b.requires_grad


def test_custom_function_returning_input_and_no_grad_path():
    class Ident(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 5
    x = engine.ones(2, requires_grad=True)
    y = Ident.apply(x)
    assert y is not x and y.grad_fn is not None and x.is_leaf
    y.sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]
    with engine.no_grad():
        assert not Ident.apply(x * 1).requires_grad
    assert not Ident.apply(engine.ones(2)).requires_grad


def test_custom_function_mark_dirty():
    class AddOneInplace(Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g
    x = engine.ones(2, requires_grad=True)
    y = x * 2
    v = y._version
    z = AddOneInplace.apply(y)
    assert z is y and y.grad_fn.name() == "AddOneInplaceBackward" and y._version > v
    (z * 3).sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]
    with pytest.raises(RuntimeError, match="leaf Variable"):
        AddOneInplace.apply(engine.ones(2, requires_grad=True))


def test_custom_function_setup_context_style():
    class Sq(Function):
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 2 * x * g
    x = engine.tensor([3.0], requires_grad=True)
    Sq.apply(x).sum().backward()
    assert x.grad.item() == 6.0


def test_custom_function_gradient_validation():
    class WrongCount(Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return g

    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return engine.ones(5)

    class Broadcast(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, g):
            return g.expand(2, 3)  # summed back to x's shape

    x = engine.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="returned an incorrect number of gradients"):
        WrongCount.apply(x, 2.0).sum().backward()
    with pytest.raises(RuntimeError, match="returned an invalid gradient at index 0"):
        WrongShape.apply(x).sum().backward()
    Broadcast.apply(x).backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_custom_function_forward_runs_without_grad_and_ctx_saved_tensors():
    class Probe(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.inside = engine.is_grad_enabled()
            y = x * 2
            ctx.save_for_backward(y)
            ctx.y_rg = y.requires_grad
            return y

        @staticmethod
        def backward(ctx, g):
            return g * 2
    x = engine.ones(2, requires_grad=True)
    y = Probe.apply(x)
    assert y.grad_fn.inside is False and y.grad_fn.y_rg is False
    assert engine.is_grad_enabled()


def test_once_differentiable():
    from engine.autograd import once_differentiable

    class F(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 2 * x * g
    x = engine.tensor([2.0], requires_grad=True)
    g, = engine.autograd.grad(F.apply(x), x, create_graph=True)
    assert g.item() == 4.0 and not g.requires_grad


# ---- engine order ------------------------------------------------------------------------------------
def test_execution_order_respects_dependencies():
    from engine.autograd.graph import record_backward
    x = engine.ones(2, requires_grad=True)
    a = x * 2
    b = a.exp()
    c = a.sin()
    d = (b * c).sum()
    nodes = {"a": a.grad_fn, "b": b.grad_fn, "c": c.grad_fn, "bc": d.grad_fn.next_functions[0][0]}
    with record_backward() as ev:
        d.backward()
    order = [e.node for e in ev]
    pos = {k: order.index(n) for k, n in nodes.items()}
    assert order[0] is d.grad_fn
    # every node runs after all the nodes that feed it, each exactly once
    assert pos["bc"] < pos["b"] and pos["bc"] < pos["c"]
    assert pos["a"] > pos["b"] and pos["a"] > pos["c"]
    assert len(order) == len(set(order)) == 6
    assert order[-1].name() == "AccumulateGrad"  # one sink, run once with the summed gradient
    # among ready nodes the most recently created runs first (PyTorch's sequence numbers)
    assert pos["c"] < pos["b"]


def test_accumulate_grad_runs_as_soon_as_ready():
    from engine.autograd.graph import record_backward
    x = engine.ones(2, requires_grad=True)
    w = engine.ones(2, requires_grad=True)
    h = (x * 2).exp()          # x's branch
    out = (h * w).sum()        # w's sink is ready right after the MulBackward0 node
    with record_backward() as ev:
        out.backward()
    names = [e.name for e in ev]
    assert names[0].startswith("SumBackward") and names[1:3] == ["MulBackward0", "AccumulateGrad"]
    assert ev[2].tensor is w


def test_gradient_held_by_a_hook_is_not_stolen():
    kept = []
    x = engine.ones(3, requires_grad=True)
    x.register_hook(lambda g: kept.append(g))
    (x.exp() * 1).sum().backward()
    x.grad.add_(1)
    assert kept[0].tolist() == pytest.approx([np.e] * 3)


def test_gradgradcheck_and_gradcheck_detects_errors():
    from .helpers import fp64
    if not fp64():
        pytest.skip("no float64 on this device")
    x = engine.tensor(rand((3,), np.float64), requires_grad=True)
    assert engine.autograd.gradgradcheck(lambda a: (a * a).tanh() * a, (x,))

    class Wrong(Function):
        @staticmethod
        def forward(ctx, a):
            return a * a

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2 * a * g
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        engine.autograd.gradcheck(Wrong.apply, (x,))
    assert engine.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False) is False


def test_views_made_before_an_inplace_op_see_the_new_history():
    a = rand((2, 3))

    def f(T, x):
        y = x * 2
        row = y[0]          # views made before the in-place ops
        col = y[:, 1]
        y.mul_(3)           # on the base
        row2 = y[1]
        row2.exp_()         # on another view
        return row * 1, col * 1, y
    check_op(f, a)


def test_retain_grad_follows_inplace_ops():
    res = []
    for T in (engine, torch):
        x = T.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.mul_(3)
        (y * y).sum().backward()
        res.append((y.grad.tolist(), x.grad.tolist()))
    assert res[0] == res[1]


def test_create_graph_grads_of_two_leaves_are_independent():
    x = engine.ones(2, requires_grad=True)
    y = engine.ones(2, requires_grad=True)
    (x + y).sum().backward(create_graph=True)
    assert x.grad is not y.grad
    (x + y).sum().backward()
    assert x.grad.tolist() == y.grad.tolist() == [2.0, 2.0]
