"""runtime/cpu_math.py: the vectorisable math that programs for PoCL's CPU device get.

Through the engine's own ops, over the whole float range (random magnitudes from 1e-43 to 3e38, a dense
stride of every float in [0.1, 2], and the edge values: 0, -0, denormals, overflow and underflow
thresholds, +-inf, NaN), each float32 result is within 2-3 ulp of the exact (float64) value (erf 6), and NaN /
infinity come out where torch's do."""
import numpy as np
import pytest
import torch

import engine
from engine.runtime import cpu_math
from engine.runtime.device import default_device

EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 0.49999, 0.50001, 0.625, -0.625, 4.0, -4.0, 88.72, 88.73, 89.0, -87.3,
         -103.9, -104.0, -150.0, 1e-8, -1e-8, 1e-30, 1e-40, -1e-40, 1.4e-45, 1.17549435e-38, 3e38, -3e38,
         np.inf, -np.inf, np.nan, 0.7071067, 0.7071068, -0.9999999, -1.0000001, 2.0 ** -24, 1e-20]


def _inputs():
    rng = np.random.default_rng(11)
    parts = [rng.standard_normal(20000) * s for s in (0.01, 0.3, 1, 3, 10, 40)]
    parts.append(rng.uniform(-110, 110, 20000))
    parts.append(np.exp(rng.uniform(-99, 88, 20000)) * rng.choice([-1, 1], 20000))
    with np.errstate(over="ignore"):
        x = np.concatenate(parts + [np.array(EDGES)]).astype(np.float32)
    lo, hi = np.float32(0.1).view(np.int32), np.float32(2.0).view(np.int32)
    return np.concatenate([x, np.arange(lo, hi, 331, dtype=np.int32).view(np.float32)])


# (engine function, torch function, max ulp, domain filter)
CASES = {
    "exp": (engine.exp, torch.exp, 2.0),
    "log": (engine.log, torch.log, 2.0),
    "tanh": (engine.tanh, torch.tanh, 2.0),
    "erf": (engine.erf, torch.erf, 6.0),   # Eigen's rational form: up to ~5 ulp (3e-7) as erf -> +-1
    "expm1": (engine.expm1, torch.expm1, 3.0),
    "log1p": (engine.log1p, torch.log1p, 3.0),
    "sqrt": (engine.sqrt, torch.sqrt, 0.5),
    "rsqrt": (engine.rsqrt, torch.rsqrt, 2.0),
    "sigmoid": (engine.sigmoid, torch.sigmoid, 3.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_float_accuracy_over_the_whole_range(name):
    ours_fn, ref_fn, max_ulp = CASES[name]
    if name == "sqrt" and not cpu_math.wanted(default_device()):
        max_ulp = 3.0   # OpenCL 1.2's bound for single-precision sqrt: NVIDIA's is not correctly rounded
    x = _inputs()
    got = ours_fn(engine.tensor(x)).numpy()
    exact = ref_fn(torch.tensor(x, dtype=torch.float64)).numpy()
    with np.errstate(over="ignore"):
        want = exact.astype(np.float32)
    assert np.array_equal(np.isnan(got), np.isnan(want)), x[np.isnan(got) != np.isnan(want)][:8]
    inf = np.isinf(want) | np.isinf(got)
    assert np.array_equal(got[inf], want[inf]), (x[inf & (got != want)][:8], got[inf & (got != want)][:8])
    fin = ~(np.isnan(want) | inf)
    # ulps of the float32 result; results in the denormal range count in units of the smallest denormal
    # spacing of normal numbers there (a denormal result has fewer bits to be exact in)
    ulp = np.spacing(np.maximum(np.abs(want[fin]), np.float32(1.17549435e-38))).astype(np.float64)
    err = np.abs(got[fin].astype(np.float64) - exact[fin]) / ulp
    # where torch's own float32 result is as far off (sigmoid's 1 / (1 + e^-x) is 0 below x = -88.7, as in
    # torch), matching it is right too
    err[got[fin] == ref_fn(torch.tensor(x)).numpy()[fin]] = 0
    worst = int(np.argmax(err))
    assert err.max() <= max_ulp, f"{name}({x[fin][worst]!r}) = {got[fin][worst]!r}, exact {exact[fin][worst]!r}"


def test_prelude_is_used_on_pocl_and_keeps_doubles_and_vectors():
    dev = default_device()
    if not cpu_math.wanted(dev):
        pytest.skip("the prelude is for PoCL's CPU device")
    assert dev.programs.prelude
    # vector and (gentype, scalar) forms and double arguments still reach PoCL's builtins
    src = """__kernel void k(__global float *o, __global const float *x) {
        float4 v = vload4(0, x);
        vstore4(fmax(sqrt(fabs(v)), 0.5f) + exp(v) + mad(v, v, v), 0, o);
        o[4] = exp(x[4]) + erf(x[5]) + tanh(x[6]) + log(fabs(x[7])) + rsqrt(fabs(x[0]) + 1.0f);
    }"""
    if dev.fp64:
        src = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" + src.replace(
            "o[4] =", "o[5] = (float)(exp((double)x[4]) + sqrt((double)x[7]) + fmax((double)x[2], 0.0));\n        o[4] =")
    knl = dev.programs.build(src, "k")
    x = np.linspace(-1.5, 2.0, 8).astype(np.float32)
    xb = engine.tensor(x)
    out = engine.zeros(8)
    from engine.runtime.launch import launch
    launch(dev, knl, (1,), (1,), [out._storage.buf, xb._storage.buf])
    got = out.numpy()
    v = x[:4].astype(np.float64)
    want4 = np.maximum(np.sqrt(np.abs(v)), 0.5) + np.exp(v) + v * v + v
    np.testing.assert_allclose(got[:4], want4, rtol=1e-6)
    import math
    want = math.exp(x[4]) + math.erf(x[5]) + math.tanh(x[6]) + math.log(abs(x[7])) + 1 / math.sqrt(abs(x[0]) + 1)
    np.testing.assert_allclose(got[4], want, rtol=1e-6)
    if dev.fp64:
        np.testing.assert_allclose(got[5], math.exp(x[4]) + math.sqrt(x[7]) + max(x[2], 0.0), rtol=1e-6)


def test_switched_off_by_environment(monkeypatch):
    dev = default_device()
    monkeypatch.setenv("CLGRAD_CPU_MATH", "0")
    assert not cpu_math.wanted(dev)
