"""GEMM shapes of the issue-7 GPT step (and square SGEMMs): clgrad vs PyTorch, with tile / split-K variants.

    CLGRAD_DEVICE=gpu python benchmarks/probe_gemm.py [--variants]

Rows: name, TFLOP/s torch, TFLOP/s clgrad (default choice), ratio; with --variants each tile config
and split-K setting too (environment knobs CLGRAD_MATMUL_TILE / CLGRAD_SPLITK, read per call).
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

BT, D = int(os.environ.get("PROBE_BT", 64 * 256)), 384
# (name, batch, M, N, K, A transposed?, B transposed?): C = op(A) @ op(B)
CASES = [
    ("qkv fwd   x@Wt", 0, BT, 3 * D, D, False, True),
    ("fc fwd    x@Wt", 0, BT, 4 * D, D, False, True),
    ("proj fwd  h@Wt", 0, BT, D, 4 * D, False, True),
    ("attn-out  x@Wt", 0, BT, D, D, False, True),
    ("head fwd  x@Wt", 0, BT, 65, D, False, True),
    ("qkv dX    g@W", 0, BT, D, 3 * D, False, False),
    ("fc dX     g@W", 0, BT, D, 4 * D, False, False),
    ("proj dX   g@W", 0, BT, 4 * D, D, False, False),
    ("qkv dW    gT@x", 0, 3 * D, D, BT, True, False),
    ("fc dW     gT@x", 0, 4 * D, D, BT, True, False),
    ("proj dW   gT@h", 0, D, 4 * D, BT, True, False),
    ("attn dW   gT@x", 0, D, D, BT, True, False),
    ("head dW   gT@x", 0, 65, D, BT, True, False),
    ("att QKt", 384, 256, 256, 64, False, True),
    ("att PV", 384, 256, 64, 256, False, False),
    ("att dP=dO Vt", 384, 256, 256, 64, False, True),
    ("att dV=Pt dO", 384, 256, 64, 256, True, False),
    ("att dQ=dS K", 384, 256, 64, 256, False, False),
    ("att dK=dSt Q", 384, 256, 64, 256, True, False),
    ("sgemm 1024", 0, 1024, 1024, 1024, False, False),
    ("sgemm 4096", 0, 4096, 4096, 4096, False, False),
]
# PF (last field) is a bit set, see matmul.PF_*: 1 prefetch, +2 unchecked interior tiles, +4 vector global
# loads, +8 double-buffered local memory, +16 vector C stores.  PROBE_CONFIGS="a,b,..;c,d,.." replaces the list.
CONFIGS = ["128,128,8,8,8,4,1", "128,128,8,8,8,4,7", "128,128,8,8,8,4,15", "128,128,8,8,8,4,31",
           "64,64,16,4,4,4,1", "64,64,16,4,4,4,31", "128,64,8,8,4,4,31", "64,128,8,4,8,4,31",
           "128,64,8,8,8,4,31", "64,128,8,8,8,4,31", "128,128,16,8,8,4,31"]
if os.environ.get("PROBE_CONFIGS"):
    CONFIGS = os.environ["PROBE_CONFIGS"].split(";")


def main():
    import numpy as np
    import torch
    import engine
    dev = engine.get_default_device().runtime
    cuda = torch.cuda.is_available() and dev.is_gpu
    tdev = "cuda" if cuda else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    tsync = torch.cuda.synchronize if cuda else (lambda: None)
    variants = "--variants" in sys.argv
    print(f"clgrad {dev.name} vs torch {tdev}")
    rng = np.random.default_rng(0)

    def t_med(fn, sync, reps=5):
        fn()
        sync()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            fn()
            sync()
            ts.append((time.perf_counter() - t) / 2)
        return statistics.median(ts)

    total_t = total_e = 0.0
    seen = set()
    only = os.environ.get("PROBE_CASES")   # "qkv,sgemm": names containing one of these
    for name, nb, M, N, K, ta, tb in CASES:
        if only and not any(w in name for w in only.split(",")):
            continue
        ash = (K, M) if ta else (M, K)
        bsh = (N, K) if tb else (K, N)
        if nb:
            ash, bsh = (nb,) + ash, (nb,) + bsh
        a = rng.standard_normal(ash).astype(np.float32)
        b = rng.standard_normal(bsh).astype(np.float32)
        ea, eb = engine.tensor(a), engine.tensor(b)
        ta_, tb_ = torch.tensor(a, device=tdev), torch.tensor(b, device=tdev)
        if ta:
            ea, ta_ = ea.transpose(-1, -2), ta_.transpose(-1, -2)
        if tb:
            eb, tb_ = eb.transpose(-1, -2), tb_.transpose(-1, -2)
        flops = 2 * M * N * K * max(nb, 1)
        tt = t_med(lambda: ta_ @ tb_, tsync)
        te = t_med(lambda: ea @ eb, dev.synchronize)
        ref = (ta_ @ tb_).cpu().numpy()
        err = float(np.abs((ea @ eb).numpy() - ref).max() / (np.abs(ref).max() + 1e-30))
        total_t += tt
        total_e += te
        line = (f"{name:<16} {M:>6}x{N:<5}x{K:<6} b{nb:<4} torch {flops / tt * 1e-12:6.2f} TF  clgrad "
                f"{flops / te * 1e-12:6.2f} TF  ratio {tt / te:5.2f}  relerr {err:.1e}")
        if variants:
            vs = []
            for cfg in CONFIGS:
                sks = ["0", "auto"] + os.environ.get("PROBE_SPLITS", "").split(",") if nb == 0 and K >= 4096 else ["0"]
                for sk in [x for x in sks if x]:
                    os.environ["CLGRAD_MATMUL_TILE"] = cfg
                    if sk == "auto":
                        os.environ.pop("CLGRAD_SPLITK", None)
                    else:
                        os.environ["CLGRAD_SPLITK"] = sk
                    try:
                        tv = t_med(lambda: ea @ eb, dev.synchronize, reps=3)
                        f = cfg.split(',')
                        vs.append(f"{f[0]}x{f[1]}k{f[2]}w{f[3]}{f[4]}p{f[6]}"
                                  f"{'' if sk == '0' else '+sk' if sk == 'auto' else '+s' + sk}:{flops / tv * 1e-12:.1f}")
                    except Exception as e:  # a config that does not fit the device
                        vs.append(f"{cfg}:{type(e).__name__}")
            os.environ.pop("CLGRAD_MATMUL_TILE", None)
            os.environ.pop("CLGRAD_SPLITK", None)
            line += "\n      " + "  ".join(vs)
        print(line, flush=True)
        try:
            from engine.runtime import gemm_tune
            for table in gemm_tune._CHOICES.values():
                for key, choice in table.items():
                    if key not in seen:
                        seen.add(key)
                        print(f"      tuned {key}: {choice}")
        except ImportError:
            pass
    print(f"sum of medians: torch {total_t * 1e3:.2f} ms, clgrad {total_e * 1e3:.2f} ms, ratio {total_t / total_e:.2f}")


if __name__ == "__main__":
    main()
