"""Adam's fused kernel on a CPU (PoCL) device: device time and GB/s of the multi-parameter kernel
(K slots per launch) vs one launch per parameter, over the digits MLP's parameters and one big
parameter; and torch's Adam (foreach / fused) on the CPU for the same sizes.

    .venv/bin/python benchmarks/probe_cpu_adam.py [--big 25000000] [--reps 20]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dev_time(fn, reps):
    from engine.profiler import profile
    best = float("inf")
    for _ in range(reps):
        with profile() as prof:
            fn()
        best = min(best, sum(r["seconds"] for r in prof.records if r["kind"] == "kernel"))
    return best


def wall(fn, sync, reps):
    best = float("inf")
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=25_000_000)
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    import torch

    import engine
    from engine.optim import _kernels as K
    mlp = [(256, 64), (256,), (256, 256), (256,), (10, 256), (10,)]
    for name, shapes in (("mlp", mlp), (f"big {a.big}", [(a.big,)])):
        n = sum(int(torch.Size(s).numel()) for s in shapes)
        nbytes = n * 4 * 7  # read p, g, exp_avg, exp_avg_sq; write p, exp_avg, exp_avg_sq
        ps = [engine.randn(*s, requires_grad=True) for s in shapes]
        for p in ps:
            p.grad = engine.randn(*p.shape)
        opt = engine.optim.Adam(ps, lr=1e-3)
        opt.step()
        engine.synchronize()
        res = {}
        # (PoCL's vectorisable builtins come from runtime/cpu_math.py: CLGRAD_CPU_MATH=0 measures without)
        for mode in ("multi", "per_param"):
            K.CPU_PER_PARAM_MIN = 4096 if mode == "per_param" else None
            opt.step()
            engine.synchronize()
            t = dev_time(opt.step, a.reps)
            w = wall(opt.step, engine.synchronize, a.reps)
            res[mode] = t
            print(f"clgrad {name:>14s} {mode:>12s}: device {t * 1e6:9.1f} us  {nbytes / t / 1e9:6.2f} GB/s   "
                  f"wall {w * 1e6:9.1f} us")
        tps = [torch.randn(*s, requires_grad=True) for s in shapes]
        for p in tps:
            p.grad = torch.randn(*p.shape)
        for kw in ({"foreach": True}, {"fused": True}, {"foreach": False}):
            topt = torch.optim.Adam(tps, lr=1e-3, **kw)
            topt.step()
            w = wall(topt.step, lambda: None, a.reps)
            print(f"torch  {name:>14s} {str(kw):>12s}: wall {w * 1e6:9.1f} us  {nbytes / w / 1e9:6.2f} GB/s")
        del ps, opt, tps


if __name__ == "__main__":
    main()
