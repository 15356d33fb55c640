"""IPython extension for clgrad: `%load_ext kernel_ext`.

Registers the magics (%cl_devices, %cl_device, %%graph, %%backprop, %%cl_profile,
%grad_watch, %clgrad_debug; see kernel_ext.magics), an HTML display for Tensors and
Modules (kernel_ext.display; the plain-text repr stays engine's), a 'post_run_cell'
callback for %grad_watch, and a forward hook that records module output shapes for the
Module display.  `%unload_ext kernel_ext` removes all of it.

`python -m kernel_ext install [--user] [--name clgrad]` installs a Jupyter kernel
"Python 3 (clgrad)" that loads the extension at start-up.
"""

_state = {}


def _tensor_html(t):
    from .display import tensor_html
    try:
        return tensor_html(t)
    except Exception:  # the plain-text repr still shows
        return None


def _module_html(m):
    from .display import module_html
    try:
        return module_html(m)
    except Exception:
        return None


def load_ipython_extension(ip):
    if _state.get("ip") is ip:
        return
    import engine
    from engine import nn

    from . import display
    from .magics import ClgradMagics

    magics = ClgradMagics(shell=ip)
    ip.register_magics(magics)
    fmt = ip.display_formatter.formatters["text/html"]
    prev = {engine.Tensor: fmt.for_type(engine.Tensor, _tensor_html),
            nn.Module: fmt.for_type(nn.Module, _module_html)}
    ip.events.register("post_run_cell", magics.post_run_cell)
    display.start_shape_recording()
    _state.update(ip=ip, magics=magics, prev=prev)


def unload_ipython_extension(ip):
    if _state.get("ip") is not ip:
        return
    from . import display
    magics, prev = _state["magics"], _state["prev"]
    magics.close()
    table = ip.magics_manager.magics
    for kind, names in magics.magics.items():
        for name, fn in names.items():
            if getattr(table[kind].get(name), "__self__", None) is magics:
                del table[kind][name]
    if ip.magics_manager.registry.get(type(magics).__name__) is magics:
        del ip.magics_manager.registry[type(magics).__name__]
    fmt = ip.display_formatter.formatters["text/html"]
    for typ, old in prev.items():
        fmt.pop(typ, None)
        if old is not None:
            fmt.for_type(typ, old)
    try:
        ip.events.unregister("post_run_cell", magics.post_run_cell)
    except ValueError:
        pass
    display.stop_shape_recording()
    _state.clear()
