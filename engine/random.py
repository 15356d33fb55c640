"""Counter-based random numbers (Philox-4x32-10) generated on the device.

The stream depends only on the seed and a counter, so the same seed gives the
same numbers on every OpenCL device.  A generator is just (seed, offset): each
random op reserves the counters it uses with `next_offset` and the kernel
(engine/runtime/philox.py) derives element i from counter offset + i // per.
"""
import contextlib

import numpy as np

_DEFAULT_SEED = 67280421310721  # PyTorch's default_generator initial seed
_state = {"seed": _DEFAULT_SEED, "offset": 0}
_MASK = 0xFFFFFFFFFFFFFFFF


class Generator:
    """torch.Generator look-alike: a seed and a Philox counter offset.

    `Generator()` owns its state; `engine.random.default_generator` is the global
    stream behind `engine.manual_seed`.  `device` is accepted for compatibility:
    the stream is the same on every device."""

    def __init__(self, device=None, _state_dict=None):
        self._st = _state_dict if _state_dict is not None else {"seed": _DEFAULT_SEED, "offset": 0}
        self._device = device

    @property
    def device(self):
        from .device import device as _dev, resolve
        return _dev(resolve(self._device))

    def manual_seed(self, seed):
        seed = int(seed)
        if seed < 0:
            seed &= _MASK  # PyTorch maps negative seeds the same way
        if seed > _MASK:
            raise RuntimeError("Overflow when unpacking long long")
        self._st["seed"] = seed
        self._st["offset"] = 0
        return self

    def seed(self):
        import time
        s = (time.time_ns() ^ (id(self) << 16)) & _MASK
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return self._st["seed"]

    def get_state(self):
        """A uint8 tensor of 16 bytes: seed and offset as little-endian uint64."""
        from .ops.creation import tensor
        from . import dtypes as D
        raw = np.array([self._st["seed"], self._st["offset"]], dtype="<u8").view(np.uint8)
        return tensor(raw, dtype=D.uint8)

    def set_state(self, state):
        seed, off = _unpack_state(state)
        self._st["seed"], self._st["offset"] = seed, off
        return self

    def get_offset(self):
        return self._st["offset"]

    def set_offset(self, offset):
        self._st["offset"] = int(offset)
        return self

    def next_offset(self, n):
        start = self._st["offset"]
        self._st["offset"] = start + int(n)
        return self._st["seed"], start

    def clone_state(self):
        return Generator(self._device, dict(self._st))

    def __repr__(self):
        return f"<engine.Generator seed={self._st['seed']} offset={self._st['offset']}>"


def _unpack_state(state):
    from .tensor import Tensor
    if isinstance(state, Tensor):
        state = state.detach().numpy()
    if isinstance(state, np.ndarray) and state.dtype == np.uint8:
        if state.size != 16:
            raise RuntimeError(f"RNG state is wrong size: expected 16 bytes, got {state.size}")
        s, o = np.ascontiguousarray(state).view("<u8")
        return int(s), int(o)
    if isinstance(state, (tuple, list, np.ndarray)) and len(state) == 2:
        return int(state[0]) & _MASK, int(state[1])
    raise TypeError(f"expected an RNG state from get_rng_state() (uint8 tensor of 16 bytes), got "
                    f"{type(state).__name__}")


default_generator = Generator(None, _state)


def manual_seed(seed):
    """Seed the global stream (every device shares it); returns the default generator."""
    return default_generator.manual_seed(seed)


def initial_seed():
    return _state["seed"]


def seed():
    return default_generator.seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(state):
    default_generator.set_state(state)


def next_offset(n, generator=None):
    """Reserve n counters (each Philox call gives 4 numbers); returns (seed, start)."""
    if generator is not None:
        if not isinstance(generator, Generator):
            raise TypeError(f"generator must be an engine.Generator, got {type(generator).__name__}")
        return generator.next_offset(n)
    start = _state["offset"]
    _state["offset"] = start + n
    return _state["seed"], start


@contextlib.contextmanager
def fork_rng(devices=None, enabled=True, **_):
    """Restore the global stream's state on exit (torch.random.fork_rng)."""
    if not enabled:
        yield
        return
    saved = dict(_state)
    try:
        yield
    finally:
        _state.update(saved)
