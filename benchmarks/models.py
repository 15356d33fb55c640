"""Training steps/s of the example models (examples/), clgrad vs PyTorch, in one process.

    python benchmarks/models.py [--device cpu|gpu|cl:N] [--quick] [--json out.json] [--only mlp,gpt]
    python benchmarks/run.py --models        # the same rows after the micro-benchmarks

Each model's training step (forward, loss, backward, clip where the example clips, optimizer step) is
built by the example's make_step() through examples/_backend.py, so both sides run the very same code;
each step trains on one fixed batch of the example's default size.  PyTorch runs on the CPU when
clgrad's device is a CPU (PoCL), and on CUDA when clgrad runs on an NVIDIA GPU and torch.cuda is
available.  Figures are the best of 3 timed runs (each at least --min-time seconds of steps, the two
sides' runs interleaved; other load on the machine only ever slows a run down, so the best run is the
least disturbed one) after 3 warm-up steps, both sides synchronised; ratio = clgrad / PyTorch steps/s
(>1: clgrad is faster).
"""
import argparse
import contextlib
import json
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _p in (_ROOT, os.path.join(_ROOT, "examples")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# name, example module, make_step kwargs, description
MODELS = [
    ("mlp", "mlp_digits", {}, "MLP 64-256-256-10, batch 64, Adam"),
    ("cnn", "cnn_digits", {}, "CNN 2 conv + 2 pool + 2 fc on 1x8x8, batch 64, Adam"),
    ("char", "char_lm", {}, "char MLP LM, context 8, emb 24, hidden 256, batch 64, Adam"),
    ("gpt", "gpt", {}, "GPT 2 layers, 4 heads, d 64, T 32, batch 16, AdamW + clip"),
]


def _warm(step, sync, warmup=3):
    for _ in range(warmup):
        step()
    sync()


def _rate(step, sync, min_time):
    """Steps/s over at least `min_time` seconds of whole steps."""
    n, t0 = 0, time.perf_counter()
    while True:
        loss = step()
        n += 1
        if n < 5 or n % 5 == 0:
            loss.item()  # a sync point
            if time.perf_counter() - t0 >= min_time:
                break
    loss.item()
    sync()
    return n / (time.perf_counter() - t0)


def run_models(row, esync, tsync, tdev="cpu", quick=False, only=None, min_time=None, reps=3):
    """Time every example model on both backends; report each through row(name, unit, clgrad, torch)."""
    import importlib

    import torch as real_torch

    from _backend import get_backend

    min_time = min_time if min_time is not None else (0.5 if quick else 1.5)
    e_torch, e_nn, e_F, _, _ = get_backend(False)
    t_torch, t_nn, t_F, _, _ = get_backend(True)
    results = []
    for name, module, kwargs, desc in MODELS:
        if only and name not in only:
            continue
        ex = importlib.import_module(module)
        e_torch.manual_seed(0)
        e_step = ex.make_step(e_torch, e_nn, e_F, **kwargs)
        _warm(e_step, esync)
        real_torch.manual_seed(0)
        ctx = real_torch.device(tdev) if tdev != "cpu" else contextlib.nullcontext()
        with ctx:
            t_step = ex.make_step(t_torch, t_nn, t_F, **kwargs)
            _warm(t_step, tsync)
        e_rates, t_rates = [], []
        for _ in range(reps):  # interleaved, so that drifting machine load hits both sides alike
            e_rates.append(_rate(e_step, esync, min_time))
            with ctx:
                t_rates.append(_rate(t_step, tsync, min_time))
        results.append(row(f"train {name} ({module})", "steps/s", max(e_rates), max(t_rates)))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="clgrad device: cpu, gpu, cl:N (default: CLGRAD_DEVICE or auto)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="shorter timing runs")
    ap.add_argument("--only", default=None, help="comma-separated subset of: " + ",".join(m[0] for m in MODELS))
    ap.add_argument("--min-time", type=float, default=None, help="seconds per timed run")
    args = ap.parse_args()
    if args.device:
        os.environ["CLGRAD_DEVICE"] = args.device
    import platform

    import torch

    import engine
    dev = engine.get_default_device().runtime
    use_cuda = dev.is_gpu and torch.cuda.is_available()
    tdev = "cuda" if use_cuda else "cpu"
    tname = torch.cuda.get_device_name(0) if use_cuda else (platform.processor() or platform.machine())
    if use_cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    tsync = torch.cuda.synchronize if use_cuda else (lambda: None)
    print(f"clgrad device: {dev.name} ({dev.platform_name}, {dev.type}); torch device: {tdev} ({tname}); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, module, _, desc in MODELS:
        print(f"  {name:<5} {desc}")
    rows = []

    def row(name, unit, e_val, t_val):
        ratio = e_val / t_val
        rows.append({"bench": name, "unit": unit, "clgrad": e_val, "torch": t_val, "ratio": ratio})
        print(f"{name:<34} {unit:<8} clgrad {e_val:>12.3f}   torch {t_val:>12.3f}   ratio {ratio:6.2f}x", flush=True)
        return rows[-1]

    only = set(args.only.split(",")) if args.only else None
    run_models(row, dev.synchronize, tsync, tdev, args.quick, only, args.min_time)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"clgrad_device": dev.name, "torch_device": tname, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
