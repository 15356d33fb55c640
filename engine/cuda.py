"""`engine.cuda`: PyTorch's CUDA queries answered for OpenCL GPUs."""
from .runtime import device as _rt


def is_available():
    try:
        return bool(_rt.gpus())
    except RuntimeError:
        return False


def device_count():
    try:
        return len(_rt.gpus())
    except RuntimeError:
        return 0


def current_device():
    d = _rt.default_device()
    g = _rt.gpus()
    return g.index(d) if d in g else 0


def get_device_name(device=None):
    from .device import resolve
    return resolve(device if device is not None else "cuda").name


def synchronize(device=None):
    from .device import resolve
    resolve(device if device is not None else "cuda").synchronize()


def manual_seed(seed):
    from . import random
    random.manual_seed(seed)


manual_seed_all = manual_seed


def empty_cache():
    for d in _rt.gpus():
        if d._ctx is not None:
            d.pool.empty_cache()


def memory_allocated(device=None):
    from .device import resolve
    return resolve(device if device is not None else "cuda").pool.allocated_bytes


def memory_reserved(device=None):
    from .device import resolve
    return resolve(device if device is not None else "cuda").pool.reserved_bytes
