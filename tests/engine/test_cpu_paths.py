"""CPU-device (PoCL) specific paths against torch: the per-parameter vectorisable optimizer kernels
(clang builtins), the host-BLAS GEMM path and the small-GEMM kernel, and the bounds-check skipping."""
import numpy as np
import pytest
import torch

import engine
from engine.optim import _kernels as OK

OPTS = [("Adam", dict(lr=0.01)), ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
        ("AdamW", dict(lr=0.01, weight_decay=0.1)), ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
        ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)), ("Adagrad", dict(lr=0.1)),
        ("Adadelta", dict(lr=0.5)), ("Adamax", dict(lr=0.01)), ("NAdam", dict(lr=0.01)),
        ("RAdam", dict(lr=0.01)), ("Rprop", dict(lr=0.01)), ("ASGD", dict(lr=0.01)),
        ("Adam", dict(lr=0.01, maximize=True))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kwargs", OPTS)
@pytest.mark.parametrize("split", [4096, 1, None])
def test_optim_big_params_match_torch(name, kwargs, split, dtype, monkeypatch):
    """Parameters above CPU_PER_PARAM_MIN get a launch each (the vectorised one-slot kernel), the small
    rest share multi-slot launches; both agree with torch step by step."""
    dev = engine.get_default_device()
    if dtype == np.float64 and not getattr(getattr(dev, "runtime", None), "fp64", True):
        pytest.skip("no float64 on this device")
    monkeypatch.setattr(OK, "CPU_PER_PARAM_MIN", split)
    rng = np.random.default_rng(0)
    shapes = [(70, 100), (100,), (5000,), (3, 4), (0,), ()]
    vals = [rng.uniform(-1, 1, size=s).astype(dtype) for s in shapes]
    ep = [engine.nn.Parameter(engine.tensor(v)) for v in vals]
    tp = [torch.nn.Parameter(torch.tensor(v)) for v in vals]
    eo = getattr(engine.optim, name)(ep, **kwargs)
    to = getattr(torch.optim, name)(tp, **kwargs)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for _ in range(6):
        for e, t in zip(ep, tp):
            g = rng.normal(size=t.shape).astype(dtype)
            e.grad, t.grad = engine.tensor(g), torch.tensor(g)
        eo.step()
        to.step()
    for e, t in zip(ep, tp):
        np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), **tol)
    es, ts = eo.state_dict()["state"], to.state_dict()["state"]
    for k, st in ts.items():
        for key, tv in st.items():
            if isinstance(tv, torch.Tensor):
                np.testing.assert_allclose(es[k][key].numpy(), tv.numpy(), **tol, err_msg=key)


def test_optim_builtins_source():
    flags = tuple(sorted({"wd": False, "decoupled": False, "amsgrad": False, "maximize": False}.items()))
    src, _ = OK.gen_source("adam", flags, "float", "int", True, 1, True)
    assert "#define sqrt __builtin_sqrtf" in src and "#undef fma" in src
    src, _ = OK.gen_source("adam", flags, "float", "int", True, 1, False)
    assert "__builtin" not in src
