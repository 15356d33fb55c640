"""Where a CPU (PoCL) training step of the digits MLP goes: per-step wall time (best of N runs) for
clgrad and torch, then engine.profiler's per-op device time table over `--prof` steps.

    .venv/bin/python benchmarks/probe_cpu_step.py [--steps 50] [--reps 5] [--prof 30] [--model mlp|char]
"""
import argparse
import ast
import importlib
import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (_ROOT, os.path.join(_ROOT, "examples")):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def timed(step, sync, steps, reps):
    best = float("inf")
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step()
        loss.item()
        sync()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--prof", type=int, default=30)
    ap.add_argument("--model", default="mlp_digits")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="module.attr=value (a Python literal), e.g. "
                    "engine.runtime.matmul.CPU_KERNEL_MAX_WORK=0")
    ap.add_argument("--ab", default=None, help="module.attr=v1|v2|...: alternate the values between timed runs (a literal, 'orig' "
                    "or 'noop': a function doing nothing)")
    a = ap.parse_args()
    for kv in a.set:
        k, v = kv.split("=", 1)
        mod, attr = k.rsplit(".", 1)
        setattr(importlib.import_module(mod), attr, ast.literal_eval(v))
    import torch

    import engine
    from _backend import get_backend
    from engine.profiler import profile
    ex = importlib.import_module(a.model)
    E = get_backend(False)
    engine.manual_seed(0)
    es = ex.make_step(E[0], E[1], E[2])
    for _ in range(5):
        es()
    engine.synchronize()
    if a.ab:
        k, vs = a.ab.split("=", 1)
        mod, attr = k.rsplit(".", 1)
        m = importlib.import_module(mod)
        vals = [(lambda *a, **k: None) if v == "noop" else getattr(m, attr) if v == "orig" else ast.literal_eval(v)
                for v in vs.split("|")]
        best = {i: float("inf") for i in range(len(vals))}
        for _ in range(a.reps):
            for i, v in enumerate(vals):
                setattr(m, attr, v)
                es()
                best[i] = min(best[i], timed(es, engine.synchronize, a.steps, 1))
        for i, v in enumerate(vals):
            print(f"clgrad {a.model} {attr}={v!r}: {best[i] * 1e3:.3f} ms/step")
        setattr(m, attr, vals[0])
    te = timed(es, engine.synchronize, a.steps, a.reps)
    print(f"clgrad {a.model}: {te * 1e3:.3f} ms/step")
    if not a.no_torch:
        T = get_backend(True)
        torch.manual_seed(0)
        ts = ex.make_step(T[0], T[1], T[2])
        for _ in range(5):
            ts()
        tt = timed(ts, lambda: None, a.steps, a.reps)
        print(f"torch  {a.model}: {tt * 1e3:.3f} ms/step   ratio clgrad/torch speed {tt / te:.3f}x")
    if a.prof:
        with profile() as prof:
            for _ in range(a.prof):
                es()
        tot = sum(r["seconds"] for r in prof.records)
        print(f"device time {tot / a.prof * 1e3:.3f} ms/step, {len(prof.records) / a.prof:.1f} records/step")
        print(prof.table(sort_by="time", row_limit=25))


if __name__ == "__main__":
    main()
