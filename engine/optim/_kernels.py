"""Fused optimizer kernels: one generated OpenCL kernel per optimizer variant and dtype.

Each step of a parameter tensor is ONE launch that reads the gradient and writes the
parameter and all of its state buffers (and the 'step' scalar, from work-item 0).
Hyperparameters that change from step to step (lr, bias corrections) are kernel
arguments, so a program is built once per (optimizer, variant flags, dtype, index type).

The arithmetic follows PyTorch's single-tensor CPU implementation op by op (the scalar
casts, and fma where ATen's vectorised kernels use fmadd: add with alpha, lerp), so the
trajectories agree with torch to float32 rounding.
"""
import numpy as np

from ..runtime.launch import launch, round_up
from ..runtime.elementwise import cstrides

_NP = {"float": np.float32, "double": np.float64, "half": np.float16}


def _lerp(a, b, w):
    # ATen's lerp_vec: fmadd(coeff, end - start, base), weight small -> (w, start) else (w - 1, end)
    return f"(fabs({w}) < (T)0.5 ? fma({w}, {b} - {a}, {a}) : fma({w} - (T)1, {b} - {a}, {b}))"


def _weight_decay(f):
    """torch's weight decay, none where weight_decay == 0: decoupled (p *= 1 - lr * wd, as AdamW)
    where the variant has the 'decoupled' flag set, else L2 (g += wd * p)."""
    if not f["wd"]:
        return []
    return ["p = p * decay;" if f.get("decoupled") else "g = fma(p, wd, g);"]


def _ema_sq(buf, beta, c):
    """buf = buf * beta + c * g * g, in torch's two steps (mul_, then addcmul_)."""
    return [f"{buf} = {buf} * {beta};", f"{buf} = {buf} + {c} * g * g;"]


def _adam_moments():
    """Adam's moments: exp_avg.lerp_(g, 1 - beta1), then exp_avg_sq = exp_avg_sq * beta2 + (1 - beta2) * g * g."""
    return ["exp_avg = " + _lerp("exp_avg", "g", "w1") + ";"] + _ema_sq("exp_avg_sq", "beta2", "c2")


