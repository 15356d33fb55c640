"""Run on 2 ranks; rank 1 fails in the way argv[1] says while rank 0 waits in all_reduce (DDP backward
for 'ddp-hang').  Rank 0 prints what it saw; the test reads mpirun's output and return code.

  kill      rank 1 is killed by SIGKILL
  hang      rank 1 hangs (sleeps) instead of joining: rank 0's timeout fires
  ddp-hang  as hang, inside DDP's gradient reduction
  raise     rank 1 raises an uncaught exception
  exit0     rank 1 finalizes MPI and leaves early with status 0 (rank 0's timeout fires)
"""
import os
import signal
import sys
import time

import engine
import engine.distributed as dist
from engine.nn.parallel import DistributedDataParallel as DDP

mode = sys.argv[1]
dist.init_process_group("mpi")
R = dist.get_rank()
t = engine.ones(4)
dist.all_reduce(t)  # everybody is up
if mode == "ddp-hang":
    ddp = DDP(engine.nn.Linear(3, 2))
dist.barrier()
# the short limit only from here on: starting up on a loaded machine may take longer than it
dist.distributed_c10d._set_pg_timeout(float(os.environ.get("DIE_TIMEOUT", "60")))
print(f"rank {R} ready", flush=True)
t0 = time.monotonic()
if R == 1:
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode in ("hang", "ddp-hang"):
        time.sleep(120)
    elif mode == "raise":
        raise ValueError("rank 1 broke on purpose")
    elif mode == "exit0":
        dist.destroy_process_group()
        sys.exit(0)
try:
    if mode == "ddp-hang":
        ddp(engine.ones(5, 3)).sum().backward()
    else:
        dist.all_reduce(t)
    print(f"rank {R}: all_reduce returned after {time.monotonic() - t0:.1f}s", flush=True)
except dist.DistTimeoutError as e:
    print(f"rank {R}: caught DistTimeoutError after {time.monotonic() - t0:.1f}s: {e}", flush=True)
    try:
        dist.all_reduce(t)
    except dist.DistBackendError as e2:
        print(f"rank {R}: next collective: {e2}", flush=True)
    raise
