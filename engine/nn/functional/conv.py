"""conv functionals: conv1d / conv2d as im2col (an OpenCL kernel) + one batched GEMM.

The columns are (N, C*KH*KW, OH*OW), channel-major, so groups are a free view
(N, G, Cg*KH*KW, L) and the product with the (G, OCg, Cg*KH*KW) weight is one batched GEMM.
Backward: grad weight and grad columns come from the GEMM's backward, grad input from col2im
(a gather kernel, deterministic).  A 1x1 convolution with stride 1 and no padding skips im2col."""
from ...ops.conv import Col2Im, Convolution, Im2Col
from ...ops.matmul import matmul
from ...tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "unfold", "fold"]


def _tuple(v, n, name):
    if isinstance(v, (list, tuple)):
        v = tuple(int(a) for a in v)
        if len(v) == 1 and n != 1:
            return v * n
        if len(v) != n:
            raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} values to match "
                               f"the convolution dimensions, but got {name}={list(v)}")
        return v
    return (int(v),) * n


def _conv_padding(padding, stride, dilation, ks, nd):
    """-> (before, after) per spatial dim."""
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            r = []
            for d, k in zip(dilation, ks):
                tot = d * (k - 1)
                r.append((tot // 2, tot - tot // 2))
            return r
        raise RuntimeError(f"Invalid padding string: '{padding}'")
    p = _tuple(padding, nd, "padding")
    return [(a, a) for a in p]


_SNAME = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
          "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}
_CNAME = {"float32": "float", "float64": "double", "float16": "c10::Half", "int64": "long int", "int32": "int"}


def _dname(t):
    return str(t.dtype).split(".")[-1]


def _check_types(input, weight, bias):
    if input.dtype != weight.dtype:
        raise RuntimeError(f"expected scalar type {_SNAME.get(_dname(input), _dname(input))} but found "
                           f"{_SNAME.get(_dname(weight), _dname(weight))}")
    if bias is not None and bias.dtype != input.dtype:
        raise RuntimeError(f"Input type ({_CNAME.get(_dname(input), _dname(input))}) and bias type "
                           f"({_CNAME.get(_dname(bias), _dname(bias))}) should be the same")


def _convnd(input, weight, bias, stride, padding, dilation, groups, nd):
    name = f"conv{nd}d"
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{name}() received an invalid combination of arguments - got "
                        f"({type(input).__name__}, {type(weight).__name__})")
    if input.ndim not in (nd + 1, nd + 2):
        kind = {1: ("2D", "3D"), 2: ("3D", "4D")}[nd]
        raise RuntimeError(f"Expected {kind[0]} (unbatched) or {kind[1]} (batched) input to {name}, but got input "
                           f"of size: {list(input.shape)}")
    if weight.ndim != nd + 2:
        raise RuntimeError(f"weight should have at least three dimensions; expected {nd + 2}-dimensional weight "
                           f"for {nd + 2}-dimensional input, but got weight of size {list(weight.shape)} instead")
    unbatched = input.ndim == nd + 1
    if unbatched:
        input = input.unsqueeze(0)
    stride = _tuple(stride, nd, "stride")
    dilation = _tuple(dilation, nd, "dilation")
    groups = int(groups)
    ks = tuple(weight.shape[2:])
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError("dilation should be greater than zero")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    pads = _conv_padding(padding, stride, dilation, ks, nd)
    if any(a < 0 or b < 0 for a, b in pads):
        raise RuntimeError("negative padding is not supported")
    N, C = input.shape[:2]
    OC, Cg = weight.shape[:2]
    wsz = list(weight.shape)
    if OC % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
                           f"but got weight of size [{wsz}] instead")
    if Cg * groups != C:
        raise RuntimeError(f"Given groups={groups}, weight of size {wsz}, expected input{list(input.shape)} to have "
                           f"{Cg * groups} channels, but got {C} channels instead")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != OC):
        raise RuntimeError(f"Given weight of size {wsz}, expected bias to be 1-dimensional with {OC} elements, "
                           f"but got bias of size {list(bias.shape)} instead")
    _check_types(input, weight, bias)
    spatial = tuple(input.shape[2:])
    padded = [s + a + b for s, (a, b) in zip(spatial, pads)]
    eff = [d * (k - 1) + 1 for d, k in zip(dilation, ks)]
    if any(p < e for p, e in zip(padded, eff)):
        raise RuntimeError(f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). Kernel size: "
                           f"({' x '.join(map(str, eff))}). Kernel size can't be greater than actual input size")
    outs = [(p - e) // s + 1 for p, e, s in zip(padded, eff, stride)]
    # view as 2-D
    if nd == 1:
        x4 = input.unsqueeze(2)
        H, W = 1, spatial[0]
        OH, OW = 1, outs[0]
        KH, KW = 1, ks[0]
        SH, SW, PH, PW, DH, DW = 1, stride[0], 0, pads[0][0], 1, dilation[0]
    else:
        x4 = input
        H, W = spatial
        OH, OW = outs
        KH, KW = ks
        SH, SW = stride
        PH, PW = pads[0][0], pads[1][0]
        DH, DW = dilation
    pointwise = KH == 1 and KW == 1 and SH == 1 and SW == 1 and PH == 0 and PW == 0 and H == OH and W == OW
    geom = (C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW)
    w4 = weight.unsqueeze(2) if nd == 1 else weight
    out = Convolution.apply(x4, w4, bias, geom, groups, pointwise)
    if nd == 1:
        out = out.squeeze(2)
    if unbatched:
        out = out.squeeze(0)
    return out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2)


