"""Compare a clgrad module or functional with PyTorch's, with identical weights copied in.

    check_module(nn.Linear(4, 3), torch.nn.Linear(4, 3), x_shape=(2, 4))

copies torch's parameters and buffers into ours, runs both forwards on the same random
input, compares outputs, then backpropagates the same random upstream gradient and
compares the input gradients and every parameter's gradient (and the buffers, e.g.
BatchNorm's running stats, after forward)."""
import os

import numpy as np
import torch

import engine
from tests.engine.helpers import assert_close

# CLGRAD_TEST_SEED shifts the inputs (flakiness hunts); unset, every run draws the same values
rng = np.random.default_rng(4321 + int(os.environ.get("CLGRAD_TEST_SEED", "0")))


def to_engine(t, requires_grad=False):
    e = engine.tensor(t.detach().cpu().numpy())
    return e.requires_grad_(requires_grad) if requires_grad else e


def copy_weights(ours, theirs):
    """Copy torch module `theirs`'s state (parameters and all buffers) into clgrad module `ours`."""
    sd = {k: to_engine(v) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(sd)
    return ours


def randn(*shape, dtype=np.float32, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def check_module(ours, theirs, *inputs, rtol=1e-4, atol=1e-5, grad=True, copy=True, train=None):
    """inputs: numpy arrays (float ones get requires_grad) or tuples (array, requires_grad).
    Returns (our_out, torch_out)."""
    if copy:
        copy_weights(ours, theirs)
    if train is not None:
        ours.train(train)
        theirs.train(train)
    e_in, t_in = [], []
    for a in inputs:
        rg = None
        if isinstance(a, tuple):
            a, rg = a
        a = np.asarray(a)
        if rg is None:
            rg = grad and a.dtype.kind == "f"
        t = torch.tensor(a, requires_grad=rg)
        e = engine.tensor(a, requires_grad=rg)
        t_in.append(t)
        e_in.append(e)
    t_out = theirs(*t_in)
    e_out = ours(*e_in)
    assert_close(e_out, t_out, rtol, atol, msg="forward")
    for (k, tb), (k2, eb) in zip(theirs.named_buffers(), ours.named_buffers()):
        assert k == k2
        assert_close(eb, tb, rtol, atol, msg=f"buffer {k}")
    if not grad:
        return e_out, t_out
    t_first = t_out[0] if isinstance(t_out, tuple) else t_out
    e_first = e_out[0] if isinstance(e_out, tuple) else e_out
    g = randn(*t_first.shape).astype(t_first.detach().numpy().dtype)
    t_first.backward(torch.tensor(g))
    e_first.backward(engine.tensor(g))
    for i, (e, t) in enumerate(zip(e_in, t_in)):
        if t.requires_grad:
            assert (e.grad is None) == (t.grad is None), f"input {i} grad presence"
            if t.grad is not None:
                assert_close(e.grad, t.grad, rtol, atol, msg=f"grad of input {i}")
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        tg = tp[name].grad
        assert (p.grad is None) == (tg is None), f"grad presence of {name}"
        if tg is not None:
            assert_close(p.grad, tg, rtol, atol, msg=f"grad of {name}")
    return e_out, t_out


def check_functional(ours, theirs, *inputs, rtol=1e-4, atol=1e-5, **kwargs):
    """ours/theirs: callables over tensors (kwargs passed to both). Inputs as in check_module."""
    class _Wrap:
        def __init__(self, fn):
            self.fn = fn

        def __call__(self, *a):
            return self.fn(*a, **kwargs)

        def named_buffers(self):
            return iter(())

        def named_parameters(self):
            return iter(())

        def load_state_dict(self, sd):
            pass

        def state_dict(self):
            return {}

        def train(self, mode):
            pass
    return check_module(_Wrap(ours), _Wrap(theirs), *inputs, rtol=rtol, atol=atol, copy=False)


# torch 2.13 added BatchNorm*/GroupNorm(bias=...) and 'bias=' in the norms' reprs (LayerNorm's too,
# so every repr holding a norm differs); the NVIDIA box's image has torch 2.11
TORCH_NORM_BIAS = "bias" in __import__("inspect").signature(torch.nn.BatchNorm1d.__init__).parameters
