"""Per-op Python dispatch overhead, clgrad vs PyTorch, in one process (issue 7: <= 1.5x PyTorch).

    python benchmarks/overhead.py [--device cpu|gpu|cl:N] [--reps 5] [--n 1000] [--size 32] [--profile]
                                  [--only a,b,c,d]

Cases (all on tensors of --size x --size elements, so that launches, not FLOPs, dominate):
  a  1,000 `x = x + b` under no_grad (the no-autograd fast path)
  b  the same with b.requires_grad (forward only: Function.apply + node creation)
  b2 1,000 `x = x + bias` with a broadcast (size,) bias that requires grad
  c  forward + backward of a 1,000-op chain (alternating x * w, x + b, tanh; w, b require grad)
  d  one training step of benchmarks/models.py's MLP (examples/mlp_digits.make_step)
Prints us/op (us/step for d): the best of --reps runs, each synchronised at both ends ("host": the
time until the last op was enqueued, before the final synchronisation; "python": the host time with
pyopencl's kernel enqueue stubbed out, i.e. clgrad's own dispatch cost without the OpenCL call; not for
d, whose host-BLAS path and bounds checks read results), and the ratio
clgrad / PyTorch (lower is better; the issue's target is <= 1.5).  PyTorch runs on CUDA when clgrad's
device is a GPU and torch.cuda is available, else on the CPU.  --profile adds cProfile's top functions
(by own time) of one clgrad run of b, c and d.

Python's cyclic GC matters here: every op leaves a few GC-tracked objects (node, tensors, tuples) alive
until backward, and a full collection walks every tracked object of the process: ~40 k after
`import engine`, ~180 k once torch is imported as well (100-170 ms a full collection on the 2-core
EPYC under load).  --gc freeze/off show the cost without it.
"""
import argparse
import cProfile
import gc
import io
import os
import pstats
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _p in (_ROOT, os.path.join(_ROOT, "examples")):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def case_a(T, n, size, dev):
    x = T.randn(size, size, device=dev)
    b = T.randn(size, size, device=dev)

    def run():
        y = x
        with T.no_grad():
            for _ in range(n):
                y = y + b
        return y
    return run, n


def case_b(T, n, size, dev):
    x = T.randn(size, size, device=dev)
    b = T.randn(size, size, device=dev, requires_grad=True)

    def run():
        y = x
        for _ in range(n):
            y = y + b
        return y
    return run, n


def case_b2(T, n, size, dev):
    x = T.randn(size, size, device=dev)
    b = T.randn(size, device=dev, requires_grad=True)

    def run():
        y = x
        for _ in range(n):
            y = y + b
        return y
    return run, n


def case_c(T, n, size, dev):
    x = T.randn(size, size, device=dev)
    w = (T.rand(size, size, device=dev) * 0.1 + 0.95).requires_grad_()
    b = (T.randn(size, size, device=dev) * 0.01).requires_grad_()

    def run():
        y = x
        for i in range(n):
            k = i % 3
            if k == 0:
                y = y * w
            elif k == 1:
                y = y + b
            else:
                y = y.tanh()
        y.sum().backward()
        w.grad = None
        b.grad = None
        return y
    return run, n


def case_d(T, n, size, dev, nn=None, F=None):
    import mlp_digits
    step = mlp_digits.make_step(T, nn, F)
    for _ in range(3):
        step()
    return step, 1


CASES = {"a": case_a, "b": case_b, "b2": case_b2, "c": case_c, "d": case_d}


def best_time(run, ops, sync, reps):
    """(best wall us/op with both ends synchronised, best host us/op: the same before the final sync)."""
    run()
    sync()
    best = host = float("inf")
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        run()
        t1 = time.perf_counter()
        sync()
        best = min(best, time.perf_counter() - t0)
        host = min(host, t1 - t0)
    return best / ops * 1e6, host / ops * 1e6


def _no_enqueue(*args):
    return None


def profile(run, sync, top=18, times=1):
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(times):
        run()
    sync()
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(top)
    lines = s.getvalue().splitlines()
    start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
    return "\n".join(ln for ln in lines[start:] if ln.strip())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--only", default=None)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--gc", choices=("default", "freeze", "off"), default="default",
                    help="freeze: gc.freeze() after the imports and set-up (the objects of the imported modules, "
                         "torch's included, leave the full collections); off: no cyclic GC while timing")
    args = ap.parse_args(argv)

    import engine
    import engine.nn as enn
    import engine.nn.functional as eF

    if args.device:
        engine.set_default_device(args.device)
    edev_obj = engine.get_default_device()
    rt = edev_obj.runtime
    esync = rt.synchronize
    tdev, tsync = "cpu", (lambda: None)
    if not args.no_torch:
        import torch
        import torch.nn as tnn
        import torch.nn.functional as tF
        if rt.is_gpu and torch.cuda.is_available():
            tdev, tsync = "cuda", torch.cuda.synchronize
    print(f"clgrad on {rt.name} ({rt.platform_name}); PyTorch on {tdev}; size {args.size}x{args.size}, "
          f"n {args.n}, best of {args.reps}; gc {args.gc}; load {os.getloadavg()[0]:.2f}")
    only = args.only.split(",") if args.only else list(CASES)
    rows = []
    for name in only:
        fn = CASES[name]
        kw = {}
        engine.manual_seed(0)
        if name == "d":
            kw = {"nn": enn, "F": eF}
        erun, ops = fn(engine, args.n, args.size, None, **kw)
        if args.gc == "freeze":
            gc.freeze()
        elif args.gc == "off":
            gc.disable()
        e_us, e_host = best_time(erun, ops, esync, args.reps)
        py = None
        if name != "d":  # the same with kernel enqueues stubbed out: Python dispatch alone
            import engine.runtime.launch as L
            real = L._enqueue
            L._enqueue = _no_enqueue
            try:
                py = best_time(erun, ops, esync, args.reps)[1]
            finally:
                L._enqueue = real
        t_us = None
        if not args.no_torch:
            torch.manual_seed(0)
            if name == "d":
                kw = {"nn": tnn, "F": tF}
                with torch.device(tdev):
                    trun, tops = fn(torch, args.n, args.size, tdev, **kw)
            else:
                trun, tops = fn(torch, args.n, args.size, tdev)
            t_us, _ = best_time(trun, tops, tsync, args.reps)
        unit = "us/step" if name == "d" else "us/op"
        ratio = f"{e_us / t_us:5.2f}x" if t_us else "  -"
        tcol = f"{t_us:8.2f}" if t_us else "       -"
        pycol = f"{py:7.2f}" if py is not None else "     -"
        print(f"  {name:3s} clgrad {e_us:8.2f} {unit} (host {e_host:8.2f}, python {pycol})   torch {tcol}   "
              f"ratio {ratio}", flush=True)
        rows.append((name, e_us, e_host, py, t_us))
        if args.profile and name != "a":
            print(profile(erun, esync, times=20 if name == "d" else 1))
    return rows


if __name__ == "__main__":
    main()
