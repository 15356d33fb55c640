"""Probe (not a test): the fused row kernels (runtime/rows.py) vs PyTorch, forward and forward+backward.

    CLGRAD_DEVICE=gpu python3 benchmarks/probe_rows.py          # issue sizes, torch on CUDA
    python3 benchmarks/probe_rows.py --cpu                      # small sizes, torch on the CPU

Cases: softmax and log_softmax over the rows of 4096x4096, layer_norm of 4096x4096 (weight, bias),
cross_entropy of 8192x50257 logits with int64 targets (mean).  Each timing is the median over 5
repeats of (n steps, then a synchronize) / n, after warm-up; a step of fwd+bwd is: forward, then
backward of a fixed upstream gradient (the loss itself for cross_entropy), gradients cleared.
Columns: clgrad ms, torch ms, ratio = torch time / clgrad time (>= 0.8 is the target), clgrad's
kernel time for one step from the OpenCL profiler ("kern", and the kernels' names with --verbose),
and the bytes the step must move / clgrad's wall time (GB/s).  kern much smaller than the wall
time means the step is host (dispatch) bound, not kernel bound.

Then (skip with --no-variants) clgrad's kernel time per step for the layout choices of
runtime/rows.py (rows.tune): online vs two-sweep statistics, 4-wide loads on/off, work-group size
of the one-group-per-row kernels, layer-norm dweight/dbias in one strip pass vs row blocks + a
second pass; the default is marked '*'."""
import argparse
import statistics
import time

import numpy as np
import torch

import engine
import engine.nn.functional as F
from engine.runtime import launch as _launch


def timeit(step, sync, n, reps=5):
    step()
    step()
    sync()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(n):
            step()
        sync()
        ts.append((time.perf_counter() - t) / n)
    return statistics.median(ts) * 1e3


def kernel_time(step, sync):
    sync()
    tok = _launch.begin_trace()
    try:
        step()
        sync()
    finally:
        recs = _launch.end_trace(tok)
    ks = [r for r in recs if r["kind"] == "kernel"]
    return sum(r["end"] - r["start"] for r in ks) * 1e-6, [r["name"] for r in ks]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu", action="store_true", help="small sizes; torch on the CPU")
    ap.add_argument("--verbose", action="store_true", help="print the kernels of one clgrad step")
    ap.add_argument("--no-variants", action="store_true", help="skip the layout comparison")
    ap.add_argument("--only", default="", help="comma list of case prefixes (softmax,log_softmax,layer_norm,ce)")
    args = ap.parse_args()
    cuda = torch.cuda.is_available() and not args.cpu
    tdev = "cuda" if cuda else "cpu"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    edev = engine.get_default_device()
    esync = edev.runtime.synchronize
    tsync = torch.cuda.synchronize if cuda else (lambda: None)
    small = args.cpu or not cuda
    R, K = (512, 1024) if small else (4096, 4096)
    N, C = (256, 8192) if small else (8192, 50257)
    n_iter = 10 if small else 20
    from engine.runtime.device import default_device
    print(f"clgrad on {edev} ({default_device().name}); torch {torch.__version__} on "
          f"{torch.cuda.get_device_name() if cuda else 'cpu'}")
    torch.manual_seed(0)
    engine.manual_seed(0)
    tgt_np = np.random.default_rng(0).integers(0, C, N)

    def make(T, dev, shape, grad):
        if T is torch:
            return torch.randn(*shape, device=dev).requires_grad_(grad)
        return engine.randn(*shape, device=dev).requires_grad_(grad)

    cases = []
    for op in ("softmax", "log_softmax"):
        cases.append((f"{op} {R}x{K}", lambda T, x, op=op: getattr(T, op)(x, 1), (R, K), 2 * R * K * 4,
                      5 * R * K * 4))
    cases.append((f"layer_norm {R}x{K}", "ln", (R, K), 2 * R * K * 4, (2 + 3 + 2) * R * K * 4))
    cases.append((f"cross_entropy {N}x{C}", "ce", (N, C), N * C * 4, 3 * N * C * 4))
    only = [s for s in args.only.split(",") if s]
    print(f"{'case':34s} {'pass':8s} {'clgrad ms':>10s} {'torch ms':>10s} {'ratio':>7s} {'kern ms':>8s} "
          f"{'GB/s':>7s}")
    for name, fn, shape, fbytes, fbbytes in cases:
        if only and not any(name.startswith(o if o != "ce" else "cross") for o in only):
            continue
        for mode in ("fwd", "fwd+bwd"):
            grad = mode == "fwd+bwd"
            res = {}
            for T, dev, sync in ((engine, edev, esync), (torch, tdev, tsync)):
                x = make(T, dev, shape, grad)
                if fn == "ln":
                    w = make(T, dev, (K,), grad)
                    b = make(T, dev, (K,), grad)
                    params = [x, w, b]
                    f = (lambda x=x, w=w, b=b, T=T: (F if T is engine else torch.nn.functional).layer_norm(
                        x, (K,), w, b))
                elif fn == "ce":
                    t = engine.tensor(tgt_np, device=dev) if T is engine else torch.tensor(tgt_np, device=dev)
                    params = [x]
                    f = (lambda x=x, t=t, T=T: (F if T is engine else torch.nn.functional).cross_entropy(x, t))
                else:
                    params = [x]
                    f = (lambda x=x, T=T, fn=fn: fn(T, x))
                g = make(T, dev, shape, False) if fn != "ce" else None

                def step(f=f, g=g, params=params):
                    if not grad:
                        return f()
                    for p in params:
                        p.grad = None
                    y = f()
                    if g is None:
                        y.backward()
                    else:
                        y.backward(g)

                res[T] = timeit(step, sync, n_iter)
                if T is engine:
                    kt, names = kernel_time(step, sync)
                    res["kern"], res["names"] = kt, names
                del x, params, g, f
                if T is torch and cuda:
                    torch.cuda.empty_cache()
            e, tt = res[engine], res[torch]
            nb = fbbytes if grad else fbytes
            print(f"{name:34s} {mode:8s} {e:10.3f} {tt:10.3f} {tt / e:6.2f}x {res['kern']:8.3f} "
                  f"{nb / e * 1e-6:7.0f}", flush=True)
            if args.verbose:
                print("    kernels:", ", ".join(res["names"]))
    if not args.no_variants:
        variants(R, K, N, C, tgt_np, edev, esync)


