"""engine.optim.swa_utils vs torch.optim.swa_utils."""
import math

import numpy as np
import pytest
import torch

import engine


def _model(T, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(3, 2)).astype(np.float32)
    b = rng.normal(size=(2,)).astype(np.float32)

    class M(T.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = T.nn.Parameter(T.tensor(w))
            self.b = T.nn.Parameter(T.tensor(b))
            self.bn = T.nn.BatchNorm1d(2)

        def forward(self, x):
            return self.bn(x @ self.w + self.b)
    return M()


@pytest.mark.parametrize("kind", ["swa", "ema", "ema_single", "swa_buffers"])
def test_averaged_model(kind):
    x = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    res = []
    for T in (engine, torch):
        su = T.optim.swa_utils
        m = _model(T)
        kw = {}
        if kind == "ema":
            kw["multi_avg_fn"] = su.get_ema_multi_avg_fn(0.9)
        elif kind == "ema_single":
            kw["avg_fn"] = su.get_ema_avg_fn(0.8)
        elif kind == "swa_buffers":
            kw["use_buffers"] = True
        avg = su.AveragedModel(m, **kw)
        opt = T.optim.SGD(m.parameters(), lr=0.1)
        for _ in range(6):
            opt.zero_grad()
            (m(T.tensor(x)) ** 2).sum().backward()
            opt.step()
            avg.update_parameters(m)
        assert int(avg.n_averaged) == 6
        res.append([p.detach().numpy() for p in avg.parameters()] + [b.numpy() for b in avg.module.buffers()])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy,anneal_epochs", [("cos", 5), ("linear", 3), ("cos", 0)])
def test_swalr(strategy, anneal_epochs):
    lrs = []
    for T in (engine, torch):
        p = T.nn.Parameter(T.ones(2))
        opt = T.optim.SGD([p], lr=0.5)
        s = T.optim.swa_utils.SWALR(opt, swa_lr=0.05, anneal_epochs=anneal_epochs, anneal_strategy=strategy)
        seq = [opt.param_groups[0]["lr"]]
        for _ in range(10):
            opt.step()
            s.step()
            seq.append(opt.param_groups[0]["lr"])
        lrs.append(seq)
        sd = s.state_dict()
        assert "anneal_func" not in sd and "optimizer" not in sd
    for a, b in zip(*lrs):
        assert math.isclose(a, b, rel_tol=1e-12)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear', instead got foo"):
        engine.optim.swa_utils.SWALR(engine.optim.SGD([engine.nn.Parameter(engine.ones(1))], lr=0.1), 0.1,
                                     anneal_strategy="foo")


def test_update_bn():
    data = [np.random.default_rng(i).normal(size=(4, 3)).astype(np.float32) for i in range(3)]
    res = []
    for T in (engine, torch):
        m = _model(T)
        loader = [(T.tensor(d), 0) for d in data]
        T.optim.swa_utils.update_bn(loader, m)
        res.append((m.bn.running_mean.numpy(), m.bn.running_var.numpy(), m.bn.momentum))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=1e-5, atol=1e-6)
    assert res[0][2] == res[1][2] == 0.1
