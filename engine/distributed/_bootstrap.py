"""Per-rank entry point of `python -m engine.distributed.run`: torchrun's environment variables from
the MPI launcher's, then the user's script as __main__; an uncaught exception on any rank aborts
the whole job (MPI_Abort) after printing its traceback."""
import os
import runpy
import sys
import traceback

_ENV = {  # torchrun's name: the names MPICH (hydra), Open MPI and Slurm use
    "RANK": ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"),
    "WORLD_SIZE": ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS"),
    "LOCAL_RANK": ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"),
    "LOCAL_WORLD_SIZE": ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"),
}


def _set_env():
    for name, sources in _ENV.items():
        if name in os.environ:
            continue
        for s in sources:
            if s in os.environ:
                os.environ[name] = os.environ[s]
                break


def main():
    _set_env()
    argv = sys.argv[1:]
    if not argv:
        raise SystemExit("usage: python -m engine.distributed._bootstrap script.py [args] | -m module [args]")
    try:
        if argv[0] == "-m":
            sys.argv = argv[1:]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = argv
            sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        code = e.code
        if code in (None, 0):
            return
        if not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        _abort_if_parallel(code, f"exited with status {code}")
        raise
    except BaseException as e:
        traceback.print_exc()
        _abort_if_parallel(1, f"raised an uncaught {type(e).__name__}")
        raise SystemExit(1)


def _abort_if_parallel(code, what):
    MPI = sys.modules.get("mpi4py.MPI")
    if MPI is None or not MPI.Is_initialized() or MPI.Is_finalized() or MPI.COMM_WORLD.Get_size() < 2:
        return
    print(f"engine.distributed: rank {MPI.COMM_WORLD.Get_rank()} of {MPI.COMM_WORLD.Get_size()} {what}; "
          "aborting the job so the other ranks do not wait for it (MPI_Abort)", file=sys.stderr)
    from .distributed_c10d import _abort
    _abort(code)


if __name__ == "__main__":
    main()
