"""GradientFlow: numbers equal to norms computed directly; sampling; warnings; detach."""
import numpy as np
import pytest

import engine
from widgets import GradientFlow

from .models import ActMLP, PlainSGD


def _norms(m):
    return {n: float(np.linalg.norm(p.grad.numpy().astype(np.float64))) for n, p in m.named_parameters()}


def _train(m, opt, x, steps, flow=None, scale=1.0, check=None):
    for i in range(steps):
        opt.zero_grad()
        loss = (m(x) ** 2).mean() * scale
        loss.backward()
        direct = _norms(m)
        before = {n: p.detach().numpy().astype(np.float64) for n, p in m.named_parameters()}
        opt.step()
        if check:
            check(i, direct, before)


def test_grad_norms_and_update_ratios_equal_direct():
    m = ActMLP()
    opt = PlainSGD(m.parameters(), lr=0.1)
    flow = GradientFlow(m, optimizer=opt)
    x = engine.randn(16, 4)
    seen = []

    def check(i, direct, before):
        rec = flow.history[-1]
        assert rec["step"] == i
        assert set(rec["grad_norm"]) == set(direct)
        for n, v in direct.items():
            assert rec["grad_norm"][n] == pytest.approx(v, rel=1e-5)
        for n, p in m.named_parameters():
            a = p.detach().numpy().astype(np.float64)
            ref = np.linalg.norm(a - before[n]) / (np.linalg.norm(a) + 1e-12)
            assert rec["ratio"][n] == pytest.approx(ref, rel=1e-4, abs=1e-7)
        seen.append(i)
    _train(m, opt, x, 3, check=check)
    assert seen == [0, 1, 2] and len(flow.history) == 3
    flow.detach()


def test_activation_stats():
    m = ActMLP()
    x = engine.randn(32, 4)
    with engine.no_grad():
        m.fc1.bias.sub_(engine.tensor([100.0, 0, 0, 0, 0, 0, 0, 100.0]))  # units 0 and 7 dead: 2 of 8
    flow = GradientFlow(m)
    (m(x) ** 2).mean().backward()
    rec = flow.history[-1]
    h = np.maximum(x.numpy() @ m.fc1.weight.detach().numpy().T + m.fc1.bias.detach().numpy(), 0)
    a1 = rec["act"]["act1"]
    assert a1["dead"] == pytest.approx(2 / 8)
    assert a1["zero"] == pytest.approx(float((h == 0).mean()))
    assert a1["mean"] == pytest.approx(float(h.mean()), rel=1e-5)
    assert a1["std"] == pytest.approx(float(h.std(ddof=1)), rel=1e-4)
    t = np.tanh(h @ m.fc2.weight.detach().numpy().T + m.fc2.bias.detach().numpy())
    assert rec["act"]["act2"]["sat"] == pytest.approx(float((np.abs(t) >= 0.99).mean()))
    assert set(rec["act"]) == {"fc1", "act1", "fc2", "act2", "fc3"}
    assert "dead" not in rec["act"]["fc1"] and "sat" not in rec["act"]["fc1"]
    flow.detach()


def test_sampling_every_n_steps():
    m = ActMLP()
    opt = PlainSGD(m.parameters())
    flow = GradientFlow(m, optimizer=opt, every=3)
    x = engine.randn(8, 4)
    got = {}

    def check(i, direct, before):
        if i % 3 == 0:
            got[i] = direct
    _train(m, opt, x, 7, check=check)
    assert [r["step"] for r in flow.history] == [0, 3, 6]
    for r in flow.history:
        for n, v in got[r["step"]].items():
            assert r["grad_norm"][n] == pytest.approx(v, rel=1e-5)
    assert flow.steps == 7
    # no-grad forwards (evaluation) are not steps
    with engine.no_grad():
        m(x)
    assert flow.steps == 7
    flow.detach()


def test_warnings_vanishing_and_exploding():
    m = ActMLP()
    opt = PlainSGD(m.parameters(), lr=0.0)
    flow = GradientFlow(m, optimizer=opt)
    x = engine.randn(8, 4)
    _train(m, opt, x, 1, scale=1e-12)
    assert any("vanishing" in w and "fc1.weight" in w for w in flow.warnings)
    _train(m, opt, x, 1, scale=1e9)
    assert any("exploding" in w for w in flow.warnings)
    flow.flush()
    assert "vanishing" in flow.banner.value or "exploding" in flow.banner.value
    assert repr(flow).startswith("GradientFlow(params=6, every=1, samples=2, warnings=")
    flow.detach()


def test_detach_removes_every_hook():
    m = ActMLP()
    opt = PlainSGD(m.parameters())
    orig_step = opt.step
    flow = GradientFlow(m, optimizer=opt)
    assert opt.step is not orig_step  # no step hooks on this optimizer: wrapped
    x = engine.randn(8, 4)
    _train(m, opt, x, 1)
    assert len(flow.history) == 1
    flow.detach()
    assert not flow.attached and "step" not in vars(opt)
    assert not m._forward_pre_hooks and all(not mm._forward_hooks for mm in m.modules())
    _train(m, opt, x, 2)
    assert len(flow.history) == 1 and flow.steps == 1


def test_engine_optimizer_step_hooks():
    optim = pytest.importorskip("engine.optim")
    if not hasattr(optim, "SGD"):
        pytest.skip("engine.optim.SGD not available yet")
    m = ActMLP()
    opt = optim.SGD(m.parameters(), lr=0.1)
    flow = GradientFlow(m, optimizer=opt)
    assert "step" not in vars(opt)  # used the optimizer's own step hooks
    x = engine.randn(8, 4)
    ratios = []

    def check(i, direct, before):
        rec = flow.history[-1]
        for n, p in m.named_parameters():
            a = p.detach().numpy().astype(np.float64)
            ratios.append((rec["ratio"][n], np.linalg.norm(a - before[n]) / (np.linalg.norm(a) + 1e-12)))
    _train(m, opt, x, 2, check=check)
    for got, ref in ratios:
        assert got == pytest.approx(ref, rel=1e-4, abs=1e-7)
    flow.detach()


def test_one_readback_per_sampled_step(monkeypatch):
    m = ActMLP()
    flow = GradientFlow(m)
    x = engine.randn(8, 4)
    calls = []
    orig = engine.Tensor.tolist

    def counting(self):
        calls.append(tuple(self.shape))
        return orig(self)
    monkeypatch.setattr(engine.Tensor, "tolist", counting)
    (m(x) ** 2).mean().backward()
    flow.sample()
    # 6 grad norms + activation stats (3 per module, +1 for act1/act2) in one transfer
    assert calls == [(6 + 5 * 3 + 2,)]
    flow.detach()
