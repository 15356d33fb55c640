"""engine.nn.utils: gradient clipping and parameter/vector conversion."""
from . import clip_grad, convert_parameters  # noqa: F401
from .clip_grad import *  # noqa: F401,F403
from .convert_parameters import *  # noqa: F401,F403

__all__ = clip_grad.__all__ + convert_parameters.__all__
