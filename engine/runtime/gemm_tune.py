"""Measured choice of GEMM tile configuration and split-K per device and shape class (GPUs).

No single tile wins everywhere (H200, NVIDIA OpenCL, GPT-step shapes, TFLOP/s, measured with the
kernels before the PF option bits of matmul.py; the ranking is what matters):
    x @ W^T (16384x1152x384)      128x128: 34.9   64x128: 24.8
    g @ W   (16384x384x1536)      128x128: 28.8   64x128: 33.1
    g^T @ x (1536x384, K 16384)   64x64: 14.4     128x128 + split-K 16: 23.6
    P @ V   (384 x 256x64x256)    64x64: 21.2     128x64: 22.8
so, as CLBlast's tuner does, the first product of each class (device, dtype, operand layouts, and
M, N, K, batch rounded up to powers of two) times every candidate on its real operands and keeps
the fastest.  Choices persist in ~/.cache/clgrad/gemm-tune.json (keyed by device and driver), so a
second process does not tune again.  CLGRAD_GEMM_TUNE=0 uses the fixed heuristic instead;
unknown GPU vendors use it too (safe defaults).
"""
import json
import os
import time

from . import launch as _launch

# (TM, TN, TK, WM, WN, V, PF) as in matmul.CONFIGS; PF 31 = prefetch + unchecked interior tiles + vector
# global loads + double-buffered local memory + vector C stores (matmul.PF_*); PF 1 = plain prefetch.
# CLGRAD_GEMM_CANDIDATES="a,b,...;c,d,..." replaces the list (tuning experiments).
CANDIDATES = [
    (128, 128, 8, 8, 8, 4, 23),
    (128, 128, 8, 8, 8, 4, 63),
    (128, 128, 16, 8, 8, 4, 31),
    (128, 64, 16, 8, 8, 4, 31),
    (128, 64, 8, 8, 8, 4, 31),
    (64, 128, 8, 8, 8, 4, 63),
    (64, 64, 16, 4, 4, 4, 31),
    # 16 x 8 / 8 x 16 outputs per work-item: H200, probe_gemm.py, TFLOP/s vs the best 128x128: 4096^3
    # 48.4 / 47.2 vs 44.2 (cuBLAS 50.6), g @ W 16384x1536x384 42.1 / 41.4 vs 39.5; slower on narrow shapes
    (256, 128, 8, 16, 8, 4, 31),
    (128, 256, 8, 8, 16, 4, 31),
]
if os.environ.get("CLGRAD_GEMM_CANDIDATES"):
    CANDIDATES = [tuple(int(x) for x in c.split(",")) for c in os.environ["CLGRAD_GEMM_CANDIDATES"].split(";")]
_CHOICES = {}     # device key -> {class key: [cfg, splits]}
_LOADED = set()


def enabled(device):
    mode = os.environ.get("CLGRAD_GEMM_TUNE", "1").strip()
    if mode in ("0", "false", "no"):
        return False
    if mode == "force":   # any device (tests run the tuner on PoCL with the tiled kernel forced)
        return True
    v = device.vendor.lower()
    return device.is_gpu and any(x in v for x in ("nvidia", "advanced micro", "amd"))


def _pow2(n):
    return 1 << max(0, (int(n) - 1).bit_length())


def _path():
    base = os.environ.get("CLGRAD_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "clgrad")
    return os.path.join(base, "gemm-tune.json")


def _dev_key(device):
    return f"{device.name}|{device.driver_version}"


def _load(device):
    dk = _dev_key(device)
    if dk in _LOADED:
        return _CHOICES.setdefault(dk, {})
    _LOADED.add(dk)
    table = _CHOICES.setdefault(dk, {})
    try:
        with open(_path()) as f:
            table.update(json.load(f).get(dk, {}))
    except (OSError, ValueError):
        pass
    return table


def _save():
    path = _path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            data = {}
        for dk, table in _CHOICES.items():
            data.setdefault(dk, {}).update(table)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=0, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass   # a read-only home: tune again next process


def class_key(dtype, la, lb, M, N, K, nz):
    return f"{dtype.ctype}|{la}{lb}|{_pow2(M)}x{_pow2(N)}x{_pow2(K)}|b{_pow2(nz)}"


def _time(run, cand, device, windows=3, window_s=1.5e-3):
    """Best per-product time over `windows` timing windows of >= 3 products and >= window_s each
    (the minimum: noise on a shared GPU only ever adds time; one 2 ms window varied 10-15%)."""
    best = None
    for _ in range(windows):
        reps = 0
        t = time.perf_counter()
        while True:
            run(*cand)
            reps += 1
            if reps >= 3:
                device.synchronize()
                el = time.perf_counter() - t
                if el >= window_s or reps >= 64:
                    break
        dt = el / reps
        best = dt if best is None or dt < best else best
    return best


def choose(device, key, candidates, run):
    """The fastest (cfg, splits) of `candidates` for class `key`; `run(cfg, splits)` enqueues one
    product.  Timing runs with any compile recorder suspended (it is not part of a plan)."""
    table = _load(device)
    hit = table.get(key)
    if hit is not None:
        # stored: the tile and whether to split K; the number of chunks follows the actual shape
        # (shapes of one class may split differently)
        cfg, split = tuple(hit[0]), bool(hit[1])
        for cand in candidates:
            if cand[0] == cfg and (cand[1] > 1) == split:
                return cand
    rec = _launch._REC[0]
    _launch._REC[0] = None
    try:
        best, best_t = None, None
        for cand in candidates:
            run(*cand)   # build + warm
            device.synchronize()
            dt = _time(run, cand, device)
            if best_t is None or dt < best_t:
                best, best_t = cand, dt
    finally:
        _launch._REC[0] = rec
    table[key] = [list(best[0]), int(best[1] > 1)]
    _save()
    if _launch.debug_level() >= 1:
        import sys
        print(f"[clgrad] gemm tune {key}: {best[0]} split-K {best[1]} ({best_t * 1e6:.0f} us)", file=sys.stderr)
    return best
