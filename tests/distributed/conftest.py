"""Helpers for the tests that start MPI jobs: `run_mpi(args, n=2, ...)` runs `mpirun -n 2 python ...`
in a subprocess with a timeout and returns (returncode, output, seconds)."""
import os
import subprocess
import sys
import time

import pytest

from engine.distributed.run import find_mpirun

HERE = os.path.dirname(os.path.abspath(__file__))
WORKERS = os.path.join(HERE, "workers")
ROOT = os.path.dirname(os.path.dirname(HERE))


def _env(extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("CLGRAD_DIST_TIMEOUT", None)
    env.update(extra or {})
    return env


def run_cmd(cmd, timeout=120, env=None):
    t = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                           env=_env(env), cwd=ROOT)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"{' '.join(cmd)} did not finish within {timeout}s:\n{out}")
    return p.returncode, p.stdout, time.monotonic() - t


@pytest.fixture(scope="session")
def mpirun():
    path = find_mpirun()
    if path is None:
        pytest.skip("mpirun/mpiexec not found (pip install mpich, or put an MPI launcher on PATH)")
    return path


@pytest.fixture
def run_mpi(mpirun):
    def run(worker, *args, n=2, timeout=120, env=None):
        return run_cmd([mpirun, "-n", str(n), sys.executable, os.path.join(WORKERS, worker), *map(str, args)],
                       timeout, env)
    return run
