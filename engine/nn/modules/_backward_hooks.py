"""Full backward hooks of a Module: identity graph nodes around its inputs and outputs.

The node on the outputs sees grad_output (and runs the backward pre-hooks); the node on
the inputs sees grad_input and calls hook(module, grad_input, grad_output), which may
replace grad_input.  When no input needs grad, the hooks run at the output node with
grad_input all None, as PyTorch does."""
from ...autograd.function import Function
from ...tensor import Tensor


def _tensors(x):
    return [i for i, a in enumerate(x) if isinstance(a, Tensor)]


class BackwardHook:
    def __init__(self, module, hooks, pre_hooks):
        self.module = module
        self.hooks = hooks
        self.pre_hooks = pre_hooks
        self.grad_outputs = None
        self.n_inputs = 0
        self.input_hooked = False

    def _run_hooks(self, grad_inputs):
        for h in self.hooks:
            r = h(self.module, grad_inputs, self.grad_outputs)
            if r is None:
                continue
            r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
            if len(r) != len(grad_inputs):
                raise RuntimeError(f"Backward hook returned an invalid number of grad_input, got {len(r)}, "
                                   f"but expected {len(grad_inputs)}")
            grad_inputs = r
        return grad_inputs

    def setup_input_hook(self, args):
        pos = _tensors(args)
        self.n_inputs = len(pos)
        need = [args[i] for i in pos if args[i].requires_grad]
        if not need or len(need) != len(pos):
            # only hook when every tensor input is differentiable; else report None grad_input
            return args
        self.input_hooked = True
        outs = BackwardHookFunction.apply(self, "input", *[args[i] for i in pos])
        outs = outs if isinstance(outs, tuple) else (outs,)
        args = list(args)
        for i, o in zip(pos, outs):
            args[i] = o
        return tuple(args)

    def setup_output_hook(self, out):
        single = isinstance(out, Tensor)
        seq = (out,) if single else out
        if not isinstance(seq, (tuple, list)):
            return out
        pos = [i for i in _tensors(seq) if seq[i].requires_grad]
        if not pos:
            return out
        res = BackwardHookFunction.apply(self, "output", *[seq[i] for i in pos])
        res = res if isinstance(res, tuple) else (res,)
        if single:
            return res[0]
        seq = list(seq)
        for i, o in zip(pos, res):
            seq[i] = o
        return type(out)(seq) if isinstance(out, tuple) and type(out) is tuple else seq if isinstance(out, list) \
            else type(out)(*seq)


class BackwardHookFunction(Function):
    @staticmethod
    def forward(ctx, hook, where, *ts):
        ctx.hook, ctx.where = hook, where
        ctx.set_materialize_grads(False)
        return ts if len(ts) > 1 else ts[0]

    @staticmethod
    def backward(ctx, *grads):
        hook = ctx.hook
        if ctx.where == "output":
            for h in hook.pre_hooks:
                r = h(hook.module, grads)
                if r is not None:
                    grads = tuple(r) if isinstance(r, (tuple, list)) else (r,)
            hook.grad_outputs = grads
            if not hook.input_hooked:
                hook._run_hooks((None,) * max(hook.n_inputs, 1))
            return (None, None) + tuple(grads)
        grads = hook._run_hooks(tuple(grads))
        return (None, None) + tuple(grads)
