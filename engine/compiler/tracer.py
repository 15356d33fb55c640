"""engine.compile(fn_or_module): trace once per input signature, then replay a fused plan.

First call for a signature (shapes, strides, dtypes, devices, requires_grad of the tensor
arguments, the other arguments, grad mode, the module's training flags and parameters):
  1. run the function eagerly under a runtime Recorder (engine/runtime/record.py), which
     records every launch, copy and host step with its buffers as slots;
  2. if the outputs need gradients, run the backward autograd would run (autograd.grad with
     placeholder output gradients) under the same recorder: the backward plan;
  3. fuse elementwise chains (engine/runtime/fusion.py) and build replay plans with slot
     lifetimes.  The first call returns the eager results (the function ran exactly once).
Later calls with that signature replay the forward plan; when gradients are needed, the outputs
hang off one graph node (CompiledFunctionBackward) whose backward replays the backward plan.

Falls back to eager, per signature, with the reason kept in `explain()` and printed at
CLGRAD_DEBUG >= 1, when the traced Python depends on tensor values (a value was read on the
host: .item(), bool(t), printing, nonzero...), when the call keeps tensors it created beyond
its outputs (assigns .grad or module state: compile the model, not the training step), when an
interior graph node has hooks, or when the cache of plans is full.
"""
import functools
import gc
import os
import sys
import time

from .. import dtypes as D
from ..autograd import grad_mode as _gm
from ..autograd.engine import grad as _autograd_grad
from ..autograd.function import AccumulateGrad, Function
from ..nn.modules import module as _mod
from ..nn.modules.module import Module
from ..runtime import device as _rdev
from ..runtime import fusion as _fusion
from ..runtime import index as _index
from ..runtime import launch as _launch
from ..runtime.record import Plan, Recorder, _step_slots, dump
from ..ops._core import copy_into
from ..tensor import Tensor, empty, make

CACHE_LIMIT = 8          # plans per compiled function (torch's recompile limit is 8 too)
_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _debug():
    return _launch.debug_level()


# ---- argument signatures ---------------------------------------------------------------------------
def _flatten(x, out):
    """Tensors of a nested tuple/list/dict, in order; returns a spec to rebuild the structure."""
    if isinstance(x, Tensor):
        out.append(x)
        return ("T", len(out) - 1)
    if isinstance(x, (tuple, list)):
        return (type(x), tuple(_flatten(v, out) for v in x))
    if isinstance(x, dict):
        return (dict, tuple((k, _flatten(v, out)) for k, v in x.items()))
    return ("C", x)


def _unflatten(spec, tensors):
    tag = spec[0]
    if tag == "T":
        return tensors[spec[1]]
    if tag == "C":
        return spec[1]
    if tag is dict:
        return {k: _unflatten(v, tensors) for k, v in spec[1]}
    vals = [_unflatten(v, tensors) for v in spec[1]]
    return tag(vals) if tag is list else tuple(vals) if tag is tuple else tag(*vals)


def _hashable(spec):
    tag = spec[0]
    if tag == "T":
        return spec
    if tag == "C":
        v = spec[1]
        try:
            hash(v)
            return ("C", type(v), v)
        except TypeError:
            return ("C", type(v), id(v))
    if tag is dict:
        return (dict, tuple((k, _hashable(v)) for k, v in spec[1]))
    return (tag, tuple(_hashable(v) for v in spec[1]))


def _signature(flat):
    sig = []
    first = {}
    for i, t in enumerate(flat):
        st = t._storage
        sig.append((t._shape, t._strides, t._offset, t.dtype, st.device.index, t._rg, first.setdefault(id(st), i)))
    return tuple(sig)


# ---- the compiled autograd node ---------------------------------------------------------------------
class _Compiled(Function):
    node_name = "CompiledFunctionBackward"

    @staticmethod
    def forward(ctx, entry, flat, box, *wrt):
        env, held, outs = entry.forward(flat)
        ctx.entry = entry
        ctx.env, ctx.held = entry.saved(env, held)
        box.extend(outs)   # every output; the differentiable ones are returned (and get grad_fn)
        return tuple(outs[i] for i in entry.diff_idx)

    @staticmethod
    def backward(ctx, *grads):
        if _gm.state.enabled:
            raise RuntimeError("engine.compile: double backward (create_graph=True) through a compiled function "
                               "is not supported; call the original function for that")
        gws = ctx.entry.backward(ctx.env, ctx.held, grads)
        return (None, None, None) + tuple(gws)


