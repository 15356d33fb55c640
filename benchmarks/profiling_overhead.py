"""Per-launch cost of CL_QUEUE_PROFILING_ENABLE and of an active profiler (not a test).

    python benchmarks/profiling_overhead.py [ROUNDS]

One process, one device, the arms interleaved round by round (shared machines are noisy):
  default    the queue without profiling
  profiling  a queue with CL_QUEUE_PROFILING_ENABLE
  recording  the profiling queue inside engine.profiler.profile() (every launch recorded)
for 1024-element adds launched back to back (launch-bound) and 2^24-element adds
(bandwidth-bound).  Prints min and median microseconds per launch."""
import statistics
import sys
import time

import pyopencl as cl

import engine
from engine import profiler
from engine.runtime.device import default_device


def per_launch(x, y, n):
    engine.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        x + y
    engine.synchronize()
    return (time.perf_counter() - t) / n * 1e6


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    d = default_device()
    small = engine.ones(1024), engine.ones(1024)
    big = engine.ones(1 << 24), engine.ones(1 << 24)
    per_launch(*small, 20)
    per_launch(*big, 2)
    q_plain = cl.CommandQueue(d.context)
    q_prof = cl.CommandQueue(d.context, properties=cl.command_queue_properties.PROFILING_ENABLE)
    res = {(arm, size): [] for arm in ("default", "profiling", "recording") for size in ("small", "big")}
    for _ in range(rounds):
        for arm in ("default", "profiling", "recording"):
            d.synchronize()
            d._queue = q_plain if arm == "default" else q_prof
            if arm == "recording":
                with profiler.profile():
                    res[arm, "small"].append(per_launch(*small, 1000))
                    res[arm, "big"].append(per_launch(*big, 20))
            else:
                res[arm, "small"].append(per_launch(*small, 1000))
                res[arm, "big"].append(per_launch(*big, 20))
    d.synchronize()
    d._queue = q_prof
    print(f"device: {d.name} ({d.platform_name}, driver {d.driver_version}), {rounds} interleaved rounds")
    for (arm, size), v in res.items():
        print(f"{arm:<10s} {size:<5s} add: min {min(v):9.2f}  median {statistics.median(v):9.2f} us/launch")


if __name__ == "__main__":
    main()
