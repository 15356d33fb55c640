"""Unary math on PoCL with and without runtime/cpu_math.py's prelude (CLGRAD_CPU_MATH=1 / 0), and torch.

    python benchmarks/probe_cpu_math.py [--n 65536]

Each row: microseconds per call (best of 5 runs of 20 calls, synchronised), for a float32 vector of --n
elements; the prelude setting needs a fresh process (it is read when the device's program cache is made),
so each column runs in a child process.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OPS = ["x + 1", "x.exp()", "x.log()", "x.tanh()", "x.erf()", "x.sigmoid()", "x.sqrt()", "x.abs()",
       "x.clamp(-1, 1)", "F.gelu(x)", "F.gelu(x, approximate='tanh')", "F.silu(x)", "F.softplus(x)"]


def _child(n):
    sys.path.insert(0, ROOT)
    import engine
    import engine.nn.functional as F
    lib = engine
    if os.environ.get("PROBE_TORCH"):
        import torch
        import torch.nn.functional as F   # noqa: F811
        torch.set_num_threads(os.cpu_count())
        lib = torch
    x = lib.rand(n) * 4 + 0.01
    sync = (lambda: None) if lib is not engine else engine.get_default_device().runtime.synchronize
    out = {}
    for op in OPS:
        f = eval("lambda x: " + op, {"F": F})
        f(x)
        sync()
        best = 1e9
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(20):
                f(x)
            sync()
            best = min(best, (time.perf_counter() - t) / 20)
        out[op] = best * 1e6
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=65536)
    ap.add_argument("--child", action="store_true")
    a = ap.parse_args()
    if a.child:
        return _child(a.n)
    cols = {}
    for name, env in (("prelude", {"CLGRAD_CPU_MATH": "1"}), ("PoCL builtins", {"CLGRAD_CPU_MATH": "0"}),
                      ("torch", {"PROBE_TORCH": "1"})):
        r = subprocess.run([sys.executable, __file__, "--child", "--n", str(a.n)], env={**os.environ, **env},
                           capture_output=True, text=True, check=True)
        cols[name] = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"{a.n} float32 elements, us per call (best of 5 x 20)")
    print(f"{'op':32s}" + "".join(f"{c:>15s}" for c in cols) + "   builtins / prelude")
    for op in OPS:
        v = [cols[c][op] for c in cols]
        print(f"{op:32s}" + "".join(f"{x:15.1f}" for x in v) + f"   {v[1] / v[0]:8.1f}x")


if __name__ == "__main__":
    main()
