"""engine.nn.init vs torch.nn.init: gains, fans, errors, distributions (statistically), in-place + no_grad."""
import math
import warnings

import numpy as np
import pytest
import torch

import engine
import engine.nn as nn
from engine.nn import init


@pytest.mark.parametrize("nl,param", [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                                      ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
                                      ("leaky_relu", 3), ("selu", None), ("conv_transpose3d", None)])
def test_calculate_gain(nl, param):
    assert init.calculate_gain(nl, param) == pytest.approx(torch.nn.init.calculate_gain(nl, param))


@pytest.mark.parametrize("nl,param", [("leaky_relu", True), ("leaky_relu", "x"), ("foo", None)])
def test_calculate_gain_errors(nl, param):
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain(nl, param)
    with pytest.raises(ValueError):
        init.calculate_gain(nl, param)


@pytest.mark.parametrize("shape", [(3, 4), (5, 2, 3), (6, 2, 3, 3), (2, 0)])
def test_fans(shape):
    assert init._calculate_fan_in_and_fan_out(engine.empty(shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("fn", ["xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"])
def test_fan_errors_on_1d(fn):
    for lib, t in ((torch.nn.init, torch.empty(5)), (init, engine.empty(5))):
        with pytest.raises(ValueError):
            getattr(lib, fn)(t)


def test_other_errors():
    with pytest.raises(ValueError):
        init.kaiming_uniform_(engine.empty(3, 4), mode="fan_avg")
    with pytest.raises(ValueError):
        init.eye_(engine.empty(2, 3, 4))
    with pytest.raises(ValueError):
        init.dirac_(engine.empty(3, 4))
    with pytest.raises(ValueError):
        init.dirac_(engine.empty(3, 4, 3), groups=2)
    with pytest.raises(ValueError):
        init.orthogonal_(engine.empty(3))


def _check_returns_inplace(fn, *args, **kw):
    p = nn.Parameter(engine.empty(64, 32))
    before = p._storage
    r = fn(p, *args, **kw)
    assert r is p and p._storage is before and p.requires_grad and p.grad_fn is None
    return p.detach().numpy()


def test_uniform_normal_constant():
    w = _check_returns_inplace(init.uniform_, -2.0, 3.0)
    assert w.min() >= -2.0 and w.max() <= 3.0 and abs(w.mean() - 0.5) < 0.15
    w = _check_returns_inplace(init.normal_, 1.0, 0.5)
    assert abs(w.mean() - 1.0) < 0.05 and abs(w.std() - 0.5) < 0.05
    assert np.all(_check_returns_inplace(init.constant_, 0.25) == 0.25)
    assert np.all(_check_returns_inplace(init.ones_) == 1)
    assert np.all(_check_returns_inplace(init.zeros_) == 0)


def test_eye_and_dirac():
    np.testing.assert_array_equal(init.eye_(engine.empty(3, 5)).numpy(), torch.nn.init.eye_(torch.empty(3, 5)))
    for shape, g in [((4, 2, 3), 1), ((4, 2, 3, 3), 2), ((2, 3, 3, 1, 3), 1)]:
        np.testing.assert_array_equal(init.dirac_(engine.empty(shape), g).numpy(),
                                      torch.nn.init.dirac_(torch.empty(shape), g).numpy())


@pytest.mark.parametrize("shape", [(200, 300), (64, 16, 3, 3)])
def test_xavier(shape):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(engine.empty(shape))
    std = 1.5 * math.sqrt(2.0 / (fan_in + fan_out))
    w = init.xavier_uniform_(engine.empty(shape), gain=1.5).numpy()
    assert np.abs(w).max() <= math.sqrt(3) * std + 1e-6 and abs(w.std() - std) < 0.03 * std
    w = init.xavier_normal_(engine.empty(shape), gain=1.5).numpy()
    assert abs(w.std() - std) < 0.03 * std and abs(w.mean()) < 0.03 * std


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nl,a", [("relu", 0), ("leaky_relu", 0.1), ("leaky_relu", math.sqrt(5))])
def test_kaiming(mode, nl, a):
    t = engine.empty(128, 32, 3)
    fan = 96 if mode == "fan_in" else 384
    std = init.calculate_gain(nl, a) / math.sqrt(fan)
    w = init.kaiming_uniform_(t, a=a, mode=mode, nonlinearity=nl).numpy()
    assert np.abs(w).max() <= math.sqrt(3) * std + 1e-6 and abs(w.std() - std) < 0.03 * std
    w = init.kaiming_normal_(t, a=a, mode=mode, nonlinearity=nl).numpy()
    assert abs(w.std() - std) < 0.03 * std


def test_kaiming_empty_warns():
    with pytest.warns(UserWarning):
        init.kaiming_uniform_(engine.empty(0, 3))


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.5, 0.2, 0.0, 1.0), (0.0, 0.02, -0.04, 0.04)])
def test_trunc_normal(mean, std, a, b):
    w = init.trunc_normal_(engine.empty(200, 100), mean, std, a, b).numpy()
    ref = torch.nn.init.trunc_normal_(torch.empty(400, 200), mean, std, a, b).numpy()
    assert w.min() >= a and w.max() <= b
    assert abs(w.mean() - ref.mean()) < 0.02 * std + 0.01 * (b - a)
    assert abs(w.std() - ref.std()) < 0.03 * ref.std()


def test_trunc_normal_float64():
    w = init.trunc_normal_(engine.empty(100, 50, dtype=engine.float64), 0, 1, -1, 1).numpy()
    assert w.min() >= -1 and w.max() <= 1 and abs(w.std() - 0.5376) < 0.03


def test_orthogonal():
    for shape in [(6, 4), (4, 6), (4, 2, 3)]:
        w = init.orthogonal_(engine.empty(shape), gain=2.0).numpy().reshape(shape[0], -1)
        if w.shape[0] >= w.shape[1]:
            np.testing.assert_allclose(w.T @ w, 4 * np.eye(w.shape[1]), atol=1e-5)
        else:
            np.testing.assert_allclose(w @ w.T, 4 * np.eye(w.shape[0]), atol=1e-5)


def test_deprecated_aliases():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.all(init.constant(engine.empty(2, 2), 3.0).numpy() == 3)
