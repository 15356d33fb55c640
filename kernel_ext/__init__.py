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


_TYPES = (("engine.tensor", "Tensor", _tensor_html), ("engine.nn.modules.module", "Module", _module_html))


def _start_shapes_when_engine_loaded(*_):
    """Record module output shapes once engine.nn is imported (without importing it ourselves)."""
    import sys
    from . import display
    if display._hook[0] is None and "engine.nn.modules.module" in sys.modules:
        display.start_shape_recording()


def load_ipython_extension(ip):
    if _state.get("ip") is ip:
        return
    from .magics import ClgradMagics

    magics = ClgradMagics(shell=ip)
    ip.register_magics(magics)
    # deferred by name: engine is imported when the first Tensor / Module is shown, not here
    fmt = ip.display_formatter.formatters["text/html"]
    prev = {f"{mod}.{name}": fmt.for_type_by_name(mod, name, fn) for mod, name, fn in _TYPES}
    ip.events.register("post_run_cell", magics.post_run_cell)
    ip.events.register("pre_run_cell", _start_shapes_when_engine_loaded)
    ip.events.register("post_run_cell", _start_shapes_when_engine_loaded)
    _start_shapes_when_engine_loaded()
    _state.update(ip=ip, magics=magics, prev=prev)


def unload_ipython_extension(ip):
    if _state.get("ip") is not ip:
        return
    from . import display
    magics, prev = _state["magics"], _state["prev"]
    magics.close()
    table = ip.magics_manager.magics
    for kind, names in magics.magics.items():
        for name in names:
            if getattr(table[kind].get(name), "__self__", None) is magics:
                del table[kind][name]
    if ip.magics_manager.registry.get(type(magics).__name__) is magics:
        del ip.magics_manager.registry[type(magics).__name__]
    fmt = ip.display_formatter.formatters["text/html"]
    for key, old in prev.items():
        fmt.pop(key, None)
        if old is not None:
            mod, name = key.rsplit(".", 1)
            fmt.for_type_by_name(mod, name, old)
    for event, cb in (("post_run_cell", magics.post_run_cell), ("pre_run_cell", _start_shapes_when_engine_loaded),
                      ("post_run_cell", _start_shapes_when_engine_loaded)):
        try:
            ip.events.unregister(event, cb)
        except ValueError:
            pass
    display.stop_shape_recording()
    _state.clear()
