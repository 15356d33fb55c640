"""check_op: compare a clgrad op with PyTorch on the CPU, forward and gradients."""
import os

import numpy as np
import torch

import engine


# torch 2.13 (the pinned dev version) differentiates aminmax and narrow_copy; older references (the
# NVIDIA box's image has 2.11) raise "derivative for aten::... is not implemented": their gradient
# checks need a newer reference, the forward checks don't
TORCH_VERSION = tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2])
TORCH_GRADS_AMINMAX_NARROW_COPY = TORCH_VERSION >= (2, 13)

TOL = {engine.float32: (1e-5, 1e-5), engine.float64: (1e-10, 1e-10)}
# CLGRAD_TEST_SEED shifts the inputs (flakiness hunts); unset, every run draws the same values
rng = np.random.default_rng(1234 + int(os.environ.get("CLGRAD_TEST_SEED", "0")))


def fp64():
    from engine.runtime.device import default_device
    return default_device().fp64


def rand(shape, dtype=np.float32, low=-2.0, high=2.0, positive=False):
    if np.dtype(dtype).kind == "f":
        a = rng.uniform(0.1 if positive else low, high, size=shape).astype(dtype)
    elif np.dtype(dtype) == np.bool_:
        a = rng.random(size=shape) > 0.5
    else:
        a = rng.integers(-5 if not positive else 1, 6, size=shape).astype(dtype)
    return np.asarray(a)


def to_engine(a, requires_grad=False, noncontig=False):
    """A clgrad tensor with a's values; noncontig makes it a transposed (strided) view."""
    if noncontig and a.ndim >= 2:
        t = engine.tensor(np.ascontiguousarray(np.swapaxes(a, 0, -1))).transpose(0, -1)
        assert not t.is_contiguous() or 1 in a.shape or a.size == 0
        t = t.detach()
    elif noncontig and a.ndim == 1 and a.size > 1:
        t = engine.tensor(np.repeat(a, 2))[::2].detach()
    else:
        t = engine.tensor(a)
    if requires_grad:
        t.requires_grad_(True)
    return t


def to_torch(a, requires_grad=False):
    t = torch.tensor(a)
    if requires_grad:
        t.requires_grad_(True)
    return t


def assert_close(mine, ref, rtol=1e-5, atol=1e-5, msg=""):
    if isinstance(ref, (tuple, list)):
        assert isinstance(mine, (tuple, list)) and len(mine) == len(ref), f"{msg}: structure differs"
        for m, r in zip(mine, ref):
            assert_close(m, r, rtol, atol, msg)
        return
    if isinstance(ref, torch.Tensor):
        assert isinstance(mine, engine.Tensor), f"{msg}: expected a Tensor, got {type(mine)}"
        assert tuple(mine.shape) == tuple(ref.shape), f"{msg}: shape {tuple(mine.shape)} != {tuple(ref.shape)}"
        assert str(mine.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1], f"{msg}: dtype {mine.dtype} != {ref.dtype}"
        m = mine.detach().numpy()
        r = ref.detach().numpy()
        if r.dtype == np.bool_ or np.issubdtype(r.dtype, np.integer):
            np.testing.assert_array_equal(m, r, err_msg=msg)
        else:
            np.testing.assert_allclose(m, r, rtol=rtol, atol=atol, equal_nan=True, err_msg=msg)
    else:
        if isinstance(mine, engine.Tensor):
            mine = mine.item()
        assert np.isclose(mine, ref, rtol=rtol, atol=atol, equal_nan=True), f"{msg}: {mine} != {ref}"


def check_op(fn, *arrays, torch_fn=None, grad=True, rtol=None, atol=None, noncontig=False, grad_rtol=None,
             grad_atol=None):
    """Run fn(torch, *tensors) with clgrad (engine as `torch`) and PyTorch; compare outputs and grads.

    `arrays` are numpy arrays (float ones get requires_grad when grad=True) or other
    Python values passed through unchanged."""
    torch_fn = torch_fn or fn
    is_arr = [isinstance(a, np.ndarray) for a in arrays]
    diff = [isinstance(a, np.ndarray) and a.dtype.kind == "f" and grad for a in arrays]
    e_in = [to_engine(a, d, noncontig) if isarr else a for a, d, isarr in zip(arrays, diff, is_arr)]
    t_in = [to_torch(a, d) if isarr else a for a, d, isarr in zip(arrays, diff, is_arr)]
    out_e = fn(engine, *e_in)
    out_t = torch_fn(torch, *t_in)
    dt = next((a.dtype for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind == "f"), np.float32)
    r0, a0 = (1e-10, 1e-10) if dt == np.float64 else (1e-5, 1e-5)
    rtol = r0 if rtol is None else rtol
    atol = a0 if atol is None else atol
    assert_close(out_e, out_t, rtol, atol, "forward")
    if not any(diff):
        return out_e
    outs_t = out_t if isinstance(out_t, (tuple, list)) else (out_t,)
    outs_e = out_e if isinstance(out_e, (tuple, list)) else (out_e,)
    pairs = [(e, t) for e, t in zip(outs_e, outs_t) if isinstance(t, torch.Tensor) and t.requires_grad]
    if not pairs:
        return out_e
    ups = [rng.standard_normal(tuple(t.shape)).astype(t.detach().numpy().dtype) for _, t in pairs]
    loss_t = sum((t * torch.tensor(u)).sum() for (_, t), u in zip(pairs, ups))
    loss_e = sum(((e * engine.tensor(u)).sum() for (e, _), u in zip(pairs, ups)), start=engine.tensor(0.0, dtype=pairs[0][0].dtype))
    tin = [t for t, d in zip(t_in, diff) if d]
    ein = [e for e, d in zip(e_in, diff) if d]
    g_t = torch.autograd.grad(loss_t, tin, allow_unused=True)
    g_e = engine.autograd.grad(loss_e, ein, allow_unused=True)
    for k, (ge, gt) in enumerate(zip(g_e, g_t)):
        if gt is None:
            assert ge is None or np.allclose(ge.numpy(), 0), f"grad {k}: expected None"
            continue
        assert ge is not None, f"grad {k}: clgrad gave None, torch gave a gradient"
        assert_close(ge, gt, grad_rtol or max(rtol, 1e-4), grad_atol or max(atol, 1e-5), f"grad of input {k}")
    return out_e


def kernel_names(fn):
    """(fn()'s result, the names of the kernels it launched), through the profiler."""
    from engine.runtime import launch as _launch
    tok = _launch.begin_trace()
    try:
        out = fn()
    finally:
        recs = _launch.end_trace(tok)
    return out, [r["name"] for r in recs if r["kind"] == "kernel"]

