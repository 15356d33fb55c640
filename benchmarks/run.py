"""clgrad vs PyTorch, side by side in one process on the same device.

    python benchmarks/run.py [--device cpu|gpu|cl:N] [--json out.json] [--quick] [--models]

PyTorch runs on the CPU when clgrad's device is a CPU (PoCL), and on CUDA when
clgrad runs on an NVIDIA GPU and torch.cuda is available.  Each figure is the
median of several timed repetitions after warm-up, with both sides synchronised.
Ratios are clgrad / PyTorch in throughput terms (>1 means clgrad is faster).
--models adds training steps/s of the example models (MLP, CNN, char LM, GPT; benchmarks/models.py).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def timeit(fn, sync, reps=7, inner=1, warmup=2):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        times.append((time.perf_counter() - t) / inner)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default=None, help="clgrad device: cpu, gpu, cl:N (default: CLGRAD_DEVICE or auto)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (for CI smoke runs)")
    ap.add_argument("--models", action="store_true",
                    help="also time training steps of the example models (benchmarks/models.py)")
    args = ap.parse_args()
    if args.device:
        os.environ["CLGRAD_DEVICE"] = args.device
    import numpy as np
    import torch

    import engine
    dev = engine.get_default_device().runtime
    use_cuda = dev.is_gpu and torch.cuda.is_available()
    tdev = "cuda" if use_cuda else "cpu"
    if use_cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        tname = torch.cuda.get_device_name(0)
    else:
        tname = platform.processor() or platform.machine()
    esync = dev.synchronize
    tsync = torch.cuda.synchronize if use_cuda else (lambda: None)
    print(f"clgrad device: {dev.name} ({dev.platform_name}, {dev.type}); torch device: {tdev} ({tname}); "
          f"torch {torch.__version__}")
    rows = []

    def row(name, unit, e_val, t_val, higher_better=True):
        ratio = (e_val / t_val) if higher_better else (t_val / e_val)
        rows.append({"bench": name, "unit": unit, "clgrad": e_val, "torch": t_val, "ratio": ratio})
        print(f"{name:<34} {unit:<8} clgrad {e_val:>12.3f}   torch {t_val:>12.3f}   ratio {ratio:6.2f}x", flush=True)

    # 1. per-op dispatch overhead: 1,000 small adds in a Python loop
    a, b = engine.ones(16), engine.ones(16)
    ta, tb = torch.ones(16, device=tdev), torch.ones(16, device=tdev)

    def loop_e():
        x = a
        for _ in range(1000):
            x = x + b
        return x

    def loop_t():
        x = ta
        for _ in range(1000):
            x = x + tb
        return x
    te = timeit(loop_e, esync, reps=5) / 1000 * 1e6
    tt = timeit(loop_t, tsync, reps=5) / 1000 * 1e6
    row("dispatch overhead (1000 adds)", "us/op", te, tt, higher_better=False)

    # 2. a*b+c bandwidth
    n = 1 << (20 if args.quick else 24)
    rng = np.random.default_rng(0)
    host = [rng.standard_normal(n).astype(np.float32) for _ in range(3)]
    ea, eb, ec = (engine.tensor(h) for h in host)
    tA, tB, tC = (torch.tensor(h, device=tdev) for h in host)
    gb = 4 * n * 4 / 1e9  # three reads and one write
    te = timeit(lambda: ea * eb + ec, esync)
    tt = timeit(lambda: tA * tB + tC, tsync)
    row(f"a*b+c 2^{n.bit_length() - 1} floats", "GB/s", gb / te, gb / tt)
    np.testing.assert_allclose((ea * eb + ec).numpy()[:1000], (tA * tB + tC).cpu().numpy()[:1000], rtol=1e-5)

    # 3. matmul 1024
    m = 512 if args.quick else 1024
    A, B = (rng.standard_normal((m, m)).astype(np.float32) for _ in range(2))
    eA, eB = engine.tensor(A), engine.tensor(B)
    tA2, tB2 = torch.tensor(A, device=tdev), torch.tensor(B, device=tdev)
    if hasattr(eA, "__matmul__") and "matmul" in dir(engine):
        flops = 2 * m ** 3 / 1e9
        te = timeit(lambda: eA @ eB, esync)
        tt = timeit(lambda: tA2 @ tB2, tsync)
        row(f"matmul {m}x{m}", "GFLOP/s", flops / te, flops / tt)
    else:
        print("matmul: not implemented yet")

    # 4. sum over all elements
    if hasattr(engine, "sum"):
        te = timeit(lambda: ea.sum(), esync)
        tt = timeit(lambda: tA.sum(), tsync)
        row(f"sum 2^{n.bit_length() - 1} floats", "GB/s", n * 4 / 1e9 / te, n * 4 / 1e9 / tt)

    # 5. training steps/s of the example models
    if args.models:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from models import run_models
        run_models(row, esync, tsync, tdev, quick=args.quick)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"clgrad_device": dev.name, "torch_device": tname, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
