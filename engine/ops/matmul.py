"""Matrix products: matmul / mm / bmm / mv / dot / outer / addmm / baddbmm / linear / einsum / tensordot.

Every product goes through `_gemm_raw`, which hands strided views (transposes, slices and
stride-0 broadcast batches included) to the batched GEMM of engine/runtime/matmul.py without
copying them.  The backward formulas (grad_a = g @ b^T, grad_b = a^T @ g, summed over broadcast
batch dims) are written with Tensor ops, so double backward works.
"""
import itertools
import math

from .. import dtypes as D
from ..autograd.function import Function
from ..runtime import matmul as _rt
from ..tensor import Tensor, empty, make
from ._core import broadcast_shapes, device_of, expand_raw, sum_to

__all__ = ["matmul", "mm", "bmm", "mv", "dot", "vdot", "inner", "outer", "ger", "addmm", "baddbmm", "addbmm",
           "addmv", "addr", "einsum", "tensordot", "chain_matmul"]

_CNAME = {"float32": "float", "float64": "double", "int64": "long int", "int32": "int", "int16": "short int",
          "int8": "signed char", "uint8": "unsigned char", "float16": "c10::Half", "bool": "bool"}
_SNAME = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "int16": "Short",
          "int8": "Char", "uint8": "Byte", "float16": "Half", "bool": "Bool"}


def _sn(t):
    return _SNAME[t.dtype.name]


def _no_bool(name, *ts):
    for t in ts:
        if t.dtype is D.bool_:
            raise NotImplementedError(f'"{name}" not implemented for \'Bool\'')


def _check_tensor(name, *ts):
    for t in ts:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): argument must be Tensor, not {type(t).__name__}")


# ---- the raw product (no autograd) -------------------------------------------------------------------
def _desc(t, sb0, sb1, s_r, s_c, extra_off=0):
    return (t._storage, t._offset + extra_off, (sb0, sb1, s_r, s_c))


def _gemm_raw(a, b, d=None, alpha=1, beta=0, out=None, tri=0):
    """(*ba, M, K) @ (*bb, K, N) [* alpha + beta * d] -> a new contiguous (*batch, M, N) tensor.

    a, b: raw tensors of >= 2 dims with equal dtype and matching K; d broadcasts to the output.
    out: an uninitialised (*batch, M, N) tensor to write instead (any strides: the OpenCL kernels
    take them, and so does the host-BLAS path).
    tri: runtime.matmul's TRI_* hint for causal attention's products (dropped when the batch folds into M,
    where a row index is no longer the query's)."""
    dev = device_of([a, b] if d is None else [a, b, d])
    dt = a.dtype
    M, K = a._shape[-2:]
    N = b._shape[-1]
    batch = broadcast_shapes(a._shape[:-2], b._shape[:-2])
    out_shape = batch + (M, N)
    if d is not None and beta != 0:
        d = expand_raw(d, out_shape)   # PyTorch's "The expanded size of the tensor ..." on mismatch
    else:
        d = None
    if out is None:
        out = empty(out_shape, dt, dev)
    if out.numel() == 0:
        return out
    ae = expand_raw(a, batch + (M, K))
    be = expand_raw(b, batch + (K, N))
    ops = [ae, be, out] + ([d] if d is not None else [])
    # collapse the batch dims jointly over all operands (size-1 dims dropped, mergeable neighbours merged)
    dims = []
    for i, n in enumerate(batch):
        if n == 1:
            continue
        ss = [o._strides[i] for o in ops]
        if dims and all(p == s * n for p, s in zip(dims[-1][1], ss)):
            dims[-1] = (dims[-1][0] * n, ss)
        else:
            dims.append((n, ss))
    rows = [o._strides[-2] for o in ops]   # row strides (m for A, k for B, m for C / D)
    # fold: B shared by the whole batch and the batch continues A's/C's/D's rows -> one big GEMM
    if len(dims) == 1 and dims[0][1][1] == 0:
        n, ss = dims[0]
        rs = [ss[i] if M == 1 else rows[i] for i in range(len(ops))]
        if all(ss[i] == M * rs[i] for i in range(len(ops)) if i != 1):
            dims = []
            M, tri = M * n, 0
            rows = [rs[0], rows[1]] + rs[2:]
    while len(dims) < 2:
        dims.insert(0, (1, [0] * len(ops)))
    lead, (n0, s0), (n1, s1) = dims[:-2], dims[-2], dims[-1]
    cols = [o._strides[-1] for o in ops]
    for idx in itertools.product(*[range(n) for n, _ in lead]):
        offs = [sum(i * ss[k] for i, (_, ss) in zip(idx, lead)) for k in range(len(ops))]
        descs = [_desc(o, s0[k], s1[k], rows[k], cols[k], offs[k]) for k, o in enumerate(ops)]
        _rt.gemm(dev, dt, M, N, K, (n0, n1), descs[2], descs[0], descs[1], descs[3] if d is not None else None,
                 alpha, beta, tri)
    return out