def _convtnd(input, weight, bias, stride, padding, output_padding, groups, dilation, nd):
    """Transposed convolution: columns = W^T x (one batched GEMM), then col2im onto the output grid
    (the adjoint of conv's im2col); backward through the GEMM and im2col."""
    name = f"conv_transpose{nd}d"
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{name}() received an invalid combination of arguments - got "
                        f"({type(input).__name__}, {type(weight).__name__})")
    if input.ndim not in (nd + 1, nd + 2):
        kind = {1: ("2D", "3D"), 2: ("3D", "4D")}[nd]
        raise RuntimeError(f"Expected {kind[0]} (unbatched) or {kind[1]} (batched) input to {name}, but got input "
                           f"of size: {list(input.shape)}")
    if weight.ndim != nd + 2:
        raise RuntimeError(f"weight should have at least three dimensions; expected {nd + 2}-dimensional weight "
                           f"for {nd + 2}-dimensional input, but got weight of size {list(weight.shape)} instead")
    unbatched = input.ndim == nd + 1
    if unbatched:
        input = input.unsqueeze(0)
    stride = _tuple(stride, nd, "stride")
    dilation = _tuple(dilation, nd, "dilation")
    padding = _tuple(padding, nd, "padding")
    opad = _tuple(output_padding, nd, "output_padding")
    groups = int(groups)
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError("dilation should be greater than zero")
    if any(p < 0 for p in padding):
        raise RuntimeError("negative padding is not supported")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if any(o >= s and o >= d for o, s, d in zip(opad, stride, dilation)):
        names = ("height", "width") if nd == 2 else ("width",)
        msg = " ".join(f"output_padding_{n}: {o}" for n, o in zip(names, opad)) + " " + \
            " ".join(f"stride_{n}: {s}" for n, s in zip(names, stride)) + " " + \
            " ".join(f"dilation_{n}: {d}" for n, d in zip(names, dilation))
        raise RuntimeError(f"output padding must be smaller than either stride or dilation, but got {msg}")
    N, C = input.shape[:2]
    wsz = list(weight.shape)
    Cin, OCg = wsz[:2]
    if Cin % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
                           f"but got weight of size [{wsz}] instead")
    if Cin != C:
        raise RuntimeError(f"Given transposed=1, weight of size {wsz}, expected input{list(input.shape)} to have "
                           f"{Cin} channels, but got {C} channels instead")
    OC = OCg * groups
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != OC):
        raise RuntimeError(f"Given transposed=1, weight of size {wsz}, expected bias to be 1-dimensional with {OC} "
                           f"elements, but got bias of size {list(bias.shape)} instead")
    _check_types(input, weight, bias)
    ks = tuple(wsz[2:])
    spatial = tuple(input.shape[2:])
    outs = [(i - 1) * s - 2 * p + d * (k - 1) + o + 1
            for i, s, p, d, k, o in zip(spatial, stride, padding, dilation, ks, opad)]
    if any(o <= 0 for o in outs):
        raise RuntimeError(f"Given input size per channel: ({' x '.join(map(str, spatial))}). Calculated output size "
                           f"per channel: ({' x '.join(map(str, outs))}). Output size is too small")
    if nd == 1:
        geom = (OC, 1, outs[0], 1, spatial[0], 1, ks[0], 1, stride[0], 0, padding[0], 1, dilation[0])
    else:
        geom = (OC, outs[0], outs[1], spatial[0], spatial[1], ks[0], ks[1], stride[0], stride[1], padding[0],
                padding[1], dilation[0], dilation[1])
    L = 1
    for i in spatial:
        L *= i
    Cg = C // groups
    K = OCg
    for k in ks:
        K *= k
    x = input.reshape(N, groups, Cg, L)
    w = weight.reshape(groups, Cg, K).transpose(1, 2)                      # (G, OCg*k, Cg)
    cols = matmul(w, x).reshape(N, OC * (K // OCg), L)                      # (N, OC*k, L)
    out = Col2Im.apply(cols, geom, N)                                       # (N, OC, H', W')
    if bias is not None:
        out = out + bias.reshape(OC, 1, 1)
    out = out.reshape((N, OC) + tuple(outs))
    if unbatched:
        out = out.squeeze(0)
    return out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _convtnd(input, weight, bias, stride, padding, output_padding, groups, dilation, 1)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _convtnd(input, weight, bias, stride, padding, output_padding, groups, dilation, 2)


def _pair(v, name):
    return _tuple(v, 2, name)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """(N, C, H, W) -> (N, C*kh*kw, L) sliding blocks (im2col)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"unfold(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if input.ndim not in (3, 4):
        raise NotImplementedError(f"Input Error: Only 3D or 4D input Tensors are supported (got {input.ndim}D)")
    k, d, p, s = _pair(kernel_size, "kernel_size"), _pair(dilation, "dilation"), _pair(padding, "padding"), \
        _pair(stride, "stride")
    unb = input.ndim == 3
    x = input.unsqueeze(0) if unb else input
    N, C, H, W = x.shape
    outs = [(i + 2 * pp - dd * (kk - 1) - 1) // ss + 1 for i, kk, dd, pp, ss in zip((H, W), k, d, p, s)]
    if any(o < 1 for o in outs):
        raise RuntimeError(f"Given input with spatial size ({H}, {W}), kernel_size={k}, dilation={d}, padding={p}, "
                           f"calculated shape of the array of sliding blocks as ({outs[0]}, {outs[1]}), but its "
                           f"components must be at least one.")
    geom = (C, H, W, outs[0], outs[1], k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1])
    out = Im2Col.apply(x, geom)
    return out.squeeze(0) if unb else out


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """(N, C*kh*kw, L) -> (N, C, H, W), summing overlapping blocks (col2im)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"fold(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if input.ndim not in (2, 3):
        raise NotImplementedError(f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are supported "
                                  f"(got {input.ndim}D)")
    o, k, d, p, s = _pair(output_size, "output_size"), _pair(kernel_size, "kernel_size"), \
        _pair(dilation, "dilation"), _pair(padding, "padding"), _pair(stride, "stride")
    unb = input.ndim == 2
    x = input.unsqueeze(0) if unb else input
    N, CK, L = x.shape
    if CK % (k[0] * k[1]):
        raise RuntimeError(f"Expected size of input's dimension 1 to be divisible by the product of kernel_size, "
                           f"but got input.size(1)={CK} and kernel_size={k}")
    blocks = [(i + 2 * pp - dd * (kk - 1) - 1) // ss + 1 for i, kk, dd, pp, ss in zip(o, k, d, p, s)]
    if blocks[0] * blocks[1] != L:
        raise RuntimeError(f"Given output_size={o}, kernel_size={k}, dilation={d}, padding={p}, stride={s}, "
                           f"expected size of input's dimension 2 to match the calculated number of sliding blocks "
                           f"{blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but got input.size(2)={L}.")
    C = CK // (k[0] * k[1])
    geom = (C, o[0], o[1], blocks[0], blocks[1], k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1])
    out = Col2Im.apply(x, geom, N)
    return out.squeeze(0) if unb else out
