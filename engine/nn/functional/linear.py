"""linear functionals: linear (one fused GEMM + bias call), bilinear, normalize."""
from ...ops.matmul import linear as _linear
from ...ops import reduce as _R
from ...ops import pointwise as _P

__all__ = ["linear", "bilinear", "normalize"]

linear = _linear


def bilinear(input1, input2, weight, bias=None):
    """y[..., o] = sum_ij x1[..., i] W[o, i, j] x2[..., j] + b[o]."""
    if input1.shape[:-1] != input2.shape[:-1]:
        raise RuntimeError(f"bilinear(): input batch dimensions do not match: got {list(input1.shape[:-1])} "
                           f"and {list(input2.shape[:-1])}")
    if weight.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be a 3-D tensor, got {weight.ndim}-D")
    if input1.shape[-1] != weight.shape[1]:
        raise RuntimeError(f"bilinear(): input1 size does not match weight size: got {input1.shape[-1]} but "
                           f"expected {weight.shape[1]}")
    if input2.shape[-1] != weight.shape[2]:
        raise RuntimeError(f"bilinear(): input2 size does not match weight size: got {input2.shape[-1]} but "
                           f"expected {weight.shape[2]}")
    o, i, j = weight.shape
    # (..., i) @ (i, o*j) -> (..., o, j), then contract j with x2
    t = _linear(input1, weight.permute(0, 2, 1).reshape(o * j, i))
    t = t.reshape(tuple(input1.shape[:-1]) + (o, j))
    y = (t * input2.unsqueeze(-2)).sum(-1)
    return y if bias is None else y + bias


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    denom = _P.clamp(_R.norm(input, p, dim, keepdim=True), min=eps).expand_as(input)
    r = input / denom
    if out is not None:
        out.copy_(r)
        return out
    return r
