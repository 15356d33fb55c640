"""Install / remove the Jupyter kernelspec "Python 3 (clgrad)", an ipykernel that loads
kernel_ext at start-up (`--ext kernel_ext`, i.e. InteractiveShellApp.extra_extensions).

    python -m kernel_ext install [--user | --sys-prefix | --prefix DIR] [--name clgrad]
    python -m kernel_ext uninstall [--user | --sys-prefix | --prefix DIR] [--name clgrad]

Without a location the spec goes to sys.prefix (the virtual environment whose Jupyter
should list it), which is what `make lab` wants.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

DEFAULT_NAME = "clgrad"
DISPLAY_NAME = "Python 3 (clgrad)"


def kernel_json(python=None, extra_env=None):
    """The kernel.json content (a dict)."""
    spec = {
        "argv": [python or sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--ext", "kernel_ext"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "metadata": {"debugger": True},
    }
    if extra_env:
        spec["env"] = dict(extra_env)
    return spec


def _importable_elsewhere():
    """Whether a fresh interpreter (outside this checkout) can import kernel_ext."""
    try:
        r = subprocess.run([sys.executable, "-c", "import kernel_ext"], cwd=tempfile.gettempdir(),
                           capture_output=True, timeout=60, env={k: v for k, v in os.environ.items()
                                                                 if k != "PYTHONPATH"})
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _kernels_dir(user=False, prefix=None):
    if user:
        from jupyter_core.paths import jupyter_data_dir
        return os.path.join(jupyter_data_dir(), "kernels")
    return os.path.join(prefix or sys.prefix, "share", "jupyter", "kernels")


def install(name=DEFAULT_NAME, user=False, prefix=None, display_name=None):
    """Write the kernelspec; returns the directory it was installed to."""
    from jupyter_client.kernelspec import KernelSpecManager
    env = None
    if not _importable_elsewhere():  # a plain checkout: point the kernel at it
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = {"PYTHONPATH": root}
    spec = kernel_json(extra_env=env)
    if display_name:
        spec["display_name"] = display_name
    with tempfile.TemporaryDirectory() as td:
        with open(os.path.join(td, "kernel.json"), "w") as f:
            json.dump(spec, f, indent=1)
        if user:
            return KernelSpecManager().install_kernel_spec(td, name, user=True)
        return KernelSpecManager().install_kernel_spec(td, name, prefix=prefix or sys.prefix)


def uninstall(name=DEFAULT_NAME, user=False, prefix=None):
    """Remove the kernelspec; returns the directory removed, or None if there was none."""
    path = os.path.join(_kernels_dir(user, prefix), name)
    if os.path.isdir(path):
        shutil.rmtree(path)
        return path
    if user or prefix:
        return None
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        return KernelSpecManager().remove_kernel_spec(name)
    except (NoSuchKernel, KeyError):
        return None


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(prog="python -m kernel_ext", description="Manage the clgrad Jupyter kernelspec.")
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd, hlp in (("install", "install the kernelspec"), ("uninstall", "remove the kernelspec")):
        s = sub.add_parser(cmd, help=hlp)
        s.add_argument("--name", default=DEFAULT_NAME, help=f"kernelspec name (default {DEFAULT_NAME})")
        where = s.add_mutually_exclusive_group()
        where.add_argument("--user", action="store_true", help="the per-user Jupyter data directory")
        where.add_argument("--sys-prefix", action="store_true", help=f"sys.prefix ({sys.prefix}), the default")
        where.add_argument("--prefix", default=None, help="PREFIX/share/jupyter/kernels")
        if cmd == "install":
            s.add_argument("--display-name", default=None, help=f"default {DISPLAY_NAME!r}")
    a = p.parse_args(argv)
    if a.cmd == "install":
        path = install(a.name, user=a.user, prefix=a.prefix, display_name=a.display_name)
        print(f"Installed kernelspec {a.name} ({a.display_name or DISPLAY_NAME}) in {path}")
        return 0
    path = uninstall(a.name, user=a.user, prefix=a.prefix)
    if path is None:
        print(f"No kernelspec named {a.name!r} found", file=sys.stderr)
        return 1
    print(f"Removed kernelspec {a.name} from {path}")
    return 0
