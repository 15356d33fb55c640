"""engine.nn: modules, parameters, functional, init and utils, as torch.nn."""
from .parameter import Parameter
from .modules import *  # noqa: F401,F403
from . import functional, init, parallel, utils  # noqa: F401
