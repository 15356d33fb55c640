"""BackpropStepper: execution order and every gradient against PyTorch."""
import numpy as np
import pytest
import torch

import engine
from engine.autograd.graph import record_backward
from widgets import BackpropStepper
from widgets.stepper import RULES, rule_for

from .models import MLP


def _torch_run(m, x):
    """The same MLP in torch: (loss, {name: param}, execution order, grads arriving at each node)."""
    P = {n: torch.tensor(p.detach().numpy(), requires_grad=True) for n, p in m.named_parameters()}
    xt = torch.tensor(x.numpy())
    h = xt @ P["fc1.weight"].t() + P["fc1.bias"]
    y = h.relu() @ P["fc2.weight"].t() + P["fc2.bias"]
    loss = (y ** 2).mean()
    order, gouts = [], []
    seen, stack = set(), [loss.grad_fn]
    while stack:
        n = stack.pop()
        if n is None or n in seen:
            continue
        seen.add(n)

        def hook(gin, gout, n=n):
            order.append(n.name().replace("torch::autograd::", ""))
            gouts.append([None if g is None else g.detach().numpy().copy() for g in gout])
        n.register_hook(hook)
        stack.extend(f for f, _ in n.next_functions)
    loss.backward()
    return loss, P, order, gouts


@pytest.fixture
def run():
    m = MLP(4, 8, 3)
    x = engine.randn(5, 4)
    loss = (m(x) ** 2).mean()
    with record_backward() as rec:
        loss.backward()
    return m, x, loss, rec


def test_order_and_gradients_equal_pytorch(run):
    m, x, loss, rec = run
    st = BackpropStepper(rec, loss, module=m)
    tl, P, order, gouts = _torch_run(m, x)
    assert st.order == order
    assert len(st) == len(order) == 13
    for step, tg in zip(st.steps, gouts):
        g = step["grad_out"][0]
        assert g["shape"] == list(tg[0].shape)
        ref = tg[0].astype(np.float64)
        assert g["mean"] == pytest.approx(float(ref.mean()), rel=1e-4, abs=1e-7)
        assert g["norm"] == pytest.approx(float(np.linalg.norm(ref)), rel=1e-4, abs=1e-7)
        if ref.size <= 16:
            np.testing.assert_allclose(g["values"], ref.ravel(), rtol=1e-4, atol=1e-7)
    # the AccumulateGrad steps end in each parameter's .grad
    leaf_steps = [s for s in st.steps if s["name"] == "AccumulateGrad"]
    assert sorted(s["label"] for s in leaf_steps) == sorted(P)
    for s in leaf_steps:
        out = s["grad_in"][0]
        assert out["to"] == s["label"] + ".grad"
        ref = P[s["label"]].grad.numpy()
        assert out["grad"]["norm"] == pytest.approx(float(np.linalg.norm(ref)), rel=1e-5)
        assert len(out["grad"]["heat"]) == min(ref.reshape(-1, ref.shape[-1]).shape[0], 16)


def test_outgoing_gradients_follow_the_edges(run):
    m, x, loss, rec = run
    st = BackpropStepper(rec, loss, module=m)
    add2 = st.steps[2]  # fc2's bias add: to the mm and to fc2.bias
    assert add2["name"] == "AddBackward0" and add2["module"] == "fc2"
    assert [o["to"] for o in add2["grad_in"]] == ["mm", "fc2.bias"]
    assert add2["grad_in"][0]["grad"]["shape"] == [5, 3] and add2["grad_in"][1]["grad"]["shape"] == [3]
    b = m.fc2.bias.grad.numpy()
    np.testing.assert_allclose(add2["grad_in"][1]["grad"]["values"], b, rtol=1e-5)
    # mm of fc1: x needs no grad, so only the weight's edge is listed
    mm1 = [s for s in st.steps if s["name"] == "MmBackward0"][-1]
    assert [o["to"] for o in mm1["grad_in"]] == ["t"]


