"""Where a CPU (PoCL) training step of the digits MLP goes: per-step wall time (best of N runs) for
clgrad and torch, then engine.profiler's per-op device time table over `--prof` steps.

    .venv/bin/python benchmarks/probe_cpu_step.py [--steps 50] [--reps 5] [--prof 30] [--model mlp|char]
"""
import argparse
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
    a = ap.parse_args()
    import importlib

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
