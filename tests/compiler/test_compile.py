"""engine.compile: the example models compiled vs eager (forward, gradients, training
trajectories), retracing on new shapes, graceful fallback, deferred index errors, debug output."""
import os
import sys

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples"))

import cnn_digits  # noqa: E402
import char_lm  # noqa: E402
import gpt  # noqa: E402
import mlp_digits  # noqa: E402


def _grads(model, fn, seed=0):
    for p in model.parameters():
        p.grad = None
    engine.manual_seed(seed)
    out, loss = fn()
    loss.backward()
    return out.detach().numpy(), loss.item(), [p.grad.numpy().copy() for p in model.parameters()]


def _compare(model, call, calls=3, rtol=2e-5, atol=2e-6):
    """Compiled vs eager: outputs, loss and every parameter gradient, for several calls."""
    compiled = engine.compile(model)
    for seed in range(calls):
        c = _grads(model, lambda: call(compiled), seed)
        e = _grads(model, lambda: call(model), seed)
        np.testing.assert_allclose(c[0], e[0], rtol=rtol, atol=atol)
        assert abs(c[1] - e[1]) <= 1e-5 * max(1.0, abs(e[1]))
        for a, b in zip(c[2], e[2]):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    return compiled


def _ce(model, x, y):
    def call(m):
        out = m(x)
        return out, F.cross_entropy(out, y)
    return call


def test_mlp_example_compiled():
    engine.manual_seed(0)
    model = mlp_digits.make_model(nn, hidden=32)
    x, y = engine.randn(16, 64), engine.randint(0, 10, (16,))
    c = _compare(model, _ce(model, x, y))
    info = c.explain()
    assert info["traces"] == 1 and info["replays"] == 2 and not info["reasons"]


def test_cnn_example_compiled():
    engine.manual_seed(0)
    model = cnn_digits.make_model(nn, channels=8)
    x, y = engine.randn(8, 1, 8, 8), engine.randint(0, 10, (8,))
    _compare(model, _ce(model, x, y), atol=1e-5)


def test_char_lm_example_compiled():
    engine.manual_seed(0)
    model = char_lm.make_model(nn, 30, context=4, n_embd=8, hidden=32)
    x, y = engine.randint(0, 30, (16, 4)), engine.randint(0, 30, (16,))
    _compare(model, _ce(model, x, y))


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_gpt_example_compiled(dropout):
    engine.manual_seed(0)
    model = gpt.define_gpt(engine, nn, F)(30, 16, 32, 4, 2, dropout=dropout)
    x, y = engine.randint(0, 30, (4, 16)), engine.randint(0, 30, (4, 16))
    c = _compare(model, lambda m: m(x, y), atol=1e-5)
    info = c.explain()
    assert info["launches_after"] <= info["launches_before"], info


def test_elementwise_chain_fuses_forward_and_backward():
    def f(x, y):
        return ((x * y + 1).tanh() - x).relu() * 2
    c = engine.compile(f)
    x, y = engine.randn(5, 7, requires_grad=True), engine.randn(7, requires_grad=True)
    for _ in range(3):
        x.grad = y.grad = None
        out = c(x, y)
        out.sum().backward()
        gx, gy = x.grad.numpy(), y.grad.numpy()
        x.grad = y.grad = None
        ref = f(x, y)
        ref.sum().backward()
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(gx, x.grad.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gy, y.grad.numpy(), rtol=1e-5, atol=1e-6)
    g = c.fused_graph()
    # values the backward reads (tanh's and relu's outputs) stay materialised: 6 ops -> 3 kernels
    fwd = [n["ops"] for n in g["nodes"] if n["phase"] == "forward"]
    assert fwd == [["mul", "add", "tanh"], ["sub", "relu"], ["mul"]], fwd
    assert any(len(n["ops"]) > 1 for n in g["nodes"] if n["phase"] == "backward")
    assert g["launches_after"] < g["launches_before"]


