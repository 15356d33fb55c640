"""Run on 2+ ranks: every collective against numpy's answer, exactly, for several dtypes."""
import numpy as np

import engine
import engine.distributed as dist

dist.init_process_group("mpi")
R, W = dist.get_rank(), dist.get_world_size()
dev = engine.get_default_device()
DTYPES = [engine.float32, engine.float64, engine.int32, engine.int64, engine.uint8, engine.int8, engine.bool]
if dev.runtime.fp16:
    DTYPES.append(engine.float16)


def local(r, dt, shape=(2, 3)):
    """What rank r contributes: small integers (exact in every dtype), different per rank."""
    n = int(np.prod(shape))
    a = (np.arange(n) * (r + 2) + 3 * r + 1) % 7 + 1
    if dt is engine.bool:
        a = (np.arange(n) + r) % 3 == 0
    return a.reshape(shape).astype(dt.np)


def check(t, want, what):
    got = t.numpy()
    if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
        raise AssertionError(f"rank {R}: {what}: got {got!r}, want {want!r}")


for dt in DTYPES:
    name = str(dt)
    mine = local(R, dt)
    every = np.stack([local(r, dt) for r in range(W)])
    ops = {dist.ReduceOp.SUM: every.sum(0), dist.ReduceOp.MAX: every.max(0), dist.ReduceOp.MIN: every.min(0),
           dist.ReduceOp.PRODUCT: every.prod(0)}
    if dt is engine.bool:
        ops = {dist.ReduceOp.SUM: every.any(0), dist.ReduceOp.MAX: every.any(0), dist.ReduceOp.MIN: every.all(0),
               dist.ReduceOp.PRODUCT: every.all(0)}
    if dt.is_floating_point:
        ops[dist.ReduceOp.AVG] = every.sum(0) / W
    for op, want in ops.items():
        t = engine.tensor(mine, dtype=dt)
        assert dist.all_reduce(t, op=op) is None
        check(t, want.astype(dt.np), f"all_reduce {op} {name}")
    # async, on a non-contiguous view (in place on the base's storage)
    base = engine.tensor(np.ascontiguousarray(mine.T), dtype=dt)
    view = base.t()
    w = dist.all_reduce(view, op=dist.ReduceOp.MAX, async_op=True)
    w.wait()
    assert w.is_completed()
    check(view, ops[dist.ReduceOp.MAX].astype(dt.np), f"async all_reduce on a view {name}")
    check(base, np.ascontiguousarray(ops[dist.ReduceOp.MAX].astype(dt.np).T), f"view base {name}")
    # broadcast from the last rank
    t = engine.tensor(mine, dtype=dt)
    dist.broadcast(t, src=W - 1)
    check(t, every[W - 1], f"broadcast {name}")
    # all_gather
    outs = [engine.zeros((2, 3), dtype=dt) for _ in range(W)]
    dist.all_gather(outs, engine.tensor(mine, dtype=dt))
    for r in range(W):
        check(outs[r], every[r], f"all_gather[{r}] {name}")
    out = engine.zeros((2 * W, 3), dtype=dt)
    dist.all_gather_into_tensor(out, engine.tensor(mine, dtype=dt))
    check(out, every.reshape(2 * W, 3), f"all_gather_into_tensor {name}")
    out = engine.zeros((W, 2, 3), dtype=dt)
    dist.all_gather_into_tensor(out, engine.tensor(mine, dtype=dt))
    check(out, every, f"all_gather_into_tensor stacked {name}")
    # reduce_scatter: rank r gets the reduction of everybody's input_list[r]
    ins = [engine.tensor(local(R + 10 * k, dt), dtype=dt) for k in range(W)]
    out = engine.zeros((2, 3), dtype=dt)
    red = dist.ReduceOp.MAX if dt is engine.bool else dist.ReduceOp.SUM
    dist.reduce_scatter(out, ins, op=red)
    parts = np.stack([local(r + 10 * R, dt) for r in range(W)])
    check(out, (parts.any(0) if dt is engine.bool else parts.sum(0)).astype(dt.np), f"reduce_scatter {name}")
    big = engine.tensor(np.concatenate([local(R + 10 * k, dt) for k in range(W)]), dtype=dt)
    out = engine.zeros((2, 3), dtype=dt)
    dist.reduce_scatter_tensor(out, big, op=red)
    check(out, (parts.any(0) if dt is engine.bool else parts.sum(0)).astype(dt.np), f"reduce_scatter_tensor {name}")
    if dt.is_floating_point:
        out = engine.zeros((2, 3), dtype=dt)
        dist.reduce_scatter_tensor(out, big, op=dist.ReduceOp.AVG)
        check(out, (parts.sum(0) / W).astype(dt.np), f"reduce_scatter_tensor AVG {name}")
    # reduce to rank 0, gather to rank 0, scatter from rank 0
    t = engine.tensor(mine, dtype=dt)
    dist.reduce(t, dst=0, op=dist.ReduceOp.MAX)
    check(t, every.max(0) if R == 0 else mine, f"reduce {name}")
    gl = [engine.zeros((2, 3), dtype=dt) for _ in range(W)] if R == 0 else None
    dist.gather(engine.tensor(mine, dtype=dt), gl, dst=0)
    if R == 0:
        for r in range(W):
            check(gl[r], every[r], f"gather[{r}] {name}")
    t = engine.zeros((2, 3), dtype=dt)
    dist.scatter(t, [engine.tensor(local(r + 5, dt), dtype=dt) for r in range(W)] if R == 0 else None, src=0)
    check(t, local(R + 5, dt), f"scatter {name}")

