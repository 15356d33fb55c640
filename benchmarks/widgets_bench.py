"""Widgets: time to lay out and serialise a 6-layer GPT's graph; TrainingMonitor overhead.

    python benchmarks/widgets_bench.py [--quick] [--json out.json]

1. graph: a 6-layer GPT (engine.nn Linear/LayerNorm/Embedding when present, else the same
   layers from engine ops + nn.Parameter), forward + loss, then: walk + names
   (GraphModel), layout at folding depths 0, 1, 2 and everything, the JSON the widget
   sends (size and time), the SVG fallback, and GraphView construction end to end; plus a
   synthetic 5,000-node layout.
2. monitor: a loop of 100 steps/s (10 ms of busy work a step) with and without
   TrainingMonitor.log() of four scalars (floats; then two of them engine tensors, read back
   at redraw time); overhead in % of wall time and the time spent inside redraws.
   Without a frontend the comm sends are no-ops: the redraw cost measured is the Python
   side (plotly validation, EMA, batching); the frontend draws in its own process.
3. gradient flow: the cost of GradientFlow hooks on a small training step, every=1 and 10.
"""
import argparse
import json
import math
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import engine  # noqa: E402
from engine import nn  # noqa: E402


# ---- a small GPT ---------------------------------------------------------------------------------
def _layers():
    """(Linear, LayerNorm, Embedding): engine.nn's when they exist, else local equivalents."""
    if all(hasattr(nn, k) for k in ("Linear", "LayerNorm", "Embedding")):
        try:
            nn.Linear(2, 2)(engine.randn(1, 2))
            return nn.Linear, nn.LayerNorm, nn.Embedding, "engine.nn"
        except Exception:  # noqa: BLE001 - a half-landed module: use ours
            pass

    class Linear(nn.Module):
        def __init__(self, i, o, bias=True):
            super().__init__()
            self.weight = nn.Parameter(engine.randn(o, i) * (1.0 / math.sqrt(i)))
            self.bias = nn.Parameter(engine.zeros(o)) if bias else None

        def forward(self, x):
            y = x @ self.weight.t()
            return y + self.bias if self.bias is not None else y

    class LayerNorm(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.weight = nn.Parameter(engine.ones(d))
            self.bias = nn.Parameter(engine.zeros(d))

        def forward(self, x):
            mu = x.mean(-1, keepdim=True)
            xc = x - mu
            return xc / ((xc * xc).mean(-1, keepdim=True) + 1e-5).sqrt() * self.weight + self.bias

    class Embedding(nn.Module):
        def __init__(self, n, d):
            super().__init__()
            self.weight = nn.Parameter(engine.randn(n, d) * 0.02)

        def forward(self, idx):
            return self.weight[idx]

    return Linear, LayerNorm, Embedding, "engine ops + nn.Parameter"


def make_gpt(vocab=64, d=64, n_layer=6, n_head=4, T=32):
    Linear, LayerNorm, Embedding, kind = _layers()

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = Linear(d, 3 * d)
            self.proj = Linear(d, d)

        def forward(self, x):
            B, t, _ = x.shape
            hd = d // n_head
            q, k, v = self.qkv(x).split(d, dim=-1)
            q = q.view(B, t, n_head, hd).transpose(1, 2)
            k = k.view(B, t, n_head, hd).transpose(1, 2)
            v = v.view(B, t, n_head, hd).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
            att = att.masked_fill(engine.ones(t, t).tril() == 0, float("-inf")).softmax(-1)
            return self.proj((att @ v).transpose(1, 2).reshape(B, t, d))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = Linear(d, 4 * d)
            self.proj = Linear(4 * d, d)

        def forward(self, x):
            return self.proj(self.fc(x).relu())

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.attn, self.ln2, self.mlp = LayerNorm(d), Attention(), LayerNorm(d), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = Embedding(vocab, d), Embedding(T, d)
            self.blocks = nn.ModuleList([Block() for _ in range(n_layer)])
            self.ln_f = LayerNorm(d)
            self.head = Linear(d, vocab, bias=False)

        def forward(self, idx):
            t = idx.shape[-1]
            x = self.wte(idx) + self.wpe(engine.arange(t))
            for b in self.blocks:
                x = b(x)
            return self.head(self.ln_f(x))

    return GPT(), kind


def best(fn, reps=5):
    ts = []
    out = None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return min(ts), statistics.median(ts), out


def bench_graph(res, quick):
    from widgets import GraphView
    from widgets.graph import GraphModel, render_svg
    from widgets.layout import layered_layout
    reps = 2 if quick else 5
    model, kind = make_gpt()
    idx = engine.randint(0, 64, (4, 32))
    tgt = engine.randint(0, 64, (4, 32))
    logits = model(idx)
    loss = nn.functional.cross_entropy(logits.reshape(-1, 64), tgt.reshape(-1))
    t, m, gm = best(lambda: GraphModel(loss, model, saved=False), reps)
    n_nodes = len(gm.infos)
    print(f"GPT-6 ({kind}): {n_nodes} graph nodes "
          f"({sum(1 for n in gm.infos if not n.is_leaf)} ops, {sum(1 for n in gm.infos if n.is_leaf)} leaves)")
    print(f"  walk + module/parameter names      {1e3 * t:8.1f} ms (median {1e3 * m:.1f})")
    res["gpt"] = {"layers": kind, "nodes": n_nodes, "walk_ms": 1e3 * t}
    t, m, _ = best(lambda: GraphModel(loss, model, saved=True), max(1, reps // 2))
    print(f"  ... with value stats of every node {1e3 * t:8.1f} ms")
    res["gpt"]["walk_values_ms"] = 1e3 * t
    for depth in (0, 1, 2, None):
        t, m, d = best(lambda: gm.layout(depth=depth), reps)
        ts, _, text = best(lambda: json.dumps(d), reps)
        tsvg, _, svg = best(lambda: render_svg(d), reps)
        name = "all" if depth is None else str(depth)
        print(f"  depth {name:>3}: {d['stats']['nodes']:5d} shown ({d['stats']['folded']:3d} folded), "
              f"{d['stats']['edges']:5d} edges | layout {1e3 * t:7.1f} ms | JSON {len(text) / 1e3:7.1f} kB "
              f"{1e3 * ts:6.1f} ms | SVG {len(svg) / 1e3:7.1f} kB {1e3 * tsvg:6.1f} ms")
        res["gpt"][f"depth_{name}"] = {"shown": d["stats"]["nodes"], "edges": d["stats"]["edges"],
                                       "layout_ms": 1e3 * t, "json_kB": len(text) / 1e3, "json_ms": 1e3 * ts,
                                       "svg_kB": len(svg) / 1e3, "svg_ms": 1e3 * tsvg}
    t, m, gv = best(lambda: GraphView(loss, model), max(1, reps // 2))
    print(f"  GraphView(loss, model) end to end  {1e3 * t:8.1f} ms  -> {gv!r}")
    res["gpt"]["graphview_ms"] = 1e3 * t
    loss.backward()
    t, _, _ = best(lambda: gv.refresh(), max(1, reps // 2))
    print(f"  recolour after backward (refresh)  {1e3 * t:8.1f} ms")
    res["gpt"]["refresh_ms"] = 1e3 * t
    # a synthetic 5,000-node DAG, all expanded
    rnd = random.Random(0)
    n = 5000
    ids = [f"v{i}" for i in range(n)]
    edges = []
    for i in range(1, n):
        edges.append((ids[i], ids[rnd.randrange(max(0, i - 20), i)]))
        if i % 3 == 0:
            edges.append((ids[i], ids[rnd.randrange(max(0, i - 60), i)]))
    t, m, lay = best(lambda: layered_layout(ids, {v: 80 for v in ids}, edges), max(1, reps // 2))
    print(f"synthetic DAG: {n} nodes, {len(edges)} edges: layout {1e3 * t:.0f} ms (median {1e3 * m:.0f})")
    res["synthetic_5000"] = {"nodes": n, "edges": len(edges), "layout_ms": 1e3 * t}


def busy(seconds):
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1
    return x


def bench_monitor(res, quick):
    from widgets import TrainingMonitor
    steps = 300 if quick else 1000
    work = 0.01  # 100 steps/s
    vals = [engine.tensor(2.0 / (i + 1)) for i in range(steps)]  # "device" scalars, made up front
    lr = engine.tensor(1e-3)

    def loop(mon, tensors):
        t = time.perf_counter()
        for i in range(steps):
            busy(work)
            if mon is not None:
                if tensors:  # two of the four scalars are engine tensors, read back at redraw time
                    mon.log(i, loss=1.0 / (i + 1), val_loss=vals[i], acc=i / steps, lr=lr)
                else:
                    mon.log(i, loss=1.0 / (i + 1), val_loss=2.0 / (i + 1), acc=i / steps, lr=1e-3)
        if mon is not None:
            mon.flush()
        return time.perf_counter() - t

    def timed_monitor():
        mon = TrainingMonitor(total=steps)
        spent = [0.0]
        draw = mon._throttle.fn

        def timed():  # time every redraw (tensor read-back included)
            t = time.perf_counter()
            draw()
            spent[0] += time.perf_counter() - t
        mon._throttle.fn = timed
        return mon, spent
    out = {}
    for tensors in (False, True):
        # interleave runs with and without the monitor (the machine may be shared): best of n each
        base, runs, parts = [], [], []
        for _ in range(2 if quick else 3):
            base.append(loop(None, tensors))
            mon, spent = timed_monitor()
            runs.append(loop(mon, tensors))
            parts.append((spent[0], mon.redraws))
        base, with_mon = min(base), min(runs)
        spent, redraws = parts[runs.index(with_mon)]
        over = 100 * (with_mon - base) / base
        what = "floats" if not tensors else "2 floats + 2 tensors"
        print(f"TrainingMonitor, {steps} steps at 100 steps/s, 4 scalars ({what}): {base:.3f} s without, "
              f"{with_mon:.3f} s with -> {over:+.2f}%; inside {redraws} redraws: {1e3 * spent:.0f} ms "
              f"= {100 * spent / base:.2f}%")
        out["tensors" if tensors else "floats"] = {"base_s": base, "with_s": with_mon, "overhead_pct": over,
                                                   "redraws": redraws, "redraw_total_ms": 1e3 * spent,
                                                   "redraw_pct": 100 * spent / base}
    m2 = TrainingMonitor(interval=1e9)
    m2.log(0, loss=1.0)
    t0 = time.perf_counter()
    for i in range(20000):
        m2.log(i, loss=0.5, acc=0.1)
    log_cost = (time.perf_counter() - t0) / 20000
    print(f"  log() between redraws: {1e6 * log_cost:.2f} us a call")
    out["log_us"] = 1e6 * log_cost
    res["monitor"] = out


def bench_gradflow(res, quick):
    from widgets import GradientFlow
    Linear, _, _, _ = _layers()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3 = Linear(32, 64), Linear(64, 64), Linear(64, 10)

        def forward(self, x):
            return self.fc3(self.fc2(self.fc1(x).relu()).tanh())
    net = Net()
    x = engine.randn(64, 32)
    n = 20 if quick else 60

    def train():
        t = time.perf_counter()
        for _ in range(n):
            for p in net.parameters():
                p.grad = None
            (net(x) ** 2).mean().backward()
        return (time.perf_counter() - t) / n
    train()
    # interleaved (the machine may be shared): best of 3 rounds each
    times = {"base": [], 1: [], 10: []}
    for _ in range(2 if quick else 3):
        times["base"].append(train())
        for every in (1, 10):
            flow = GradientFlow(net, every=every)
            times[every].append(train())
            flow.detach()
    base = min(times["base"])
    out = {"base_ms": 1e3 * base}
    for every in (1, 10):
        t = min(times[every])
        out[f"every_{every}_ms"] = 1e3 * t
        print(f"GradientFlow every={every:2d}: {1e3 * t:.2f} ms/step vs {1e3 * base:.2f} without "
              f"({100 * (t - base) / base:+.1f}%)")
    res["gradflow"] = out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--only", choices=["graph", "monitor", "gradflow"])
    a = ap.parse_args()
    res = {}
    if a.only in (None, "graph"):
        bench_graph(res, a.quick)
    if a.only in (None, "monitor"):
        bench_monitor(res, a.quick)
    if a.only in (None, "gradflow"):
        bench_gradflow(res, a.quick)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
