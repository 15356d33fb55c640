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



# ---- the Performance issue's training-step rows (benchmarks/run.py): same model code, same weights --------
# GPT as in the issue: 6 layers, 6 heads, embedding 384, context 256, batch 64, vocabulary 65, fp32, AdamW + clip.
GPT_CONFIG = dict(vocab=65, block_size=256, n_embd=384, n_head=6, n_layer=6, batch=64)
GPT_QUICK = dict(vocab=65, block_size=32, n_embd=64, n_head=4, n_layer=2, batch=4)
# MLP: 784-1024-1024-10 (MNIST-sized), batch 256, Adam.
MLP_CONFIG = dict(sizes=(784, 1024, 1024, 10), batch=256)
MLP_QUICK = dict(sizes=(64, 256, 256, 10), batch=64)


def gpt_desc(cfg):
    return (f"GPT {cfg['n_layer']}L {cfg['n_head']}H d{cfg['n_embd']} T{cfg['block_size']} "
            f"B{cfg['batch']} V{cfg['vocab']}")


def mlp_desc(cfg):
    return "MLP " + "-".join(map(str, cfg["sizes"])) + f" B{cfg['batch']}"


class _OnDevice:
    """The torch module with arange/ones/tril creating on `device`: examples/gpt.py's forward calls
    torch.arange(T) without a device, and a `with torch.device(...)` mode would add Python overhead to every op."""

    def __init__(self, T, device):
        self._T, self._device = T, device

    def __getattr__(self, name):
        fn = getattr(self._T, name)
        if name in ("arange", "ones", "zeros", "tril", "randint"):
            return lambda *a, **k: fn(*a, **{"device": self._device, **k})
        return fn


def build_gpt(T, cfg, device=None):
    """(model, AdamW) on backend T (engine or torch; torch on `device`), built by examples/gpt.py's define_gpt."""
    from gpt import define_gpt
    TT = _OnDevice(T, device) if device not in (None, "cpu") else T
    model = define_gpt(TT, T.nn, T.nn.functional)(cfg["vocab"], cfg["block_size"], cfg["n_embd"], cfg["n_head"],
                                                  cfg["n_layer"])
    if device not in (None, "cpu"):
        model.to(device)
    return model, T.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)


def build_mlp(T, cfg, device=None):
    """(model, Adam): Linear/ReLU stack of cfg['sizes'] (torch on `device`)."""
    nn, sizes, layers = T.nn, cfg["sizes"], []
    for i in range(len(sizes) - 1):
        layers += [nn.Linear(sizes[i], sizes[i + 1])] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    model = nn.Sequential(*layers)
    if device not in (None, "cpu"):
        model.to(device)
    return model, T.optim.Adam(model.parameters(), lr=1e-3)


def copy_weights(src, dst, T):
    """Load a torch model's state_dict into a clgrad model of the same code (so both sides start equal)."""
    dst.load_state_dict({k: T.tensor(v.detach().cpu().numpy()) for k, v in src.state_dict().items()})


def gpt_step(T, model, opt, x, y, forward=None):
    """step() -> loss: forward (through `forward`, e.g. a compiled model, if given), backward, clip, AdamW."""
    fwd = forward or model
    params = list(model.parameters())

    def step():
        _, loss = fwd(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        T.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss
    return step


def mlp_step(T, model, opt, x, y, forward=None):
    fwd = forward or model

    def step():
        loss = T.nn.functional.cross_entropy(fwd(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step


def gpt_flops(model, cfg):
    """FLOPs of one training step: 6 x (non-embedding parameters) per token + attention
    (QK^T and AV: 4*T*d per token and layer forward, x3 with backward), as in the PaLM/Chinchilla count."""
    n = sum(p.numel() for name, p in model.named_parameters() if "emb" not in name)
    tokens = cfg["batch"] * cfg["block_size"]
    return 6 * n * tokens + 12 * cfg["n_layer"] * cfg["block_size"] * cfg["n_embd"] * tokens


def mlp_flops(cfg):
    s = cfg["sizes"]
    return 6 * cfg["batch"] * sum(s[i] * s[i + 1] for i in range(len(s) - 1))


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