def _view(t, shape):
    """A raw view of a contiguous tensor with a new shape."""
    st = []
    acc = 1
    for n in reversed(shape):
        st.append(acc)
        acc *= n
    return make(t._storage, tuple(shape), tuple(reversed(st)), t._offset, t.dtype)


def _as_row(v):      # (K,) -> (1, K)
    return make(v._storage, (1,) + v._shape, (0,) + v._strides, v._offset, v.dtype)


def _as_col(v):      # (K,) -> (K, 1)
    return make(v._storage, v._shape + (1,), v._strides + (0,), v._offset, v.dtype)


def _matmul_fwd(a, b):
    a1 = _as_row(a) if a.ndim == 1 else a
    b1 = _as_col(b) if b.ndim == 1 else b
    out = _gemm_raw(a1, b1)
    shape = out._shape
    if b.ndim == 1:
        shape = shape[:-1]
    if a.ndim == 1:
        shape = shape[:-2] + shape[-1:] if b.ndim != 1 else shape[:-1]
    return _view(out, shape) if shape != out._shape else out


# ---- autograd ----------------------------------------------------------------------------------------
def _matmul_backward(a, b, g, need):
    ga = gb = None
    a1 = a.unsqueeze(0) if a.ndim == 1 else a
    b1 = b.unsqueeze(-1) if b.ndim == 1 else b
    g1 = g
    if b.ndim == 1:
        g1 = g1.unsqueeze(-1)
    if a.ndim == 1:
        g1 = g1.unsqueeze(-2)
    if need[0]:
        ga = sum_to(matmul(g1, b1.mT), a1.shape)
        if a.ndim == 1:
            ga = ga.reshape(a.shape)
    if need[1]:
        if b1.ndim == 2 and a1.ndim > 2:
            # B was shared by the batch: one GEMM over the folded batch instead of a batch + a sum
            K, N = b1.shape
            rows = math.prod(a1.shape[:-1])
            gb = matmul(a1.reshape(rows, K).mT, g1.reshape(rows, N))
        else:
            gb = sum_to(matmul(a1.mT, g1), b1.shape)
        if b.ndim == 1:
            gb = gb.reshape(b.shape)
    return ga, gb


