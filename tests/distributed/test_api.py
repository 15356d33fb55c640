"""engine.distributed without an MPI job: import cost, the launcher's command line, a world of one."""
import os
import subprocess
import sys

import pytest

import engine
import engine.distributed as dist
from engine.distributed import run as launcher
from engine.nn.parallel.distributed import _assign_buckets

from .conftest import WORKERS, run_cmd


def test_import_does_not_initialise_mpi():
    code = "import engine.distributed, engine.nn.parallel, sys; print('mpi4py.MPI' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_names_like_torch():
    for name in ("init_process_group", "is_initialized", "is_available", "get_rank", "get_world_size", "barrier",
                 "destroy_process_group", "all_reduce", "broadcast", "all_gather", "all_gather_into_tensor",
                 "reduce_scatter", "reduce_scatter_tensor", "reduce", "gather", "scatter", "send", "recv", "isend",
                 "irecv", "broadcast_object_list", "all_gather_object", "Work", "ReduceOp"):
        assert hasattr(dist, name), name
    for op in ("SUM", "AVG", "PRODUCT", "MIN", "MAX"):
        assert getattr(dist.ReduceOp, op).name == op
    assert dist.is_available()
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="init_process_group"):
        dist.get_world_size()


def test_bucket_assignment_reverse_order_by_size():
    ps = [engine.zeros(n) for n in (10, 300, 5, 200, 1)]  # float32: 40, 1200, 20, 800, 4 bytes
    assert _assign_buckets(ps, 1000) == [[4, 3, 2, 1], [0]]  # a bucket closes once it reaches the cap
    assert _assign_buckets(ps, 10 ** 9) == [[4, 3, 2, 1, 0]]
    mixed = [engine.zeros(3), engine.zeros(3, dtype=engine.float64), engine.zeros(3)]
    assert _assign_buckets(mixed, 10 ** 9) == [[2, 0], [1]]  # one dtype per bucket


def test_launcher_command(mpirun, capsys):
    assert launcher.main(["-n", "3", "--mpirun", mpirun, "--mpi-arg=-hosts", "--mpi-arg=a,b", "--dry-run",
                          "train.py", "--lr", "0.1"]) == 0
    cmd = capsys.readouterr().out.split()
    assert cmd[:5] == [mpirun, "-n", "3", "-hosts", "a,b"]
    assert cmd[5:] == [sys.executable, "-m", "engine.distributed._bootstrap", "train.py", "--lr", "0.1"]
    launcher.main(["-n", "2", "--mpirun", mpirun, "--dry-run", "-m", "pkg.train", "--x", "-n", "5"])
    assert capsys.readouterr().out.split()[1:3] == ["-n", "2"]
    launcher.main(["--np=4", "--mpirun", mpirun, "--dry-run", "-m", "pkg.train", "--x", "-n", "5"])
    cmd = capsys.readouterr().out.split()
    assert cmd[1:3] == ["-n", "4"]
    assert cmd[-6:] == ["engine.distributed._bootstrap", "-m", "pkg.train", "--x", "-n", "5"]


def test_world_of_one_without_mpirun(mpirun):
    # MPI's singleton init: `python train.py` works on one rank, no launcher needed
    rc, out, _ = run_cmd([sys.executable, os.path.join(WORKERS, "singleton.py")])
    assert rc == 0, out
    assert "SINGLETON OK" in out


def test_mismatched_launcher_and_library_is_refused():
    # mpirun of one MPI with mpi4py on another gives N worlds of 1: init_process_group says so
    code = "import engine.distributed as d; d.init_process_group()"
    env = dict(os.environ, PMI_SIZE="2")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode != 0
    assert "the launcher started 2 processes (PMI_SIZE=2) but MPI in this process sees a world of 1" in p.stderr
