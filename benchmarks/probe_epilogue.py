"""GEMM epilogue fusion (engine.compile) on the GPT step's shapes: each product + its elementwise consumer,
compiled with the consumer in the GEMM's epilogue vs as its own kernel (CLGRAD_GEMM_EPILOGUE=0), forward only.

    python benchmarks/probe_epilogue.py [--device gpu]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default=None)
    ap.add_argument("--rows", type=int, default=16384)
    a = ap.parse_args()
    if a.device:
        os.environ["CLGRAD_DEVICE"] = a.device
    import engine
    import engine.nn.functional as F
    from engine.runtime import fusion
    dev = engine.get_default_device().runtime
    R = a.rows
    x384, x1536 = engine.randn(R, 384), engine.randn(R, 1536)
    w_fc, b_fc = engine.randn(1536, 384) * 0.05, engine.randn(1536)
    w_pr, b_pr = engine.randn(384, 1536) * 0.05, engine.randn(384)
    g1536 = engine.randn(R, 1536)
    cases = {
        "fc + GELU": (lambda x, w, b: F.gelu(F.linear(x, w, b)), (x384, w_fc, b_fc)),
        "fc + GELU, C kept": (lambda x, w, b: (lambda h: (h, F.gelu(h)))(F.linear(x, w, b)), (x384, w_fc, b_fc)),
        "proj + residual": (lambda x, w, b, r: r + F.linear(x, w, b), (x1536, w_pr, b_pr, x384)),
        "g @ W + GELU bwd": (lambda g, w, h: (g @ w) * (0.5 * (1.0 + (h * 0.7071067811865476).erf())),
                             (engine.randn(R, 384), w_pr, g1536)),
        "plain fc": (lambda x, w, b: F.linear(x, w, b), (x384, w_fc, b_fc)),
    }
    print(f"clgrad on {dev.name}, rows {R}")
    with engine.no_grad():
        for name, (fn, args) in cases.items():
            row = []
            for on in (False, True):
                fusion.EPILOGUES = on
                c = engine.compile(fn)
                for _ in range(3):
                    c(*args)
                dev.synchronize()
                best = None
                for _ in range(5):
                    t = time.perf_counter()
                    for _ in range(10):
                        c(*args)
                    dev.synchronize()
                    dt = (time.perf_counter() - t) / 10
                    best = dt if best is None else min(best, dt)
                names = [n["name"] for n in c.fused_graph()["nodes"]]
                row.append((best * 1e6, names))
            (t0, n0), (t1, n1) = row
            print(f"{name:24s} separate {t0:8.1f} us  fused {t1:8.1f} us  ({t0 / t1:.2f}x)  {n1}")


if __name__ == "__main__":
    main()
