"""Launch a training script on N ranks: `python -m engine.distributed.run -n 4 train.py [args...]`.

A thin wrapper of MPI's launcher: it runs
    mpirun -n 4 [mpirun args] python -m engine.distributed._bootstrap train.py [args...]
where the bootstrap sets torchrun's environment variables (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE) from the MPI launcher's, runs the script as __main__, and aborts the whole
job when the script raises on any rank (so no rank waits for a dead one).  `-m module` runs a
module instead of a file.  mpirun is looked up as CLGRAD_MPIRUN, then next to the Python
executable (the `mpich` wheel installs it into the virtualenv), then on PATH.

Options:
  -n / --nproc-per-node / --nproc_per_node N   number of ranks (default 2)
  --timeout SECONDS     collective timeout (sets CLGRAD_DIST_TIMEOUT)
  --mpirun PATH         the MPI launcher to use
  --mpi-arg ARG         passed to mpirun (repeatable), e.g. --mpi-arg=-hosts --mpi-arg=node1,node2
  --dry-run             print the command instead of running it
"""
import argparse
import os
import shlex
import shutil
import sys


def find_mpirun():
    """The path of mpirun/mpiexec, or None."""
    env = os.environ.get("CLGRAD_MPIRUN")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(sys.executable))
    for name in ("mpirun", "mpiexec"):
        p = os.path.join(here, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    for name in ("mpirun", "mpiexec"):
        p = shutil.which(name)
        if p:
            return p
    return None


def build_command(args):
    mpirun = args.mpirun or find_mpirun()
    if mpirun is None:
        raise SystemExit("engine.distributed.run: no mpirun/mpiexec found; pip install mpich (or load your "
                         "cluster's MPI module), or pass --mpirun PATH")
    cmd = [mpirun, "-n", str(args.nproc), *args.mpi_arg, sys.executable, "-m", "engine.distributed._bootstrap"]
    if args.module:
        cmd += ["-m", args.module]
    else:
        cmd.append(args.script)
    return cmd + list(args.script_args)


_NO_VALUE = ("--dry-run", "-h", "--help")


def _split(argv):
    """(launcher options, module or None, script or None, script args): everything after the script
    (or after -m MODULE) belongs to the script."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-m":
            return argv[:i], (argv[i + 1] if i + 1 < len(argv) else None), None, argv[i + 2:]
        if a == "--":
            return argv[:i], None, (argv[i + 1] if i + 1 < len(argv) else None), argv[i + 2:]
        if a.startswith("-"):
            i += 1 if ("=" in a or a in _NO_VALUE or (a.startswith("-n") and len(a) > 2)) else 2
            continue
        return argv[:i], None, a, argv[i + 1:]
    return argv, None, None, []


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m engine.distributed.run",
                                 usage="python -m engine.distributed.run [options] (script.py | -m module) [args]",
                                 description="Run a script on N MPI ranks (a wrapper of mpirun).")
    ap.add_argument("-n", "--nproc-per-node", "--nproc_per_node", "--np", dest="nproc", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=None, help="collective timeout in seconds")
    ap.add_argument("--mpirun", default=None)
    ap.add_argument("--mpi-arg", action="append", default=[])
    ap.add_argument("--dry-run", action="store_true")
    head, module, script, rest = _split(argv)
    args = ap.parse_args(head)
    args.module, args.script, args.script_args = module, script, rest
    if args.module is None and args.script is None:
        ap.error("give a script to run (or -m module)")
    if args.nproc < 1:
        ap.error("-n must be at least 1")
    cmd = build_command(args)
    if args.timeout is not None:
        os.environ["CLGRAD_DIST_TIMEOUT"] = str(args.timeout)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    sys.exit(main())
