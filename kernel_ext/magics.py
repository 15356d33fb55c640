"""clgrad's IPython magics: one Magics class, parsed with magic_arguments.

In a Jupyter kernel the magics open the widgets (graph view, backprop stepper, gradient
flow, kernel profile); in a plain terminal IPython, or when `widgets` cannot be imported,
they print text tables instead.  `c.ClgradMagics.frontend = 'text'` (or 'widgets') forces one.
"""
import ast
import importlib

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import CaselessStrEnum

from . import text as T

_VALUE = "__clgrad_cell_value__"
_NOVALUE = object()


def _widget(name):
    """The widget class `name` from the widgets package, or None (package or class missing)."""
    try:
        mod = importlib.import_module("widgets")
    except Exception:
        return None
    return getattr(mod, name, None)


def _build(what, factory):
    """factory() -> a widget, or None (after a one-line note) when building it fails, so the
    magic falls back to its text table instead of losing the result."""
    try:
        return factory()
    except Exception as e:
        print(f"({what} widget unavailable: {type(e).__name__}: {e}; showing text)".splitlines()[0])
        return None


def _strip(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        s = s[1:-1]
    return s


class _CaptureLast(ast.NodeTransformer):
    """AST transformer for one run_cell: the cell's final value goes to __clgrad_cell_value__
    instead of the display (same line numbers, so tracebacks show the user's source).
    `expr` as the last statement becomes `__clgrad_cell_value__ = expr`; after a last
    `name = expr` (one plain name), `__clgrad_cell_value__ = name` follows and `name` is kept
    as the label."""

    def __init__(self):
        self.label = None

    def visit_Module(self, node):
        if not node.body:
            return node
        last = node.body[-1]
        if isinstance(last, ast.Expr):
            node.body[-1] = ast.copy_location(
                ast.Assign(targets=[ast.copy_location(ast.Name(_VALUE, ast.Store()), last)], value=last.value), last)
        elif isinstance(last, (ast.Assign, ast.AnnAssign)):
            targets = last.targets if isinstance(last, ast.Assign) else [last.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name) and getattr(last, "value", None) is not None:
                self.label = targets[0].id
                extra = ast.Assign(targets=[ast.Name(_VALUE, ast.Store())], value=ast.Name(self.label, ast.Load()))
                node.body.append(ast.copy_location(extra, last))
        ast.fix_missing_locations(node)
        return node


@magics_class
class ClgradMagics(Magics):
    """%cl_devices, %cl_device, %%graph, %%backprop, %%cl_profile, %grad_watch, %clgrad_debug."""

    frontend = CaselessStrEnum(("auto", "widgets", "text"), default_value="auto", config=True,
                               help="How the magics show results: 'widgets' (Jupyter), 'text' (tables), or "
                                    "'auto' (widgets inside a Jupyter kernel, text elsewhere).")

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self.last = None             # what the last magic showed: a widget, or a text.Rich
        self.last_recording = None   # %%backprop's BackwardEvent list
        self.last_profile = None     # %%cl_profile's engine.profiler.profile
        self.watches = {}            # id(module) -> _Watch

    # ---- helpers ------------------------------------------------------------------------------
    def _widgets_on(self):
        if self.frontend == "text":
            return False
        if self.frontend == "widgets":
            return True
        return getattr(self.shell, "kernel", None) is not None

    def _show(self, obj):
        self.last = obj
        display(obj)
        return obj

    def _run(self, cell, magic, capture=True):
        """Run `cell` in the user namespace through run_cell (IPython's transforms, tracebacks
        and events).  With `capture`, its final expression is stored instead of displayed and
        returned (else _NOVALUE).  A cell that fails raises UsageError after its traceback."""
        tr = _CaptureLast() if capture else None
        if tr is not None:
            self.shell.ast_transformers.append(tr)
        self.shell.user_ns.pop(_VALUE, None)
        try:
            res = self.shell.run_cell(cell, store_history=False)
        finally:
            if tr is not None and tr in self.shell.ast_transformers:
                self.shell.ast_transformers.remove(tr)
        value = self.shell.user_ns.pop(_VALUE, _NOVALUE)
        err = res.error_before_exec or res.error_in_exec
        if err is not None:
            raise UsageError(f"%%{magic}: the cell raised {type(err).__name__}: {err}".splitlines()[0])
        self._label = tr.label if tr is not None and tr.label else "(cell value)"
        return value

    def _targets(self, names, value, magic):
        """[(label, object)] for the VAR names, or the cell's final value."""
        if names:
            out = []
            for n in names:
                try:
                    out.append((n, self.shell.ev(n)))
                except Exception as e:
                    raise UsageError(f"%%{magic}: cannot evaluate {n!r}: {type(e).__name__}: {e}") from None
            return out
        if value is _NOVALUE:
            raise UsageError(f"%%{magic}: the cell has no final expression to use; end it with the tensor, "
                             f"or name it: %%{magic} VAR")
        return [(getattr(self, "_label", "(cell value)"), value)]

    def _check_tensor(self, label, t, magic):
        import engine
        if not isinstance(t, engine.Tensor):
            raise UsageError(f"%%{magic}: {label} is not an engine Tensor (got {type(t).__name__})")
        return t

    def _var_names(self):
        """id(tensor) -> user variable name, for labelling leaves."""
        import engine
        out = {}
        for k, v in self.shell.user_ns.items():
            if not k.startswith("_") and isinstance(v, engine.Tensor):
                out.setdefault(id(v), k)
        return out

    def _root_module(self, tensors):
        """The outermost module whose forward made the graph, or a user Module owning its leaves."""
        from engine import nn
        from engine.autograd.graph import walk
        counts, leaves = {}, set()
        for t in tensors:
            for info in walk(t):
                if info.modules:
                    m = info.modules[0]
                    counts[id(m)] = (counts.get(id(m), (0, m))[0] + 1, m)
                elif info.is_parameter:
                    leaves.add(id(info.tensor))
        if counts:
            return max(counts.values(), key=lambda c: c[0])[1]
        if leaves:
            for k, v in self.shell.user_ns.items():
                if not k.startswith("_") and isinstance(v, nn.Module):
                    if any(id(p) in leaves for p in v.parameters()):
                        return v
        return None

    # ---- devices ------------------------------------------------------------------------------
    @line_magic
    def cl_devices(self, line):
        """List every OpenCL platform and device, marking the default one (*).

        Columns: name, vendor, type, compute units, global/local memory, max work-group size,
        fp64/fp16 support, driver version, platform and the P:D spec %cl_device accepts.
        """
        if line.strip():
            raise UsageError("%cl_devices takes no arguments")
        import engine
        try:
            devs = engine.devices()
        except RuntimeError as e:
            raise UsageError(f"%cl_devices: {e}") from None
        self._show(T.devices_rich(devs))

    @magic_arguments()
    @argument("spec", nargs="?", default=None,
              help="'gpu', 'cpu', 'cuda[:i]', 'cl:N', 'P:D' (platform:device) or a vendor/name substring")
    @line_magic
    def cl_device(self, line):
        """Select clgrad's default OpenCL device, or show it (no argument).

        Examples: %cl_device gpu    %cl_device cpu    %cl_device cl:1    %cl_device 0:0    %cl_device nvidia
        New tensors go to this device; existing tensors stay where they are.
        """
        args = parse_argstring(self.cl_device, line)
        import engine
        if args.spec is not None:
            spec = _strip(args.spec)
            try:
                engine.set_default_device(spec)
            except (RuntimeError, ValueError, IndexError) as e:
                raise UsageError(f"%cl_device: {e}".splitlines()[0]) from None
        d = next(d for d in engine.devices() if d["default"])
        verb = "default device is now" if args.spec is not None else "default device:"
        self._show(T.Rich(f"{verb} {T.device_line(d)}", None, d))

    # ---- autograd graph -----------------------------------------------------------------------
    @magic_arguments()
    @argument("--grads", action="store_true", help="show the gradients of leaves (after a backward)")
    @argument("--saved", action="store_true", help="show the tensors each node saved for backward")
    @argument("--depth", type=int, default=None, metavar="N",
              help="fold modules nested deeper than N levels into one node each")
    @argument("vars", nargs="*", metavar="VAR", help="tensors to show (default: the cell's final expression)")
    @cell_magic
    def graph(self, line, cell):
        """Run the cell, then show the autograd graph behind the named tensors (default: the
        cell's final expression, or NAME when the cell ends with `NAME = ...`): node names
        (MulBackward0, ...), shapes and dtypes, parameters named by module path
        (blocks.0.attn.qkv.weight), other leaves by variable name.

        In Jupyter this opens widgets.GraphView; elsewhere it prints the nodes as a table.
        """
        args = parse_argstring(self.graph, line)
        if args.depth is not None and args.depth < 0:
            raise UsageError("%%graph: --depth must be 0 or more")
        value = self._run(cell, "graph")
        targets = [(lab, self._check_tensor(lab, t, "graph")) for lab, t in self._targets(args.vars, value, "graph")]
        for lab, t in targets:
            if t.grad_fn is None and not t.requires_grad:
                raise UsageError(f"%%graph: {lab} has no autograd graph (requires_grad=False and no grad_fn); "
                                 "make a leaf with requires_grad=True")
        root = self._root_module([t for _, t in targets])
        GraphView = _widget("GraphView") if self._widgets_on() else None
        if GraphView is not None:
            ns = self.shell.user_ns
            names = {k: ns[k] for k in self._var_names().values() if ns[k].grad_fn is None}
            kw = {} if args.depth is None else {"depth": args.depth}
            ws = _build("GraphView", lambda: [
                GraphView(t, module=root, names=names, grads=args.grads, saved=args.saved,
                          title=f"autograd graph of {lab}", **kw) for lab, t in targets])
            if ws is not None:
                for w in ws:
                    display(w)
                self.last = ws[0] if len(ws) == 1 else ws
                return
        model = T.graph_model(targets, root=root, var_names=self._var_names(), grads=args.grads,
                              saved=args.saved, depth=args.depth)
        title = "autograd graph of " + ", ".join(lab for lab, _ in targets)
        self._show(T.graph_rich(model, title))

    @magic_arguments()
    @argument("var", nargs="?", default=None, metavar="VAR", help="the scalar to backpropagate "
              "(default: the cell's final expression)")
    @cell_magic
    def backprop(self, line, cell):
        """Run the cell, call backward() on the scalar it produces (its final expression, the
        NAME of a final `NAME = ...`, or VAR) while recording the backward pass node by node,
        and open the backprop stepper on that recording (a table of the steps outside Jupyter).

        The recording (BackwardEvent list: node, grad_outputs, grad_inputs) is kept in the
        magics' `last_recording`; gradients accumulate into .grad as with any backward().
        """
        args = parse_argstring(self.backprop, line)
        import engine
        from engine.autograd.graph import record_backward
        value = self._run(cell, "backprop")
        [(label, t)] = self._targets([args.var] if args.var else [], value, "backprop")
        self._check_tensor(label, t, "backprop")
        if t.numel() != 1:
            raise UsageError(f"%%backprop: {label} has shape {T.shape_str(t.shape)}; backward() needs a scalar "
                             f"(one element): reduce it first, e.g. .sum() or .mean()")
        if t.grad_fn is None and not t.requires_grad:
            raise UsageError(f"%%backprop: {label} does not require grad, so there is nothing to backpropagate")
        if not t.dtype.is_floating_point:
            raise UsageError(f"%%backprop: {label} is {t.dtype.name}; only floating-point tensors have gradients")
        with record_backward() as rec:
            try:
                t.backward()
            except Exception as e:
                raise UsageError(f"%%backprop: backward() failed: {type(e).__name__}: {e}".splitlines()[0]) from None
        self.last_recording = rec
        Stepper = _widget("BackpropStepper") if self._widgets_on() else None
        if Stepper is not None:
            root = self._root_module([t])
            ns = self.shell.user_ns
            names = {k: ns[k] for k in self._var_names().values()
                     if isinstance(ns.get(k), engine.Tensor) and ns[k].grad_fn is None}
            w = _build("BackpropStepper", lambda: Stepper(rec, graph=t, module=root, names=names))
            if w is not None:
                self._show(w)
                return
        labels = dict(self._var_names())
        root = self._root_module([t])
        if root is not None:
            labels.update(T.param_names(root))
        del engine
        self._show(T.backprop_rich(rec, f"backward of {label}", labels))

    # ---- profiling --------------------------------------------------------------------------
    @magic_arguments()
    @argument("--sort", choices=("time", "calls"), default="time", help="order the table by total device "
              "time (default) or by number of launches")
    @argument("--timeline", action="store_true", help="also show when each command ran")
    @cell_magic
    def cl_profile(self, line, cell):
        """Run the cell with OpenCL profiling events and show a per-kernel table: op name,
        launches, total and mean device time, share, effective GB/s (bytes from buffer sizes:
        an upper bound for kernels on views), plus transfers (memcpy_*), and with --timeline
        when each command ran.  The profile is kept in the magics' `last_profile`.
        """
        args = parse_argstring(self.cl_profile, line)
        from engine.profiler import profile
        prof = profile()
        prof.start()
        try:
            self._run(cell, "cl_profile", capture=False)
        finally:
            prof.stop()
            self.last_profile = prof
        KernelProfile = _widget("KernelProfile") if self._widgets_on() else None
        if KernelProfile is not None:
            w = _build("KernelProfile", lambda: KernelProfile(
                prof.records, title=f"kernels of the cell ({len(prof.records)} commands)"))
            if w is not None:
                if args.sort == "calls":
                    w.sort("launches")
                self._show(w)
                return
        self._show(T.profile_rich(prof, sort_by=args.sort, timeline=args.timeline))

    @magic_arguments()
    @argument("level", nargs="?", default=None,
              help="0 off, 1 devices, 2 kernel launches with device times, 3 also copies, 4 also OpenCL source")
    @line_magic
    def clgrad_debug(self, line):
        """Set clgrad's debug level at run time (as CLGRAD_DEBUG does at start-up); no argument
        shows it.  Levels: 0 off, 1 devices, 2 every kernel launch with its device time (each
        launch then waits for its kernel), 3 also copies and fills, 4 also generated OpenCL source.
        Debug lines go to stderr.
        """
        args = parse_argstring(self.clgrad_debug, line)
        from engine import profiler
        names = {0: "off", 1: "devices", 2: "kernel launches", 3: "launches and copies", 4: "launches, copies "
                 "and OpenCL source"}
        if args.level is None:
            lv = profiler.get_debug()
            print(f"clgrad debug level {lv} ({names.get(lv, '?')})")
            return
        try:
            profiler.set_debug(_strip(args.level))
        except ValueError as e:
            raise UsageError(f"%clgrad_debug: {e}") from None
        lv = profiler.get_debug()
        print(f"clgrad debug level {lv} ({names[lv]})")

    # ---- gradient flow --------------------------------------------------------------------------
    @magic_arguments()
    @argument("module", nargs="?", default=None, metavar="MODULE", help="the nn.Module to watch")
    @argument("--every", type=int, default=1, metavar="N", help="update every N backward passes")
    @argument("--off", action="store_true", help="stop watching MODULE (or every watched module)")
    @line_magic
    def grad_watch(self, line):
        """Watch the gradients of a module's parameters: an updating gradient-flow view (norm,
        mean and max |grad| per parameter) as later cells call backward().
        %grad_watch model --every 10     update every 10 backward passes
        %grad_watch --off                stop watching everything (or: %grad_watch model --off)
        """
        args = parse_argstring(self.grad_watch, line)
        if args.off:
            if args.module is None:
                n = len(self.watches)
                for w in list(self.watches.values()):
                    w.detach()
                self.watches.clear()
                print(f"grad_watch: stopped {n} watch(es)")
                return
            m = self._module(args.module)
            w = self.watches.pop(id(m), None)
            if w is None:
                raise UsageError(f"%grad_watch: {args.module} is not being watched")
            w.detach()
            print(f"grad_watch: stopped watching {args.module}")
            return
        if args.module is None:
            raise UsageError("%grad_watch: name the module to watch (%grad_watch MODULE [--every N]) or pass --off")
        if args.every < 1:
            raise UsageError("%grad_watch: --every must be 1 or more")
        m = self._module(args.module)
        old = self.watches.pop(id(m), None)
        if old is not None:
            old.detach()
        GradientFlow = _widget("GradientFlow") if self._widgets_on() else None
        if GradientFlow is not None:
            w = _build("GradientFlow", lambda: GradientFlow(m, every=args.every))
            if w is not None:
                self.watches[id(m)] = _WidgetWatch(w)
                self._show(w)
                return
        w = _TextWatch(m, args.module, args.every)
        self.watches[id(m)] = w
        self.last = w
        n = sum(1 for _ in m.parameters())
        print(f"grad_watch: watching {n} parameters of {args.module}; a gradient table follows each cell "
              f"that runs backward() (every {args.every} passes)")

    def _module(self, name):
        from engine import nn
        try:
            m = self.shell.ev(name)
        except Exception as e:
            raise UsageError(f"%grad_watch: cannot evaluate {name!r}: {type(e).__name__}: {e}") from None
        if not isinstance(m, nn.Module):
            raise UsageError(f"%grad_watch: {name} is not an nn.Module (got {type(m).__name__})")
        return m

    def post_run_cell(self, result=None):
        """ip.events 'post_run_cell' callback: text gradient tables for watched modules."""
        for w in list(self.watches.values()):
            try:
                w.after_cell()
            except Exception as e:  # never break the shell from an event callback
                print(f"grad_watch: could not update: {type(e).__name__}: {e}")

    def close(self):
        for w in self.watches.values():
            w.detach()
        self.watches.clear()


class _WidgetWatch:
    """A GradientFlow widget (it updates itself through its own hooks)."""

    def __init__(self, widget):
        self.widget = widget

    def after_cell(self):
        # the widget samples through its own hooks; flushing after each cell shows the last
        # backward even when no optimizer step or forward pass completed the sample yet
        flush = getattr(self.widget, "flush", None)
        if flush is not None:
            flush()

    def detach(self):
        self.widget.detach()


class _TextWatch:
    """Counts backward passes with post-accumulate-grad hooks; prints a table after cells
    in which at least `every` passes ran since the last table."""

    def __init__(self, module, name, every):
        self.module, self.name, self.every = module, name, every
        self.counts = {}
        self.passes_shown = 0
        self.tables = []   # the Rich tables printed so far
        self.handles = []
        for pname, p in module.named_parameters():
            if p.requires_grad:
                self.handles.append(p.register_post_accumulate_grad_hook(self._hook(pname)))

    def _hook(self, pname):
        def hook(p):
            self.counts[pname] = self.counts.get(pname, 0) + 1
        return hook

    @property
    def passes(self):
        """Backward passes seen (each reaches every used parameter once)."""
        return max(self.counts.values(), default=0)

    def after_cell(self):
        n = self.passes
        if n - self.passes_shown >= self.every:
            self.passes_shown = n
            r = T.gradflow_rich(self.module.named_parameters(), f"gradient flow of {self.name} after {n} "
                                                                f"backward pass(es)")
            self.tables.append(r)
            display(r)

    def detach(self):
        for h in self.handles:
            h.remove()
        self.handles = []