class _Entry:
    """One compiled signature: the forward plan, and the backward plan when gradients flow."""

    def __init__(self, rec, in_slots, out_spec, out_meta, diff_idx, fwd, bwd, gin, grad_meta, wrt_idx,
                 saved_slots, nslots):
        self.rec = rec
        self.in_slots = in_slots
        self.out_spec, self.out_meta = out_spec, out_meta
        self.diff_idx = diff_idx
        self.diff_set = set(diff_idx)
        self.fwd, self.bwd = fwd, bwd
        self.gin, self.grad_meta = gin, grad_meta
        self.wrt_idx = wrt_idx          # which flat inputs are differentiated (the rest are params)
        self.saved_slots = saved_slots  # forward slots the backward reads
        self.nslots = nslots
        self.params = []                # the leaves (parameters) the backward differentiates

    def forward(self, flat):
        env = [None] * self.nslots
        held = [None] * self.nslots
        for t, s in zip(flat, self.in_slots):
            env[s] = t._storage.buf
            held[s] = t._storage
        self.fwd.run(env, held)
        outs = [make(held[s], shp, st, off, dt) for s, shp, st, off, dt in self.out_meta]
        return env, held, outs

    def saved(self, env, held):
        e = [None] * self.nslots
        h = [None] * self.nslots
        for s in self.saved_slots:
            e[s], h[s] = env[s], held[s]
        return e, h

    def backward(self, env, held, grads):
        env, held = list(env), list(held)
        keep = []
        for g, s, (shp, dt) in zip(grads, self.gin, self.gout_meta):
            if g is None:
                from ..ops.creation import zeros
                g = zeros(shp, dtype=dt, device=f"cl:{self.rec.slot_dev[s].index}")
            else:
                if g.dtype is not dt:
                    g = g.to(dt)
                if not g.is_contiguous() or g._offset:   # the plan reads a dense gradient at offset 0
                    d = empty(g._shape, g.dtype, g._storage.device)
                    copy_into(d, g)
                    g = d
            keep.append(g)
            env[s], held[s] = g._storage.buf, g._storage
        self.bwd.run(env, held)
        return [None if m is None else make(held[m[0]], m[1], m[2], m[3], m[4]) for m in self.grad_meta]


