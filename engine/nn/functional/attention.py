"""attention functionals: scaled_dot_product_attention and multi_head_attention_forward (torch's math path).

Masks: SDPA's boolean mask marks the positions that may be attended (True = keep); MHA's boolean
attn_mask / key_padding_mask mark the positions that may NOT be attended (True = masked), as torch.
Rows where SDPA masks every key give zeros (torch's CPU kernels do), not nan.
"""
import math

from ... import dtypes as D
from ...tensor import Tensor

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]


def _dropout(x, p, training=True):
    if p <= 0 or not training:
        return x
    if p >= 1:
        return x * 0.0
    keep = x.new_empty(x.shape).bernoulli_(1 - p)
    return x * keep * (1.0 / (1 - p))


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    if query.dim() < 2 or key.dim() < 2 or value.dim() < 2:
        raise RuntimeError("scaled_dot_product_attention: query, key and value must have at least 2 dimensions")
    if query.dtype is not key.dtype or query.dtype is not value.dtype:
        raise RuntimeError(f"Expected query, key, and value to have the same dtype, but got query.dtype: "
                           f"{query.dtype} key.dtype: {key.dtype} and value.dtype: {value.dtype} instead.")
    L, S, E = query.shape[-2], key.shape[-2], query.shape[-1]
    if key.shape[-1] != E:
        raise RuntimeError(f"Expected query and key to have the same embedding dimension, but got query "
                           f"{list(query.shape)} and key {list(key.shape)}")
    sc = 1.0 / math.sqrt(E) if scale is None else scale
    if attn_mask is None and dropout_p <= 0 and not enable_gqa and query.dtype.is_floating_point \
            and query.dtype is not D.float16 and L and key.shape[-2] and E:
        # one node, the scale on the GEMMs and the causal mask in the softmax kernel (ops/attention.py)
        from ...ops.attention import fused_attention
        return fused_attention(query, key, value, sc, is_causal)
    if enable_gqa and query.dim() >= 3 and key.dim() >= 3:
        Hq, Hk, Hv = query.shape[-3], key.shape[-3], value.shape[-3]
        if Hq % Hk or Hq % Hv:
            raise RuntimeError(f"Number of heads in key and value must divide the number of heads in query")
        key = _repeat_heads(key, Hq // Hk)
        value = _repeat_heads(value, Hq // Hv)
    scores = query.matmul(key.transpose(-2, -1)) * sc
    mask_bool = None
    if is_causal:
        mask_bool = scores.new_ones((L, S), dtype=D.bool_).tril()
    if attn_mask is not None:
        if attn_mask.dtype is D.bool_:
            mask_bool = attn_mask if mask_bool is None else mask_bool.logical_and(attn_mask)
        else:
            scores = scores + attn_mask
    if mask_bool is not None:
        scores = scores.masked_fill(mask_bool.logical_not(), float("-inf"))
    if attn_mask is not None:
        # rows with every key masked: torch returns zeros there
        dead = (scores == float("-inf")).all(-1, keepdim=True)
        scores = scores.masked_fill(dead, 0.0)
        w = scores.softmax(-1).masked_fill(dead, 0.0)
    else:
        w = scores.softmax(-1)
    w = _dropout(w, dropout_p)
    return w.matmul(value)


def _repeat_heads(t, r):
    if r == 1:
        return t
    shp = tuple(t.shape)
    e = t.unsqueeze(-3).expand(*shp[:-2], r, shp[-2], shp[-1])
    return e.reshape(*shp[:-3], shp[-3] * r, shp[-2], shp[-1])


def _linear(x, w, b):
    from ...ops.matmul import linear
    return linear(x, w, b)


def _canonical_mask(mask, name, target_dtype):
    if mask is None:
        return None
    if mask.dtype is D.bool_:
        return mask.new_zeros(mask.shape, dtype=target_dtype).masked_fill(mask, float("-inf"))
    if not mask.dtype.is_floating_point:
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    """Inputs (L, N, E) / (S, N, E) or unbatched (L, E) / (S, E); returns (output, weights or None)."""
    is_batched = query.dim() == 3
    if not is_batched:
        if query.dim() != 2:
            raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received "
                                 f"{query.dim()}-D query tensor")
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if key.shape[:2] != value.shape[:2]:
        raise AssertionError(f"key's sequence and batch dims {tuple(key.shape[:2])} do not match value's "
                             f"{tuple(value.shape[:2])}")
    if key_padding_mask is not None and tuple(key_padding_mask.shape) != (bsz, src_len):
        raise AssertionError(f"expecting key_padding_mask shape of {(bsz, src_len)}, but got "
                             f"{tuple(key_padding_mask.shape)}")

    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", query.dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                           "method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None
    else:
        attn_mask = _canonical_mask(attn_mask, "attn_mask", query.dtype)
        if key_padding_mask is not None:
            is_causal = False

    # input projections
    if not use_separate_proj_weight:
        if in_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
        E = embed_dim
        bq = bk = bv = None
        if in_proj_bias is not None:
            bq, bk, bv = in_proj_bias[:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:]
        q = _linear(query, in_proj_weight[:E], bq)
        k = _linear(key, in_proj_weight[E:2 * E], bk)
        v = _linear(value, in_proj_weight[2 * E:], bv)
    else:
        E = embed_dim
        bq = bk = bv = None
        if in_proj_bias is not None:
            bq, bk, bv = in_proj_bias[:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:]
        q = _linear(query, q_proj_weight, bq)
        k = _linear(key, k_proj_weight, bk)
        v = _linear(value, v_proj_weight, bv)

    if attn_mask is not None:
        if attn_mask.dim() == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                   f"{(tgt_len, src_len)}.")
            attn_mask = attn_mask.unsqueeze(0)
        elif attn_mask.dim() == 3:
            if tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
                raise RuntimeError(f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                   f"{(bsz * num_heads, tgt_len, src_len)}.")
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.dim()} is not supported")

    if bias_k is not None and bias_v is not None:
        from ...ops.shape import cat
        k = cat([k, bias_k.reshape(1, 1, embed_dim).expand(1, bsz, embed_dim)])
        v = cat([v, bias_v.reshape(1, 1, embed_dim).expand(1, bsz, embed_dim)])
        if attn_mask is not None:
            attn_mask = cat([attn_mask, attn_mask.new_zeros((attn_mask.shape[0], attn_mask.shape[1], 1))], 2)
        if key_padding_mask is not None:
            key_padding_mask = cat([key_padding_mask, key_padding_mask.new_zeros((bsz, 1))], 1)

    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1) if static_k is None else static_k
    v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1) if static_v is None else static_v

    if add_zero_attn:
        from ...ops.shape import cat
        k = cat([k, k.new_zeros((bsz * num_heads, 1, head_dim))], 1)
        v = cat([v, v.new_zeros((bsz * num_heads, 1, head_dim))], 1)
        if attn_mask is not None:
            attn_mask = cat([attn_mask, attn_mask.new_zeros((attn_mask.shape[0], attn_mask.shape[1], 1))], 2)
        if key_padding_mask is not None:
            key_padding_mask = cat([key_padding_mask, key_padding_mask.new_zeros((bsz, 1))], 1)

    src_len = k.shape[1]
    if key_padding_mask is not None:
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len) \
            .reshape(bsz * num_heads, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm

    if not training:
        dropout_p = 0.0

    if need_weights:
        q_scaled = q * math.sqrt(1.0 / head_dim)
        if attn_mask is not None:
            w = q_scaled.bmm(k.transpose(-2, -1)) + attn_mask
        else:
            w = q_scaled.bmm(k.transpose(-2, -1))
        w = w.softmax(-1)
        if dropout_p > 0.0:
            w = _dropout(w, dropout_p)
        out = w.bmm(v)
        out = out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        out = _linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
        w = w.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            w = w.mean(1)
        if not is_batched:
            out = out.squeeze(1)
            w = w.squeeze(0)
        return out, w
    if attn_mask is not None:
        if attn_mask.shape[0] == 1 and attn_mask.dim() == 3:
            attn_mask = attn_mask.unsqueeze(0)
        else:
            attn_mask = attn_mask.reshape(bsz, num_heads, -1, src_len)
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
    out = _linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
    if not is_batched:
        out = out.squeeze(1)
    return out, None
