"""`python -m kernel_ext install/uninstall` into a temporary prefix, and a live kernel from it."""
import json
import os
import subprocess
import sys

import pytest

from kernel_ext import kernelspec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    return subprocess.run([sys.executable, "-m", "kernel_ext", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_install_uninstall_prefix(tmp_path):
    r = _cli("install", "--prefix", str(tmp_path), "--name", "clgrad-test")
    assert r.returncode == 0, r.stderr
    d = tmp_path / "share" / "jupyter" / "kernels" / "clgrad-test"
    assert str(d) in r.stdout
    spec = json.loads((d / "kernel.json").read_text())
    assert spec["display_name"] == "Python 3 (clgrad)"
    assert spec["language"] == "python"
    argv = spec["argv"]
    assert argv[0] == sys.executable
    assert argv[1:5] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert argv[argv.index("--ext") + 1] == "kernel_ext"
    r = _cli("uninstall", "--prefix", str(tmp_path), "--name", "clgrad-test")
    assert r.returncode == 0, r.stderr
    assert not d.exists()
    r = _cli("uninstall", "--prefix", str(tmp_path), "--name", "clgrad-test")
    assert r.returncode == 1 and "No kernelspec" in r.stderr


def test_cli_usage_errors():
    r = _cli()
    assert r.returncode == 2 and "install" in r.stderr
    r = _cli("install", "--user", "--prefix", "/tmp/x")
    assert r.returncode == 2 and "not allowed with" in r.stderr


def test_kernel_json_defaults():
    spec = kernelspec.kernel_json(python="/opt/py/bin/python")
    assert spec["argv"] == ["/opt/py/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}",
                            "--ext", "kernel_ext"]
    assert "env" not in spec


def test_live_kernel_loads_the_extension(tmp_path, monkeypatch):
    pytest.importorskip("jupyter_client")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    kernelspec.install("clgrad-live", prefix=str(tmp_path))
    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "share" / "jupyter" / "kernels")])
    km = KernelManager(kernel_name="clgrad-live", kernel_spec_manager=ksm)
    km.start_kernel(cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)

        def run(code):
            msgs = []
            reply = kc.execute_interactive(code, output_hook=msgs.append, timeout=120)
            return reply["content"], msgs

        reply, msgs = run("%cl_devices")
        assert reply["status"] == "ok", reply
        text = "".join(m["content"].get("data", {}).get("text/plain", "") + m["content"].get("text", "")
                       for m in msgs)
        assert "OpenCL device(s)" in text
        html = "".join(m["content"].get("data", {}).get("text/html", "") for m in msgs)
        assert "clgrad-devices" in html
        # inside a kernel %%graph opens the widget
        assert run("import engine")[0]["status"] == "ok"
        reply, msgs = run("%%graph\nx = engine.ones(2, requires_grad=True)\n(x * x).sum()")
        assert reply["status"] == "ok", reply
        data = [m["content"]["data"] for m in msgs if m["msg_type"] == "display_data"]
        assert any("application/vnd.jupyter.widget-view+json" in d for d in data), data
        # a tensor's display has the HTML summary
        reply, msgs = run("engine.tensor([1.0, float('nan')])")
        res = [m["content"]["data"] for m in msgs if m["msg_type"] == "execute_result"][0]
        assert "clgrad-tensor" in res["text/html"] and res["text/plain"].startswith("tensor([1., nan]")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
