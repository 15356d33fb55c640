"""Cross entropy over class indices as one autograd node (used by nn.functional.cross_entropy).

forward:  one row kernel (runtime/rows.py::gen_ce_fwd): per row of logits the max and sum of exp
          (one read on GPUs), lse = max + log(sum), the target's logit, its class weight and the
          ignore mask -> loss_i = (lse_i - x_i[t_i]) * w_i (0 where t_i == ignore_index), lse_i and
          w_i.  For 'mean' / 'sum' one small work-group kernel then sums loss (and w): mean =
          sum(loss) / sum(w), nan when every target is ignored.  The (N, C) log_softmax is never
          materialised.  Out-of-range targets set the engine's index-error flag, read once (one
          sync, as every checked gather): IndexError("Target 5 is out of bounds.") as torch.
backward: one kernel, dx = (exp(x - lse) - [j == t]) * c with c = g * w (/ sum(w) for 'mean'),
          no scatter.  With create_graph the same formula in Tensor ops.
"""
from ..autograd import grad_mode as _gm
from ..autograd.function import Function
from ..runtime import index as _ix
from ..runtime import rows as _rows
from ..tensor import empty
from ._core import contiguous_raw
from .creation import fill_raw
from .advanced import raise_if_oob
from .gather import _gather_raw, _index_select_raw, _scatter_raw

__all__ = []


def _target_oob(which, v):
    return IndexError(f"Target {v} is out of bounds.")


def _row_view(g):
    """(tensor, stride) so that element m of the flattened g is at offset + m * stride."""
    if all(s == 0 for s in g._strides):
        return g, 0
    g = contiguous_raw(g)
    return g, 1


class CrossEntropyIdx(Function):
    """(input (N, C, ...) or (C,), int64 target, weight or None, ignore_index, class dim, reduction)."""
    node_name = "NllLossBackward0"

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, cdim, reduction):
        dev = x._storage.device
        t = contiguous_raw(target)
        if weight is not None:
            weight = contiguous_raw(weight if weight.dtype is x.dtype else weight.to(x.dtype))
        kshape = tuple(n for d, n in enumerate(x._shape) if d != cdim)
        loss, lse, wrow = (empty(kshape, x.dtype, dev) for _ in range(3))
        M = loss.numel()
        if M and x._shape[cdim] == 0:   # no classes: every target that is not ignored is out of range
            bad = t.ne(ignore_index)
            if bad.any().item():
                raise IndexError(f"Target {int(t[bad].reshape(-1)[0].item())} is out of bounds.")
            fill_raw(loss, 0), fill_raw(lse, float("-inf")), fill_raw(wrow, 0)
        elif M:
            _rows.ce_fwd(dev, x, cdim, t, weight, ignore_index, loss, lse, wrow, _ix._err_buf(dev))
        den = None
        if reduction != "none":
            out = empty((), x.dtype, dev)
            den = empty((), x.dtype, dev)
            _rows.ce_reduce(dev, loss, wrow, M, out, den, reduction == "mean")
            if reduction == "sum":
                den = None
        else:
            out = loss
        if M and x._shape[cdim]:   # after the reduction is queued: the flag read waits for both
            # an unchanged target already found in range skips the read (advanced.raise_if_oob)
            raise_if_oob(dev, _target_oob, t, ("ce", x._shape[cdim], ignore_index))
        ctx.save_for_backward(x, t, lse, wrow, den)
        ctx.cdim, ctx.ignore_index = cdim, ignore_index
        return out

    @staticmethod
    def backward(ctx, g):
        x, t, lse, wrow, den = ctx.saved_tensors
        cdim = ctx.cdim
        none = (None,) * 5
        if g is None:
            return (None,) + none
        if _gm.is_grad_enabled():  # create_graph: differentiable Tensor ops
            from .gather import scatter_add
            c = g * wrow
            if den is not None:
                c = c / den.masked_fill(den == 0, 1.0)
            c = c.unsqueeze(cdim)
            idx = t.masked_fill(t == ctx.ignore_index, 0).unsqueeze(cdim)
            if x._shape[cdim] == 0:
                return x.new_zeros(x.shape), *none
            gx = x.softmax(cdim) * c - scatter_add(x.new_zeros(x.shape), cdim, idx, c.expand(idx.shape))
            return gx, *none
        dev = x._storage.device
        if g.dtype is not x.dtype:
            g = g.to(x.dtype)
        gr, gs = _row_view(g)
        dx = empty(x._shape, x.dtype, dev)
        if dx.numel():
            _rows.ce_bwd(dev, x, cdim, t, lse, wrow, gr, gs, den, dx)
        return dx, *none


class NllLossIdx(Function):
    """loss_i = -logp_i[t_i] * w_i (w_i = weight[t_i] or 1, 0 where ignored): returns (loss, w).
    One gather; bounds checked once."""
    node_name = "NllLossBackward0"

    @staticmethod
    def forward(ctx, logp, target, weight, ignore_index, cdim):
        ign = target == ignore_index
        safe = target.masked_fill(ign, 0)
        idx = safe.unsqueeze(cdim)
        picked = _gather_raw(logp, cdim, idx, check=False).squeeze(cdim)
        keep = ign.logical_not().to(logp.dtype)
        if weight is not None:
            w = _index_select_raw(weight, 0, safe.reshape(-1), check=False).reshape(safe.shape) * keep
        else:
            w = keep
        if idx.numel():
            raise_if_oob(logp._storage.device, _target_oob, target, ("nll", logp._shape[cdim], ignore_index))
        ctx.save_for_backward(idx, w)
        ctx.cdim = cdim
        ctx.shape = logp.shape
        ctx.mark_non_differentiable(w)
        return -picked * w, w

    @staticmethod
    def backward(ctx, g, gw=None):
        idx, w = ctx.saved_tensors
        if g is None:
            return None, None, None, None, None
        cdim = ctx.cdim
        c = -(g * w).unsqueeze(cdim)
        if _gm.is_grad_enabled():
            from .gather import scatter_add
            return scatter_add(c.new_zeros(ctx.shape), cdim, idx, c), None, None, None, None
        gx = c.new_zeros(ctx.shape)
        if idx.numel():
            _scatter_raw(gx, cdim, idx, c, "add", check=False)
        return gx, None, None, None, None