def _body(kind, flags):
    """(state buffer names, scalar names, body lines) of one optimizer variant.

    In the body: `p` (param value, written back), `g` (gradient, already negated for
    maximize), each state buffer name as a variable loaded from and stored back to its buffer."""
    f = dict(flags)
    L = []
    if kind == "sgd":
        bufs = ["buf"] if f["momentum"] else []
        scal = ["wd", "momentum", "damp1", "neg_lr", "first"]
        L += _weight_decay(f)
        if f["momentum"]:
            L.append("buf = first ? g : fma(g, damp1, buf * momentum);")
            L.append("g = fma(buf, momentum, g);" if f["nesterov"] else "g = buf;")
        L.append("p = fma(g, neg_lr, p);")
    elif kind == "adam":
        bufs = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if f["amsgrad"] else [])
        scal = ["wd", "decay", "w1", "beta2", "c2", "bc2_sqrt", "eps", "neg_step_size"]
        L += _weight_decay(f)
        L += _adam_moments()
        if f["amsgrad"]:
            L.append("max_exp_avg_sq = fmax(max_exp_avg_sq, exp_avg_sq);")
            L.append("T denom = sqrt(max_exp_avg_sq) / bc2_sqrt + eps;")
        else:
            L.append("T denom = sqrt(exp_avg_sq) / bc2_sqrt + eps;")
        L.append("p = p + neg_step_size * exp_avg / denom;")
    elif kind == "rmsprop":
        bufs = ["square_avg"] + (["momentum_buffer"] if f["momentum"] else []) + (["grad_avg"] if f["centered"] else [])
        scal = ["wd", "alpha", "c", "eps", "momentum", "neg_lr"]
        L += _weight_decay(f)
        L += _ema_sq("square_avg", "alpha", "c")
        if f["centered"]:
            L.append("grad_avg = " + _lerp("grad_avg", "g", "c") + ";")
            L.append("T avg = sqrt(square_avg + (T)(-1) * grad_avg * grad_avg);")
        else:
            L.append("T avg = sqrt(square_avg);")
        L.append("avg = avg + eps;")
        if f["momentum"]:
            L.append("momentum_buffer = momentum_buffer * momentum;")
            L.append("momentum_buffer = momentum_buffer + (T)1 * g / avg;")
            L.append("p = fma(momentum_buffer, neg_lr, p);")
        else:
            L.append("p = p + neg_lr * g / avg;")
    elif kind == "adagrad":
        bufs = ["sum"]
        scal = ["wd", "eps", "neg_clr"]
        L += _weight_decay(f)
        L.append("sum = sum + (T)1 * g * g;")
        L.append("T std_ = sqrt(sum) + eps;")
        L.append("p = p + neg_clr * g / std_;")
    elif kind == "adadelta":
        bufs = ["square_avg", "acc_delta"]
        scal = ["wd", "rho", "c", "eps", "neg_lr"]
        L += _weight_decay(f)
        L += _ema_sq("square_avg", "rho", "c")
        L.append("T std_ = sqrt(square_avg + eps);")
        L.append("T delta = sqrt(acc_delta + eps);")
        L.append("delta = delta / std_;")
        L.append("delta = delta * g;")
        L.append("acc_delta = acc_delta * rho;")
        L.append("acc_delta = acc_delta + c * delta * delta;")
        L.append("p = fma(delta, neg_lr, p);")
    elif kind == "adamax":
        bufs = ["exp_avg", "exp_inf"]
        scal = ["wd", "w1", "beta2", "eps", "neg_clr"]
        L += _weight_decay(f)
        L.append("exp_avg = " + _lerp("exp_avg", "g", "w1") + ";")
        L.append("exp_inf = fmax(exp_inf * beta2, fabs(g) + eps);")
        L.append("p = p + neg_clr * exp_avg / exp_inf;")
    elif kind == "radam":
        bufs = ["exp_avg", "exp_avg_sq"]
        scal = ["wd", "decay", "w1", "beta2", "c2", "eps", "lr", "bc1", "bc2_sqrt", "rect", "use_rect"]
        L += _weight_decay(f)
        L += _adam_moments()
        L.append("T upd = exp_avg / bc1 * lr;")
        L.append("if (use_rect) upd = upd * (bc2_sqrt / (sqrt(exp_avg_sq) + eps)) * rect;")
        L.append("p = p - upd;")
    elif kind == "nadam":
        bufs = ["exp_avg", "exp_avg_sq"]
        scal = ["wd", "decay", "w1", "beta2", "c2", "eps", "bc2", "cg", "cm"]
        L += _weight_decay(f)
        L += _adam_moments()
        L.append("T denom = sqrt(exp_avg_sq / bc2) + eps;")
        L.append("p = p + cg * g / denom;")
        L.append("p = p + cm * exp_avg / denom;")
    elif kind == "rprop":
        bufs = ["prev", "step_size"]
        scal = ["etaminus", "etaplus", "smin", "smax"]
        L.append("T prod = g * prev;")
        L.append("T sgn = prod > (T)0 ? etaplus : (prod < (T)0 ? etaminus : (T)1);")
        L.append("step_size = clamp(step_size * sgn, smin, smax);")
        L.append("if (sgn == etaminus) g = (T)0;")
        L.append("p = p + (T)(-1) * sign(g) * step_size;")
        L.append("prev = g;")
    elif kind == "asgd":
        bufs = ["ax"]
        scal = ["wd", "decay", "neg_eta", "mu_val", "mu_one"]
        L += _weight_decay(f)
        L.append("p = p * decay;")
        L.append("p = fma(g, neg_eta, p);")
        L.append("ax = mu_one ? p : ax + (p - ax) * mu_val;")
    else:
        raise ValueError(kind)
    return bufs, scal, L


# Per-parameter scalars (they depend on that parameter's step count); the rest are shared
# by every parameter of a launch.
PER_SLOT = {"sgd": ["first"], "adam": ["bc2_sqrt", "neg_step_size"], "rmsprop": [], "adagrad": ["neg_clr"],
            "adadelta": [], "adamax": ["neg_clr"], "radam": ["bc1", "bc2_sqrt", "rect", "use_rect"],
            "nadam": ["bc2", "cg", "cm"], "rprop": [], "asgd": ["decay", "neg_eta", "mu_val", "mu_one"]}
INT_SCALARS = ("first", "use_rect", "mu_one")
# float32 scalar state tensors that work-item 0 of each slot sets (torch keeps them as tensors)
SCALAR_STATES = {"sgd": [], "nadam": ["step", "mu_product"], "asgd": ["step", "eta", "mu"]}


def scalar_states(kind):
    return SCALAR_STATES.get(kind, ["step"])
_ARG_BUDGET = 1024  # CL_DEVICE_MAX_PARAMETER_SIZE's guaranteed minimum, in bytes


_K_CACHE = {}
# CPU devices: parameters of at least this many elements get a launch of their own (None: all share)
CPU_PER_PARAM_MIN = 4096


def slots_per_launch(kind, flags, ct, idx_t, has_step):
    """How many parameter tensors one launch takes: as many as fit the argument budget (a
    function of the variant only, so still one program per variant and dtype)."""
    key = (kind, tuple(sorted(dict(flags).items())), ct, idx_t, has_step)
    k = _K_CACHE.get(key)
    if k is None:
        k = _K_CACHE[key] = _slots(kind, flags, ct, idx_t, has_step)
    return k