class CompiledFunction:
    """The callable engine.compile returns for a function (modules get an OptimizedModule)."""

    def __init__(self, fn, mode="default", fullgraph=False, cache_limit=CACHE_LIMIT, module=None):
        self._fn = fn
        self._module = module
        self.mode = mode
        self.fullgraph = fullgraph
        self.cache_limit = cache_limit
        self._cache = {}
        self.stats = {"traces": 0, "replays": 0, "eager_calls": 0, "compile_seconds": 0.0,
                      "kernels_fused": 0, "launches_before": 0, "launches_after": 0}
        self.reasons = []     # (signature summary, reason) of every fallback
        self.last_entry = None
        functools.update_wrapper(self, fn, updated=())

    # ---- call --------------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if _launch._REC[0] is not None:   # called inside another compiled function's trace: inline
            return self._fn(*args, **kwargs)
        flat = []
        spec = _flatten((args, kwargs), flat)
        key = (_gm.state.enabled, _signature(flat), _hashable(spec), self._module_key())
        if key[3] is not None and key[3][3]:
            return self._eager(args, kwargs, "the module has forward/backward hooks (they run only eagerly); "
                               "remove them to compile", key)
        ent = self._cache.get(key)
        if ent is None:
            if len(self._cache) >= self.cache_limit:
                return self._eager(args, kwargs, f"cache limit reached ({self.cache_limit} signatures)", key)
            return self._trace(key, args, kwargs, flat)
        if isinstance(ent, str):
            self.stats["eager_calls"] += 1
            return self._fn(*args, **kwargs)
        self.stats["replays"] += 1
        return self._replay(ent, flat)

    def _module_key(self):
        m = self._module
        if m is None:
            return None
        mods = list(m.modules())
        hooked = _blocking(_mod._global_pre_hooks) or _blocking(_mod._global_fwd_hooks) or any(
            _blocking(x._forward_hooks) or _blocking(x._forward_pre_hooks) or _blocking(x._backward_hooks)
            or _blocking(x._backward_pre_hooks) for x in mods)
        return (tuple(x.training for x in mods),
                tuple((id(p._storage), p._rg) for p in m.parameters()),
                tuple(id(b._storage) for b in m.buffers()), hooked)

    def _eager(self, args, kwargs, reason, key):
        if self.fullgraph:
            raise RuntimeError(f"engine.compile(fullgraph=True): cannot capture {self._name()}: {reason}")
        if not self.reasons or self.reasons[-1] != reason:
            self.reasons.append(reason)
            if _debug() >= 1:
                print(f"[clgrad] compile: {self._name()} runs eagerly: {reason}", file=sys.stderr)
        self.stats["eager_calls"] += 1
        return self._fn(*args, **kwargs)

    def _name(self):
        return getattr(self, "_display", None) or getattr(self._fn, "__qualname__", None) or type(self._fn).__name__

    def _replay(self, ent, flat):
        if ent.bwd is None:
            _, _, outs = ent.forward(flat)
        else:
            wrt = [flat[i] for i in ent.wrt_idx] + ent.params
            outs = []
            diff = _Compiled.apply(ent, flat, outs, *wrt)
            for i, o in zip(ent.diff_idx, diff):
                outs[i] = o
        return _unflatten(ent.out_spec, outs)

    # ---- trace -------------------------------------------------------------------------------------
    def _trace(self, key, args, kwargs, flat):
        t0 = time.perf_counter()
        self.stats["traces"] += 1
        devices = _rdev.all_devices()
        for d in {t._storage.device for t in flat} | {_rdev.default_device()}:
            _index._err_buf(d)   # the index-error flag must exist before: a constant, not a slot
        rec = Recorder()
        in_slots = [rec.input_slot(t._storage) for t in flat]
        grad_on = _gm.state.enabled
        rec.start(devices)
        try:
            out = self._fn(*args, **kwargs)
            gc.collect()
            alive_fwd = set(rec.alive)
        finally:
            rec.stop()
        ns_fwd = len(rec.slot_size)
        nf = len(rec.steps)
        outs = []
        out_spec = _flatten(out, outs)
        reason = rec.reason
        out_meta = []
        if reason is None:
            for o in outs:
                s = rec.slot_of(o._storage.buf)
                if s is None:
                    reason = ("returns a tensor the call did not compute (a parameter, buffer or global); "
                              "return a clone")
                    break
                out_meta.append((s, o._shape, o._strides, o._offset, o.dtype))
        diff_idx = [i for i, o in enumerate(outs) if grad_on and o._rg]
        bwd_steps, gin, grad_meta, wrt_idx, params, gout_meta = None, [], [], [], [], []
        if reason is None and diff_idx:
            leaves, reason = _leaves([outs[i] for i in diff_idx])
            if reason is None:
                flat_ids = {id(t): i for i, t in enumerate(flat)}
                wrt_idx = [i for i, t in enumerate(flat) if t._rg]
                params = [t for t in leaves if id(t) not in flat_ids]
                wrt = [flat[i] for i in wrt_idx] + params
                from ..ops.creation import ones
                gouts = []
                for i in diff_idx:
                    o = outs[i]
                    g = ones(o._shape, dtype=o.dtype, device=o.device)
                    gouts.append(g)
                    gin.append(rec.new_slot(g._storage.buf, g._storage.size, g._storage.device, "gin"))
                    gout_meta.append((o._shape, o.dtype))
                rec.start(devices)
                try:
                    grads = _autograd_grad([outs[i] for i in diff_idx], wrt, grad_outputs=gouts,
                                           retain_graph=True, allow_unused=True)
                finally:
                    rec.stop()
                bwd_steps = rec.steps[nf:]
                reason = rec.reason
                if reason is None:
                    for g in grads:
                        if g is None:
                            grad_meta.append(None)
                            continue
                        s = rec.slot_of(g._storage.buf)
                        if s is None:
                            reason = "a gradient aliases a parameter or buffer"
                            break
                        grad_meta.append((s, g._shape, g._strides, g._offset, g.dtype))
                del gouts
        fwd_steps = rec.steps[:nf]
        if reason is None:
            bwd_reads = set()
            for st in bwd_steps or ():
                bwd_reads.update(s for s in _step_slots(st) if s < ns_fwd)
            out_slots = {m[0] for m in out_meta}
            leaked = alive_fwd - out_slots - bwd_reads - _graph_slots([outs[i] for i in diff_idx], rec)
            if leaked:
                reason = (f"the call keeps {len(leaked)} tensor(s) it created beyond its outputs (e.g. assigns "
                          ".grad, optimizer state or module attributes); compile the model's forward instead")
        if reason is not None:
            self._cache[key] = reason
            self.reasons.append(reason)
            if self.fullgraph:
                raise RuntimeError(f"engine.compile(fullgraph=True): cannot capture {self._name()}: {reason}")
            if _debug() >= 1:
                print(f"[clgrad] compile: {self._name()} runs eagerly for this signature: {reason}", file=sys.stderr)
            self.stats["compile_seconds"] += time.perf_counter() - t0
            return out
        kinds = rec.slot_kind
        owned_f = {s for s in range(ns_fwd) if kinds[s] == "tmp"}
        owned_b = {s for s in range(ns_fwd, len(kinds)) if kinds[s] == "tmp"}
        keep_f = out_slots | (bwd_reads & owned_f)
        keep_b = {m[0] for m in grad_meta if m is not None}
        n_before = len(fwd_steps) + len(bwd_steps or ())
        fwd_steps, nfu1 = _fusion.fuse(rec, fwd_steps, keep_f | {s for s in range(len(kinds)) if kinds[s] != "tmp"}
                                       | bwd_reads)
        if bwd_steps is not None:
            bwd_steps, nfu2 = _fusion.fuse(rec, bwd_steps, keep_b | {s for s in range(len(kinds)) if kinds[s] != "tmp"}
                                           | set(range(ns_fwd)))
        else:
            nfu2 = 0
        fwd = Plan(fwd_steps, rec, owned_f, keep_f)
        bwd = Plan(bwd_steps, rec, owned_b, keep_b) if bwd_steps is not None else None
        saved_slots = sorted(s for s in bwd_reads) if bwd is not None else []
        ent = _Entry(rec, in_slots, out_spec, out_meta, diff_idx, fwd, bwd, gin, grad_meta, wrt_idx,
                     saved_slots, len(kinds))
        ent.params = params
        ent.gout_meta = gout_meta
        ent.n_before = n_before
        ent.n_after = len(fwd_steps) + len(bwd_steps or ())
        ent.fused = nfu1 + nfu2
        rec.keep, rec.key_of, rec.alive = [], {}, set()   # the plans hold what they need
        self._cache[key] = ent
        self.last_entry = ent
        dt = time.perf_counter() - t0
        self.stats["compile_seconds"] += dt
        self.stats["kernels_fused"] += ent.fused
        self.stats["launches_before"] += n_before
        self.stats["launches_after"] += ent.n_after
        if _debug() >= 1:
            print(f"[clgrad] compile: {self._name()}: {n_before} steps -> {ent.n_after} "
                  f"({ent.fused} elementwise kernels fused away), "
                  f"{'forward+backward' if bwd is not None else 'forward'} in {dt * 1e3:.0f} ms", file=sys.stderr)
        if _debug() >= 3:
            dump(fwd_steps, title="forward plan")
            if bwd_steps is not None:
                dump(bwd_steps, title="backward plan")
        return out

    def explain(self):
        """What happened: traces, replays, eager calls, fallback reasons and launch counts."""
        return {**self.stats, "signatures": len(self._cache), "reasons": list(self.reasons)}

    def fused_graph(self):
        """The last compiled plan as a graph: one node per replayed step (kernels, copies, host
        steps) with the eager ops each fused kernel replaced, and data-flow edges through slots."""
        ent = self.last_entry
        if ent is None:
            raise RuntimeError("fused_graph(): nothing compiled yet (call the compiled function first)")
        return _fusion.plan_graph([("forward", ent.fwd.steps)] + ([("backward", ent.bwd.steps)] if ent.bwd else []),
                                  ent.n_before)


