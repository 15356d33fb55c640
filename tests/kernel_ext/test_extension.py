"""Loading and unloading: everything registered is removed again."""
import subprocess
import sys

import engine
import engine.nn as nn
from kernel_ext import display as D

from .conftest import get_ipython

MAGICS = {"line": {"cl_devices", "cl_device", "grad_watch", "clgrad_debug"},
          "cell": {"graph", "backprop", "cl_profile"}}


def _state(ip):
    fmt = ip.display_formatter.formatters["text/html"]
    return {
        "line": set(ip.magics_manager.magics["line"]), "cell": set(ip.magics_manager.magics["cell"]),
        "registry": "ClgradMagics" in ip.magics_manager.registry,
        "html": {t: fmt.type_printers.get(t) for t in (engine.Tensor, nn.Module)},
        "post_run_cell": list(ip.events.callbacks["post_run_cell"]),
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
    assert len(loaded["post_run_cell"]) == len(before["post_run_cell"]) + 1
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
    assert _state(ip)["post_run_cell"] == loaded["post_run_cell"][:-1] + _state(ip)["post_run_cell"][-1:]
    assert len(_state(ip)["post_run_cell"]) == len(before["post_run_cell"]) + 1
    ip.run_line_magic("unload_ext", "kernel_ext")
    assert _state(ip) == before


def test_extension_imports_lazily():
    """Importing kernel_ext does not import engine, the widgets or plotly."""
    code = ("import sys, kernel_ext; bad = [m for m in ('engine', 'widgets', 'plotly', 'anywidget', 'pyopencl') "
            "if m in sys.modules]; print(bad)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
