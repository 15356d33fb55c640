"""Finite-difference gradient checks (torch.autograd.gradcheck)."""
import numpy as np

from ..tensor import Tensor


class GradcheckError(RuntimeError):
    pass


def gradcheck(func, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, **_):
    """Compare analytical gradients of sum(out * r) for random r with central differences."""
    from ..ops.creation import tensor
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    outs = func(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    rng = np.random.default_rng(0)
    rs = [tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype, device=o.device) for o in outs]

    def scalar(*xs):
        o = func(*xs)
        o = o if isinstance(o, tuple) else (o,)
        return sum(((a * r).sum() for a, r in zip(o, rs)), start=0.0)

    diff_inputs = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    from .engine import grad
    analytic = grad(scalar(*inputs), diff_inputs, allow_unused=True)
    for k, x in enumerate(diff_inputs):
        base = x.detach().numpy().astype(np.float64)
        num = np.zeros(base.size)
        flat = base.reshape(-1)
        for i in range(flat.size):
            vals = []
            for sgn in (1, -1):
                pert = flat.copy()
                pert[i] += sgn * eps
                xs = [tensor(pert.reshape(base.shape), dtype=x.dtype, device=x.device, requires_grad=True)
                      if a is x else a
                      for a in inputs]
                vals.append(float(scalar(*xs)))
            num[i] = (vals[0] - vals[1]) / (2 * eps)
        a = analytic[k]
        a = np.zeros(base.size) if a is None else a.detach().numpy().astype(np.float64).reshape(-1)
        if not np.allclose(a, num, atol=atol, rtol=rtol):
            if raise_exception:
                raise GradcheckError(f"Jacobian mismatch for input {k}:\nnumerical: {num}\nanalytical: {a}")
            return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, **_):
    """Second derivatives: gradcheck of (inputs -> d<func(inputs), v>/d inputs) with
    create_graph=True, for a fixed random (or given) v."""
    from ..ops.creation import tensor
    from .engine import grad
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    outs = func(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    if grad_outputs is None:
        rng = np.random.default_rng(1)
        grad_outputs = [tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype, device=o.device) for o in outs]
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    # as torch: v is an input of the check too, so a function linear in its inputs (whose
    # second derivative is zero) still gives first-derivative outputs that depend on something
    vs = [g.detach().requires_grad_(g.dtype.is_floating_point) for g in grad_outputs]
    n = len(inputs)

    def first(*args):
        xs, v = args[:n], args[n:]
        o = func(*xs)
        o = o if isinstance(o, tuple) else (o,)
        gs = grad(o, [xs[i] for i in diff], grad_outputs=list(v), create_graph=True, allow_unused=True)
        return tuple(g if g is not None else xs[i] * 0 for g, i in zip(gs, diff))
    return gradcheck(first, inputs + tuple(vs), eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception)
