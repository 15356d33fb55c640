"""sparse functionals: embedding (one bounds-checked gather; backward one scatter-add), one_hot."""
from ... import dtypes as D
from ...autograd.function import Function
from ...autograd import no_grad
from ...autograd import grad_mode as _gm
from ...runtime import embedding as _emb
from ...ops.gather import IndexAdd, _index_select_raw, one_hot as _one_hot
from ...ops.advanced import _zeros
from ...ops import pointwise as _P
from ...tensor import Tensor, empty as _empty

__all__ = ["embedding", "one_hot"]

_TN = {"float32": "Float", "float64": "Double", "float16": "Half", "bool": "Bool", "uint8": "Byte", "int8": "Char",
       "int16": "Short"}


class _Embedding(Function):
    node_name = "EmbeddingBackward0"

    @staticmethod
    def forward(ctx, weight, index, padding_idx, scale_grad_by_freq):
        flat = index.reshape(-1)
        ctx.save_for_backward(flat)
        ctx.args = (weight._shape, padding_idx, scale_grad_by_freq)
        out = _index_select_raw(weight, 0, flat)
        return out.reshape(tuple(index._shape) + (weight._shape[1],))

    @staticmethod
    def backward(ctx, g):
        (flat,) = ctx.saved_tensors
        shape, pad, freq = ctx.args
        g2 = g.reshape(flat.numel(), shape[1])
        if pad >= 0:
            g2 = g2 * (flat != pad).unsqueeze(1).to(g2.dtype)
        if freq:
            ones = _zeros((flat.numel(),), g.dtype, g._storage.device) + 1
            cnt = IndexAdd.apply(_zeros((shape[0],), g.dtype, g._storage.device), 0, flat, ones, 1, False)
            g2 = g2 / _index_select_raw(cnt, 0, flat, False).unsqueeze(1)
        fast = _table_backward(g2, flat, shape)
        if fast is not None:
            return fast, None, None, None
        z = _zeros(shape, g.dtype, g._storage.device)
        return IndexAdd.apply(z, 0, flat, g2, 1, False), None, None, None


def _table_backward(g2, flat, shape):
    """dW by per-work-group tables (runtime/embedding.py) where the vocabulary is small; None where
    it isn't, or where the backward itself must be differentiable (create_graph)."""
    V, Dm = shape
    dev, dt = g2._storage.device, g2.dtype
    if _gm.is_grad_enabled() or dt.ctype not in ("float", "double") or (flat._strides != (1,) and flat.numel() > 1) or \
            flat.numel() == 0 or Dm == 0 or flat.numel() >= 2**31 or V * Dm >= 2**31:
        return None
    tc = _emb.columns(dev, V, dt.itemsize)
    if not tc:
        return None
    g2 = g2.contiguous()
    out = _empty(tuple(shape), dt, dev)
    keep = []

    def scratch(n):
        keep.append(_empty((n,), dt, dev))
        return keep[-1]._storage.buf
    _emb.backward(dev, dt.ctype, flat.dtype.ctype, g2._storage.buf, flat._storage.buf, flat._offset, flat.numel(), V,
                  Dm, tc, scratch, out._storage.buf, out._offset)
    return out


def _renorm_(weight, flat, max_norm, norm_type):
    """torch.embedding_renorm_: rows referenced by `flat` rescaled to norm <= max_norm (on the device)."""
    with no_grad():
        sel = _index_select_raw(weight, 0, flat)
        n = sel.norm(p=norm_type, dim=1, keepdim=True)
        scale = _P.where(n > max_norm, max_norm / (n + 1e-7), 1.0)
        weight.index_copy_(0, flat, sel * scale)
    return weight


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    if not isinstance(input, Tensor) or input.dtype not in (D.int64, D.int32):
        tn = _TN.get(input.dtype.name, input.dtype.name) if isinstance(input, Tensor) else type(input).__name__
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got torch.{tn}Tensor instead (while checking arguments for embedding)")
    if weight.ndim != 2:
        raise RuntimeError("'weight' must be 2-D")
    if padding_idx is not None:
        if padding_idx > 0:
            assert padding_idx < weight.shape[0], "Padding_idx must be within num_embeddings"
        elif padding_idx < 0:
            assert padding_idx >= -weight.shape[0], "Padding_idx must be within num_embeddings"
            padding_idx = weight.shape[0] + padding_idx
    else:
        padding_idx = -1
    if max_norm is not None:
        input = input.contiguous()
        _renorm_(weight, input.reshape(-1), max_norm, norm_type)
    return _Embedding.apply(weight, input, padding_idx, bool(scale_grad_by_freq))


def one_hot(tensor, num_classes=-1):
    return _one_hot(tensor, num_classes)
