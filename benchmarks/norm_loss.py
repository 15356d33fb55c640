"""Micro-benchmark (not a test): layer_norm, cross_entropy, SDPA forward+backward, clgrad vs PyTorch.

    python benchmarks/norm_loss.py [cuda]
PyTorch runs on CUDA when asked and available, else on the CPU."""
import sys
import time

import numpy as np
import torch

import engine
import engine.nn.functional as F


def timeit(fn, sync, n=20):
    fn()
    sync()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    sync()
    return (time.perf_counter() - t) / n * 1e3


def main():
    dev = "cuda" if len(sys.argv) > 1 and sys.argv[1] == "cuda" and torch.cuda.is_available() else "cpu"
    tsync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    esync = engine.synchronize
    big = dev == "cuda"
    M, D, V = (8192, 768, 50257) if big else (512, 256, 2048)
    rng = np.random.default_rng(0)
    cases = []
    x = rng.standard_normal((M, D)).astype(np.float32)
    w, b = rng.standard_normal(D).astype(np.float32), rng.standard_normal(D).astype(np.float32)
    cases.append(("layer_norm fwd+bwd (%dx%d)" % (M, D),
                  lambda T, a, c, d: T.nn.functional.layer_norm(a, (D,), c, d), [x, w, b]))
    n = M // 4 if big else M
    logits = rng.standard_normal((n, V)).astype(np.float32)
    tgt = rng.integers(0, V, n)
    cases.append(("cross_entropy fwd+bwd (%dx%d)" % (n, V),
                  lambda T, a, t: T.nn.functional.cross_entropy(a, t), [logits, tgt]))
    B, H, L, E = (8, 12, 256, 64) if big else (2, 4, 64, 32)
    q = rng.standard_normal((B, H, L, E)).astype(np.float32)
    cases.append(("sdpa causal fwd+bwd (%d,%d,%d,%d)" % (B, H, L, E),
                  lambda T, a, b_, c: T.nn.functional.scaled_dot_product_attention(a, b_, c, is_causal=True),
                  [q, q.copy(), q.copy()]))
    for name, fn, arrs in cases:
        row = [name]
        for T, sync, mk in ((engine, esync, lambda a: engine.tensor(a)),
                            (torch, tsync, lambda a: torch.tensor(a, device=dev))):
            ts = [mk(a) for a in arrs]
            for t in ts:
                if t.dtype == T.float32:
                    t.requires_grad_(True)

            def step():
                for t in ts:
                    t.grad = None
                out = fn(T, *ts)
                out.sum().backward() if out.dim() else out.backward()
            row.append(timeit(step, sync))
        print(f"{row[0]:45s} clgrad {row[1]:8.3f} ms   torch-{dev} {row[2]:8.3f} ms")


if __name__ == "__main__":
    main()
