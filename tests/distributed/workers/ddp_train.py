"""Run on 2 ranks: DDP against single-process training on the global batch, step by step.

argv[1]: a directory for the checkpoint test.  Every rank also computes the single-process
reference itself (cheap), so nothing but MPI connects the ranks.
"""
import os
import sys

import numpy as np

import engine
import engine.distributed as dist
import engine.nn as nn
import engine.nn.functional as F
from engine.nn.parallel import DistributedDataParallel as DDP
from engine.utils.data import DataLoader, TensorDataset
from engine.utils.data.distributed import DistributedSampler

dist.init_process_group("mpi")
R, W = dist.get_rank(), dist.get_world_size()
ckpt_dir = sys.argv[1]
rt = engine.get_default_device().runtime
assert rt.is_cpu or rt.is_gpu


class Net(nn.Module):
    def __init__(self, extra=False):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 4)
        self.register_buffer("scale", engine.ones(4))
        if extra:
            self.extra = nn.Linear(8, 4)     # used on rank 0's samples only
            self.never = nn.Linear(2, 2)     # used by nobody

    def forward(self, x, use_extra=False):
        h = self.fc3(F.relu(self.fc2(engine.tanh(self.fc1(x))))) * self.scale
        if use_extra:
            h = h + self.extra(x)
        return h


def make(seed, extra=False):
    engine.manual_seed(seed)
    return Net(extra)


def params_np(m):
    return {n: p.detach().numpy().copy() for n, p in m.named_parameters()}


def compare(a, b, what, tol=2e-6):
    for n in a:
        if a[n] is None or b[n] is None:
            assert a[n] is None and b[n] is None, (what, n)
            continue
        err = np.abs(a[n] - b[n]).max() / (1e-3 + np.abs(b[n]).max())
        if not err <= tol:
            raise AssertionError(f"rank {R}: {what}: {n} differs by {err:.3g} (relative)")


def same_on_all_ranks(m, what):
    blob = b"".join(p.detach().numpy().tobytes() for p in m.parameters())
    every = [None] * W
    dist.all_gather_object(every, blob)
    assert all(e == every[0] for e in every), f"{what}: replicas differ"


