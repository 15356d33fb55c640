"""Run unmodified `import torch` code on clgrad: a meta-path finder that maps `torch` and every
`torch.*` submodule to `engine` / `engine.*`.

    from tests import torch_alias; torch_alias.install()  # or: python tests/torch_alias.py prog.py [args]
    import torch                                           # -> engine
    import torch.nn.functional as F                        # -> engine.nn.functional

The finder goes first on sys.meta_path, so an installed PyTorch is never imported through these
names.  install() refuses to run if real torch was already imported (the names would be taken).
sys.modules['torch.x'] is the very module object engine.x, so `torch.nn is engine.nn`.
"""
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import runpy
import sys

ALIAS, TARGET = "torch", "engine"


def _target_name(fullname):
    if fullname == ALIAS:
        return TARGET
    if fullname.startswith(ALIAS + "."):
        return TARGET + fullname[len(ALIAS):]
    return None


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        return None  # a throwaway module; exec_module swaps the real one in

    def exec_module(self, module):
        # The import system reads the result back from sys.modules after exec_module, so putting the
        # engine module there makes `import torch.x` return engine.x itself (with its own __name__,
        # __spec__ and __path__ untouched).
        sys.modules[module.__spec__.name] = importlib.import_module(self.target)


class TorchAliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        real = _target_name(fullname)
        if real is None:
            return None
        try:
            real_spec = importlib.util.find_spec(real)
        except ModuleNotFoundError:
            real_spec = None
        if real_spec is None:
            return None  # torch.foo with no engine.foo: ImportError, as for any missing module
        is_package = real_spec.submodule_search_locations is not None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real), is_package=is_package)


def installed():
    return any(isinstance(f, TorchAliasFinder) for f in sys.meta_path)


def install():
    """Put the alias finder first on sys.meta_path (idempotent)."""
    loaded = [m for m in sys.modules if m == ALIAS or m.startswith(ALIAS + ".")]
    real = [m for m in loaded if not getattr(sys.modules[m], "__name__", "").startswith(TARGET)]
    if real:
        raise RuntimeError(f"real PyTorch is already imported ({real[:3]}...); install the alias first")
    if not installed():
        sys.meta_path.insert(0, TorchAliasFinder())


def uninstall():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, TorchAliasFinder)]
    for m in [m for m in sys.modules if m == ALIAS or m.startswith(ALIAS + ".")]:
        del sys.modules[m]


def real_torch_loaded():
    """Names in sys.modules that are real PyTorch (a module whose file lies in torch's package dir)."""
    out = []
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None) or ""
        if f"{os.sep}site-packages{os.sep}torch{os.sep}" in f or getattr(mod, "__name__", "") == "torch":
            out.append(name)
    return out


def run_path(path, argv=()):
    """Run a script as __main__ with the alias installed (its folder first on sys.path, as `python path`)."""
    install()
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    return runpy.run_path(path, run_name="__main__")


if __name__ == "__main__":
    # `python tests/torch_alias.py` puts tests/ first on sys.path, where tests/engine/ (the engine's test
    # package) would shadow the real engine: put the repository root there instead.
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    sys.path.insert(0, root)
    if len(sys.argv) < 2:
        sys.exit("usage: python tests/torch_alias.py program.py [args...]")
    run_path(sys.argv[1], sys.argv[2:])
