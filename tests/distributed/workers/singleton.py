"""Without mpirun: MPI's singleton init gives a world of one, and everything still works."""
import numpy as np

import engine
import engine.distributed as dist
import engine.nn as nn
from engine.nn.parallel import DistributedDataParallel as DDP

assert not dist.is_initialized()
try:
    dist.get_rank()
    raise AssertionError("get_rank before init_process_group should raise")
except ValueError as e:
    assert "init_process_group" in str(e)
try:
    dist.all_reduce(engine.ones(2))
    raise AssertionError("all_reduce before init_process_group should raise")
except ValueError:
    pass
try:
    DDP(nn.Linear(2, 2))
    raise AssertionError("DDP before init_process_group should raise")
except ValueError:
    pass
try:
    dist.init_process_group("nonsense")
    raise AssertionError("unknown backend")
except ValueError as e:
    assert "Invalid backend" in str(e)
try:
    dist.init_process_group("mpi", world_size=2)
    raise AssertionError("world_size mismatch")
except ValueError as e:
    assert "mpirun -n 2" in str(e)
dist.init_process_group("nccl")  # an alias of MPI, so torch scripts run
try:
    dist.init_process_group()
    raise AssertionError("twice")
except RuntimeError:
    pass
assert dist.get_world_size() == 1 and dist.get_rank() == 0 and dist.get_node_local_rank() == 0
t = engine.arange(4.0)
dist.all_reduce(t, op=dist.ReduceOp.AVG)
np.testing.assert_array_equal(t.numpy(), [0, 1, 2, 3])
w = dist.broadcast(t, 0, async_op=True)
assert w.wait() and w.is_completed()
# DDP on one rank trains exactly like the bare module
engine.manual_seed(0)
a = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
engine.manual_seed(0)
b = DDP(nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1)), bucket_cap_mb=0.00001)
x = engine.randn(7, 3)
for m in (a, b):
    opt = engine.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        m(x).pow(2).mean().backward()
        opt.step()
for (n1, p1), (n2, p2) in zip(a.named_parameters(), b.named_parameters()):
    assert "module." + n1 == n2
    np.testing.assert_array_equal(p1.detach().numpy(), p2.detach().numpy())
assert [len(x) for x in b._get_bucket_layout()] == [2, 1, 1], b._get_bucket_layout()
with engine.no_grad():
    b(x)  # forward without backward, and eval forwards, need no reduction
b(x)
b(x).sum().backward()
dist.barrier()
dist.destroy_process_group()
print("SINGLETON OK", flush=True)
