"""Counter-based random numbers (Philox-4x32-10) generated on the device.

The stream depends only on the seed and a counter, so the same seed gives the
same numbers on every OpenCL device."""
_state = {"seed": 0x2A, "offset": 0}


def manual_seed(seed):
    _state["seed"] = int(seed) & 0xFFFFFFFFFFFFFFFF
    _state["offset"] = 0
    return _state


def initial_seed():
    return _state["seed"]


def seed():
    import time
    return manual_seed(int(time.time_ns()) & 0xFFFFFFFF)["seed"]


def get_rng_state():
    return (_state["seed"], _state["offset"])


def set_rng_state(state):
    _state["seed"], _state["offset"] = int(state[0]), int(state[1])


def next_offset(n):
    """Reserve n counters (each Philox call gives 4 numbers); returns (seed, start)."""
    start = _state["offset"]
    _state["offset"] = start + n
    return _state["seed"], start
