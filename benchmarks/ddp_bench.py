"""Data-parallel scaling of a GPT training step: 1 rank vs N ranks over MPI (engine.distributed).

    python benchmarks/ddp_bench.py                      # 1 and 2 ranks, size "gpt" on GPUs, "tiny" on a CPU
    python benchmarks/ddp_bench.py --ranks 1,2,4 --size small --steps 20 --json out.json

Weak scaling, as data-parallel training is used: every rank trains on the same per-rank batch, so
N ranks process N times the tokens per step.  Rows:
  * 1 rank, plain module (no DDP): the baseline;
  * N ranks with DistributedDataParallel (the gradient all-reduce overlapped with backward);
and for each N the time of one bare all-reduce of all gradients (the communication alone).
Scaling efficiency = tokens/s with N ranks / (N * tokens/s of the baseline); 100% is perfect.
Each rank uses the device init_process_group picks (GPU local_rank % #GPUs, else the CPU device);
on one CPU device the ranks share its cores, so the efficiency there says nothing about a cluster.
The driver (this script without --worker) starts `mpirun -n N python ddp_bench.py --worker ...`
for each N and reads rank 0's result line.  The 1-rank step time varied by up to 20% between runs on
an H200 (38-52 ms for the "gpt" size), so compare rows of one invocation and repeat it.

On the lent NVIDIA machines (which have Open MPI in the system and no package index), carry the mpich
and mpi4py wheels (.whl-mpi/) and point mpi4py at MPICH explicitly, else mpi4py loads the system's Open
MPI while MPICH's mpirun starts the ranks (init_process_group then refuses with a clear error):
    python3 -m zipfile -e .whl-mpi/mpich-*.whl /tmp/mpich && D=/tmp/mpich/mpich-5.0.2.data/data
    chmod +x $D/bin/* && export PATH=$D/bin:$PATH MPI4PY_LIBMPI=$D/lib/libmpi.so.12 CLGRAD_MPIRUN=$D/bin/mpirun
(after benchmarks/gpu_env.sh and `pip install --target /tmp/site .whl-mpi/mpi4py-*.whl`).
"""
import argparse
import json
import os
import subprocess
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _p in (_ROOT, os.path.join(_ROOT, "examples")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# vocab, block_size, n_embd, n_head, n_layer, per-rank batch
SIZES = {
    "tiny": (65, 16, 32, 2, 1, 4),
    "small": (65, 64, 128, 4, 4, 16),
    "gpt": (65, 256, 384, 6, 6, 32),   # ~10.7 M parameters (nanoGPT's Shakespeare-char config)
}
_TAG = "DDPBENCH "


def worker(args):
    import numpy as np

    import engine
    import engine.distributed as dist
    import engine.nn as nn
    import engine.nn.functional as F
    from engine.nn.parallel import DistributedDataParallel as DDP
    from gpt import define_gpt

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    dev = engine.get_default_device()
    vocab, T, C, H, L, B = SIZES[args.size]
    GPT = define_gpt(engine, nn, F)
    engine.manual_seed(0)
    model = GPT(vocab, block_size=T, n_embd=C, n_head=H, n_layer=L).to(dev)
    nparams = sum(p.numel() for p in model.parameters())
    use_ddp = not args.plain
    net = DDP(model, bucket_cap_mb=args.bucket_cap_mb) if use_ddp else model
    opt = engine.optim.AdamW(net.parameters(), lr=1e-4)
    rng = np.random.default_rng(rank)
    x = engine.tensor(rng.integers(0, vocab, (B, T)), dtype=engine.int64, device=dev)
    y = engine.tensor(rng.integers(0, vocab, (B, T)), dtype=engine.int64, device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        _, loss = net(x, y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step().item()
    dist.barrier()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step().item()  # waits for the device
        times.append(time.perf_counter() - t)
    # the communication alone: one all-reduce of all gradients, as DDP's buckets do it
    flat = engine.zeros(nparams, device=dev)
    comm = []
    for _ in range(max(3, args.steps // 2)):
        dist.barrier()
        t = time.perf_counter()
        dist.all_reduce(flat)
        comm.append(time.perf_counter() - t)
    # the slowest rank's median sets the pace
    med = float(np.median(times))
    meds = [None] * world
    dist.all_gather_object(meds, (med, float(np.median(comm))))
    if rank == 0:
        step_s = max(m[0] for m in meds)
        comm_s = max(m[1] for m in meds)
        res = {"ranks": world, "ddp": use_ddp, "size": args.size, "params": nparams, "batch_per_rank": B,
               "block": T, "step_s": step_s, "tokens_per_s": world * B * T / step_s, "allreduce_s": comm_s,
               "allreduce_GBps": nparams * 4 / comm_s / 1e9, "device": dev.runtime.name,
               "buckets": len(net._buckets) if use_ddp else 0}
        print(_TAG + json.dumps(res), flush=True)
    dist.destroy_process_group()


def run_job(mpirun, n, args, plain=False):
    cmd = [mpirun, "-n", str(n), sys.executable, os.path.abspath(__file__), "--worker", "--size", args.size,
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--bucket-cap-mb", str(args.bucket_cap_mb)]
    if plain:
        cmd.append("--plain")
    env = dict(os.environ)
    env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
    if args.device:
        env["CLGRAD_DEVICE"] = args.device
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                       timeout=args.timeout)
    for line in p.stdout.splitlines():
        if line.startswith(_TAG):
            return json.loads(line[len(_TAG):])
    raise SystemExit(f"{' '.join(cmd)} failed (status {p.returncode}):\n{p.stdout}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ranks", default="1,2", help="comma-separated rank counts (default 1,2)")
    ap.add_argument("--size", choices=sorted(SIZES), default=None, help="model size (default: gpt on a GPU, "
                    "tiny otherwise)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--bucket-cap-mb", type=float, default=25)
    ap.add_argument("--device", default=None, help="CLGRAD_DEVICE for every rank (default: one GPU per rank if "
                    "there are GPUs, else the CPU device)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    from engine.distributed.run import find_mpirun
    mpirun = find_mpirun()
    if mpirun is None:
        raise SystemExit("no mpirun found: pip install mpich (or load your cluster's MPI)")
    if args.size is None:
        from engine.runtime.device import gpus
        args.size = "gpt" if gpus() and args.device in (None, "gpu", "cuda") else "tiny"
    ranks = [int(r) for r in args.ranks.split(",")]
    base = run_job(mpirun, 1, args, plain=True)
    rows = [base] + [run_job(mpirun, n, args) for n in ranks]
    vocab, T, C, H, L, B = SIZES[args.size]
    print(f"GPT {L} layers, d {C}, {H} heads, T {T}, {base['params'] / 1e6:.2f} M params, batch {B} per rank, "
          f"AdamW; device {base['device']}; median of {args.steps} steps")
    print("| ranks | DDP | step (ms) | tokens/s | efficiency | all-reduce of all grads (ms) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        eff = r["tokens_per_s"] / (r["ranks"] * base["tokens_per_s"])
        r["efficiency"] = eff
        print(f"| {r['ranks']} | {'yes' if r['ddp'] else 'no'} | {r['step_s'] * 1e3:.1f} | {r['tokens_per_s']:,.0f} "
              f"| {eff * 100:.0f}% | {r['allreduce_s'] * 1e3:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
