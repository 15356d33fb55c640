"""Grad modes: a thread-local switch read on every op's hot path.

Each of `no_grad`, `enable_grad`, `set_grad_enabled(mode)` and `inference_mode(mode)`
works as a context manager and as a function decorator (`@no_grad()` and bare
`@no_grad`); `set_grad_enabled(False)` also works as a plain call, as in PyTorch.
The mode is per thread: a new thread starts with grad enabled.
"""
import functools
import inspect
import threading


class _State(threading.local):
    enabled = True
    inference = False
    # (outermost, ..., innermost) nn.Modules whose forward is running; nodes record it
    # so the notebook layer can fold a graph by module
    modules = None


state = _State()


def is_grad_enabled():
    return state.enabled


def is_inference_mode_enabled():
    return state.inference


def _wrap(make_mode, fn):
    """Decorate fn (plain function or generator function) so it runs under a fresh mode."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*a, **k):
            gen = fn(*a, **k)
            try:
                with make_mode():
                    resp = gen.send(None)
                while True:
                    try:
                        req = yield resp
                    except GeneratorExit:
                        with make_mode():
                            gen.close()
                        raise
                    except BaseException as e:
                        with make_mode():
                            resp = gen.throw(e)
                    else:
                        with make_mode():
                            resp = gen.send(req)
            except StopIteration as e:
                return e.value
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*a, **k):
        with make_mode():
            return fn(*a, **k)
    return wrapper


class _Mode:
    """Context manager and decorator that sets grad mode for its body."""
    _value = True

    def __new__(cls, *args):
        # bare decorator use: @no_grad
        if cls in (no_grad, enable_grad) and len(args) == 1 and callable(args[0]):
            return _wrap(cls, args[0])
        return super().__new__(cls)

    def __init__(self):
        self._prev = None

    def __enter__(self):
        self._prev = state.enabled
        state.enabled = self._value
        return None

    def __exit__(self, *exc):
        state.enabled = self._prev
        return False

    def __call__(self, fn):
        return _wrap(self.clone, fn)

    def clone(self):
        return self.__class__()


class no_grad(_Mode):
    """Disable gradient recording: ops on tensors that require grad build no graph."""
    _value = False


class enable_grad(_Mode):
    """Enable gradient recording (inside no_grad, for instance)."""
    _value = True


class set_grad_enabled(_Mode):
    """set_grad_enabled(mode): applies immediately, so it works as a plain call too;
    as a context manager it restores the previous mode on exit."""

    def __init__(self, mode=True):
        self._value = bool(mode)
        self._prev = state.enabled
        state.enabled = self._value

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        state.enabled = self._prev
        return False

    def __call__(self, fn):
        state.enabled = self._prev  # decorating must not change the mode
        return _wrap(self.clone, fn)

    def clone(self):
        return set_grad_enabled(self._value)


class inference_mode(_Mode):
    """inference_mode(mode=True): no graph recording (like no_grad);
    inference_mode(False) turns it back off inside an inference_mode block."""

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):
            return _wrap(inference_mode, mode)
        return object.__new__(cls)

    def __init__(self, mode=True):
        self._mode = bool(mode)

    def __enter__(self):
        self._prev = state.enabled
        self._prev_inf = state.inference
        if self._mode:
            state.enabled = False
            state.inference = True
        elif state.inference:
            state.enabled = True
            state.inference = False
        return None

    def __exit__(self, *exc):
        state.enabled = self._prev
        state.inference = self._prev_inf
        return False

    def clone(self):
        return inference_mode(self._mode)
