"""A fresh process's time to its first GPT training step (benchmarks/run.py's startup row).

    python benchmarks/gpt_start.py --backend clgrad|torch [--compile] [--cfg '{"batch": 8, ...}']

Imports the backend, builds the GPT of benchmarks/models.py (examples/gpt.py's model code), optionally wraps
it in engine.compile, runs one training step and synchronises; prints one JSON line with the phases' seconds.
clgrad's device comes from CLGRAD_DEVICE; torch uses CUDA when clgrad's device is a GPU and CUDA is present.
"""
import argparse
import json
import os
import sys
import time

T0 = time.perf_counter()
_HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (os.path.dirname(_HERE), _HERE, os.path.join(os.path.dirname(_HERE), "examples")):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["clgrad", "torch"], required=True)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--cfg", default=None, help="JSON: overrides of models.GPT_CONFIG")
    ap.add_argument("--device", default=None, help="torch device (default: cuda if clgrad's device is a GPU)")
    args = ap.parse_args()
    import numpy as np

    t = time.perf_counter()
    if args.backend == "clgrad":
        import engine as T
        T.get_default_device()
        sync = T.synchronize
        dev = None
    else:
        import torch as T
        dev = args.device or ("cuda" if T.cuda.is_available() and os.environ.get("CLGRAD_DEVICE", "") != "cpu"
                              else "cpu")
        if dev == "cuda":
            T.backends.cuda.matmul.allow_tf32 = False
            T.backends.cudnn.allow_tf32 = False
            T.zeros(1, device=dev)  # CUDA context, as engine.get_default_device() makes its OpenCL context
        sync = T.cuda.synchronize if dev == "cuda" else (lambda: None)
    import models
    import_s = time.perf_counter() - t
    t = time.perf_counter()
    cfg = dict(models.GPT_CONFIG, **(json.loads(args.cfg) if args.cfg else {}))
    T.manual_seed(0)
    model, opt = models.build_gpt(T, cfg, dev)
    rng = np.random.default_rng(0)
    x, y = (T.tensor(rng.integers(0, cfg["vocab"], (cfg["batch"], cfg["block_size"])), device=dev)
            if dev else T.tensor(rng.integers(0, cfg["vocab"], (cfg["batch"], cfg["block_size"]))) for _ in "xy")
    fwd = T.compile(model) if args.compile else None
    sync()
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    loss = models.gpt_step(T, model, opt, x, y, forward=fwd)().item()
    sync()
    step_s = time.perf_counter() - t
    print(json.dumps({"import_s": import_s, "build_s": build_s, "step_s": step_s, "loss": loss,
                      "in_process_s": time.perf_counter() - T0}))


if __name__ == "__main__":
    main()
