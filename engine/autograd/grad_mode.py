"""Grad modes: a single global switch read on every op's hot path."""
import functools


class _State:
    enabled = True
    inference = False


state = _State()


def is_grad_enabled():
    return state.enabled


class _Mode:
    """Context manager and decorator that sets grad mode for its body."""
    _value = True

    def __enter__(self):
        self._prev = state.enabled
        state.enabled = self._value
        return self

    def __exit__(self, *exc):
        state.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            with self.__class__() if not isinstance(self, set_grad_enabled) else set_grad_enabled(self._value):
                return fn(*a, **k)
        return wrapper


class no_grad(_Mode):
    _value = False


class enable_grad(_Mode):
    _value = True


class set_grad_enabled(_Mode):
    def __init__(self, mode=True):
        self._value = bool(mode)
        # torch applies it immediately too, so it works as a plain function call
        self._prev = state.enabled
        state.enabled = self._value

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        state.enabled = self._prev
        return False


class inference_mode(_Mode):
    def __init__(self, mode=True):
        self._mode = bool(mode)

    def __enter__(self):
        self._prev = state.enabled
        self._prev_inf = state.inference
        if self._mode:
            state.enabled = False
            state.inference = True
        return self

    def __exit__(self, *exc):
        state.enabled = self._prev
        state.inference = self._prev_inf
        return False

    def __call__(self, fn):
        if not callable(fn) or isinstance(fn, bool):
            return inference_mode(fn)

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with inference_mode(self._mode):
                return fn(*a, **k)
        return wrapper


def is_inference_mode_enabled():
    return state.inference
