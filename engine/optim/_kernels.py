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
from ..runtime.elementwise import contiguous_strides

_NP = {"float": np.float32, "double": np.float64, "half": np.float16}


def _lerp(a, b, w):
    # ATen's lerp_vec: fmadd(coeff, end - start, base), weight small -> (w, start) else (w - 1, end)
    return f"(fabs({w}) < (T)0.5 ? fma({w}, {b} - {a}, {a}) : fma({w} - (T)1, {b} - {a}, {b}))"


def _body(kind, flags):
    """(state buffer names, scalar names, body lines) of one optimizer variant.

    In the body: `p` (param value, written back), `g` (gradient, already negated for
    maximize), each state buffer name as a variable loaded from and stored back to its buffer."""
    f = dict(flags)
    L = []
    if kind == "sgd":
        bufs = ["buf"] if f["momentum"] else []
        scal = ["wd", "momentum", "damp1", "neg_lr", "first"]
        if f["wd"]:
            L.append("g = fma(p, wd, g);")
        if f["momentum"]:
            L.append("buf = first ? g : fma(g, damp1, buf * momentum);")
            L.append("g = fma(buf, momentum, g);" if f["nesterov"] else "g = buf;")
        L.append("p = fma(g, neg_lr, p);")
    elif kind == "adam":
        bufs = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if f["amsgrad"] else [])
        scal = ["wd", "decay", "w1", "beta2", "c2", "bc2_sqrt", "eps", "neg_step_size"]
        if f["wd"]:
            L.append("p = p * decay;" if f["decoupled"] else "g = fma(p, wd, g);")
        L.append("exp_avg = " + _lerp("exp_avg", "g", "w1") + ";")
        L.append("exp_avg_sq = exp_avg_sq * beta2;")
        L.append("exp_avg_sq = exp_avg_sq + c2 * g * g;")
        if f["amsgrad"]:
            L.append("max_exp_avg_sq = fmax(max_exp_avg_sq, exp_avg_sq);")
            L.append("T denom = sqrt(max_exp_avg_sq) / bc2_sqrt + eps;")
        else:
            L.append("T denom = sqrt(exp_avg_sq) / bc2_sqrt + eps;")
        L.append("p = p + neg_step_size * exp_avg / denom;")
    elif kind == "rmsprop":
        bufs = ["square_avg"] + (["momentum_buffer"] if f["momentum"] else []) + (["grad_avg"] if f["centered"] else [])
        scal = ["wd", "alpha", "c", "eps", "momentum", "neg_lr"]
        if f["wd"]:
            L.append("g = fma(p, wd, g);")
        L.append("square_avg = square_avg * alpha;")
        L.append("square_avg = square_avg + c * g * g;")
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
        if f["wd"]:
            L.append("g = fma(p, wd, g);")
        L.append("sum = sum + (T)1 * g * g;")
        L.append("T std_ = sqrt(sum) + eps;")
        L.append("p = p + neg_clr * g / std_;")
    else:
        raise ValueError(kind)
    return bufs, scal, L


def gen_source(kind, flags, ct, idx_t, has_step):
    bufs, scal, body = _body(kind, flags)
    f = dict(flags)
    params = [f"__global {ct}* param, {idx_t} p_off", f"__global const {ct}* grad, {idx_t} g_off"]
    params += [f"__global {ct}* s_{b}, {idx_t} {b}_off" for b in bufs]
    if has_step:
        params.append(f"__global float* step, {idx_t} step_off, float step_val")
    params.append(f"{idx_t} n")
    params += [("int " if s == "first" else "T ") + s for s in scal]
    pre = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" if ct == "double" else ""
    pre += "#pragma OPENCL FP_CONTRACT OFF\n"
    lines = [pre + f"#define T {ct}",
             f"__kernel void opt_{kind}({', '.join(params)}) {{",
             f"    {idx_t} i = get_global_id(0);"]
    if has_step:
        lines.append("    if (i == 0) step[step_off] = step_val;")
    lines.append("    if (i >= n) return;")
    lines.append("    T p = param[p_off + i];")
    lines.append("    T g = grad[g_off + i];" if not f.get("maximize") else "    T g = -grad[g_off + i];")
    for b in bufs:
        lines.append(f"    T {b} = s_{b}[{b}_off + i];")
    lines += ["    " + ln for ln in body]
    for b in bufs:
        lines.append(f"    s_{b}[{b}_off + i] = {b};")
    lines.append("    param[p_off + i] = p;")
    lines.append("}")
    return "\n".join(lines) + "\n", f"opt_{kind}"


def _dense(t):
    return t._strides == contiguous_strides(t._shape) or t.numel() <= 1


def fused_step(kind, flags, param, grad, states, step, step_val, scalars):
    """Run one fused update of `param` (in place, with `grad`) and its `states` (list of
    tensors in the variant's buffer order); `step` is the float32 'step' tensor (or None),
    set to step_val.  scalars: {name: python number}, cast to the param's C type."""
    n = param.numel()
    dev = param._storage.device
    ct = param.dtype.ctype
    flags = tuple(sorted(flags.items()))
    tmp = None
    p = param
    if not _dense(param):  # a strided view: update a contiguous copy, write it back
        p = tmp = param.contiguous()
    if not _dense(grad):
        grad = grad.contiguous()
    states = [s if _dense(s) else _make_dense(s) for s in states]
    big = max([p._storage.size, grad._storage.size] + [s._storage.size for s in states]) >= 2**31
    idx_t = "long" if big else "int"
    it = np.int64 if big else np.int32
    key = ("optim", kind, flags, ct, idx_t, step is not None)
    knl = dev.programs.kernel(key, lambda: gen_source(kind, flags, ct, idx_t, step is not None))
    bufs, scal, _ = _body(kind, dict(flags))
    npt = _NP[ct]
    args = [p._storage.buf, it(p._offset), grad._storage.buf, it(grad._offset)]
    for s in states:
        args += [s._storage.buf, it(s._offset)]
    if step is not None:
        args += [step._storage.buf, it(step._offset), np.float32(step_val)]
    args.append(it(n))
    for s in scal:
        args.append(np.int32(scalars[s]) if s == "first" else npt(scalars.get(s, 0.0)))
    if n == 0 and step is None:
        return
    wg = dev.wg
    launch(dev, knl, (round_up(max(n, 1), wg),), (wg,), args, "optim_" + kind)
    if tmp is not None:
        from ..ops._core import copy_into
        copy_into(param, tmp)
    param._storage.version += 1
    for s in states:
        s._storage.version += 1
    if step is not None:
        step._storage.version += 1


def _make_dense(s):
    raise RuntimeError("optimizer state tensors must be contiguous")