class MatMul(Function):
    node_name = "UnsafeViewBackward0"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _matmul_fwd(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return _matmul_backward(a, b, g, ctx.needs_input_grad)


class Mm(MatMul):
    node_name = "MmBackward0"


class Bmm(MatMul):
    node_name = "BmmBackward0"


class Mv(MatMul):
    node_name = "MvBackward0"


class Dot(MatMul):
    node_name = "DotBackward0"


class VecMat(MatMul):
    node_name = "SqueezeBackward4"


class AddMM(Function):
    """beta * input + alpha * (m1 @ m2) for 2-D (addmm) or 3-D (baddbmm) m1, m2: one fused kernel."""
    node_name = "AddmmBackward0"

    @staticmethod
    def forward(ctx, inp, m1, m2, beta, alpha):
        ctx.save_for_backward(m1, m2)
        ctx.coef = (beta, alpha)
        ctx.in_shape = inp.shape
        return _gemm_raw(m1, m2, inp, alpha, beta)

    @staticmethod
    def backward(ctx, g):
        m1, m2 = ctx.saved_tensors
        beta, alpha = ctx.coef
        need = ctx.needs_input_grad
        gi = sum_to(g if beta == 1 else g * beta, ctx.in_shape) if need[0] else None
        g1 = g if alpha == 1 else g * alpha
        ga, gb = _matmul_backward(m1, m2, g1, need[1:3])
        return gi, ga, gb, None, None


class BAddBmm(AddMM):
    node_name = "BaddbmmBackward0"


class Linear(Function):
    """input @ weight^T + bias with weight (out, in): weight^T is a strided view (no copy), the
    leading dims of input fold into the rows of one GEMM, and the bias add is fused."""
    node_name = "AddmmBackward0"

    @staticmethod
    def forward(ctx, x, w, bias):
        ctx.save_for_backward(x, w)
        ctx.bias_shape = bias.shape if bias is not None else None
        wt = make(w._storage, (w._shape[1], w._shape[0]), (w._strides[1], w._strides[0]), w._offset, w.dtype)
        x1 = _as_row(x) if x.ndim == 1 else x
        out = _gemm_raw(x1, wt, bias, 1, 1 if bias is not None else 0)
        return _view(out, x.shape[:-1] + (w._shape[0],)) if x.ndim == 1 else out

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        nout, nin = w.shape
        rows = math.prod(x.shape[:-1])
        g2 = g.reshape(rows, nout)
        gx = gw = gb = None
        if need[0]:
            gx = matmul(g2, w).reshape(x.shape)
        if need[1]:
            gw = matmul(g2.mT, x.reshape(rows, nin))
        if ctx.bias_shape is not None and need[2]:
            gb = sum_to(g2, ctx.bias_shape)
        return gx, gw, gb


class LinearNoBias(Linear):
    node_name = "MmBackward0"


# ---- public API --------------------------------------------------------------------------------------
def _out(r, out):
    if out is None:
        return r
    from .pointwise import _out as _pw_out
    return _pw_out(r, out)


def _same_dtype_mm(a, b):
    if a.dtype is not b.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {_CNAME[a.dtype.name]} != "
                           f"{_CNAME[b.dtype.name]}")


def _check_dot(a, b, name="dot"):
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] to "
                           f"have the same number of elements, but got {a.shape[0]} and {b.shape[0]} elements "
                           "respectively")
    if a.dtype is not b.dtype:
        raise RuntimeError(f"{name} : expected both vectors to have same dtype, but found {_sn(a)} and {_sn(b)}")
    _no_bool(name, a)


def _check_mv(m, v):
    if m.ndim != 2 or v.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {m.ndim}, {v.ndim}")
    if m.shape[1] != v.shape[0]:
        raise RuntimeError(f"size mismatch, got input ({m.shape[0]}), mat ({m.shape[0]}x{m.shape[1]}), "
                           f"vec ({v.shape[0]})")
    if m.dtype is not v.dtype:
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got {_sn(v)}, {_sn(m)}, and "
                           f"{_sn(v)}")
    _no_bool("addmv_impl_cpu", m)


def _check_mm(a, b):
    if a.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if b.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
                           f"{b.shape[0]}x{b.shape[1]})")
    _same_dtype_mm(a, b)
    _no_bool("addmm_impl_cpu_", a)


def _check_bmm(a, b):
    if a.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if b.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{a.shape[0]}, "
                           f"{a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}].")
    if a.dtype is not b.dtype:
        raise RuntimeError(f"expected scalar type {_sn(a)} but found {_sn(b)}")
    _no_bool("bmm", a)


