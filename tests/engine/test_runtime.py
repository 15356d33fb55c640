"""OpenCL runtime: device discovery and selection, memory pool, program cache, async queue."""
import os
import subprocess
import sys

import numpy as np
import pytest

import engine
from engine.runtime import device as rt

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(code, **env):
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    e = dict(os.environ, PYTHONPATH=path, **env)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=120)
    return r


def test_devices_lists_every_device():
    devs = engine.devices()
    assert devs, "at least one OpenCL device (PoCL) must be present"
    for d in devs:
        for key in ("name", "type", "compute_units", "global_mem", "fp64", "fp16", "device", "default"):
            assert key in d
        assert d["type"] in ("gpu", "cpu", "accelerator")
        assert d["compute_units"] >= 1 and d["global_mem"] > 0
    assert sum(d["default"] for d in devs) == 1


def test_default_prefers_gpu_then_cpu():
    devs = rt.all_devices()
    d = rt._default if os.environ.get("CLGRAD_DEVICE") else rt.default_device()
    if not os.environ.get("CLGRAD_DEVICE"):
        if any(x.is_gpu for x in devs):
            assert d.is_gpu
        else:
            assert d.is_cpu or not any(x.is_cpu for x in devs)


@pytest.mark.parametrize("spec", ["cpu", "0:0", "cl:0"])
def test_clgrad_device_env(spec):
    cpu = [d for d in rt.all_devices() if d.is_cpu]
    if spec == "cpu" and not cpu:
        pytest.skip("no CPU OpenCL device")
    r = _run("import engine; print(engine.get_default_device(), engine.ones(2).device)", CLGRAD_DEVICE=spec)
    assert r.returncode == 0, r.stderr
    want = rt.find_device(spec).index
    assert r.stdout.split() == [f"cl:{want}", f"cl:{want}"]


def test_clgrad_device_vendor_substring():
    d = rt.all_devices()[0]
    sub = d.vendor.split()[0][:4].lower() or d.name[:4]
    assert rt.find_device(sub) in rt.all_devices()


def test_bad_device_spec_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no OpenCL device matches"):
        engine.device("no-such-vendor-xyz")
    with pytest.raises(RuntimeError, match="invalid device"):
        engine.device("cl:99")
    r = _run("import engine; engine.ones(1)", CLGRAD_DEVICE="no-such-vendor-xyz")
    assert r.returncode != 0 and "no OpenCL device matches" in r.stderr


def test_cuda_aliases():
    if engine.cuda.is_available():
        assert engine.device("cuda").runtime.is_gpu
        assert engine.cuda.device_count() >= 1
        engine.cuda.synchronize()
        assert engine.ones(2, device="cuda").is_cuda
    else:
        assert engine.cuda.device_count() == 0
        with pytest.raises(RuntimeError, match="no OpenCL GPU"):
            engine.ones(2, device="cuda")


def test_cpu_device_name_is_the_cpu_opencl_device():
    if not any(d.is_cpu for d in rt.all_devices()):
        pytest.skip("no CPU OpenCL device")
    t = engine.ones(3, device="cpu")
    assert t.device.runtime.is_cpu
    assert str(t.device).startswith("cl:")
    assert engine.device("cpu") == t.device


def test_set_default_device_roundtrip():
    old = engine.get_default_device()
    try:
        d = engine.set_default_device("cl:0")
        assert engine.zeros(1).device == d
    finally:
        engine.set_default_device(old)


def test_memory_pool_reuses_buffers_in_steady_state():
    dev = engine.get_default_device().runtime
    x = engine.ones(1000)
    for _ in range(3):  # warm the pool
        y = (x * 2 + 1).exp()
        del y
    before = dev.pool.driver_allocs
    for _ in range(50):
        y = (x * 2 + 1).exp()
        del y
    assert dev.pool.driver_allocs == before
    assert dev.pool.stats()["allocated_bytes"] >= 0


def test_program_cache_builds_each_kernel_once():
    dev = engine.get_default_device().runtime
    for n in (5, 17, 1000, 100000):  # one size per kernel variant (serial / split reductions)
        a = engine.ones(n)
        (a * 3.5 - a).sum()
    builds = dev.programs.builds
    for n in (6, 19, 1001, 100003):  # new sizes must not build new programs
        b = engine.ones(n)
        (b * 3.5 - b).sum()
    assert dev.programs.builds == builds


def test_ops_are_asynchronous_until_host_read():
    x = engine.ones(1 << 16)
    for _ in range(20):
        x = x * 1.0001
    # nothing waited so far; reading the value synchronises and is correct
    np.testing.assert_allclose(x[0].item(), 1.0001 ** 20, rtol=1e-5)


def test_compile_error_carries_build_log():
    dev = engine.get_default_device().runtime
    with pytest.raises(engine.CompileError) as ei:
        dev.programs.build("__kernel void broken(__global float* x) { x[0] = undefined_thing; }", "broken")
    assert ei.value.source and "undefined_thing" in ei.value.source


def test_float64_support_is_reported():
    d = engine.get_default_device().runtime
    if d.fp64:
        assert engine.ones(2, dtype=engine.float64).dtype is engine.float64
    else:
        with pytest.raises(TypeError, match="float64 is not supported"):
            engine.ones(2, dtype=engine.float64)


@pytest.mark.parametrize("n", [4096, 4099, 10001])
def test_vectorised_contiguous_kernels_match(n, monkeypatch):
    from engine.runtime import elementwise
    monkeypatch.setattr(elementwise, "VEC4", True)
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    ea, eb = engine.tensor(a), engine.tensor(b)
    np.testing.assert_allclose((ea * eb + 1.5).numpy(), a * b + 1.5, rtol=1e-6)
    np.testing.assert_array_equal((ea > eb).numpy(), a > b)
    np.testing.assert_array_equal(ea[1:].relu().numpy(), np.maximum(a[1:], 0))  # offset 1, unaligned
    np.testing.assert_array_equal(engine.arange(n).numpy(), np.arange(n))  # index expressions stay scalar
    i = engine.tensor(rng.integers(-9, 9, n))
    np.testing.assert_array_equal((i % 4).numpy(), (i.numpy() % 4))
