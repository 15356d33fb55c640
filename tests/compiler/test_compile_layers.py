"""engine.compile on every nn layer: the replayed (fused) plan gives the eager forward and
gradients (input and parameters) within float32 rounding.

Each case calls the compiled module three times: the first call traces (and returns the eager
result), the second and third replay; both replays are compared with an eager call made with the
same RNG seed (dropout layers draw the same numbers)."""
import numpy as np
import pytest

import engine
from engine import nn

rng = np.random.default_rng(7)


def R(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def P(*shape):  # positive values (lp pools, poisson/kl targets)
    return (rng.random(shape) + 0.1).astype(np.float32)


def I(high, *shape):
    return rng.integers(0, high, shape).astype(np.int64)


def U(*shape):  # values in (0, 1) (BCE inputs/targets)
    return rng.uniform(0.05, 0.95, shape).astype(np.float32)


# name -> (constructor, inputs); float inputs get requires_grad
LAYERS = {
    "Linear": (lambda: nn.Linear(6, 5), lambda: [R(4, 6)]),
    "Linear3d": (lambda: nn.Linear(6, 5), lambda: [R(2, 3, 6)]),
    "Bilinear": (lambda: nn.Bilinear(3, 4, 5), lambda: [R(6, 3), R(6, 4)]),
    "Identity": (lambda: nn.Sequential(nn.Identity(), nn.Linear(3, 3)), lambda: [R(2, 3)]),
    "Conv1d": (lambda: nn.Conv1d(3, 4, 3, padding=1), lambda: [R(2, 3, 9)]),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), lambda: [R(2, 3, 8, 8)]),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(3, 2, 3, stride=2), lambda: [R(2, 3, 5)]),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1), lambda: [R(2, 3, 4, 4)]),
    "Fold": (lambda: nn.Fold((4, 5), (2, 2)), lambda: [R(2, 12, 12)]),
    "Unfold": (lambda: nn.Unfold((2, 3), padding=1), lambda: [R(2, 3, 4, 5)]),
    "Flatten": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), lambda: [R(2, 3, 4)]),
    "Unflatten": (lambda: nn.Unflatten(1, (3, 4)), lambda: [R(2, 12)]),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(4), lambda: [R(8, 4)]),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), lambda: [R(4, 3, 5, 5)]),
    "BatchNorm3d": (lambda: nn.BatchNorm3d(2), lambda: [R(2, 2, 3, 3, 3)]),
    "InstanceNorm1d": (lambda: nn.InstanceNorm1d(3, affine=True), lambda: [R(2, 3, 7)]),
    "InstanceNorm2d": (lambda: nn.InstanceNorm2d(3), lambda: [R(2, 3, 4, 4)]),
    "LayerNorm": (lambda: nn.LayerNorm(8), lambda: [R(3, 5, 8)]),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), lambda: [R(3, 4, 5)]),
    "RMSNorm": (lambda: nn.RMSNorm(6), lambda: [R(4, 6)]),
    "Embedding": (lambda: nn.Embedding(10, 4), lambda: [I(10, 3, 5)]),
    "MaxPool1d": (lambda: nn.MaxPool1d(2), lambda: [R(2, 3, 8)]),
    "MaxPool2d": (lambda: nn.MaxPool2d(3, stride=2, padding=1), lambda: [R(2, 3, 7, 7)]),
    "AvgPool1d": (lambda: nn.AvgPool1d(3, stride=2), lambda: [R(2, 3, 9)]),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), lambda: [R(2, 3, 6, 6)]),
    "AdaptiveAvgPool1d": (lambda: nn.AdaptiveAvgPool1d(3), lambda: [R(2, 3, 7)]),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((2, 3)), lambda: [R(2, 3, 7, 8)]),
    "AdaptiveMaxPool1d": (lambda: nn.AdaptiveMaxPool1d(3), lambda: [R(2, 3, 7)]),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d(2), lambda: [R(2, 3, 6, 6)]),
    "LPPool1d": (lambda: nn.LPPool1d(2, 2), lambda: [P(2, 3, 8)]),
    "LPPool2d": (lambda: nn.LPPool2d(2, 2), lambda: [P(2, 3, 6, 6)]),
    "ZeroPad2d": (lambda: nn.ZeroPad2d((1, 2, 0, 1)), lambda: [R(2, 3, 4, 4)]),
    "ConstantPad1d": (lambda: nn.ConstantPad1d(2, 0.5), lambda: [R(2, 3, 4)]),
    "ReflectionPad2d": (lambda: nn.ReflectionPad2d(1), lambda: [R(2, 3, 4, 4)]),
    "ReplicationPad1d": (lambda: nn.ReplicationPad1d((1, 2)), lambda: [R(2, 3, 4)]),
    "CircularPad2d": (lambda: nn.CircularPad2d(1), lambda: [R(2, 3, 4, 4)]),
    "Dropout": (lambda: nn.Dropout(0.3), lambda: [R(4, 8)]),
    "Dropout2d": (lambda: nn.Dropout2d(0.3), lambda: [R(2, 4, 3, 3)]),
    "AlphaDropout": (lambda: nn.AlphaDropout(0.2), lambda: [R(4, 8)]),
    "MultiheadAttention": (lambda: _MHA(), lambda: [R(2, 5, 8)]),
    "TransformerEncoderLayer": (lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                                lambda: [R(2, 5, 8)]),
    "TransformerDecoderLayer": (lambda: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                                lambda: [R(2, 5, 8), R(2, 4, 8)]),
    "PReLU": (lambda: nn.PReLU(3), lambda: [R(2, 3, 4)]),
    "GLU": (lambda: nn.GLU(), lambda: [R(3, 6)]),
    "Softmax": (lambda: nn.Softmax(dim=1), lambda: [R(3, 7)]),
    "Softmax2d": (lambda: nn.Softmax2d(), lambda: [R(2, 3, 4, 4)]),
    "LogSoftmax": (lambda: nn.LogSoftmax(dim=-1), lambda: [R(3, 7)]),
    "Softmin": (lambda: nn.Softmin(dim=0), lambda: [R(3, 7)]),
    "CrossEntropyLoss": (lambda: nn.CrossEntropyLoss(), lambda: [R(6, 5), I(5, 6)]),
    "CrossEntropyLoss_ls": (lambda: nn.CrossEntropyLoss(label_smoothing=0.1), lambda: [R(6, 5), I(5, 6)]),
    "NLLLoss": (lambda: nn.NLLLoss(), lambda: [R(6, 5), I(5, 6)]),
    "MSELoss": (lambda: nn.MSELoss(), lambda: [R(4, 3), R(4, 3)]),
    "L1Loss": (lambda: nn.L1Loss(), lambda: [R(4, 3), R(4, 3)]),
    "SmoothL1Loss": (lambda: nn.SmoothL1Loss(), lambda: [R(4, 3), R(4, 3)]),
    "HuberLoss": (lambda: nn.HuberLoss(delta=0.5), lambda: [R(4, 3), R(4, 3)]),
    "BCELoss": (lambda: nn.BCELoss(), lambda: [U(4, 3), U(4, 3)]),
    "BCEWithLogitsLoss": (lambda: nn.BCEWithLogitsLoss(), lambda: [R(4, 3), U(4, 3)]),
    "KLDivLoss": (lambda: nn.KLDivLoss(reduction="batchmean"), lambda: [R(4, 3), P(4, 3)]),
    "SoftMarginLoss": (lambda: nn.SoftMarginLoss(), lambda: [R(4, 3), np.sign(R(4, 3))]),
    "PoissonNLLLoss": (lambda: nn.PoissonNLLLoss(), lambda: [R(4, 3), P(4, 3)]),
    "GaussianNLLLoss": (lambda: nn.GaussianNLLLoss(), lambda: [R(4, 3), R(4, 3), P(4, 3)]),
}
for _act in ["ReLU", "ReLU6", "GELU", "SiLU", "Mish", "Tanh", "Sigmoid", "LogSigmoid", "ELU", "SELU", "CELU",
             "LeakyReLU", "Softplus", "Softsign", "Hardtanh", "Hardswish", "Hardsigmoid", "Hardshrink",
             "Softshrink", "Tanhshrink"]:
    LAYERS[_act] = (lambda a=_act: getattr(nn, a)(), lambda: [R(3, 5)])