rng = np.random.default_rng(123)
N, STEPS = 16, 5
X = rng.standard_normal((STEPS, N, 8)).astype(np.float32)
Y = rng.standard_normal((STEPS, N, 4)).astype(np.float32)
half = slice(R * N // W, (R + 1) * N // W)

# ---- 1. plain DDP vs the global batch, several buckets --------------------------------------
ref = make(0)
model = make(0 if R == 0 else 100 + R)  # rank 1 starts elsewhere: DDP must broadcast rank 0's
model.scale.fill_(2.0 + R)  # a buffer that differs too
ddp = DDP(model, bucket_cap_mb=0.0002)  # ~210 bytes: a bucket per layer
ref.scale.fill_(2.0)
assert len(ddp._buckets) >= 3, ddp._get_bucket_layout()
assert ddp._get_bucket_layout()[0] == ["fc3.bias", "fc3.weight"], ddp._get_bucket_layout()  # reverse order, as torch
compare(params_np(model), params_np(ref), "after construction", 0)
np.testing.assert_array_equal(model.scale.numpy(), np.full(4, 2.0, np.float32))
opt_r = engine.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
opt_d = engine.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
for s in range(STEPS):
    opt_r.zero_grad()
    F.mse_loss(ref(engine.tensor(X[s])), engine.tensor(Y[s])).backward()
    opt_r.step()
    opt_d.zero_grad()
    loss = F.mse_loss(ddp(engine.tensor(X[s][half])), engine.tensor(Y[s][half]))
    loss.backward()
    # the first bucket's all-reduce started before backward reached the last parameter (overlap)
    assert ddp._launch_log[0][1] < len(ddp._params), ddp._launch_log
    assert [b for b, _ in ddp._launch_log] == list(range(len(ddp._buckets)))
    opt_d.step()
    compare(params_np(model), params_np(ref), f"step {s}")
same_on_all_ranks(model, "plain DDP")
print(f"rank {R}: DDP matches the global batch for {STEPS} steps, {len(ddp._buckets)} buckets, "
      f"launches {ddp._launch_log}", flush=True)

# ---- 2. no_sync gradient accumulation (2 micro-batches per step) ------------------------------
ref = make(1)
model = make(1)
ddp = DDP(model)  # one bucket
opt_r = engine.optim.SGD(ref.parameters(), lr=0.05)
opt_d = engine.optim.SGD(ddp.parameters(), lr=0.05)
for s in range(0, STEPS - 1, 2):
    opt_r.zero_grad()
    opt_d.zero_grad()
    for k in (s, s + 1):
        F.mse_loss(ref(engine.tensor(X[k])), engine.tensor(Y[k])).backward()
    with ddp.no_sync():
        F.mse_loss(ddp(engine.tensor(X[s][half])), engine.tensor(Y[s][half])).backward()
    local_grad = model.fc1.weight.grad.numpy().copy()
    F.mse_loss(ddp(engine.tensor(X[s + 1][half])), engine.tensor(Y[s + 1][half])).backward()
    assert not np.array_equal(local_grad, model.fc1.weight.grad.numpy())
    opt_r.step()
    opt_d.step()
    compare(params_np(model), params_np(ref), f"no_sync step {s}")
same_on_all_ranks(model, "no_sync")
print(f"rank {R}: no_sync accumulation matches", flush=True)

# ---- 3. find_unused_parameters: a branch only rank 0 uses, a layer nobody uses ------------------
ref = make(2, extra=True)
model = make(2, extra=True)
ddp = DDP(model, find_unused_parameters=True, bucket_cap_mb=0.0005)
opt_r = engine.optim.SGD(ref.parameters(), lr=0.1)
opt_d = engine.optim.SGD(ddp.parameters(), lr=0.1)
for s in range(3):
    opt_r.zero_grad()
    h0 = slice(0, N // W)
    h1 = slice(N // W, N)
    l0 = F.mse_loss(ref(engine.tensor(X[s][h0]), use_extra=True), engine.tensor(Y[s][h0]))
    l1 = F.mse_loss(ref(engine.tensor(X[s][h1])), engine.tensor(Y[s][h1]))
    ((l0 + l1) / 2).backward()
    opt_r.step()
    opt_d.zero_grad()
    F.mse_loss(ddp(engine.tensor(X[s][half]), use_extra=(R == 0)), engine.tensor(Y[s][half])).backward()
    assert model.never.weight.grad is None
    assert model.extra.weight.grad is not None  # averaged in from rank 0 on every rank
    opt_d.step()
    compare(params_np(model), params_np(ref), f"find_unused step {s}")
same_on_all_ranks(model, "find_unused")
print(f"rank {R}: find_unused_parameters matches", flush=True)

# ---- 4. an unused parameter without find_unused_parameters: torch's error at the next forward ----
ddp = DDP(make(3, extra=True))
ddp(engine.tensor(X[0][half])).sum().backward()
try:
    ddp(engine.tensor(X[0][half]))
    raise AssertionError("expected the unfinished-reduction error")
except RuntimeError as e:
    assert "Expected to have finished reduction" in str(e) and "extra.weight" in str(e), e

# ---- 5. checkpoint from rank 0, load everywhere -------------------------------------------------
model = make(4)
ddp = DDP(model)
opt = engine.optim.Adam(ddp.parameters(), lr=1e-2)
for s in range(2):
    opt.zero_grad()
    F.mse_loss(ddp(engine.tensor(X[s][half])), engine.tensor(Y[s][half])).backward()
    opt.step()
sd = ddp.state_dict()
assert list(sd) and all(k.startswith("module.") for k in sd), list(sd)
path = os.path.join(ckpt_dir, "ckpt.pt")
if R == 0:
    engine.save({"model": ddp.module.state_dict(), "optim": opt.state_dict(), "step": 2}, path)
dist.barrier()
ck = engine.load(path)
fresh = make(999)
fresh.load_state_dict(ck["model"])
compare(params_np(fresh), params_np(model), "checkpoint", 0)
ddp2 = DDP(make(998 + R))
ddp2.load_state_dict(sd)  # 'module.' keys
compare(params_np(ddp2.module), params_np(model), "DDP state_dict", 0)
opt2 = engine.optim.Adam(ddp2.parameters(), lr=1e-2)
opt2.load_state_dict(ck["optim"])
assert ck["step"] == 2

# ---- 6. DistributedSampler + DataLoader: the ranks' shares partition the (padded) dataset --------
ds = TensorDataset(engine.arange(23).float())
sampler = DistributedSampler(ds, shuffle=True, seed=7)
seen = []
for epoch in range(2):
    sampler.set_epoch(epoch)
    idx = [int(v) for (b,) in DataLoader(ds, batch_size=4, sampler=sampler) for v in b.tolist()]
    every = [None] * W
    dist.all_gather_object(every, idx)
    flat = sorted(i for e in every for i in e)
    assert len(flat) == 24 and set(flat) == set(range(23)), flat
    assert all(len(e) == 12 for e in every)
    seen.append(every[0])
assert seen[0] != seen[1], "set_epoch should reshuffle"
dist.destroy_process_group()
print(f"DDP OK rank {R}", flush=True)
