"""Pool buffers over host arrays on PoCL (runtime/memory.py): the host-BLAS GEMM reads and writes them
without maps, ordered against the kernels around it by the queue's marker and user-event barrier."""
import os
import subprocess
import sys

import numpy as np
import pytest

import engine
from engine.runtime.device import default_device

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_CHAIN = """
import numpy as np, engine
rng = np.random.default_rng(3)
a0 = rng.standard_normal((64, 48)).astype(np.float32)
w0 = (rng.standard_normal((48, 48)) * 0.2).astype(np.float32)
a, w = engine.tensor(a0), engine.tensor(w0)
ref = a0.astype(np.float64)
for _ in range(12):   # kernels and host GEMMs interleaved, each reading what the one before wrote
    a = (a @ w).tanh() * 0.5 + a
    ref = np.tanh(ref @ w0) * 0.5 + ref
out = a.numpy()
np.testing.assert_allclose(out, ref, rtol=2e-4, atol=2e-4)
print(engine.get_default_device().runtime.pool.host_shared, float(out.sum()))
"""


def _pocl():
    return default_device().is_pocl_cpu


def test_pool_buffers_share_host_memory_on_pocl():
    if not _pocl():
        pytest.skip("host-shared buffers are for PoCL's CPU device")
    x = engine.randn(100)
    buf = x._storage.buf
    assert default_device().pool.host_shared and buf.hostbuf is not None
    assert buf.hostbuf.ctypes.data % 128 == 0
    want = x.numpy()
    np.testing.assert_array_equal(buf.hostbuf[:400].view(np.float32), want)


@pytest.mark.parametrize("shared", ["1", "0"])
def test_gemm_chain_with_and_without_host_buffers(shared):
    path = os.pathsep.join([ROOT] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    env = {**os.environ, "CLGRAD_HOST_BUFFERS": shared, "PYTHONPATH": path}
    r = subprocess.run([sys.executable, "-c", _CHAIN], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    flag = r.stdout.split()[-2]
    assert flag == ("True" if shared == "1" and _pocl() else "False")