LAYERS["Threshold"] = (lambda: nn.Threshold(0.1, 20.0), lambda: [R(3, 5)])
LAYERS["GELU_tanh"] = (lambda: nn.GELU(approximate="tanh"), lambda: [R(3, 5)])


class _MHA(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


def _run(model, arrays, seed):
    """(outputs, input grads, parameter grads) of one call and backward with fixed weights."""
    ins = [engine.tensor(a, requires_grad=a.dtype == np.float32) for a in arrays]
    for p in model.parameters():
        p.grad = None
    engine.manual_seed(seed)
    out = model(*ins)
    outs = out if isinstance(out, tuple) else (out,)
    loss = None
    for k, o in enumerate(outs):
        w = engine.tensor(np.random.default_rng(k).standard_normal(o.shape).astype(np.float32))
        term = (o * w).sum()
        loss = term if loss is None else loss + term
    if loss.requires_grad:
        loss.backward()
    return ([o.detach().numpy() for o in outs], [None if t.grad is None else t.grad.numpy() for t in ins],
            [None if p.grad is None else p.grad.numpy() for p in model.parameters()])


def _close(a, b, what):
    for x, y in zip(a, b):
        if x is None or y is None:
            assert x is None and y is None, what
            continue
        np.testing.assert_allclose(x, y, rtol=2e-5, atol=2e-5, err_msg=what)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_compiled_matches_eager(name):
    make, inputs = LAYERS[name]
    engine.manual_seed(0)
    model = make()
    arrays = inputs()
    compiled = engine.compile(model)
    _run(compiled, arrays, 1)   # trace
    for seed in (2, 3):
        c = _run(compiled, arrays, seed)
        e = _run(model, arrays, seed)
        _close(c[0], e[0], f"{name}: forward")
        _close(c[1], e[1], f"{name}: input grads")
        _close(c[2], e[2], f"{name}: parameter grads")
    info = compiled.explain()
    assert info["traces"] == 1 and info["replays"] == 2, info
    assert not info["reasons"], info["reasons"]


@pytest.mark.parametrize("name", ["Linear", "Conv2d", "BatchNorm2d", "TransformerEncoderLayer", "GELU"])
def test_layer_compiled_no_grad(name):
    make, inputs = LAYERS[name]
    model = make().eval()
    arrays = inputs()
    compiled = engine.compile(model)
    with engine.no_grad():
        ins = [engine.tensor(a) for a in arrays]
        first = compiled(*ins)
        second = compiled(*ins)
        ref = model(*ins)
    assert second.grad_fn is None
    np.testing.assert_allclose(second.numpy(), ref.numpy(), rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(first.numpy(), ref.numpy(), rtol=2e-5, atol=2e-5)
    assert compiled.explain()["replays"] == 1
