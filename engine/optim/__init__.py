"""engine.optim: optimizers with fused device steps, and lr_scheduler (torch.optim).

Design
- `Optimizer` (optimizer.py) is torch's base class: param groups (tensors, dicts, or
  (name, tensor) pairs), per-parameter `state` keyed by the tensor, `state_dict()` /
  `load_state_dict()` in torch's format (state tensors moved to the param's device),
  step/state-dict hooks, `zero_grad(set_to_none=True)`; torch's exception types and texts.
- Each optimizer's update is ONE generated OpenCL kernel (_kernels.py) that reads the
  gradient and rewrites the parameter, all its state buffers and the float32 'step'
  tensor; a launch takes up to 8 parameters of a group (multi-tensor), so a step is
  ceil(n_params / 8) launches with no host sync.  Programs are specialised only on the
  optimizer variant (flags such as amsgrad, nesterov, maximize, weight_decay != 0), dtype
  and index width; lr, bias corrections etc. are computed on the host (from an integer
  step count kept beside the 'step' tensor) and passed as arguments.  The arithmetic
  follows torch's single-tensor CPU code op by op, so trajectories match to float32
  rounding.  Strided params/grads are updated through contiguous copies.
- LBFGS is torch's algorithm on engine tensor ops; lr_scheduler.py is torch's schedulers.
"""
from . import lr_scheduler, swa_utils
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .asgd import ASGD
from .lbfgs import LBFGS
from .nadam import NAdam
from .radam import RAdam
from .optimizer import Optimizer, register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "Rprop", "ASGD", "LBFGS",
           "lr_scheduler", "swa_utils"]
