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
    """On PoCL the optimizer's fma / sqrt / fabs reach clang's builtins through the cpu_math prelude."""
    from engine.runtime import cpu_math
    flags = tuple(sorted({"wd": False, "decoupled": False, "amsgrad": False, "maximize": False}.items()))
    src, _ = OK.gen_source("adam", flags, "float", "int", True, 1)
    assert "__builtin" not in src
    full = cpu_math.with_prelude(src)
    assert "#define sqrt(a0) __cg_sqrt(a0)" in full and "#undef fma" in full
    assert "return __builtin_sqrtf(a0);" in full and "return __builtin_fmaf(a0, a1, a2);" in full


# ---- host-BLAS GEMM path (CPU devices): asynchronous worker, non-blocking maps ----------------------
def _is_cpu():
    from engine.runtime.device import default_device
    return default_device().is_cpu


cpu_only = pytest.mark.skipif(not _is_cpu(), reason="the host-BLAS path runs on CPU devices")


@cpu_only
@pytest.mark.parametrize("async_blas", [True, False])
@pytest.mark.parametrize("kernel_max", [0, 1 << 15, 1 << 40])
def test_gemm_chain_matches_torch(async_blas, kernel_max, monkeypatch):
    """A chain of dependent products (each reads the previous one's output), transposed and sliced operands,
    bias epilogues and batched products, with host reads in between, through the asynchronous BLAS worker."""
    from engine.runtime import gemm_host, matmul
    monkeypatch.setattr(gemm_host, "ASYNC_BLAS", async_blas)
    monkeypatch.setattr(matmul, "CPU_KERNEL_MAX_WORK", kernel_max)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 64)).astype(np.float32)
    ws = [rng.normal(size=s).astype(np.float32) * 0.1 for s in [(256, 64), (256, 256), (10, 256)]]
    bs = [rng.normal(size=s[0]).astype(np.float32) for s in [(256, 64), (256, 256), (10, 256)]]
    for T, tens in ((engine, engine.tensor), (torch, torch.tensor)):
        h = tens(x)
        outs = []
        for w, b in zip(ws, bs):
            h = T.nn.functional.linear(h, tens(w), tens(b)).relu()
            outs.append(h)
        g = h.t() @ outs[1]                      # (10, 256): transposed operand
        bm = T.matmul(outs[1].reshape(4, 16, 256), tens(ws[1])[:, ::2])   # batched, strided B
        res = [o.numpy() for o in outs + [g, bm]]
        if T is engine:
            e = res
        else:
            t = res
    for a, b in zip(e, t):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


@cpu_only
def test_gemm_inplace_alias_and_empty():
    a = engine.tensor(np.ones((3, 4), np.float32))
    b = engine.tensor(np.full((4, 5), 2.0, np.float32))
    c = engine.tensor(np.full((3, 5), 1.0, np.float32))
    c.addmm_(a, b)                               # C is D: mapped read-write
    np.testing.assert_allclose(c.numpy(), np.full((3, 5), 9.0))
    z = engine.zeros(3, 0) @ engine.zeros(0, 5)  # K == 0
    np.testing.assert_allclose(z.numpy(), np.zeros((3, 5)))
    big = engine.tensor(np.ones((300, 300), np.float32))
    np.testing.assert_allclose((big @ big).numpy(), np.full((300, 300), 300.0))


@cpu_only
def test_gemm_async_error_raised_by_next_call(monkeypatch):
    """A failure on the worker never leaves the queue blocked; the next GEMM of the device raises it."""
    from engine.runtime import gemm_host as RM
    monkeypatch.setattr(RM, "ASYNC_BLAS", True)
    orig = RM._gemm_host
    state = {"n": 0}

    def boom(*args):
        state["n"] += 1
        if state["n"] == 1:
            raise MemoryError("host out of memory (test)")
        return orig(*args)
    monkeypatch.setattr(RM, "_gemm_host", boom)
    a = engine.tensor(np.ones((100, 100), np.float32))
    y = a @ a
    y.numpy()                                    # the queue went on
    with pytest.raises(MemoryError, match="test"):
        a @ a
    np.testing.assert_allclose((a @ a).numpy(), np.full((100, 100), 100.0))


# ---- bounds checks: an index tensor found in range is not read again until it changes -----------------
def _count_reads(monkeypatch):
    from engine.runtime import index as ix
    calls = []
    orig = ix.check_errors
    monkeypatch.setattr(ix, "check_errors", lambda dev, message=None: calls.append(1) or orig(dev, message))
    return calls


@pytest.mark.parametrize("op", ["embedding", "gather", "index_select"])
def test_verified_index_skips_flag_read(op, monkeypatch):
    calls = _count_reads(monkeypatch)
    w = engine.tensor(np.arange(20, dtype=np.float32).reshape(5, 4))
    idx = engine.tensor(np.array([[0, 4], [2, 1]]))
    tw = torch.tensor(w.numpy())

    def run(i):
        if op == "embedding":
            return engine.nn.functional.embedding(i, w), torch.nn.functional.embedding(torch.tensor(i.numpy()), tw)
        if op == "gather":
            return w.gather(0, i), tw.gather(0, torch.tensor(i.numpy()))
        return w.index_select(0, i.reshape(-1)), tw.index_select(0, torch.tensor(i.numpy()).reshape(-1))
    for k in range(3):
        e, t = run(idx)
        np.testing.assert_allclose(e.numpy(), t.numpy())
    assert len(calls) == 1                       # read once, then trusted
    idx[1, 1] = 7                                # an in-place write bumps the version: checked again
    with pytest.raises(IndexError):
        run(idx)
    assert len(calls) == 2
    with pytest.raises(IndexError):              # never trusted while out of range
        run(idx)
    idx[1, 1] = 3
    run(idx)
    run(idx)
    assert len(calls) == 4
    small = engine.tensor(np.arange(8, dtype=np.float32).reshape(2, 4))   # another bound: checked again
    with pytest.raises(IndexError):
        if op == "embedding":
            engine.nn.functional.embedding(idx, small)
        elif op == "gather":
            small.gather(0, idx)
        else:
            small.index_select(0, idx.reshape(-1))


def test_verified_index_view_and_storage_identity(monkeypatch):
    calls = _count_reads(monkeypatch)
    w = engine.tensor(np.ones((6, 2), np.float32))
    base = engine.tensor(np.array([0, 1, 2, 3, 4, 9]))
    engine.nn.functional.embedding(base[:5], w)
    engine.nn.functional.embedding(base[:5], w)
    assert len(calls) == 1
    with pytest.raises(IndexError):              # another view of the same storage is checked on its own
        engine.nn.functional.embedding(base[1:], w)
    other = engine.tensor(np.array([0, 1, 2, 3, 4]))
    engine.nn.functional.embedding(other, w)
    assert len(calls) == 3
