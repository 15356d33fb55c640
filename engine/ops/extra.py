"""Op families beyond the core, re-exported into the `engine` namespace.

Each module binds its Tensor methods itself (setattr on Tensor at the bottom
of the module) and lists its public functions in __all__."""
from .advanced import *  # noqa: F401,F403
from .counting import *  # noqa: F401,F403
from .gather import *  # noqa: F401,F403
from .matmul import *  # noqa: F401,F403
from .random_ops import *  # noqa: F401,F403
from .softmax import *  # noqa: F401,F403
from .sort import *  # noqa: F401,F403

__all__ = [n for m in ("advanced", "counting", "gather", "matmul", "random_ops", "softmax", "sort")
           for n in __import__(f"engine.ops.{m}", fromlist=["__all__"]).__all__]
