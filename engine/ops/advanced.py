"""Advanced indexing (integer tensors, lists, boolean masks): reading and assigning."""
__all__ = []


def advanced_getitem(x, index):
    raise NotImplementedError("advanced indexing is not implemented yet")


def advanced_setitem(x, index, value):
    raise NotImplementedError("advanced index assignment is not implemented yet")


def setitem_with_grad(x, index, value):
    raise NotImplementedError("index assignment with autograd is not implemented yet")