def matmul(input, other, *, out=None):
    """torch.matmul: dot / mv / mm / batched with broadcasting; 1-D operands are promoted and removed."""
    _check_tensor("matmul", input, other)
    a, b = input, other
    da, db = a.ndim, b.ndim
    if da == 0 or db == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {da}D and {db}D")
    if da == 1 and db == 1:
        _check_dot(a, b)
        return _out(Dot.apply(a, b), out)
    if da == 2 and db == 1:
        _check_mv(a, b)
        return _out(Mv.apply(a, b), out)
    if da == 1 and db == 2:
        if a.shape[0] != b.shape[0]:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied (1x{a.shape[0]} and "
                               f"{b.shape[0]}x{b.shape[1]})")
        _same_dtype_mm(a, b)
        _no_bool("addmm_impl_cpu_", a)
        return _out(VecMat.apply(a, b), out)
    if da == 2 and db == 2:
        _check_mm(a, b)
        return _out(Mm.apply(a, b), out)
    K = a.shape[-1]
    if da >= 3 and db <= 2:   # PyTorch folds the batch into the rows: its messages name the folded shape
        rows = math.prod(a.shape[:-1])
        if db == 1:
            if b.shape[0] != K:
                raise RuntimeError(f"size mismatch, got input ({rows}), mat ({rows}x{K}), vec ({b.shape[0]})")
            if a.dtype is not b.dtype:
                raise RuntimeError(f"addmv input tensors must have the same dtype, but got {_sn(b)}, {_sn(a)}, "
                                   f"and {_sn(b)}")
        else:
            if b.shape[0] != K:
                raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{K} and "
                                   f"{b.shape[0]}x{b.shape[1]})")
            _same_dtype_mm(a, b)
        _no_bool("addmm_impl_cpu_", a)
        return _out(MatMul.apply(a, b), out)
    batch = broadcast_shapes(a.shape[:-2] if da > 1 else (), b.shape[:-2] if db > 1 else ())
    kb = b.shape[-2] if db > 1 else b.shape[0]
    if kb != K:
        nb = math.prod(batch)
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{nb}, {K}] but got: "
                           f"[{nb}, {kb}].")
    if a.dtype is not b.dtype:
        raise RuntimeError(f"expected scalar type {_sn(a)} but found {_sn(b)}")
    _no_bool("bmm", a)
    return _out(MatMul.apply(a, b), out)


def mm(input, mat2, *, out=None):
    _check_tensor("mm", input, mat2)
    _check_mm(input, mat2)
    return _out(Mm.apply(input, mat2), out)


def bmm(input, mat2, *, out=None):
    _check_tensor("bmm", input, mat2)
    _check_bmm(input, mat2)
    return _out(Bmm.apply(input, mat2), out)


def mv(input, vec, *, out=None):
    _check_tensor("mv", input, vec)
    _check_mv(input, vec)
    return _out(Mv.apply(input, vec), out)


def dot(input, other, *, out=None):
    _check_tensor("dot", input, other)
    _check_dot(input, other)
    return _out(Dot.apply(input, other), out)


def vdot(input, other, *, out=None):
    _check_tensor("vdot", input, other)
    _check_dot(input, other, "vdot")
    return _out(Dot.apply(input, other), out)


def outer(input, vec2, *, out=None):
    _check_tensor("outer", input, vec2)
    if input.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument self, but got {input.ndim}-D")
    if vec2.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument vec2, but got {vec2.ndim}-D")
    # a broadcast product: promotes dtypes like PyTorch's outer (it is mul underneath there too)
    return _out(input.unsqueeze(1) * vec2.unsqueeze(0), out)


ger = outer


def inner(input, other, *, out=None):
    _check_tensor("inner", input, other)
    if input.ndim == 0 or other.ndim == 0:
        return _out(input * other, out)
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but got shapes "
                           f"{list(input.shape)} and {list(other.shape)}")
    return _out(tensordot(input, other, ([input.ndim - 1], [other.ndim - 1])), out)


