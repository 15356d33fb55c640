"""GPT training step (issue 7's config by default): clgrad eager vs engine.compile vs PyTorch eager,
plus where clgrad's device time goes (top kernels of one eager step).

    python benchmarks/probe_gpt.py [--device gpu] [--batch 64] [--layers 6] [--steps 10]
"""
import argparse
import os
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--embd", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--no-torch", action="store_true")
    a = ap.parse_args()
    if a.device:
        os.environ["CLGRAD_DEVICE"] = a.device
    import engine
    import gpt
    dev = engine.get_default_device().runtime
    cfg = (65, a.block, a.embd, a.heads, a.layers)
    print(f"clgrad on {dev.name}; GPT vocab 65, T {a.block}, d {a.embd}, {a.heads} heads, {a.layers} layers, "
          f"batch {a.batch}", flush=True)

    def bench(lib, nn, F, compiled, sync):
        lib.manual_seed(0)
        if lib.__name__ == "torch" and lib.cuda.is_available():
            lib.set_default_device("cuda")   # the example's arange(T) follows the default device
        model = gpt.define_gpt(lib, nn, F)(*cfg)
        x = lib.randint(0, 65, (a.batch, a.block))
        y = lib.randint(0, 65, (a.batch, a.block))
        fwd = lib.compile(model) if compiled else model
        opt = lib.optim.AdamW(model.parameters(), lr=3e-4)

        def step():
            _, loss = fwd(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss
        t0 = time.perf_counter()
        step()
        sync()
        first = time.perf_counter() - t0
        for _ in range(2):
            step()
        sync()
        times = []
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(a.steps):
                loss = step()
            sync()
            times.append((time.perf_counter() - t) / a.steps)
        return min(times), first, float(loss.item()), fwd

    import engine.nn as enn
    import engine.nn.functional as EF
    res = {}
    res["eager"] = bench(engine, enn, EF, False, dev.synchronize)
    print(f"clgrad eager    {res['eager'][0] * 1e3:8.2f} ms/step  first {res['eager'][1]:.2f} s  loss {res['eager'][2]:.4f}",
          flush=True)
    res["compiled"] = bench(engine, enn, EF, True, dev.synchronize)
    info = res["compiled"][3].explain()
    print(f"clgrad compiled {res['compiled'][0] * 1e3:8.2f} ms/step  first {res['compiled'][1]:.2f} s  "
          f"loss {res['compiled'][2]:.4f}  launches {info['launches_before']} -> {info['launches_after']}  "
          f"reasons {info['reasons']}", flush=True)
    if not a.no_torch:
        import torch
        import torch.nn as tnn
        import torch.nn.functional as TF
        cuda = torch.cuda.is_available() and dev.is_gpu
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        if not cuda:
            torch.cuda.is_available = lambda: False
        res["torch"] = bench(torch, tnn, TF, False, sync)
        print(f"torch eager     {res['torch'][0] * 1e3:8.2f} ms/step  ({'cuda' if cuda else 'cpu'})", flush=True)
        print(f"ratios: eager {res['torch'][0] / res['eager'][0]:.2f}x torch, compiled "
              f"{res['torch'][0] / res['compiled'][0]:.2f}x torch, compiled/eager "
              f"{res['eager'][0] / res['compiled'][0]:.2f}x")
    # where the eager step's device time goes
    engine.manual_seed(0)
    model = gpt.define_gpt(engine, enn, EF)(*cfg)
    x = engine.randint(0, 65, (a.batch, a.block))
    y = engine.randint(0, 65, (a.batch, a.block))
    opt = engine.optim.AdamW(model.parameters(), lr=3e-4)

    def profiled(fwd, warm):
        for _ in range(warm):
            _, loss = fwd(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        dev.synchronize()
        with engine.profiler.profile() as prof:
            _, loss = fwd(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        print(prof.table(sort_by="time", row_limit=25))
    profiled(model, 2)
    profiled(engine.compile(model), 3)   # fused kernels under their own names


if __name__ == "__main__":
    main()
