"""clgrad vs PyTorch, side by side in one process on the same device (the Performance issue's table).

    python benchmarks/run.py [--device cpu|gpu|cl:N] [--quick] [--only softmax,gpt] [--json out.json] [--md]
                             [--models] [--sizes auto|gpu|cpu|quick] [--big]

PyTorch runs on the CPU when clgrad's device is a CPU (PoCL), and on CUDA when clgrad runs on an NVIDIA GPU
and torch.cuda is available, with TF32 off so both sides compute in fp32.  Every figure is the median of
several timed repetitions after warm-up, both sides synchronised (clgrad: the device queue; PyTorch:
torch.cuda.synchronize), the two sides' repetitions interleaved so that drifting machine load hits both
alike.  Each row's result is compared once with PyTorch's (relative L2 error of a slice): a row whose
result disagrees prints WRONG and gets no ratio.

Ratio = clgrad / PyTorch throughput (>1: clgrad is faster); for time units (us/op, s) PyTorch time /
clgrad time, so >1 still means clgrad is faster.  Roofline columns: the work of one call (bytes moved
at the fused optimum, or FLOPs) and the rate each side achieves on it.

Rows (group names for --only): dispatch, elementwise, reduce, softmax, layernorm, cross_entropy, sgemm, bmm,
conv2d, adam, mlp, gpt (eager, and engine.compile'd when it exists), gpt_small (the same at 1/8 of the batch: where
the host's per-op time shows), startup (a second process: import,
build, compile, one step, after this process filled the kernel cache).  --models adds the example models
(benchmarks/models.py).  Sizes: the issue's on GPUs; smaller where noted on CPU devices (the row names say
so); --quick: small sizes for a smoke run.

Work per call (fp32, n elements; bytes at the fused optimum, each tensor read or written once):
  a*b+c and sigmoid(a*b+c)*a: 16n (3 reads + 1 write); sum/mean: 4n (+ the output); softmax, layernorm: 8n;
  their fwd+bwd: 20n (forward 8n, backward reads y or x and dy, writes dx); cross-entropy: 4n, fwd+bwd 12n;
  Adam: 28 bytes/parameter (reads p, g, m, v; writes p, m, v); SGEMM/bmm: 2mkn FLOPs; conv2d: 2*N*C*H*W*C*9,
  fwd+bwd (dx, dw) 3x that; training steps: 6 FLOPs per weight and sample (+ attention 12*L*T*d per token).
"""
import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _p in (_ROOT, _HERE, os.path.join(_ROOT, "examples")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# Sizes per mode.  ew: elementwise/reduction element count; rows: softmax/layernorm (rows, cols); ce: (N, classes);
# gemm: square SGEMM sizes; bmm: (batch, m, k, n); conv: (N, C, H, W), 3x3, C -> C, padding 1; adam: parameters.
SIZES = {
    "gpu": dict(ew=1 << 26, red=(8192, 8192), rows=(4096, 4096), ce=(8192, 50257), gemm=(1024, 4096, 8192),
                bmm=(64, 512, 512, 512), conv=(32, 64, 56, 56), adam=100_000_000, adam_tensors=20),
    "cpu": dict(ew=1 << 26, red=(8192, 8192), rows=(4096, 4096), ce=(2048, 50257), gemm=(1024, 4096, 8192),
                bmm=(8, 512, 512, 512), conv=(8, 64, 56, 56), adam=25_000_000, adam_tensors=20, gpt_batch=8),
    "quick": dict(ew=1 << 20, red=(1024, 1024), rows=(512, 512), ce=(128, 4096), gemm=(256, 512),
                  bmm=(4, 128, 128, 128), conv=(2, 16, 16, 16), adam=1_000_000, adam_tensors=4),
}
GROUPS = ["dispatch", "elementwise", "reduce", "softmax", "layernorm", "cross_entropy", "sgemm", "bmm", "conv2d",
          "adam", "mlp", "gpt", "gpt_small", "startup"]
# a*b+c etc.: the row keys each group reports (tests/test_benchmarks.py checks them)
ROW_KEYS = {
    "dispatch": ["dispatch"], "elementwise": ["axpb", "chain4"],
    "reduce": ["sum_all", "mean_all", "sum_dim", "mean_dim"],
    "softmax": ["softmax", "softmax_fb"], "layernorm": ["layernorm", "layernorm_fb"],
    "cross_entropy": ["cross_entropy", "cross_entropy_fb"], "sgemm": ["sgemm_{}"], "bmm": ["bmm"],
    "conv2d": ["conv2d", "conv2d_fb"], "adam": ["adam"], "mlp": ["mlp_step"],
    "gpt": ["gpt_step", "gpt_step_compiled", "gpt_first_call_compiled"],
    "gpt_small": ["gpt_step_small", "gpt_step_compiled_small"], "startup": ["gpt_second_process"],
}


def timeit(fn, sync, reps=7, inner=1, warmup=2):
    """Median seconds per call of fn() over `reps` timed repetitions of `inner` calls, after warm-up."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        times.append((time.perf_counter() - t) / inner)
    return statistics.median(times)


def _once(fn, sync):
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def timeit_pair(fe, esync, ft, tsync, warmup=1, reps=None, target=0.05, max_inner=100, stats=None):
    """(clgrad, torch) median seconds per call: warm-up calls (the last one times a call, to choose `inner`: calls
    per repetition so that one takes about `target` s), then `reps` repetitions, the two sides interleaved.
    reps defaults to 7 (5 for calls over 0.05 s, 3 over 0.3 s).  warmup=0: no warm-up, inner = 1.
    `stats` (a dict), if given, receives each side's fastest repetition too (min_s: (clgrad, torch))."""
    for _ in range(max(warmup - 1, 0)):
        fe()
        ft()
    esync()
    tsync()
    if warmup > 0:
        t1 = [_once(fe, esync), _once(ft, tsync)]
        inner = [max(1, min(max_inner, int(target / max(t, 1e-9)))) for t in t1]
    else:
        t1, inner = [0.0, 0.0], [1, 1]
    if reps is None:
        slow = max(t1)
        reps = 7 if slow < 0.05 else 5 if slow < 0.3 else 3
    times = ([], [])
    for _ in range(reps):
        for side, (fn, sync) in enumerate(((fe, esync), (ft, tsync))):
            t = time.perf_counter()
            for _ in range(inner[side]):
                fn()
            sync()
            times[side].append((time.perf_counter() - t) / inner[side])
    if stats is not None:
        stats["min_s"] = (min(times[0]), min(times[1]))
    return statistics.median(times[0]), statistics.median(times[1])


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if v == 0 or not math.isfinite(v):
        return f"{v}"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _work(work, unit):
    if work is None:
        return "-"
    if unit == "B":
        return f"{work / 1e9:.3g} GB" if work >= 1e8 else f"{work / 1e6:.3g} MB"
    return f"{work / 1e9:.3g} GFLOP"


class Bench:
    def __init__(self, args):
        import numpy as np
        import torch

        import engine
        self.np, self.torch, self.engine, self.args = np, torch, engine, args
        self.dev = engine.get_default_device().runtime
        self.use_cuda = self.dev.is_gpu and torch.cuda.is_available()
        self.tdev = "cuda" if self.use_cuda else "cpu"
        if self.use_cuda:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            self.tname = torch.cuda.get_device_name(0)
        else:
            self.tname = _cpu_name()
        self.esync = self.dev.synchronize
        self.tsync = torch.cuda.synchronize if self.use_cuda else (lambda: None)
        mode = args.sizes if args.sizes != "auto" else ("quick" if args.quick else "gpu" if self.dev.is_gpu else "cpu")
        self.mode = mode
        self.S = dict(SIZES[mode])
        self.rows, self.skipped = [], []
        self.load_start = os.getloadavg()[0]
        self.rng = np.random.default_rng(0)
        print(f"clgrad device: {self.dev.name} ({self.dev.platform_name}, {self.dev.type}); torch device: "
              f"{self.tdev} ({self.tname}); torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
              f"sizes: {mode}; load average {os.getloadavg()[0]:.2f}", flush=True)
        print(f"{'bench':<46} {'unit':<8} {'clgrad':>10} {'torch':>10} {'ratio':>7}  {'clgrad ms':>10} "
              f"{'torch ms':>10}  {'work/call':>12} {'clgrad rate':>12} {'torch rate':>12}", flush=True)

    # ---- helpers ---------------------------------------------------------------------------------------------
    def arrays(self, *shapes):
        """Standard-normal float32 numpy arrays of the given shapes."""
        return [self.rng.standard_normal(s, dtype=self.np.float32) for s in shapes]

    def both(self, arr, requires_grad=False):
        """(clgrad tensor, torch tensor) of one numpy array."""
        e = self.engine.tensor(arr)
        t = self.torch.tensor(arr, device=self.tdev)
        if requires_grad:
            e.requires_grad_(True)
            t.requires_grad_(True)
        return e, t

    def check(self, e, t, tol=1e-4, k=1 << 16):
        """Relative L2 error of the first k elements of a clgrad result against PyTorch's."""
        np = self.np
        a = np.asarray(e.detach().reshape(-1)[:k].numpy(), dtype=np.float64)
        b = np.asarray(t.detach().reshape(-1)[:k].cpu().numpy(), dtype=np.float64)
        if a.shape != b.shape:
            return float("inf"), False
        err = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
        return err, bool(err <= tol)

    def row(self, key, name, unit, e_val, t_val, higher_better=True, work=None, work_unit=None, e_s=None,
            t_s=None, check=None, note=None, min_s=None):
        ok = True if check is None else check[1]
        ratio = ((e_val / t_val) if higher_better else (t_val / e_val)) if ok else None
        r = {"key": key, "bench": name, "unit": unit, "clgrad": e_val, "torch": t_val, "ratio": ratio,
             "higher_better": higher_better, "clgrad_ms": None if e_s is None else e_s * 1e3,
             "torch_ms": None if t_s is None else t_s * 1e3, "work": work, "work_unit": work_unit,
             "check_err": None if check is None else check[0], "check_ok": ok}
        if min_s is not None:  # the fastest repetitions: on a shared machine, the least disturbed ones
            r.update(clgrad_min_ms=min_s[0] * 1e3, torch_min_ms=min_s[1] * 1e3)
        rate_unit = {"B": "GB/s", "FLOP": "GFLOP/s"}.get(work_unit)
        if work is not None and e_s and t_s:
            r.update(clgrad_rate=work / e_s / 1e9, torch_rate=work / t_s / 1e9, rate_unit=rate_unit)
        if note:
            r["note"] = note
        self.rows.append(r)
        rs = "WRONG" if not ok else f"{ratio:.2f}x"
        rates = (f"{_fmt(r['clgrad_rate']):>12} {_fmt(r['torch_rate']):>12} {rate_unit}" if "clgrad_rate" in r
                 else "")
        print(f"{name:<46} {unit:<8} {_fmt(e_val):>10} {_fmt(t_val):>10} {rs:>7}  {_fmt(r['clgrad_ms']):>10} "
              f"{_fmt(r['torch_ms']):>10}  {_work(work, work_unit):>12} {rates}"
              + (f"  [check err {check[0]:.1e} > tol]" if not ok else "") + (f"  ({note})" if note else ""),
              flush=True)
        return r

    def skip(self, key, reason):
        self.skipped.append({"key": key, "reason": reason})
        print(f"{key:<46} skipped: {reason}", flush=True)

    def timed_row(self, key, name, fe, ft, work, work_unit, check, **kw):
        """Time fe/ft and report a throughput row (GB/s or GFLOP/s) with the roofline columns."""
        if self.mode == "quick":  # a smoke run: fewer, shorter repetitions
            kw = dict(dict(reps=3, target=0.01), **kw)
        st = {}
        te, tt = timeit_pair(fe, self.esync, ft, self.tsync, stats=st, **kw)
        unit = "GB/s" if work_unit == "B" else "GFLOP/s"
        return self.row(key, name, unit, work / te / 1e9, work / tt / 1e9, work=work, work_unit=work_unit,
                        e_s=te, t_s=tt, check=check, min_s=st["min_s"])

    def free(self):
        gc.collect()
        if self.use_cuda:
            self.torch.cuda.empty_cache()

    # ---- the rows --------------------------------------------------------------------------------------------
    def g_dispatch(self):
        engine, torch = self.engine, self.torch
        a, b = engine.ones(16), engine.ones(16)
        ta, tb = torch.ones(16, device=self.tdev), torch.ones(16, device=self.tdev)

        def loop(x, y):
            for _ in range(1000):
                x = x + y
            return x
        st = {}
        te, tt = timeit_pair(lambda: loop(a, b), self.esync, lambda: loop(ta, tb), self.tsync, warmup=2,
                             reps=3 if self.mode == "quick" else 5, max_inner=1, stats=st)
        chk = self.check(loop(a, b), loop(ta, tb))
        self.row("dispatch", "dispatch overhead (1000 adds of 16 floats)", "us/op", te / 1000 * 1e6,
                 tt / 1000 * 1e6, higher_better=False, e_s=te, t_s=tt, check=chk, min_s=st["min_s"])

    def g_elementwise(self):
        n = self.S["ew"]
        ea, ta = self.both(self.arrays(n)[0])
        eb, tb = self.both(self.arrays(n)[0])
        ec, tc = self.both(self.arrays(n)[0])
        lg = n.bit_length() - 1
        fe, ft = (lambda: ea * eb + ec), (lambda: ta * tb + tc)
        self.timed_row("axpb", f"a*b+c, 2^{lg} floats", fe, ft, 16 * n, "B", self.check(fe(), ft(), 1e-6))
        fe, ft = (lambda: (ea * eb + ec).sigmoid() * ea), (lambda: (ta * tb + tc).sigmoid() * ta)
        self.timed_row("chain4", f"sigmoid(a*b+c)*a (4 ops), 2^{lg} floats", fe, ft, 16 * n, "B",
                       self.check(fe(), ft(), 1e-5))

    def g_reduce(self):
        n = self.S["ew"]
        ea, ta = self.both(self.arrays(n)[0])
        lg = n.bit_length() - 1
        self.timed_row("sum_all", f"sum, 2^{lg} floats", lambda: ea.sum(), lambda: ta.sum(), 4 * n, "B",
                       self.check(ea.sum(), ta.sum(), 1e-4))
        self.timed_row("mean_all", f"mean, 2^{lg} floats", lambda: ea.mean(), lambda: ta.mean(), 4 * n, "B",
                       self.check(ea.mean(), ta.mean(), 1e-4))
        r, c = self.S["red"]
        em, tm = ea.reshape(r, c), ta.reshape(r, c)
        self.timed_row("sum_dim", f"sum(dim=1) of {r}x{c}", lambda: em.sum(1), lambda: tm.sum(1), 4 * (n + r), "B",
                       self.check(em.sum(1), tm.sum(1), 1e-4))
        self.timed_row("mean_dim", f"mean(dim=0) of {r}x{c}", lambda: em.mean(0), lambda: tm.mean(0),
                       4 * (n + c), "B", self.check(em.mean(0), tm.mean(0), 1e-4))

    def _fwd_bwd(self, name_f, name_fb, key, fe_fn, ft_fn, inputs, n_out, fwd_bytes, fb_bytes, tol=1e-4):
        """A forward row and a forward+backward row (grad of the output against a fixed upstream gradient)."""
        ein, tin = zip(*inputs)
        self.timed_row(key, name_f, lambda: fe_fn(*ein), lambda: ft_fn(*tin), fwd_bytes, "B",
                       self.check(fe_fn(*ein), ft_fn(*tin), tol))
        for e, t in inputs:  # the training path: every float input needs its gradient (layernorm: dx, dw, db)
            e.requires_grad_(True)
            t.requires_grad_(True)
        if n_out is None:  # scalar output (a loss)
            eg = tg = None
        else:
            eg, tg = self.both(self.arrays(n_out)[0])

        def fb(fn, xs, g):
            for x in xs:
                x.grad = None
            out = fn(*xs)
            out.backward(g) if g is not None else out.backward()
            return xs[0].grad

        fb(fe_fn, ein, eg)
        fb(ft_fn, tin, tg)
        checks = [self.check(e.grad, t.grad, tol) for e, t in inputs]
        chk = (max(c[0] for c in checks), all(c[1] for c in checks))
        self.timed_row(key + "_fb", name_fb, lambda: fb(fe_fn, ein, eg), lambda: fb(ft_fn, tin, tg), fb_bytes, "B",
                       chk)
        for e, t in inputs:
            e.requires_grad_(False)
            t.requires_grad_(False)

    def g_softmax(self):
        r, c = self.S["rows"]
        n = r * c
        x = self.both(self.arrays((r, c))[0])
        self._fwd_bwd(f"softmax rows of {r}x{c}", f"softmax fwd+bwd {r}x{c}", "softmax",
                      lambda a: self.engine.nn.functional.softmax(a, -1),
                      lambda a: self.torch.nn.functional.softmax(a, -1), [x], (r, c), 8 * n, 20 * n)

    def g_layernorm(self):
        r, c = self.S["rows"]
        n = r * c
        x = self.both(self.arrays((r, c))[0])
        w = self.both(self.arrays(c)[0])
        b = self.both(self.arrays(c)[0])
        self._fwd_bwd(f"layernorm rows of {r}x{c}", f"layernorm fwd+bwd {r}x{c} (dx, dw, db)", "layernorm",
                      lambda a, ww, bb: self.engine.nn.functional.layer_norm(a, (c,), ww, bb),
                      lambda a, ww, bb: self.torch.nn.functional.layer_norm(a, (c,), ww, bb), [x, w, b], (r, c),
                      8 * n, 20 * n, tol=1e-4)

    def g_cross_entropy(self):
        r, c = self.S["ce"]
        n = r * c
        x = self.both(self.arrays((r, c))[0])
        tgt = self.rng.integers(0, c, r)
        et, tt = self.engine.tensor(tgt), self.torch.tensor(tgt, device=self.tdev)
        self._fwd_bwd(f"cross_entropy {r}x{c} logits", f"cross_entropy fwd+bwd {r}x{c}", "cross_entropy",
                      lambda a: self.engine.nn.functional.cross_entropy(a, et),
                      lambda a: self.torch.nn.functional.cross_entropy(a, tt), [x], None, 4 * n, 12 * n, tol=1e-4)

    def g_sgemm(self):
        for m in self.S["gemm"]:
            key = f"sgemm_{m}"
            if m >= 8192 and not self.dev.is_gpu and not self.args.big:
                self.skip(key, f"SGEMM {m}: {2 * m ** 3 / 1e12:.1f} TFLOP per call, ~15 s per call per side on "
                               "this CPU; --big runs it once")
                continue
            A, B = self.arrays((m, m), (m, m))
            (eA, tA), (eB, tB) = self.both(A), self.both(B)
            kw = dict(warmup=1, reps=1) if (m >= 8192 and not self.dev.is_gpu) else {}
            self.timed_row(key, f"SGEMM {m}x{m}x{m} fp32", lambda: eA @ eB, lambda: tA @ tB, 2 * m ** 3, "FLOP",
                           self.check(eA[:64] @ eB, tA[:64] @ tB, 1e-4), **kw)
            del eA, tA, eB, tB
            self.free()

    def g_bmm(self):
        b, m, k, n = self.S["bmm"]
        (eA, tA), (eB, tB) = self.both(self.arrays((b, m, k))[0]), self.both(self.arrays((b, k, n))[0])
        self.timed_row("bmm", f"bmm {b}x({m}x{k} @ {k}x{n})", lambda: self.engine.bmm(eA, eB),
                       lambda: self.torch.bmm(tA, tB), 2 * b * m * k * n, "FLOP",
                       self.check(self.engine.bmm(eA, eB), self.torch.bmm(tA, tB), 1e-4))

    def g_conv2d(self):
        N, C, H, W = self.S["conv"]
        x = self.both(self.arrays((N, C, H, W))[0])
        w = self.both(self.arrays((C, C, 3, 3))[0] * 0.05)
        flops = 2 * N * C * H * W * C * 9
        ef, tf = self.engine.nn.functional.conv2d, self.torch.nn.functional.conv2d
        ex, tx = x
        ew, tw = w
        self.timed_row("conv2d", f"conv2d 3x3 {N}x{C}x{H}x{W}, {C}->{C}", lambda: ef(ex, ew, padding=1),
                       lambda: tf(tx, tw, padding=1), flops, "FLOP",
                       self.check(ef(ex, ew, padding=1), tf(tx, tw, padding=1), 1e-4))
        eg, tg = self.both(self.arrays((N, C, H, W))[0])
        for a in (ex, tx, ew, tw):
            a.requires_grad_(True)

        def fb(f, xx, ww, g):
            xx.grad = ww.grad = None
            f(xx, ww, padding=1).backward(g)
            return ww.grad
        chk = self.check(fb(ef, ex, ew, eg), fb(tf, tx, tw, tg), 1e-4)
        self.timed_row("conv2d_fb", f"conv2d fwd+bwd (dx, dw) {N}x{C}x{H}x{W}", lambda: fb(ef, ex, ew, eg),
                       lambda: fb(tf, tx, tw, tg), 3 * flops, "FLOP", chk)

    def g_adam(self):
        n, k = self.S["adam"], self.S["adam_tensors"]
        each = n // k
        ps, pt = [], []
        for _ in range(k):
            p, g = self.arrays(each, each)
            (ep, tp), (eg, tg) = self.both(p, True), self.both(g)
            ep.grad, tp.grad = eg, tg
            ps.append(ep)
            pt.append(tp)
        oe, ot = self.engine.optim.Adam(ps, lr=1e-3), self.torch.optim.Adam(pt, lr=1e-3)
        oe.step()
        ot.step()
        chk = self.check(ps[0], pt[0], 1e-5)
        self.timed_row("adam", f"Adam step, {n / 1e6:.0f}M params in {k} tensors", oe.step, ot.step,
                       28 * each * k, "B", chk, warmup=1)

    def _step_rate(self, key, name, e_step, t_step, flops, check, reps=None, note=None, warmup=2):
        st = {}
        te, tt = timeit_pair(e_step, self.esync, t_step, self.tsync, warmup=warmup, reps=reps, target=0.0,
                             max_inner=1, stats=st)
        return self.row(key, name, "steps/s", 1 / te, 1 / tt, work=flops, work_unit="FLOP", e_s=te, t_s=tt,
                        check=check, note=note, min_s=st["min_s"])

    def _train_pair(self, build, cfg, xy):
        """Both sides' models with equal weights and their step functions; check: first losses agree."""
        import models
        engine, torch = self.engine, self.torch
        torch.manual_seed(0)
        tm, topt = build(torch, cfg, self.tdev)
        em, eopt = build(engine, cfg)
        models.copy_weights(tm, em, engine)
        (ex, tx), (ey, ty) = [(engine.tensor(a), torch.tensor(a, device=self.tdev)) for a in xy]
        return em, eopt, ex, ey, tm, topt, tx, ty

    def _losses_agree(self, e_step, t_step, n=2):
        """Run n steps on each side (equal weights, equal batch): relative difference of the losses."""
        el = [float(e_step().item()) for _ in range(n)]
        tl = [float(t_step().item()) for _ in range(n)]
        err = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(el, tl))
        return err, err <= 1e-3

    def g_mlp(self):
        import models
        cfg = dict(models.MLP_QUICK if self.mode == "quick" else models.MLP_CONFIG)
        s, B = cfg["sizes"], cfg["batch"]
        xy = [self.arrays((B, s[0]))[0], self.rng.integers(0, s[-1], B)]
        em, eopt, ex, ey, tm, topt, tx, ty = self._train_pair(models.build_mlp, cfg, xy)
        e_step = models.mlp_step(self.engine, em, eopt, ex, ey)
        t_step = models.mlp_step(self.torch, tm, topt, tx, ty)
        chk = self._losses_agree(e_step, t_step)
        self._step_rate("mlp_step", f"train step {models.mlp_desc(cfg)}, Adam", e_step, t_step,
                        models.mlp_flops(cfg), chk)

    def gpt_cfg(self):
        import models
        cfg = dict(models.GPT_QUICK if self.mode == "quick" else models.GPT_CONFIG)
        if "gpt_batch" in self.S:
            cfg["batch"] = self.S["gpt_batch"]
        return cfg

    def g_gpt(self):
        self._gpt_rows(self.gpt_cfg(), "", True)

    def g_gpt_small(self):
        """The same model at 1/8 of the batch: a step short enough that the host's per-op work, which
        engine.compile removes, shows (at batch 64 on an H200 both steps are device-bound)."""
        cfg = self.gpt_cfg()
        cfg["batch"] = max(1, cfg["batch"] // 8)
        self._gpt_rows(cfg, "_small", False)

    def _gpt_rows(self, cfg, sfx, first_call_row):
        import models
        engine, torch = self.engine, self.torch
        B, T, V = cfg["batch"], cfg["block_size"], cfg["vocab"]
        xy = [self.rng.integers(0, V, (B, T)), self.rng.integers(0, V, (B, T))]
        em, eopt, ex, ey, tm, topt, tx, ty = self._train_pair(models.build_gpt, cfg, xy)
        e_step = models.gpt_step(engine, em, eopt, ex, ey)
        t_step = models.gpt_step(torch, tm, topt, tx, ty)
        flops = models.gpt_flops(tm, cfg)
        t_first = _once(t_step, self.tsync)   # PyTorch's time to its first step (for the compile-time row)
        e_first = _once(e_step, self.esync)
        chk = self._losses_agree(e_step, t_step)  # 3 steps on each side by now: the warm-up
        desc = models.gpt_desc(cfg)
        reps = 7 if self.dev.is_gpu and self.mode != "quick" else 3
        keys = ["gpt_step_compiled" + sfx] + (["gpt_first_call_compiled"] if first_call_row else [])
        r = self._step_rate("gpt_step" + sfx, f"train step {desc}, eager", e_step, t_step, flops, chk, reps=reps,
                            warmup=0)
        if not hasattr(engine, "compile"):
            print("engine.compile: not available", flush=True)
            for key in keys:
                self.skip(key, "engine.compile: not available")
            return
        try:
            cm = engine.compile(em)
            c_step = models.gpt_step(engine, em, eopt, ex, ey, forward=cm)
            t0 = time.perf_counter()
            c_step().item()
            self.esync()
            compile_s = time.perf_counter() - t0
            # the compiled model's loss and gradients (a replay, which also warms it up) against eager's
            params = list(em.parameters())
            probe = [params[0], params[len(params) // 2], params[-1]]

            def loss_and_grads(fwd):
                for p in params:
                    p.grad = None
                _, loss = fwd(ex, ey)
                loss.backward()
                return float(loss.item()), self.np.concatenate([p.grad.reshape(-1)[:4096].numpy() for p in probe])
            (l0, g0), (l1, g1) = loss_and_grads(em), loss_and_grads(cm)
            err = max(abs(l1 - l0) / max(abs(l0), 1e-12),
                      float(self.np.linalg.norm(g1 - g0) / max(self.np.linalg.norm(g0), 1e-30)))
            rc = self._step_rate("gpt_step_compiled" + sfx, f"train step {desc}, engine.compile", c_step, t_step, flops,
                                 (err, err <= 1e-3), reps=reps, warmup=0)
            if rc["check_ok"]:
                rc["note"] = (f"compiled {rc['clgrad_ms']:.1f} ms vs eager {r['clgrad_ms']:.1f} ms per step: "
                              f"{r['clgrad_ms'] / rc['clgrad_ms']:.2f}x")
            if first_call_row:
                self.row("gpt_first_call_compiled", "first step: compiled clgrad vs eager torch", "s", compile_s,
                         t_first, higher_better=False,
                         note=f"clgrad eager first step {e_first:.2f} s, torch first step {t_first:.2f} s")
        except Exception as exc:  # engine.compile is young: report, don't lose the other rows
            msg = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            for key in keys:
                if not any(r["key"] == key for r in self.rows):
                    self.skip(key, f"engine.compile failed: {msg}")

    def g_startup(self):
        """Wall time of a fresh process: import, build the GPT, (compile,) one training step, synchronised;
        run after this process built every kernel, so the on-disk program cache is warm."""
        cfg = self.gpt_cfg()
        script = os.path.join(_HERE, "gpt_start.py")
        compiled = hasattr(self.engine, "compile")
        if not compiled:
            print("engine.compile: not available (second-process row runs eager)", flush=True)
        args = ["--cfg", json.dumps(cfg)]
        res = {}
        for side, extra in (("clgrad", ["--compile"] if compiled else []), ("torch", ["--device", self.tdev])):
            best = None
            for _ in range(1 if self.mode == "quick" or not self.dev.is_gpu else 2):
                t0 = time.perf_counter()
                p = subprocess.run([sys.executable, script, "--backend", side] + args + extra, capture_output=True,
                                   text=True, env=os.environ.copy())
                wall = time.perf_counter() - t0
                if p.returncode != 0:
                    self.skip("gpt_second_process", f"{side} subprocess failed: {p.stderr.strip()[-400:]}")
                    return
                info = json.loads(p.stdout.strip().splitlines()[-1])
                info["wall_s"] = wall
                if best is None or wall < best["wall_s"]:
                    best = info
            res[side] = best
        e, t = res["clgrad"], res["torch"]
        note = ("clgrad import {import_s:.2f} + build {build_s:.2f} + first step {step_s:.2f} s; "
                .format(**e) + "torch import {import_s:.2f} + build {build_s:.2f} + first step {step_s:.2f} s"
                .format(**t))
        # both freshly initialised models (std 0.02) start near the uniform loss ln(vocab)
        err = max(abs(r["loss"] - math.log(cfg["vocab"])) / math.log(cfg["vocab"]) for r in (e, t))
        self.row("gpt_second_process", f"second process: start to 1st step{' compiled' if compiled else ''}", "s",
                 e["wall_s"], t["wall_s"], higher_better=False, note=note, check=(err, err <= 0.05))

    def g_models(self):
        from models import run_models

        def row(name, unit, e, t):
            return self.row("model_" + name.split()[1], name, unit, e, t)
        run_models(row, self.esync, self.tsync, self.tdev, quick=self.args.quick)

    # ---- output ----------------------------------------------------------------------------------------------
    def meta(self):
        import engine
        return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "clgrad_device": self.dev.name, "clgrad_platform": self.dev.platform_name,
                "clgrad_driver": getattr(self.dev, "driver_version", None), "clgrad_device_type": self.dev.type,
                "torch_device": self.tname, "torch_backend": self.tdev, "torch_version": self.torch.__version__,
                "torch_threads": self.torch.get_num_threads(), "sizes": self.mode,
                "engine_compile": hasattr(engine, "compile"), "python": platform.python_version(),
                "cpu": _cpu_name(), "load_average_start": self.load_start, "load_average_end": os.getloadavg()[0]}

    def markdown(self):
        m = self.meta()
        lines = [f"clgrad on {m['clgrad_device']} ({m['clgrad_platform']}), PyTorch {m['torch_version']} on "
                 f"{m['torch_device']} ({m['torch_backend']}), {m['date']}, sizes {m['sizes']}:", "",
                 "| bench | clgrad | PyTorch | unit | ratio | work/call | roofline clgrad / PyTorch |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in self.rows:
            ratio = "WRONG" if not r["check_ok"] else f"{r['ratio']:.2f}x"
            roof = (f"{_fmt(r['clgrad_rate'])} / {_fmt(r['torch_rate'])} {r['rate_unit']}" if "clgrad_rate" in r
                    else "")
            lines.append(f"| {r['bench']} | {_fmt(r['clgrad'])} | {_fmt(r['torch'])} | {r['unit']} | {ratio} | "
                         f"{_work(r['work'], r['work_unit']) if r['work'] else ''} | {roof} |")
        for s in self.skipped:
            lines.append(f"| {s['key']} | | | | skipped | | {s['reason']} |")
        return "\n".join(lines)


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="clgrad device: cpu, gpu, cl:N (default: CLGRAD_DEVICE or auto)")
    ap.add_argument("--json", default=None, help="write device names, versions, date and every row here")
    ap.add_argument("--md", action="store_true", help="print a markdown table (for benchmarks/RESULTS.md)")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--sizes", default="auto", choices=["auto", "gpu", "cpu", "quick"],
                    help="size table (default: quick with --quick, else by clgrad's device type)")
    ap.add_argument("--only", default=None, help="comma-separated substrings of group names: " + ",".join(GROUPS))
    ap.add_argument("--big", action="store_true", help="on CPU devices also run SGEMM 8192 (once)")
    ap.add_argument("--models", action="store_true",
                    help="also time training steps of the example models (benchmarks/models.py)")
    args = ap.parse_args(argv)
    if args.device:
        os.environ["CLGRAD_DEVICE"] = args.device
    only = [s for s in args.only.split(",") if s] if args.only else None
    b = Bench(args)
    # both libraries and the harness are imported: move their ~200k objects (mostly torch's) out of
    # the collector's reach, so a full collection triggered by clgrad's Python graph objects does not
    # walk torch's modules (150-180 ms per collection measured here)
    gc.collect()
    gc.freeze()
    t_all = time.perf_counter()
    groups = GROUPS + (["models"] if args.models else [])
    for g in groups:
        if only and not any(s in g for s in only):
            continue
        t0 = time.perf_counter()
        try:
            getattr(b, "g_" + g)()
        except Exception as exc:  # a missing op or an engine bug: say which, keep going
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            b.skip(g, f"{type(exc).__name__}: {msg}"[:300])
        b.free()
        if os.environ.get("BENCH_VERBOSE"):
            print(f"  [{g}: {time.perf_counter() - t0:.1f} s]", flush=True)
    print(f"total {time.perf_counter() - t_all:.0f} s; load average {os.getloadavg()[0]:.2f}", flush=True)
    if args.md:
        print()
        print(b.markdown())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**b.meta(), "rows": b.rows, "skipped": b.skipped}, f, indent=1)


if __name__ == "__main__":
    main()