def _scal_ok(dt, v, name):
    if not dt.is_floating_point and isinstance(v, float) and v != int(v):
        raise RuntimeError(f"For integral input tensors, argument {name} must not be a floating point number.")


def addmm(input, mat1, mat2, *, beta=1, alpha=1, out=None):
    _check_tensor("addmm", input, mat1, mat2)
    _check_mm(mat1, mat2)
    if input.dtype is not mat1.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {_CNAME[input.dtype.name]} != "
                           f"{_CNAME[mat1.dtype.name]}")
    _scal_ok(mat1.dtype, beta, "beta")
    _scal_ok(mat1.dtype, alpha, "alpha")
    expand_raw(input, (mat1.shape[0], mat2.shape[1]))
    return _out(AddMM.apply(input, mat1, mat2, beta, alpha), out)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1, out=None):
    _check_tensor("baddbmm", input, batch1, batch2)
    _check_bmm(batch1, batch2)
    if input.dtype is not batch1.dtype:
        raise RuntimeError(f"expected scalar type {_sn(batch1)} but found {_sn(input)}")
    _scal_ok(batch1.dtype, beta, "beta")
    _scal_ok(batch1.dtype, alpha, "alpha")
    expand_raw(input, (batch1.shape[0], batch1.shape[1], batch2.shape[2]))
    return _out(BAddBmm.apply(input, batch1, batch2, beta, alpha), out)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1, out=None):
    _check_bmm(batch1, batch2)
    r = bmm(batch1, batch2).sum(0)
    return _out(_axpby(input, r, beta, alpha), out)


def _axpby(inp, r, beta, alpha):
    r = r if alpha == 1 else r * alpha
    if beta == 0:
        return r + inp * 0 if inp.shape != r.shape else r
    return r + (inp if beta == 1 else inp * beta)


def addmv(input, mat, vec, *, beta=1, alpha=1, out=None):
    _check_mv(mat, vec)
    return _out(_axpby(input, mv(mat, vec), beta, alpha), out)


def addr(input, vec1, vec2, *, beta=1, alpha=1, out=None):
    return _out(_axpby(input, outer(vec1, vec2), beta, alpha), out)


def linear(input, weight, bias=None):
    """torch.nn.functional.linear: input @ weight^T + bias (weight (out, in) or (in,))."""
    _check_tensor("linear", input, weight)
    if weight.ndim == 1 or weight.ndim > 2 or input.ndim == 0 or (bias is not None and bias.ndim > 1):
        if weight.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {weight.ndim}D")
        if weight.ndim == 1 and bias is not None and input.ndim >= 2:
            raise RuntimeError("mat2 must be a matrix, got 1-D tensor")
        r = matmul(input, weight if weight.ndim == 1 else weight.t())
        return r if bias is None else r + bias
    if input.shape[-1] != weight.shape[1]:
        rows = math.prod(input.shape[:-1])
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} and "
                           f"{weight.shape[1]}x{weight.shape[0]})")
    _same_dtype_mm(input, weight)
    _no_bool("addmm_impl_cpu_", input)
    if bias is not None:
        if bias.dtype is not input.dtype:
            raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {_CNAME[bias.dtype.name]} "
                               f"!= {_CNAME[input.dtype.name]}")
        expand_raw(bias, input.shape[:-1] + (weight.shape[0],))
        return Linear.apply(input, weight, bias)
    return LinearNoBias.apply(input, weight, None)


def chain_matmul(*matrices):
    if len(matrices) == 1 and isinstance(matrices[0], (list, tuple)):
        matrices = tuple(matrices[0])
    r = matrices[0]
    for m in matrices[1:]:
        r = mm(r, m)
    return r


