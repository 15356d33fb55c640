"""engine.nn.utils: clip_grad_norm_ / clip_grad_value_ / parameters_to_vector / vector_to_parameters vs torch."""
import math

import numpy as np
import pytest
import torch

import engine
import engine.nn as nn
from tests.engine.helpers import assert_close
from tests.nn.helpers import copy_weights, randn


def _pair(scale=1.0):
    ours = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2, bias=False))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2, bias=False))
    copy_weights(ours, theirs)
    for (_, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        g = randn(*tp.shape, scale=scale)
        p.grad = engine.tensor(g)
        tp.grad = torch.tensor(g)
    return ours, theirs


def _same_grads(ours, theirs):
    for (n, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert_close(p.grad, tp.grad, 1e-5, 1e-6, n)


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.0, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = _pair()
    n_e = nn.utils.clip_grad_norm_(ours.parameters(), max_norm, norm_type=float(norm_type))
    n_t = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm, norm_type=float(norm_type))
    assert isinstance(n_e, engine.Tensor) and n_e.shape == ()
    assert_close(n_e, n_t, 1e-5, 1e-6, "total norm")
    _same_grads(ours, theirs)


def test_clip_grad_norm_single_tensor_and_missing_grads():
    p = nn.Parameter(engine.tensor([3.0, 4.0]))
    p.grad = engine.tensor([3.0, 4.0])
    n = nn.utils.clip_grad_norm_(p, 1.0)
    assert n.item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    q = nn.Parameter(engine.ones(3))
    assert nn.utils.clip_grad_norm_([q], 1.0).item() == 0.0     # no grads: norm 0, nothing changes
    assert q.grad is None
    gen = (x for x in [p, q])                                     # generators are consumed once
    nn.utils.clip_grad_norm_(gen, 1.0)


def test_clip_grad_norm_nonfinite():
    p = nn.Parameter(engine.ones(2))
    p.grad = engine.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    tp = torch.nn.Parameter(torch.ones(2))
    tp.grad = torch.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_([tp], 1.0, error_if_nonfinite=True)
    n = nn.utils.clip_grad_norm_([p], 1.0)
    assert math.isinf(n.item())


def test_clip_grad_norm_no_host_sync(monkeypatch):
    ours, _ = _pair()
    calls = []
    for name in ("item", "numpy", "tolist"):
        orig = getattr(engine.Tensor, name)
        monkeypatch.setattr(engine.Tensor, name, lambda self, *a, _o=orig, _n=name, **k: calls.append(_n) or _o(self, *a, **k))
    monkeypatch.setattr(engine.Tensor, "__bool__", lambda self: calls.append("bool") or True)
    monkeypatch.setattr(engine.Tensor, "__float__", lambda self: calls.append("float") or 0.0)
    nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
    nn.utils.clip_grad_norm_(ours.parameters(), 1.0, norm_type="inf")
    assert calls == []


def test_get_total_norm_and_clip_with_norm():
    ours, theirs = _pair()
    grads = [p.grad for p in ours.parameters()]
    tgrads = [p.grad for p in theirs.parameters()]
    n_e = nn.utils.get_total_norm(grads, 2.0)
    n_t = torch.nn.utils.get_total_norm(tgrads, 2.0)
    assert_close(n_e, n_t, 1e-5, 1e-6)
    nn.utils.clip_grads_with_norm_(ours.parameters(), 0.1, n_e)
    torch.nn.utils.clip_grads_with_norm_(theirs.parameters(), 0.1, n_t)
    _same_grads(ours, theirs)


def test_clip_grad_value():
    ours, theirs = _pair(scale=2.0)
    nn.utils.clip_grad_value_(ours.parameters(), 0.7)
    torch.nn.utils.clip_grad_value_(theirs.parameters(), 0.7)
    _same_grads(ours, theirs)


def test_parameters_vector_roundtrip():
    ours, theirs = _pair()
    v_e = nn.utils.parameters_to_vector(ours.parameters())
    v_t = torch.nn.utils.parameters_to_vector(theirs.parameters())
    assert_close(v_e, v_t)
    new = randn(v_t.numel())
    nn.utils.vector_to_parameters(engine.tensor(new), ours.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs.parameters())
    for (n, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert_close(p, tp, msg=n)
        assert isinstance(p, nn.Parameter) and p.requires_grad
    with pytest.raises(TypeError):
        nn.utils.vector_to_parameters(new, ours.parameters())
    # the vector is differentiable w.r.t. the parameters
    ours.zero_grad()
    v = nn.utils.parameters_to_vector(ours.parameters())
    (v * 2).sum().backward()
    assert np.all(ours[0].weight.grad.numpy() == 2)
