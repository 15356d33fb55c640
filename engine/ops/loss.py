"""Cross entropy over class indices as one autograd node (used by nn.functional.cross_entropy).

forward:  loss_i = (logsumexp(x_i) - x_i[t_i]) * w_i   with w_i = weight[t_i] (or 1), 0 where t_i is
          ignore_index.  One logsumexp reduction and one gather: the (N, C) log_softmax is never
          materialised, and no one-hot either.  The targets' bounds are checked once (one flag read,
          as every checked gather in the engine); out of range raises IndexError as torch.
backward: dx = (exp(x - lse) * c - onehot(t) * c), c = g * w: one elementwise pass over (N, C) and
          a scatter-add of -c at the targets.  With create_graph the same formula in Tensor ops.
"""
from .. import dtypes as D
from ..autograd import grad_mode as _gm
from ..autograd.function import Function
from ..tensor import make
from ._core import ew
from .advanced import raise_if_oob
from .gather import _gather_raw, _index_select_raw, _scatter_raw
from .reduce import logsumexp

__all__ = []


def _target_oob(which, v):
    return IndexError(f"Target {v} is out of bounds.")


class CrossEntropyIdx(Function):
    node_name = "NllLossBackward0"

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, cdim):
        ign = target == ignore_index
        safe = target.masked_fill(ign, 0)
        idx = safe.unsqueeze(cdim)
        picked = _gather_raw(x if x.ndim else x.reshape(1), cdim, idx, check=False).squeeze(cdim)
        keep = ign.logical_not().to(x.dtype)
        if weight is not None:
            flat = safe.reshape(-1)
            w = _index_select_raw(weight, 0, flat, check=False).reshape(safe.shape) * keep
        else:
            w = keep
        if idx.numel():
            raise_if_oob(x._storage.device, _target_oob)
        lse = logsumexp(x, cdim)
        loss = (lse - picked) * w
        ctx.save_for_backward(x, idx, lse, w)
        ctx.cdim = cdim
        ctx.mark_non_differentiable(w)
        return loss, w

    @staticmethod
    def backward(ctx, g, gw=None):
        x, idx, lse, w = ctx.saved_tensors
        cdim = ctx.cdim
        if g is None:
            return None, None, None, None, None
        c = (g * w).unsqueeze(cdim)
        if _gm.is_grad_enabled():  # create_graph: differentiable Tensor ops
            from .gather import scatter_add
            p = x.softmax(cdim)
            gx = p * c - scatter_add(x.new_zeros(x.shape), cdim, idx, c)
            return gx, None, None, None, None
        gx = ew("ce_softmax_grad", "exp(v1 - v2) * v3", [x, lse.unsqueeze(cdim), c], x.dtype, x.dtype)
        if idx.numel():
            _scatter_raw(gx, cdim, idx, -c, "add", check=False)
        return gx, None, None, None, None


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
            raise_if_oob(logp._storage.device, _target_oob)
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