def test_navigation(run):
    m, x, loss, rec = run
    st = BackpropStepper(rec, loss, module=m)
    assert st.index == 0 and st.current["name"] == "MeanBackward0"
    assert repr(st) == "BackpropStepper(steps=13, index=0, node='MeanBackward0')"
    assert st.step()["name"] == "PowBackward0"
    st.step()
    assert st.index == 2
    assert st.back()["name"] == "PowBackward0"
    assert st.goto(-1)["name"] == "AccumulateGrad" and st.index == 12
    st.step()
    assert st.index == 12  # clamped
    st.goto(0)
    st.back()
    assert st.index == 0
    st.index = 7  # the slider / play button set the trait from the browser
    assert st.current["name"] == "ReluBackward0"
    assert st.current["node"] in {n["id"] for n in st.graph["nodes"]}
    text = st.text()
    assert text.splitlines()[0] == "step 8/13: ReluBackward0 (relu)"
    assert "grad_a = grad_out * (a > 0)" in text


def test_graph_from_recording_alone(run):
    m, x, loss, rec = run
    st = BackpropStepper(rec)  # graph walked from the first recorded node
    assert len(st) == 13 and st.graph["stats"]["nodes"] == 13
    assert all(s["node"] for s in st.steps)
    with pytest.raises(ValueError):
        BackpropStepper([])


def test_rules_cover_common_ops():
    for op in ["mul", "add", "sub", "div", "mm", "matmul", "pow", "exp", "log", "tanh", "relu", "sigmoid", "sum",
               "mean", "softmax", "logsoftmax", "nllloss", "crossentropy", "view", "reshape", "transpose", "leaf"]:
        assert op in RULES
    assert RULES["mul"][1].startswith("grad_a = grad_out * b")
    words, math_ = rule_for("weird", "WeirdBackward0")
    assert "WeirdBackward0" in words


def test_big_tensors_show_stats_small_show_values():
    a = engine.randn(40, 30, requires_grad=True)
    b = engine.randn(2, requires_grad=True)
    y = (a * 2).sum() + (b * b).sum()
    with record_backward() as rec:
        y.backward()
    st = BackpropStepper(rec, y)
    big = next(s for s in st.steps if s["grad_out"][0] and s["grad_out"][0]["numel"] == 1200)
    assert "values" not in big["grad_out"][0] and "hist" in big["grad_out"][0]
    small = next(s for s in st.steps if s["grad_out"][0] and s["grad_out"][0]["numel"] == 2)
    assert len(small["grad_out"][0]["values"]) == 2


def test_folded_graph_highlights_the_module(run):
    m, x, loss, rec = run
    st = BackpropStepper(rec, loss, module=m, depth=0)
    assert {n["id"] for n in st.graph["nodes"]} == {"n0", "n1", "g:fc2", "n5", "g:fc1"}
    assert [s["node"] for s in st.steps] == ["n0", "n1"] + ["g:fc2"] * 4 + ["g:fc2", "n5"] + ["g:fc1"] * 5
    # a graph_data() dict is drawn as given
    from widgets import graph_data
    d = graph_data(loss, m, depth=0, saved=False)
    st2 = BackpropStepper(rec, d)
    assert st2.graph is d or st2.graph == d
    assert [s["node"] for s in st2.steps] == [s["node"] for s in st.steps]


def test_common_training_ops_have_specific_rules():
    F = engine.nn.functional
    w = engine.nn.Parameter(engine.randn(6, 4) * 0.3)
    b = engine.nn.Parameter(engine.zeros(6))
    g = engine.nn.Parameter(engine.ones(6))
    x = engine.randn(8, 4)
    h = F.layer_norm(x @ w.t() + b, (6,), g)
    h = (h.tanh() + h.sigmoid() * h.relu()).exp().log() / 2 - 1
    z = h.view(2, 4, 6).transpose(0, 1).reshape(8, 6) ** 2
    loss = F.cross_entropy(z, engine.tensor([0, 1, 2, 3, 4, 5, 0, 1])) + z.softmax(-1).mean() \
        + F.mse_loss(z.log_softmax(-1), engine.zeros(8, 6)) + z.sum()
    with record_backward() as rec:
        loss.backward()
    st = BackpropStepper(rec, loss)
    generic = sorted({s["name"] for s in st.steps if s["math"].startswith("grad_a = J(a)")})
    assert generic == []


def test_static_fallback(run):
    m, x, loss, rec = run
    st = BackpropStepper(rec, loss, module=m)
    data, _ = st._repr_mimebundle_()
    assert data["text/plain"] == repr(st)
    assert "step 1/13: MeanBackward0" in data["text/html"] and "<svg" in data["text/html"]