def _slots(kind, flags, ct, idx_t, has_step):
    bufs, scal, _ = _body(kind, dict(flags))
    per = PER_SLOT[kind]
    isz = 8 if idx_t == "long" else 4
    tsz = 8 if ct == "double" else 4
    slot = (2 + len(bufs)) * (8 + isz) + 2 * isz + sum(4 if s in INT_SCALARS else tsz for s in per)
    slot += len(scalar_states(kind)) * (8 + isz + 4)
    shared = sum(tsz for s in scal if s not in per)
    return max(1, min(8, (_ARG_BUDGET - shared - 64) // slot))


def gen_source(kind, flags, ct, idx_t, has_step, K):
    """A multi-tensor kernel: work-items run over the concatenated elements of K parameter
    tensors (slot k owns global ids [end_{k-1}, end_k)); each picks its slot's buffers.  On PoCL its
    fma / sqrt / fabs / fmax become clang builtins that vectorise through runtime/cpu_math.py's prelude,
    as every program's do (PoCL's own are out-of-line calls: 1.5-3.5 GB/s for Adam)."""
    bufs, scal, body = _body(kind, flags)
    f = dict(flags)
    per = PER_SLOT[kind]
    shared = [s for s in scal if s not in per]
    sst = scalar_states(kind) if has_step else []
    params = []
    for k in range(K):
        params.append(f"__global {ct}* p{k}, {idx_t} p{k}_off, __global const {ct}* g{k}, {idx_t} g{k}_off")
        params += [f"__global {ct}* {b}{k}, {idx_t} {b}{k}_off" for b in bufs]
        for ss in sst:
            params.append(f"__global float* {ss}{k}, {idx_t} {ss}{k}_off, float {ss}v{k}")
        params.append(f"{idx_t} n{k}, {idx_t} end{k}")
        params += [("int " if s in INT_SCALARS else "T ") + f"{s}{k}" for s in per]
    params += [("int " if s in INT_SCALARS else "T ") + s for s in shared]
    pre = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" if ct == "double" else ""
    pre += "#pragma OPENCL FP_CONTRACT OFF\n"
    lines = [pre + f"#define T {ct}",
             f"__kernel void opt_{kind}({', '.join(params)}) {{",
             f"    {idx_t} gid = get_global_id(0);",
             f"    {idx_t} i, n;",
             f"    __global {ct}* P; __global const {ct}* G;"]
    lines += [f"    __global {ct}* S_{b};" for b in bufs]
    lines += [("    int " if s in INT_SCALARS else "    T ") + s + ";" for s in per]
    for k in range(K):
        cond = f"if (gid < end{k})" if k == 0 else f"else if (gid < end{k})"
        lines.append(f"    {cond} {{")
        lines.append(f"        i = gid{'' if k == 0 else f' - end{k - 1}'}; n = n{k};")
        lines.append(f"        P = p{k} + p{k}_off; G = g{k} + g{k}_off;")
        lines += [f"        S_{b} = {b}{k} + {b}{k}_off;" for b in bufs]
        lines += [f"        {s} = {s}{k};" for s in per]
        for ss in sst:
            lines.append(f"        if (i == 0) {ss}{k}[{ss}{k}_off] = {ss}v{k};")
        lines.append("    }")
    lines.append("    else return;")
    lines.append("    if (i >= n) return;")
    lines.append("    T p = P[i];")
    lines.append("    T g = G[i];" if not f.get("maximize") else "    T g = -G[i];")
    lines += [f"    T {b} = S_{b}[i];" for b in bufs]
    lines += ["    " + ln for ln in body]
    lines += [f"    S_{b}[i] = {b};" for b in bufs]
    lines.append("    P[i] = p;")
    lines.append("}")
    return "\n".join(lines) + "\n", f"opt_{kind}"


def _dense(t):
    return t._strides == cstrides(t._shape) or t.numel() <= 1


def _prep(item):
    """Contiguous stand-ins for a strided param (updated, then written back) or grad.
    (State buffers are created contiguous, and load_state_dict makes them so.)"""
    p, g, states, sstates, per = item
    cs = cstrides(p._shape)
    if (p._strides == cs or p.numel() <= 1) and (g._strides == cs or g.numel() <= 1):
        return item, None
    tmp = None
    if not _dense(p):
        tmp = p.contiguous()
    if not _dense(g):
        g = g.contiguous()
    return (tmp if tmp is not None else p, g, states, sstates, per), tmp


def fused_step(kind, flags, items, shared):
    """Update every parameter in `items` in place with its gradient and state buffers.

    items: [(param, grad, [state tensors in the variant's order], [(scalar state tensor,
    new value)] in scalar_states(kind) order, {per-parameter scalar: value})];
    shared: {scalar name: value} for all.  Parameters are launched together,
    `slots_per_launch` at a time, per device and dtype."""
    if not items:
        return
    flags = tuple(sorted(flags.items()))
    has_step = bool(scalar_states(kind))
    by = {}
    for it in items:
        by.setdefault((it[0]._storage.device, it[0].dtype), []).append(it)
    for (dev, dtype), its in by.items():
        ct = dtype.ctype
        if ct not in ("float", "double"):
            raise TypeError(f"{kind} optimizer: parameters of dtype {dtype} are not supported (float32 and "
                            "float64 are)")
        prepped = [_prep(it) for it in its]
        big = (any(p._storage.size >= 2**31 or g._storage.size >= 2**31 for (p, g, _, _, _), _t in prepped)
               or sum(it[0][0].numel() for it in prepped) + len(prepped) >= 2**31)  # global ids span a chunk
        idx_t = "long" if big else "int"
        K = slots_per_launch(kind, flags, ct, idx_t, has_step)
        if dev.is_cpu and CPU_PER_PARAM_MIN is not None:
            # PoCL vectorises the one-slot kernel (uniform buffers) but not the K-slot one, whose work-items
            # pick their slot's buffers: big tensors get a launch each, the small rest share launches
            one = [x[0] for x in prepped if x[0][0].numel() >= CPU_PER_PARAM_MIN]
            rest = [x[0] for x in prepped if x[0][0].numel() < CPU_PER_PARAM_MIN]
            groups = [(1, [[x] for x in one])] + [(K, [rest[c:c + K] for c in range(0, len(rest), K)])]
        else:
            groups = [(K, [[x[0] for x in prepped[c:c + K]] for c in range(0, len(prepped), K)])]
        for k, chunks in groups:
            if not chunks:
                continue
            knl = dev.programs.kernel(("optim", kind, flags, ct, idx_t, has_step, k),
                                      lambda: gen_source(kind, flags, ct, idx_t, has_step, k))
            for chunk in chunks:
                _launch_chunk(dev, knl, kind, flags, ct, idx_t, k, chunk, shared)
        for (it, (_, tmp)) in zip(its, prepped):
            p = it[0]
            if tmp is not None:
                from ..ops._core import copy_into
                copy_into(p, tmp)
            p._storage.version += 1
            for s in it[2]:
                s._storage.version += 1
            for s, _v in it[3]:
                s._storage.version += 1


def _launch_chunk(dev, knl, kind, flags, ct, idx_t, K, chunk, shared, fast=True):
    bufs, scal, _ = _body(kind, dict(flags))
    per = PER_SLOT[kind]
    if fast and getattr(knl, "_typed", False):
        # the kernel's scalar signature is set (launch() typed it from the first call's numpy
        # scalars): pyopencl packs plain Python numbers with struct, much cheaper
        it = npt = f32 = i32 = _ident
    else:
        npt = _NP[ct]
        it = np.int64 if idx_t == "long" else np.int32
        f32, i32 = np.float32, np.int32
    args = []
    end = 0
    nc = len(chunk)
    for k in range(K):
        p, g, states, sstates, pscal = chunk[k if k < nc else nc - 1]
        n = p.numel() if k < nc else 0
        if k < nc:
            end += n if n else 1  # an empty tensor still owns one work-item (it sets 'step')
        args += [p._storage.buf, it(p._offset), g._storage.buf, it(g._offset)]
        for s in states:
            args += [s._storage.buf, it(s._offset)]
        for s, v in sstates:
            args += [s._storage.buf, it(s._offset), f32(v)]
        args += [it(n), it(end)]
        args += [i32(pscal[s]) if s in INT_SCALARS else npt(pscal[s]) for s in per]
    args += [i32(shared[s]) if s in INT_SCALARS else npt(shared.get(s, 0.0)) for s in scal if s not in per]
    wg = dev.wg
    try:
        launch(dev, knl, (round_up(end, wg),), (wg,), args, "optim_" + kind)
    except (OverflowError, ArithmeticError, TypeError, ValueError) as e:
        if not fast or it is not _ident:
            raise
        if "pack" not in str(e) and "format" not in str(e) and "range" not in str(e):
            raise
        # a value struct can't pack as float32 (e.g. one past FLT_MAX): numpy rounds it to inf
        with np.errstate(over="ignore"):
            _launch_chunk(dev, knl, kind, flags, ct, idx_t, K, chunk, shared, fast=False)


def _ident(x):
    return x
