"""Split-K GEMM (runtime/gemm_split.py): forced on with CLGRAD_SPLITK and the tiled kernel
(CLGRAD_MATMUL_TILE), so PoCL runs the path GPUs take for weight gradients."""
import numpy as np
import pytest
import torch

import engine
from engine.runtime import gemm_split


@pytest.fixture
def split(monkeypatch):
    monkeypatch.setenv("CLGRAD_MATMUL", "opencl")
    monkeypatch.setenv("CLGRAD_MATMUL_TILE", "32,32,16,4,4,4,0")
    monkeypatch.setenv("CLGRAD_SPLITK", "4")


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_split_k_layouts(split, ta, tb):
    rng = np.random.default_rng(1)
    M, N, K = 37, 21, 512
    a = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
    ea, eb, ta_, tb_ = engine.tensor(a), engine.tensor(b), torch.tensor(a), torch.tensor(b)
    if ta:
        ea, ta_ = ea.t(), ta_.t()
    if tb:
        eb, tb_ = eb.t(), tb_.t()
    with engine.profiler.profile() as prof:
        out = ea @ eb
    assert [r["name"] for r in prof.records] == ["gemm", "gemm_splitk_sum"]
    np.testing.assert_allclose(out.numpy(), (ta_ @ tb_).numpy(), rtol=1e-4, atol=1e-4)


def test_split_k_addmm_strided_out_and_grad(split):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((24, 256)).astype(np.float32)
    w = rng.standard_normal((16, 256)).astype(np.float32)
    bias = rng.standard_normal(16).astype(np.float32)
    out = engine.addmm(engine.tensor(bias), engine.tensor(x), engine.tensor(w).t(), beta=0.5, alpha=2.0)
    ref = torch.addmm(torch.tensor(bias), torch.tensor(x), torch.tensor(w).t(), beta=0.5, alpha=2.0)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-4, atol=1e-4)
    # dW = g^T @ x is the split-K shape (long K = rows of x)
    ex = engine.tensor(x.T.copy()).t().requires_grad_()
    ew = engine.tensor(w, requires_grad=True)
    (ex @ ew.t()).sum().backward()
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (tx @ tw.t()).sum().backward()
    np.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_choose_splits():
    class Dev:
        is_cpu, compute_units = False, 132
    assert gemm_split.choose_splits(Dev, 384, 1152, 16384, 27) == 16   # 27 tiles -> 432 >= 2 waves
    assert gemm_split.choose_splits(Dev, 4096, 4096, 4096, 1024) == 1   # enough tiles already
    assert gemm_split.choose_splits(Dev, 384, 384, 300, 9) == 1         # K too short
    assert gemm_split.choose_splits(Dev, 384, 384, 1021, 9) == 1        # prime K: no even chunks


def test_gemm_tuner_chooses_caches_and_persists(monkeypatch, tmp_path):
    import json
    import subprocess
    import sys
    from engine.runtime import gemm_tune, matmul
    monkeypatch.setenv("CLGRAD_GEMM_TUNE", "force")
    monkeypatch.setenv("CLGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(matmul, "FORCE_OPENCL", True)
    monkeypatch.setattr(gemm_tune, "_CHOICES", {})
    monkeypatch.setattr(gemm_tune, "_LOADED", set())
    rng = np.random.default_rng(3)
    a = rng.standard_normal((40, 600)).astype(np.float32)
    b = rng.standard_normal((600, 24)).astype(np.float32)
    out = engine.tensor(a) @ engine.tensor(b)
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-4, atol=1e-3)
    data = json.loads((tmp_path / "gemm-tune.json").read_text())
    (table,) = data.values()
    (key, (cfg, splits)), = table.items()
    assert key.startswith("float|") and key.endswith("|64x32x1024|b1") and tuple(cfg) in gemm_tune.CANDIDATES and splits in (0, 1)
    with engine.profiler.profile() as prof:   # the choice is reused: one product, no timing runs
        engine.tensor(a) @ engine.tensor(b)
    assert len([r for r in prof.records if r["kind"] == "kernel"]) == (2 if splits else 1)
    # a second process reads the file instead of tuning
    code = ("import engine, engine.runtime.matmul as m, engine.runtime.gemm_tune as t; m.FORCE_OPENCL = True; "
            "t.choose.__globals__['time'] = None; "   # timing would fail: it must not run
            "print((engine.ones(40, 600) @ engine.ones(600, 24)).sum().item())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.split()[-1]) == 40 * 24 * 600