def _blocking(hooks):
    """Hooks a replay would skip.  A hook marked `_clgrad_observer = True` only watches (e.g. the
    IPython extension records module output shapes for its reprs): it runs on traced calls only, and
    does not keep a module from being compiled."""
    return any(not getattr(h, "_clgrad_observer", False) for h in hooks.values()) if hooks else False


def _graph_slots(outs, rec):
    """Slots of the tensors the eager graph of `outs` keeps (saved tensors, ctx attributes):
    alive after the call, but not leaked by it."""
    found = set()
    seen = set()
    stack = [o.grad_fn for o in outs if o.grad_fn is not None]

    def add(v):
        if isinstance(v, Tensor):
            s = rec.slot_of(v._storage.buf)
            if s is not None:
                found.add(s)
        elif isinstance(v, (tuple, list)):
            for x in v:
                add(x)
    while stack:
        n = stack.pop()
        if n is None or id(n) in seen or isinstance(n, AccumulateGrad):
            continue
        seen.add(id(n))
        saved = n._saved
        if saved:
            for sv in saved:
                if sv is not None and hasattr(sv, "tensor"):
                    add(sv.tensor)
        d = getattr(n, "__dict__", None)
        if d:
            for v in d.values():
                add(v)
        for nx, _ in n.next_functions:
            if nx is not None:
                stack.append(nx)
    return found


