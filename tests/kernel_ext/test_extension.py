"""Loading and unloading: everything registered is removed again."""
import subprocess
import sys

import engine
import engine.nn as nn
from kernel_ext import display as D

from .conftest import get_ipython

MAGICS = {"line": {"cl_devices", "cl_device", "grad_watch", "clgrad_debug"},
          "cell": {"graph", "backprop", "cl_profile"}}


def _has_printer(fmt, t):
    try:
        fmt.lookup_by_type(t)
        return True
    except KeyError:
        return False


def _state(ip):
    fmt = ip.display_formatter.formatters["text/html"]
    return {
        "line": set(ip.magics_manager.magics["line"]), "cell": set(ip.magics_manager.magics["cell"]),
        "registry": "ClgradMagics" in ip.magics_manager.registry,
        "html": {t: fmt.lookup_by_type(t) if _has_printer(fmt, t) else None for t in (engine.Tensor, nn.Module)},
        "post_run_cell": list(ip.events.callbacks["post_run_cell"]),
        "pre_run_cell": list(ip.events.callbacks["pre_run_cell"]),
        "ast": list(ip.ast_transformers),
    }


def test_load_unload_leaves_nothing_registered():
    ip = get_ipython()
    if "kernel_ext" in ip.extension_manager.loaded:
        ip.run_line_magic("unload_ext", "kernel_ext")
    before = _state(ip)
    assert not (MAGICS["line"] & before["line"]) and not (MAGICS["cell"] & before["cell"])
    ip.run_line_magic("load_ext", "kernel_ext")
    loaded = _state(ip)
    assert MAGICS["line"] <= loaded["line"] and MAGICS["cell"] <= loaded["cell"]
    assert loaded["registry"]
    assert all(v is not None for v in loaded["html"].values())
    assert len(loaded["post_run_cell"]) == len(before["post_run_cell"]) + 2
    m = nn.Linear(2, 3)
    m(engine.ones(1, 2))
    assert D.output_shape(m) == "[1, 3]"
    # a watch left running is detached by unload
    ip.user_ns["ext_m"] = m
    ip.magics_manager.registry["ClgradMagics"].frontend = "text"
    ip.run_line_magic("grad_watch", "ext_m")
    watch = ip.magics_manager.registry["ClgradMagics"].watches[id(m)]
    ip.run_line_magic("unload_ext", "kernel_ext")
    after = _state(ip)
    assert after == before
    assert watch.handles == []
    m2 = nn.Linear(2, 3)
    m2(engine.ones(1, 2))
    assert D.output_shape(m2) is None  # the forward hook is gone
    r = ip.run_cell("%cl_devices")
    assert not r.success
    # reload works
    ip.run_line_magic("load_ext", "kernel_ext")
    assert MAGICS["line"] <= set(ip.magics_manager.magics["line"])
    ip.run_line_magic("reload_ext", "kernel_ext")
    assert len(_state(ip)["post_run_cell"]) == len(before["post_run_cell"]) + 2
    ip.run_line_magic("unload_ext", "kernel_ext")
    assert _state(ip) == before


def test_extension_imports_lazily():
    """Importing or loading kernel_ext imports neither engine nor the widgets; the Tensor
    display and shape recording start once the user imports engine."""
    code = """
import sys
from IPython.core.interactiveshell import InteractiveShell
import kernel_ext
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "kernel_ext")
print([m for m in ("engine", "widgets", "plotly", "anywidget", "pyopencl") if m in sys.modules])
ip.run_cell("import engine, engine.nn as nn")
ip.run_cell("m = nn.Linear(2, 3)\\n_ = m(engine.ones(1, 2))")
from kernel_ext import display
print(display.output_shape(ip.user_ns["m"]))
ip.display_formatter.formatters["text/html"].enabled = True
data, _ = ip.display_formatter.format(ip.user_ns["engine"].ones(2))
print("clgrad-tensor" in data.get("text/html", ""), "widgets" in sys.modules)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == ["[]", "[1, 3]", "True False"], r.stdout
