"""Parameter: a Tensor that a Module registers as one of its learnable weights."""
from ..tensor import Tensor, _init_from


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and that Module.__setattr__ registers.

    Shares storage with `data` (no copy), as torch.nn.Parameter does."""

    def __new__(cls, data=None, requires_grad=True):
        from .. import empty
        if data is None:
            data = empty(0)
        t = Tensor.__new__(cls)
        _init_from(t, data.detach())
        t.requires_grad_(requires_grad)
        return t

    def __init__(self, data=None, requires_grad=True):
        pass

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        r = Parameter(self.detach().clone(), self.requires_grad)
        memo[id(self)] = r
        return r

    def __reduce_ex__(self, proto):
        return Parameter, (self.detach(), self.requires_grad)