# ---- tensordot / einsum: permute + reshape + one GEMM --------------------------------------------------
def tensordot(a, b, dims=2, out=None):
    _check_tensor("tensordot", a, b)
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
        if len(da) != len(db):
            raise RuntimeError("both dimension lists should have same length")
    da = [d + a.ndim if d < 0 else d for d in da]
    db = [d + b.ndim if d < 0 else d for d in db]
    for x, y in zip(da, db):
        if a.shape[x] != b.shape[y]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {a.shape[x]} in dim {x} "
                               f"and second has size {b.shape[y]} in dim {y}")
    fa = [d for d in range(a.ndim) if d not in da]
    fb = [d for d in range(b.ndim) if d not in db]
    ksz = math.prod(a.shape[d] for d in da)
    sa = [a.shape[d] for d in fa]
    sb = [b.shape[d] for d in fb]
    am = a.permute(fa + da).reshape(math.prod(sa), ksz)
    bm = b.permute(db + fb).reshape(ksz, math.prod(sb))
    return _out(mm(am, bm).reshape(sa + sb), out)


def _parse_einsum(eq, operands):
    eq = eq.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->")
    else:
        lhs, rhs = eq, None
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise RuntimeError(f"einsum(): more operands were provided than specified in the equation"
                           if len(terms) < len(operands) else
                           "einsum(): fewer operands were provided than specified in the equation")
    ell = max((op.ndim - len(t.replace("...", "")) for t, op in zip(terms, operands) if "..." in t), default=0)
    ell_labels = [chr(0x100 + i) for i in range(ell)]
    labels = []
    for t, op in zip(terms, operands):
        if "..." in t:
            pre, post = t.split("...")
            n = op.ndim - len(pre) - len(post)
            if n < 0:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(pre) + len(post)}) "
                                   f"is more than the number of dimensions ({op.ndim}) for operand")
            lab = list(pre) + ell_labels[ell - n:] + list(post)
        else:
            lab = list(t)
        for c in lab:
            if not (c.isalpha() or ord(c) >= 0x100):
                raise RuntimeError(f"einsum(): invalid subscript given in the equation string: {c!r}")
        if len(lab) != op.ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(lab)}) does not match "
                               f"the number of dimensions ({op.ndim}) for operand and no ellipsis was given")
        labels.append(lab)
    if rhs is None:
        counts = {}
        for lab in labels:
            for c in lab:
                counts[c] = counts.get(c, 0) + 1
        out = ell_labels + sorted(c for c, k in counts.items() if k == 1 and ord(c) < 0x100)
    else:
        if "..." in rhs:
            pre, post = rhs.split("...")
            out = list(pre) + ell_labels + list(post)
        else:
            out = list(rhs)
        for c in out:
            if not any(c in lab for lab in labels):
                raise RuntimeError(f"einsum(): output subscript {c} does not appear in the equation for any "
                                   "input operand")
        if len(set(out)) != len(out):
            raise RuntimeError("einsum(): output subscript appears more than once in the output")
    return labels, out


def _diag_labels(x, lab):
    """Take the diagonal of repeated labels in one operand ('ii->i')."""
    while True:
        seen = {}
        rep = None
        for i, c in enumerate(lab):
            if c in seen:
                rep = (seen[c], i)
                break
            seen[c] = i
        if rep is None:
            return x, lab
        i, j = rep
        c = lab[i]
        x = x.diagonal(0, i, j)
        lab = [l for k, l in enumerate(lab) if k not in (i, j)] + [c]


