"""Probe: plain reductions (sum, mean, max) in clgrad vs PyTorch, and the reduction plan knobs.

    python benchmarks/probe_reduce.py [--device gpu] [--variants default,wg128,...|all] [--set wg=512,unroll=2]
                                      [--cases sum_all,...] [--quick]

Cases: sum / mean / max over all of 2^26 floats (and sum over 2^24, run.py's case), sum over
dim=-1 and dim=0 of 4096x4096 and 8192x8192.  Bytes = the input read once (4 per element):
the roofline is bytes / ~4.3 TB/s on an H200 (a float4 elementwise kernel's rate).

For each case: PyTorch (CUDA when clgrad runs on an NVIDIA GPU, TF32 off; else CPU) once, then
clgrad under each plan variant (engine/runtime/reduction.py TUNE knobs, set_tuning()):
  sync    median of single calls, each followed by a synchronize (what benchmarks/run.py does:
          includes the per-call host overhead),
  stream  median over batches of back-to-back calls with one synchronize per batch (throughput),
  kernel  clgrad only: device time of the call's kernels from engine.profiler (both passes).
GB/s = bytes / time; ratio = clgrad / torch (stream and sync).  `err` is the largest relative
difference from PyTorch's result (each variant is checked).  Ends with a summary: stream GB/s per
variant and case.  Runs in ~30-60 s on an H200 (first run compiles each variant's kernels).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

VARIANTS = {
    "default": {},
    "old": {"vec": 0, "unroll": 1, "cols_w": 0},   # about the previous kernels (group / serial, no unroll)
    "cols0": {"cols_w": 0},                     # columns by the serial kernel (one column per work-item)
    "onepass": {"onepass": 1},                  # full reductions in one launch (the last group folds)
    "onepass_gpc8": {"onepass": 1, "groups_per_cu": 8},
    "wg128": {"wg": 128},
    "wg512": {"wg": 512},
    "u1": {"unroll": 1},
    "u2": {"unroll": 2},
    "u8": {"unroll": 8},
    "gpc2": {"groups_per_cu": 2},
    "gpc4": {"groups_per_cu": 4},
    "gpc8": {"groups_per_cu": 8},
    "gpc16": {"groups_per_cu": 16},
    "gpc32": {"groups_per_cu": 32},
    "ipc512": {"items_per_cu": 512},
    "ipc2048": {"items_per_cu": 2048},
    "ipc4096": {"items_per_cu": 4096},
}
DEFAULT_VARIANTS = "default,old,onepass,cols0,wg128,wg512,u2,gpc2,gpc8,gpc16,ipc2048,ipc4096"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default=None, help="clgrad device (default: CLGRAD_DEVICE or auto)")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS,
                    help=f"comma list of {', '.join(VARIANTS)}, or 'all'")
    ap.add_argument("--set", default=None, help="an extra variant of knobs, e.g. wg=512,unroll=2,groups_per_cu=12")
    ap.add_argument("--cases", default=None, help="comma list of case names (default: all)")
    ap.add_argument("--quick", action="store_true", help="1/16 of the sizes (smoke runs on a CPU)")
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    if args.device:
        os.environ["CLGRAD_DEVICE"] = args.device
    import torch

    import engine
    from engine.runtime import reduction as R

    dev = engine.get_default_device().runtime
    use_cuda = dev.is_gpu and torch.cuda.is_available()
    tdev = "cuda" if use_cuda else "cpu"
    if use_cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    tsync = torch.cuda.synchronize if use_cuda else (lambda: None)
    esync = dev.synchronize
    print(f"clgrad: {dev.name} ({dev.platform_name}, {dev.compute_units} CUs, driver {dev.driver_version}); "
          f"torch {torch.__version__} on {torch.cuda.get_device_name(0) if use_cuda else 'cpu'}; "
          f"TUNE defaults {R.TUNE}", flush=True)

    names = list(VARIANTS) if args.variants == "all" else [v for v in args.variants.split(",") if v]
    variants = [(n, VARIANTS[n]) for n in names]
    if args.set:
        variants.append(("set", {k: int(v) for k, v in (kv.split("=") for kv in args.set.split(","))}))

    q = 4 if args.quick else 1
    n26, n24, s4, s8 = (1 << 26) // q // q, (1 << 24) // q // q, 4096 // q, 8192 // q
    rng = np.random.default_rng(0)
    data = {}

    def arr(key, shape):
        if key not in data:
            a = rng.random(shape, dtype=np.float32) - 0.5
            data[key] = (engine.tensor(a), torch.from_numpy(a).to(tdev))
        return data[key]

    cases = [
        ("sum_all", f"sum 2^{n26.bit_length() - 1}", "v", lambda x: x.sum()),
        ("mean_all", f"mean 2^{n26.bit_length() - 1}", "v", lambda x: x.mean()),
        ("max_all", f"max 2^{n26.bit_length() - 1}", "v", lambda x: x.max()),
        ("sum_all24", f"sum 2^{n24.bit_length() - 1}", "v24", lambda x: x.sum()),
        ("sum_rows4k", f"sum {s4}^2 dim=-1", "m4", lambda x: x.sum(-1)),
        ("sum_cols4k", f"sum {s4}^2 dim=0", "m4", lambda x: x.sum(0)),
        ("sum_rows8k", f"sum {s8}^2 dim=-1", "m8", lambda x: x.sum(-1)),
        ("sum_cols8k", f"sum {s8}^2 dim=0", "m8", lambda x: x.sum(0)),
        # the GPT step's bias gradients: column sums of (B*T, out) = (16384, 1536) and (16384, 384)
        ("bias1536", f"sum {4 * s4}x{1536 // q} dim=0", "b1536", lambda x: x.sum(0)),
        ("bias384", f"sum {4 * s4}x{384 // q} dim=0", "b384", lambda x: x.sum(0)),
    ]
    shapes = {"v": (n26,), "v24": (n24,), "m4": (s4, s4), "m8": (s8, s8), "b1536": (4 * s4, 1536 // q),
              "b384": (4 * s4, 384 // q)}
    if args.cases:
        keep = set(args.cases.split(","))
        cases = [c for c in cases if c[0] in keep]

    def t_sync(fn, sync, reps):
        for _ in range(3):
            fn()
        sync()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            sync()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)

    def t_stream(fn, sync, reps, inner=10):
        fn()
        sync()
        ts = []
        for _ in range(max(3, reps // 3)):
            t = time.perf_counter()
            for _ in range(inner):
                fn()
            sync()
            ts.append((time.perf_counter() - t) / inner)
        return statistics.median(ts)

    def t_kernel(fn, calls=5):
        with engine.profiler.profile(record_copies=False) as prof:
            for _ in range(calls):
                fn()
            esync()
        return prof.total_seconds / calls

    summary = {}
    t_start = time.perf_counter()
    hdr = (f"{'case':<20} {'MB':>6} | {'torch sync':>10} {'stream':>8} | {'clgrad sync':>11} {'stream':>8} "
           f"{'kernel':>8} | {'ratio sync':>10} {'stream':>7} | {'err':>8}")
    tref = {}
    for ci, (cname, label, dkey, fn) in enumerate(cases):
        ex, tx = arr(dkey, shapes[dkey])
        gb = ex.numel() * 4 / 1e9
        ts = t_sync(lambda: fn(tx), tsync, args.reps)
        tt = t_stream(lambda: fn(tx), tsync, args.reps)
        tref[cname] = (ts, tt, fn(tx).double().cpu().numpy())
    print(f"torch done in {time.perf_counter() - t_start:.1f} s", flush=True)
    for vname, knobs in variants:
        old = R.set_tuning(**knobs)
        try:
            print(f"\n== variant {vname} {knobs or ''}  (TUNE {R.TUNE})", flush=True)
            print(hdr)
            for cname, label, dkey, fn in cases:
                ex, tx = arr(dkey, shapes[dkey])
                gb = ex.numel() * 4 / 1e9
                ts, tt, ref = tref[cname]
                got = np.asarray(fn(ex).numpy(), dtype=np.float64)
                err = float(np.max(np.abs(got - ref)) / max(1e-30, float(np.max(np.abs(ref)))))
                es = t_sync(lambda: fn(ex), esync, args.reps)
                et = t_stream(lambda: fn(ex), esync, args.reps)
                ek = t_kernel(lambda: fn(ex))
                summary[(vname, cname)] = gb / et
                print(f"{label:<20} {gb * 1e3:6.0f} | {gb / ts:10.1f} {gb / tt:8.1f} | {gb / es:11.1f} {gb / et:8.1f} "
                      f"{gb / ek:8.1f} | {ts / es:9.2f}x {tt / et:6.2f}x | {err:8.1e}"
                      + ("  WRONG" if err > 1e-3 else ""), flush=True)
        finally:
            R.set_tuning(**old)
    print("\nsummary: clgrad stream GB/s per variant (torch stream in the first row)")
    print(f"{'variant':<24}" + "".join(f"{c[0]:>12}" for c in cases))
    print(f"{'torch':<24}" + "".join(f"{(data[c[2]][0].numel() * 4 / 1e9) / tref[c[0]][1]:12.1f}" for c in cases))
    for vname, _ in variants:
        print(f"{vname:<24}" + "".join(f"{summary[(vname, c[0])]:12.1f}" for c in cases))
    print(f"total {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