def test_training_trajectory_matches_eager():
    """20 SGD steps with the compiled forward give the eager parameters (within rounding; SGD
    rather than Adam, whose normalisation turns rounding-level differences of near-zero
    gradients into lr-sized steps)."""
    def train(compiled):
        engine.manual_seed(0)
        model = gpt.define_gpt(engine, nn, F)(20, 8, 16, 2, 1)
        fwd = engine.compile(model) if compiled else model
        opt = engine.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
        x, y = engine.randint(0, 20, (4, 8)), engine.randint(0, 20, (4, 8))
        losses = []
        for _ in range(20):
            _, loss = fwd(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, [p.detach().numpy() for p in model.parameters()]
    (le, pe), (lc, pc) = train(False), train(True)
    np.testing.assert_allclose(lc, le, rtol=1e-4)
    assert lc[-1] < lc[0] - 0.3
    for a, b in zip(pc, pe):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_retrace_on_new_shape_and_cache():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    c = engine.compile(model)
    for n in (3, 5, 3, 5, 7):
        x = engine.randn(n, 4)
        np.testing.assert_allclose(c(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-6, atol=1e-6)
    info = c.explain()
    assert info["traces"] == 3 and info["replays"] == 2 and info["signatures"] == 3
    with engine.no_grad():   # grad mode is part of the signature
        c(engine.randn(3, 4))
    assert c.explain()["traces"] == 4
    model.eval()             # so are the modules' training flags
    c(engine.randn(3, 4))
    assert c.explain()["traces"] == 5


def test_new_parameter_object_retraces():
    model = nn.Linear(3, 2)
    c = engine.compile(model)
    x = engine.randn(4, 3)
    c(x)
    c(x)
    model.weight = nn.Parameter(engine.zeros(2, 3))
    np.testing.assert_allclose(c(x).detach().numpy(), model(x).detach().numpy())
    assert c.explain()["traces"] == 2


def test_data_dependent_control_flow_falls_back():
    def f(x):
        if x.sum().item() > 0:       # reads a value on the host: the trace can't be replayed
            return x * 2
        return x - 1
    c = engine.compile(f)
    pos, neg = engine.ones(3), -engine.ones(3)
    assert c(pos).tolist() == [2.0, 2.0, 2.0]
    assert c(neg).tolist() == [-2.0, -2.0, -2.0]
    assert c(pos).tolist() == [2.0, 2.0, 2.0]
    info = c.explain()
    assert info["replays"] == 0 and info["eager_calls"] == 2
    assert "read on the host" in info["reasons"][0] and "test_compile.py" in info["reasons"][0]


def test_fullgraph_raises_on_fallback():
    c = engine.compile(lambda x: x * 2 if bool(x.sum() > 0) else x, fullgraph=True)
    with pytest.raises(RuntimeError, match="fullgraph"):
        c(engine.ones(2))


def test_training_step_that_keeps_state_falls_back():
    model = nn.Linear(3, 1)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()   # assigns .grad: tensors that outlive the call
        opt.step()
        return loss.detach()
    c = engine.compile(step)
    x = engine.randn(5, 3)
    losses = [c(x).item() for _ in range(4)]
    assert losses[-1] < losses[0]
    assert "keeps" in c.explain()["reasons"][0]


def test_deferred_index_error():
    emb = nn.Embedding(5, 3)
    c = engine.compile(emb)
    ok = engine.tensor([[0, 4]])
    c(ok)
    c(ok)
    bad = engine.tensor([[1, 9]])
    out = c(bad)   # replayed: the bounds check is read at the next host read
    with pytest.raises(IndexError):
        out.sum().item()
    np.testing.assert_allclose(c(ok).detach().numpy(), emb(ok).detach().numpy())   # flag was reset


def test_structures_kwargs_and_aliasing():
    def f(a, b, scale=1.0):
        return {"sum": (a + b) * scale, "pair": (a.relu(), b)}
    c = engine.compile(f)
    a, b = engine.randn(4), engine.randn(4)
    for _ in range(2):
        r = c(a, b, scale=2.0)
        np.testing.assert_allclose(r["sum"].numpy(), ((a + b) * 2).numpy())
        np.testing.assert_allclose(r["pair"][0].numpy(), a.relu().numpy())
        np.testing.assert_allclose(r["pair"][1].numpy(), b.numpy())
    c(a, b, scale=3.0)   # a new non-tensor argument value retraces
    assert c.explain()["traces"] == 2
    x = engine.randn(4, 4)
    g = engine.compile(lambda u, v: u * v + 1)
    for _ in range(2):   # inputs that share storage, and a transposed view
        np.testing.assert_allclose(g(x, x.t()).numpy(), (x * x.t() + 1).numpy(), rtol=1e-6)


def test_in_place_on_input_replays():
    def f(x):
        x.mul_(2)
        return x + 1
    c = engine.compile(f)
    for _ in range(3):
        x = engine.ones(3)
        y = c(x)
        assert x.tolist() == [2.0, 2.0, 2.0] and y.tolist() == [3.0, 3.0, 3.0]


def test_input_gradients_and_unused_outputs():
    w = engine.randn(3, requires_grad=True)

    def f(x):
        return (x * w).sum(), (x * 3).exp()
    c = engine.compile(f)
    for _ in range(3):
        x = engine.randn(3, requires_grad=True)
        w.grad = None
        s, _ = c(x)   # the second output is unused: its gradient is zeros
        s.backward()
        np.testing.assert_allclose(x.grad.numpy(), w.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(w.grad.numpy(), x.detach().numpy(), rtol=1e-6)


def test_double_backward_is_refused():
    c = engine.compile(lambda x: (x ** 3).sum())
    x = engine.randn(3, requires_grad=True)
    c(x)
    y = c(x)
    with pytest.raises(RuntimeError, match="double backward"):
        engine.autograd.grad(y, x, create_graph=True)


def test_debug_output(capsys):
    model = nn.Sequential(nn.Linear(4, 4), nn.GELU())
    c = engine.compile(model)
    old = engine.get_debug()
    engine.set_debug(3)
    try:
        c(engine.randn(2, 4))
    finally:
        engine.set_debug(old)
    err = capsys.readouterr().err
    assert "compile: Sequential:" in err and "forward plan" in err and "backward plan" in err
    assert "fused(" in err   # GELU's backward is fused


def test_fused_plan_graph():
    model = nn.Sequential(nn.Linear(4, 4), nn.GELU())
    c = engine.compile(model)
    c(engine.randn(2, 4, requires_grad=True))
    g = c.fused_graph()
    kernels = [n for n in g["nodes"] if n["kind"] == "kernel"]
    assert any(len(n["ops"]) > 1 for n in kernels)
    assert g["launches_before"] > g["launches_after"] == len(g["nodes"])


def test_compile_api():
    assert engine.compile(disable=True)(len) is len
    with pytest.raises(RuntimeError, match="Unrecognized mode"):
        engine.compile(lambda x: x, mode="fast")

    @engine.compile(mode="reduce-overhead")
    def f(x):
        return x + 1
    assert f(engine.zeros(2)).tolist() == [1.0, 1.0]
    m = engine.compile(nn.Linear(2, 2))
    assert set(m.state_dict()) == {"_orig_mod.weight", "_orig_mod.bias"}
    assert m.in_features == 2


def test_module_hooks_run_eagerly():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    c = engine.compile(model)
    x = engine.randn(2, 3)
    c(x)
    c(x)
    seen = []
    h = model[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    for _ in range(2):
        np.testing.assert_allclose(c(x).detach().numpy(), model(x).detach().numpy())
    assert len(seen) == 4 and "hooks" in c.explain()["reasons"][-1]
    h.remove()
    c(x)
    assert c.explain()["replays"] == 2
    # a hook marked as an observer (kernel_ext's shape recorder) runs on traced calls only
    watch = []

    def observer(m, i, o):
        watch.append(1)
    observer._clgrad_observer = True
    h = engine.nn.modules.module.register_module_forward_hook(observer)
    try:
        c(x)
        c(x)
    finally:
        h.remove()
    assert c.explain()["replays"] == 4 and watch == []