def einsum(equation, *operands):
    """torch.einsum via diagonals, sums, permutes and batched matmuls (pairwise, left to right)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    labels, out = _parse_einsum(equation, operands)
    ops = []
    sizes = {}
    for x, lab in zip(operands, labels):
        x, lab = _diag_labels(x, lab)
        for c, n in zip(lab, x.shape):
            if sizes.get(c, 1) != n and n != 1 and sizes.get(c, 1) != 1:
                raise RuntimeError(f"einsum(): operands do not broadcast with remapped shapes (original->remapped)")
            if n != 1 or c not in sizes:
                sizes[c] = n
        ops.append([x, lab])
    # broadcast size-1 dims to the label's size (views, no copy)
    for o in ops:
        x, lab = o
        tgt = tuple(sizes[c] for c in lab)
        if tuple(x.shape) != tgt:
            o[0] = x.expand(tgt)

    def needed(k, c):   # is label c used by the output or any operand after k?
        return c in out or any(c in lab for _, lab in ops[k + 1:])

    def sum_unique(x, lab, k):
        drop = [i for i, c in enumerate(lab) if not needed(k, c)]
        if drop:
            x = x.sum(dim=tuple(drop))
            lab = [c for i, c in enumerate(lab) if i not in drop]
        return x, lab

    x, lab = sum_unique(*ops[0], 0)
    for k in range(1, len(ops)):
        y, ly = ops[k]
        # labels only in y and not needed later are summed before the product
        drop = [i for i, c in enumerate(ly) if c not in lab and not needed(k, c)]
        if drop:
            y = y.sum(dim=tuple(drop))
            ly = [c for i, c in enumerate(ly) if i not in drop]
        both = [c for c in lab if c in ly]
        bat = [c for c in both if needed(k, c)]
        con = [c for c in both if not needed(k, c)]
        left = [c for c in lab if c not in ly]
        right = [c for c in ly if c not in lab]
        xp = x.permute([lab.index(c) for c in bat + left + con])
        yp = y.permute([ly.index(c) for c in bat + con + right])
        nb = [sizes[c] for c in bat]
        nl, nc, nr = (math.prod(sizes[c] for c in g) for g in (left, con, right))
        r = matmul(xp.reshape(nb + [nl, nc]), yp.reshape(nb + [nc, nr]))
        x = r.reshape(nb + [sizes[c] for c in left] + [sizes[c] for c in right])
        lab = bat + left + right
        x, lab = sum_unique(x, lab, k)
    drop = [i for i, c in enumerate(lab) if c not in out]
    if drop:
        x = x.sum(dim=tuple(drop))
        lab = [c for i, c in enumerate(lab) if i not in drop]
    if lab != out:
        x = x.permute([lab.index(c) for c in out])
    return x


# ---- Tensor methods ----------------------------------------------------------------------------------
def _as_tensor_like(v, t):
    from .creation import tensor
    return v if isinstance(v, Tensor) else tensor(v, device=t.device)


def _inplace(fn):
    def m(self, *args, **kwargs):
        from .convert import inplace
        return inplace(self, fn, *args, **kwargs)
    return m


def _bind():
    T = Tensor
    T.matmul = lambda self, other: matmul(self, other)
    T.__matmul__ = lambda self, other: matmul(self, _as_tensor_like(other, self))
    T.__rmatmul__ = lambda self, other: matmul(_as_tensor_like(other, self), self)
    T.mm = lambda self, mat2: mm(self, mat2)
    T.bmm = lambda self, mat2: bmm(self, mat2)
    T.mv = lambda self, vec: mv(self, vec)
    T.dot = lambda self, other: dot(self, other)
    T.vdot = lambda self, other: vdot(self, other)
    T.inner = lambda self, other: inner(self, other)
    T.outer = lambda self, vec2: outer(self, vec2)
    T.ger = T.outer
    T.addmm = lambda self, mat1, mat2, *, beta=1, alpha=1: addmm(self, mat1, mat2, beta=beta, alpha=alpha)
    T.baddbmm = lambda self, b1, b2, *, beta=1, alpha=1: baddbmm(self, b1, b2, beta=beta, alpha=alpha)
    T.addbmm = lambda self, b1, b2, *, beta=1, alpha=1: addbmm(self, b1, b2, beta=beta, alpha=alpha)
    T.addmv = lambda self, mat, vec, *, beta=1, alpha=1: addmv(self, mat, vec, beta=beta, alpha=alpha)
    T.addr = lambda self, v1, v2, *, beta=1, alpha=1: addr(self, v1, v2, beta=beta, alpha=alpha)
    for n in ("addmm", "baddbmm", "addbmm", "addmv", "addr"):
        setattr(T, n + "_", _inplace(getattr(T, n)))


_bind()