def variants(R, K, N, C, tgt_np, edev, esync):
    from engine.runtime import rows
    x = engine.randn(R, K, device=edev, requires_grad=True)
    w = engine.randn(K, device=edev, requires_grad=True)
    b = engine.randn(K, device=edev, requires_grad=True)
    g = engine.randn(R, K, device=edev)
    xc = engine.randn(N, C, device=edev, requires_grad=True)
    t = engine.tensor(tgt_np, device=edev)

    def fb(f, params, gr):
        def step():
            for p in params:
                p.grad = None
            y = f()
            y.backward(gr) if gr is not None else y.backward()
        return step
    cases = [
        ("softmax fwd", lambda: x.detach().softmax(1), [{"online": None}, {"online": False}, {"vec": False},
                                                        {"wg": 128}, {"wg": 512}, {"wg": 1024}]),
        ("layer_norm fwd", lambda: F.layer_norm(x.detach(), (K,), w.detach(), b.detach()),
         [{"vec": None}, {"vec": False}, {"wg": 128}, {"wg": 512}, {"wg": 1024}]),
        ("softmax fwd+bwd", fb(lambda: x.softmax(1), [x], g), [{"online": None}, {"online": False},
                                                              {"vec": False}]),
        ("layer_norm fwd+bwd", fb(lambda: F.layer_norm(x, (K,), w, b), [x, w, b], g),
         [{"ln_wb": None}, {"ln_wb": "strip"}, {"ln_wb": "blocks"}, {"vec": False}]),
        ("cross_entropy fwd+bwd", fb(lambda: F.cross_entropy(xc, t), [xc], None),
         [{"online": None}, {"online": False}, {"vec": False}, {"wg": 512}, {"wg": 1024}]),
    ]
    print("\nclgrad kernel time per step (min of 5) by layout choice (runtime/rows.py TUNE); * = default")
    for name, step, vs in cases:
        parts = []
        for v in vs:
            old = rows.tune(**v)
            try:
                step()
                esync()
                kt = min(kernel_time(step, esync)[0] for _ in range(5))
            finally:
                rows.tune(**old)
            label = ",".join(f"{k}={val}" for k, val in v.items() if val is not None) or "*"
            parts.append(f"{label} {kt:.3f}")
        print(f"  {name:24s} " + "   ".join(parts) + "  (ms)", flush=True)


if __name__ == "__main__":
    main()
