"""Two-rank MPI jobs on the test machine's device (PoCL on CI): collectives, DDP, failures."""
import os
import re
import sys

from .conftest import WORKERS, run_cmd


def test_collectives_exact_via_launcher(mpirun):
    # python -m engine.distributed.run wraps mpirun and sets torchrun's environment variables
    rc, out, _ = run_cmd([sys.executable, "-m", "engine.distributed.run", "-n", "2", "--mpirun", mpirun,
                          os.path.join(WORKERS, "collectives.py")])
    assert rc == 0, out
    assert "COLLECTIVES OK rank 0 of 2" in out and "COLLECTIVES OK rank 1 of 2" in out, out


def test_ddp_matches_single_process_training(run_mpi, tmp_path):
    # plain steps with overlapped buckets, no_sync accumulation, find_unused_parameters, torch's error for an
    # unused parameter, checkpointing from rank 0, DistributedSampler with a DataLoader
    rc, out, _ = run_mpi("ddp_train.py", tmp_path)
    assert rc == 0, out
    for r in (0, 1):
        assert f"DDP OK rank {r}" in out, out
    assert (tmp_path / "ckpt.pt").exists()


def test_killed_rank_ends_the_job(run_mpi):
    # MPICH's launcher notices the SIGKILL and kills the others at once
    rc, out, secs = run_mpi("die.py", "kill", env={"DIE_TIMEOUT": "120"}, timeout=100)
    assert rc != 0, out
    assert "BAD TERMINATION" in out or "Killed" in out or "signal 9" in out, out
    assert secs < 60, (secs, out)  # not through the 120 s timeout


def test_hanging_rank_times_out(run_mpi):
    rc, out, secs = run_mpi("die.py", "hang", env={"DIE_TIMEOUT": "3"}, timeout=60)
    assert rc != 0, out
    assert re.search(r"rank 0 timed out after 3\.\ds in all_reduce", out), out  # 3.1s on a loaded machine
    assert "next collective: the process group is broken" in out, out
    assert "MPI_Abort" in out, out
    assert secs < 45, (secs, out)


def test_hanging_rank_times_out_in_ddp_backward(run_mpi):
    rc, out, secs = run_mpi("die.py", "ddp-hang", env={"DIE_TIMEOUT": "3"}, timeout=60)
    assert rc != 0, out
    assert re.search(r"timed out after 3\.\ds in DDP gradient all_reduce \(bucket 0 of 1", out), out
    assert secs < 45, (secs, out)


def test_rank_that_leaves_early_times_the_other_out(run_mpi):
    rc, out, secs = run_mpi("die.py", "exit0", env={"DIE_TIMEOUT": "3"}, timeout=60)
    assert rc != 0, out
    assert re.search(r"rank 0 timed out after 3\.\ds in all_reduce", out), out  # 3.1s on a loaded machine
    assert secs < 45, (secs, out)


def test_uncaught_exception_aborts_every_rank(run_mpi):
    rc, out, secs = run_mpi("die.py", "raise", env={"DIE_TIMEOUT": "120"}, timeout=100)
    assert rc != 0, out
    assert "ValueError: rank 1 broke on purpose" in out, out
    assert "rank 1 of 2 raised an uncaught ValueError; aborting the job" in out, out
    assert secs < 60, (secs, out)  # not through the 120 s timeout
