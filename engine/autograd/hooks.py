"""Removable hook handles and tensor gradient hooks."""
import itertools

_ids = itertools.count()


class RemovableHandle:
    def __init__(self, store, extra_dict=None):
        self.id = next(_ids)
        self._store = store
        # sets/dicts keyed by the same id (e.g. which module hooks take kwargs)
        self._extra = () if extra_dict is None else (
            tuple(extra_dict) if isinstance(extra_dict, (tuple, list)) else (extra_dict,))

    def remove(self):
        self._store.pop(self.id, None)
        for e in self._extra:
            e.discard(self.id) if isinstance(e, set) else e.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def add_hook(store, hook, prepend=False):
    """Put `hook` in the ordered dict `store` under a fresh id; returns its removable handle."""
    h = RemovableHandle(store)
    store[h.id] = hook
    if prepend:
        store.move_to_end(h.id, last=False)
    return h


def register_tensor_hook(t, hook):
    if t._hooks is None:
        t._hooks = {}
    h = RemovableHandle(t._hooks)
    t._hooks[h.id] = hook
    return h


def run_tensor_hooks(t, grad):
    if t._hooks:
        for fn in list(t._hooks.values()):
            r = fn(grad)
            if r is not None:
                grad = r
    return grad