def _leaves(outs):
    """The leaf tensors (parameters, inputs) the outputs' graph reaches, or a fallback reason."""
    seen = set()
    stack = [o.grad_fn for o in outs if o.grad_fn is not None]
    leaves = []
    lids = set()
    for o in outs:
        if o.grad_fn is None and o._rg and id(o) not in lids:   # an output that is itself a leaf
            lids.add(id(o))
            leaves.append(o)
    while stack:
        n = stack.pop()
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, AccumulateGrad):
            t = n.variable
            if id(t) not in lids:
                lids.add(id(t))
                leaves.append(t)
            continue
        if n._hooks or n._pre_hooks:
            return None, "a graph node inside the call has hooks (register_hook); they would not run on replay"
        for nx, _ in n.next_functions:
            if nx is not None:
                stack.append(nx)
    return leaves, None


class OptimizedModule(Module):
    """What engine.compile(module) returns: the module's forward, compiled; everything else
    (parameters, state_dict with the `_orig_mod.` prefix, train/eval) is the original module's."""

    def __init__(self, mod, mode="default", fullgraph=False):
        super().__init__()
        self._orig_mod = mod
        self._compiled = CompiledFunction(mod.__call__, mode, fullgraph, module=mod)
        self._compiled._display = type(mod).__name__

    def forward(self, *args, **kwargs):
        return self._compiled(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self._compiled(*args, **kwargs)

    def explain(self):
        return self._compiled.explain()

    def fused_graph(self):
        return self._compiled.fused_graph()

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["_modules"]["_orig_mod"], name)


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None, options=None,
            disable=False):
    """Compile a function or Module (torch.compile's signature).  Returns a callable with the same
    behaviour that traces once per input signature and replays a fused plan of OpenCL kernels."""
    if model is None:
        return lambda m: compile(m, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                                 options=options, disable=disable)
    mode = mode or "default"
    if mode not in _MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: {', '.join(_MODES)}")
    if disable or backend == "eager" or os.environ.get("CLGRAD_COMPILE_DISABLE"):
        return model
    if isinstance(model, Module):
        return OptimizedModule(model, mode, fullgraph)
    if not callable(model):
        raise RuntimeError("torch.compile: model must be a Module or a callable")
    return CompiledFunction(model, mode, fullgraph)


def explain(compiled):
    """engine.compiler.explain(compiled): its stats and fallback reasons."""
    return compiled.explain()
