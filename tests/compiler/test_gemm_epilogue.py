"""engine.compile's GEMM epilogues (runtime/fusion.py, runtime/gemm_epilogue.py): with the GPUs' tiled
GEMM kernel forced on PoCL, an elementwise consumer of a matmul's result runs inside the GEMM, with
equal values and gradients; C is still stored where the backward reads it; layouts that don't map
element for element (transposed results, broadcast consumers, in-place writes into an operand) stay
separate kernels."""
import os
import sys

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.runtime import matmul as rt

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples"))

import gpt  # noqa: E402


@pytest.fixture(autouse=True)
def tiled_gemm(monkeypatch):
    monkeypatch.setattr(rt, "LAYOUT_FLAGS", True)
    monkeypatch.setattr(rt, "FORCE_OPENCL", True)
    monkeypatch.setenv("CLGRAD_SPLITK", "0")
    monkeypatch.setenv("CLGRAD_MATMUL_TILE", "32,32,8,4,4,4,31")


def _nodes(c, phase=None):
    return [n for n in c.fused_graph()["nodes"] if phase is None or n["phase"] == phase]


def _epilogues(c, phase=None):
    return [n["ops"] for n in _nodes(c, phase) if n["ops"][0] == "matmul" and len(n["ops"]) > 1]


def _check(fn, args, rtol=2e-5, atol=2e-6, calls=2):
    c = engine.compile(fn)
    for _ in range(calls):
        for a in args:
            a.grad = None
        out = c(*args)
        out.backward(engine.ones_like(out))
        got = [out.detach().numpy()] + [a.grad.numpy().copy() for a in args]
        for a in args:
            a.grad = None
        ref = fn(*args)
        ref.backward(engine.ones_like(ref))
        want = [ref.detach().numpy()] + [a.grad.numpy() for a in args]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return c


def _r(*shape):
    return engine.randn(*shape, requires_grad=True)


def test_residual_add_runs_in_the_gemm():
    engine.manual_seed(0)
    x, w = _r(70, 48), _r(40, 48)
    c = _check(lambda x, w: x[:, :40] + x @ w.t() * 0.5, [x, w])
    # forward: (x @ w^T) * 0.5 + x[:, :40], a strided operand, fused; C itself is not needed afterwards
    fwd = _epilogues(c, "forward")
    assert fwd == [["matmul", "mul", "add"]], _nodes(c, "forward")
    assert not any(n["ops"] == ["add"] or n["ops"] == ["mul"] for n in _nodes(c, "forward"))


def test_gelu_keeps_c_for_the_backward_and_its_backward_fuses():
    engine.manual_seed(1)
    x, w, b = _r(64, 40), _r(96, 40), _r(96)
    w2 = _r(24, 96)
    c = _check(lambda x, w, b, w2: F.linear(F.gelu(F.linear(x, w, b)), w2), [x, w, b, w2], atol=1e-5)
    fwd = _epilogues(c, "forward")
    assert ["matmul", "gelu"] in fwd, _nodes(c, "forward")
    # backward: GELU's backward (11 ops) is longer than MAX_EPILOGUE_OPS: its own kernel, unless allowed
    assert not _epilogues(c, "backward"), _nodes(c, "backward")


def test_long_consumers_fuse_when_allowed(monkeypatch):
    from engine.runtime import fusion
    monkeypatch.setattr(fusion, "MAX_EPILOGUE_OPS", 100)
    engine.manual_seed(1)
    x, w, b = _r(64, 40), _r(96, 40), _r(96)
    w2 = _r(24, 96)
    c = _check(lambda x, w, b, w2: F.linear(F.gelu(F.linear(x, w, b)), w2), [x, w, b, w2], atol=1e-5)
    # dh = g @ w2 goes straight into GELU's backward
    bwd = _epilogues(c, "backward")
    assert any(ops[0] == "matmul" and len(ops) > 2 for ops in bwd), _nodes(c, "backward")


