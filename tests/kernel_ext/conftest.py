"""A real IPython shell (IPython.testing.globalipapp) with kernel_ext loaded."""
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing import globalipapp
from IPython.utils.capture import capture_output


def get_ipython():
    """The shared test shell (globalipapp starts it on the first call only)."""
    return globalipapp.get_ipython() or InteractiveShell.instance()


class Shell:
    """Runs cells in the shared test shell and collects everything they print or display."""

    def __init__(self, ip):
        self.ip = ip

    @property
    def magics(self):
        return self.ip.magics_manager.registry["ClgradMagics"]

    def run(self, cell):
        """(ExecutionResult, text): text = stdout + stderr + every displayed text/plain."""
        with capture_output() as cap:
            res = self.ip.run_cell(cell)
        parts = [cap.stdout, cap.stderr] + [o.data.get("text/plain", "") for o in cap.outputs]
        return res, "\n".join(parts)

    def ok(self, cell):
        res, out = self.run(cell)
        assert res.success, (res.error_before_exec or res.error_in_exec, out)
        return out

    def fails(self, cell, match):
        """The cell gives a one-line UsageError containing `match`, and the shell still works."""
        from IPython.core.error import UsageError
        res, out = self.run(cell)
        err = res.error_in_exec or res.error_before_exec
        assert isinstance(err, UsageError), (err, out)
        assert match in str(err), (str(err), out)
        assert "\n" not in str(err)
        assert "Traceback" not in out.split("UsageError")[-1]
        r2, _ = self.run("__kx_alive = 40 + 2")
        assert r2.success and self.ip.user_ns["__kx_alive"] == 42
        return str(err), out

    def __getitem__(self, name):
        return self.ip.user_ns[name]


@pytest.fixture(scope="module")
def _loaded():
    ip = get_ipython()
    ip.run_line_magic("load_ext", "kernel_ext")
    ip.run_cell("import engine\nimport engine.nn as nn\nimport numpy as np", store_history=False)
    yield ip
    ip.run_line_magic("unload_ext", "kernel_ext")


@pytest.fixture
def shell(_loaded):
    sh = Shell(_loaded)
    sh.magics.frontend = "text"
    yield sh
    sh.magics.frontend = "text"
    sh.magics.close()