# point to point, ring
t = engine.tensor(local(R, engine.float32))
nxt, prv = (R + 1) % W, (R - 1) % W
sw = dist.isend(t, nxt)
r = engine.zeros((2, 3))
assert dist.recv(r, src=prv) == prv
sw.wait()
check(r, local(prv, engine.float32), "send/recv")
# objects
objs = [None, None] if R else [{"a": 1, "rank": R}, "hello"]
dist.broadcast_object_list(objs, src=0)
assert objs == [{"a": 1, "rank": 0}, "hello"], objs
got = [None] * W
dist.all_gather_object(got, ("rank", R))
assert got == [("rank", r) for r in range(W)], got
# float32 sums that round: every rank must get the same bits
x = engine.tensor(np.random.default_rng(R).standard_normal(1000).astype(np.float32))
dist.all_reduce(x)
allx = [None] * W
dist.all_gather_object(allx, x.numpy().tobytes())
assert len(set(allx)) == 1
# errors
try:
    dist.all_reduce(engine.tensor([1, 2]), op=dist.ReduceOp.AVG)
    raise AssertionError("AVG on ints should raise")
except ValueError:
    pass
try:
    dist.all_gather([engine.zeros(3)], engine.zeros(3))
    raise AssertionError("a wrong-length list should raise") if W != 1 else None
except ValueError:
    pass
dist.barrier()
assert dist.get_backend() == "mpi"
# each rank on its own GPU when the node has enough of them (node-local rank round-robin)
from engine.runtime.device import gpus  # noqa: E402
where = [None] * W
dist.all_gather_object(where, dev.runtime.index)
if len(gpus()) >= W:
    assert len(set(where)) == W, where
elif not gpus():
    assert dev.runtime.is_cpu
print(f"rank {R} device cl:{dev.runtime.index} {dev.runtime.name}", flush=True)
import os  # noqa: E402
assert os.environ["RANK"] == str(R) and os.environ["WORLD_SIZE"] == str(W)
dist.destroy_process_group()
assert not dist.is_initialized()
print(f"COLLECTIVES OK rank {R} of {W} on {dev} dtypes={len(DTYPES)}", flush=True)