def test_batched_and_scalar_operands():
    engine.manual_seed(2)
    a, b = _r(3, 33, 20), _r(3, 20, 45)
    c = _check(lambda a, b: (a @ b).sigmoid() * 3.0 - 1.0, [a, b])
    assert _epilogues(c, "forward"), _nodes(c, "forward")


def test_layouts_that_do_not_fuse():
    engine.manual_seed(3)
    a, b = _r(33, 20), _r(20, 45)
    # the consumer reads C transposed: element n of the add is not element n of C
    c = _check(lambda a, b: (a @ b).t() + 1.0, [a, b])
    assert not _epilogues(c, "forward")
    # a broadcast consumer: its output is bigger than C
    c = _check(lambda a, b: (a @ b).unsqueeze(0) + engine.ones(2, 1, 1), [a, b])
    assert not _epilogues(c, "forward")


def test_in_place_into_the_gemm_operand_stays_separate():
    x0 = engine.randn(40, 40)
    w = engine.randn(40, 40)

    def f(x):
        y = x.clone()
        y.add_(y @ w)
        return y
    c = engine.compile(f)
    for _ in range(2):
        np.testing.assert_allclose(c(x0).numpy(), f(x0).numpy(), rtol=1e-5, atol=1e-5)
    assert not _epilogues(c)


def test_gpt_block_with_tiled_gemms():
    engine.manual_seed(0)
    model = gpt.define_gpt(engine, nn, F)(30, 40, 32, 4, 2)
    x, y = engine.randint(0, 30, (3, 40)), engine.randint(0, 30, (3, 40))
    compiled = engine.compile(model)
    for seed in range(2):
        res = []
        for m in (compiled, model):
            for p in model.parameters():
                p.grad = None
            engine.manual_seed(seed)
            logits, loss = m(x, y)
            loss.backward()
            res.append([logits.detach().numpy(), np.array(loss.item())] + [p.grad.numpy().copy()
                                                                           for p in model.parameters()])
        for a, b in zip(*res):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    eps = _epilogues(compiled)
    # per block: the attention projection's and the MLP's residual adds, and GELU
    assert sorted(map(tuple, eps)) == [("matmul", "add")] * 4 + [("matmul", "gelu")] * 2, eps


@pytest.mark.parametrize("offset", [0, 1])
def test_vector_epilogue_and_its_unaligned_fallback(offset):
    """Dense operands aligned to 4 floats take the float4 epilogue; one element off, the scalar one;
    both give eager's values."""
    from engine.runtime import gemm_epilogue as ge
    engine.manual_seed(4)
    a, b = _r(64, 24), _r(24, 32)
    base = engine.randn(64 * 32 + 1)
    r = base[offset:offset + 64 * 32].view(64, 32)
    _check(lambda a, b: (a @ b) * r + (a @ b).tanh(), [a, b])
    epi = ge.Epilogue("v1 * v2 + v3", [("c", "float"), ("C", "float", "float"), ("c", "float", "float"),
                                       ("s", "float")], 1, True, "")
    src = rt.gen_source("float", "float", "float", (32, 32, 8, 4, 4, 4, 31), "r", "r", False, "int", epi)
    assert "*(__global float4*)(e_out + e_off + f_)" in src and "e_out[e_off + f_]" in src


def test_consumers_of_other_precisions_stay_separate():
    """A float32 product whose consumer writes float64 (the program enables fp64 only for its own type)."""
    if not engine.get_default_device().runtime.fp64:
        pytest.skip("no float64 on this device")
    engine.manual_seed(5)
    a, b = engine.randn(33, 20), engine.randn(20, 45)
    f = (lambda a, b: (a @ b).double() * 2.0)
    c = engine.compile(f)
    for _ in range(2):
        np.testing.assert_allclose(c(a, b).numpy(), f(a, b).numpy(), rtol=1e-6, atol=1e-6)
    assert not _epilogues(c)
