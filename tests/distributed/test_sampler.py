"""DistributedSampler against torch's: the same shares without shuffling, the same partition rules with it."""
import pytest
import torch
from torch.utils.data import DistributedSampler as TorchSampler

import engine
from engine.utils.data import DataLoader, TensorDataset
from engine.utils.data.distributed import DistributedSampler

CASES = [(n, w, dl) for n in (1, 2, 5, 10, 11, 17) for w in (1, 2, 3, 4) for dl in (False, True)]


@pytest.mark.parametrize("n,w,drop_last", CASES)
def test_same_indices_as_torch_without_shuffle(n, w, drop_last):
    for r in range(w):
        mine = DistributedSampler(range(n), num_replicas=w, rank=r, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(range(n), num_replicas=w, rank=r, shuffle=False, drop_last=drop_last)
        assert list(mine) == list(theirs)
        assert len(mine) == len(theirs) and mine.total_size == theirs.total_size


@pytest.mark.parametrize("n,w,drop_last", CASES)
def test_shuffled_partition_like_torch(n, w, drop_last):
    for epoch in (0, 3):
        shares, tshares = [], []
        for r in range(w):
            s = DistributedSampler(range(n), num_replicas=w, rank=r, seed=5, drop_last=drop_last)
            t = TorchSampler(range(n), num_replicas=w, rank=r, seed=5, drop_last=drop_last)
            s.set_epoch(epoch)
            t.set_epoch(epoch)
            shares.append(list(s))
            tshares.append(list(t))
        assert [len(x) for x in shares] == [len(x) for x in tshares]
        every = [i for x in shares for i in x]
        tevery = [i for x in tshares for i in x]
        # every index appears; padding repeats as many as torch's (different order, same multiset shape)
        assert sorted(set(every)) == sorted(set(every)) and len(every) == len(tevery)
        assert len(set(every)) == len(set(tevery))
        if not drop_last:
            assert set(every) == set(range(n))
        counts = sorted(every.count(i) for i in set(every))
        tcounts = sorted(tevery.count(i) for i in set(tevery))
        assert counts == tcounts


def test_shuffle_depends_on_seed_and_epoch_only():
    a = DistributedSampler(range(50), num_replicas=2, rank=0, seed=1)
    b = DistributedSampler(range(50), num_replicas=2, rank=0, seed=1)
    engine.manual_seed(123)  # the global stream does not matter
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert sorted(list(a) + list(DistributedSampler(range(50), 2, 1, seed=1))) != first  # epoch 0 vs 1
    c = DistributedSampler(range(50), num_replicas=2, rank=0, seed=2)
    assert list(c) != first
    assert sorted(first + list(DistributedSampler(range(50), num_replicas=2, rank=1, seed=1))) == list(range(50))


def test_with_dataloader():
    ds = TensorDataset(engine.arange(10).float())
    got = []
    for r in range(3):
        s = DistributedSampler(ds, num_replicas=3, rank=r, shuffle=False)
        got.append([v for (b,) in DataLoader(ds, batch_size=2, sampler=s) for v in b.tolist()])
    assert got == [[0.0, 3.0, 6.0, 9.0], [1.0, 4.0, 7.0, 0.0], [2.0, 5.0, 8.0, 1.0]]


def test_errors():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="Invalid rank -1"):
        DistributedSampler(range(4), num_replicas=2, rank=-1)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))
    assert torch  # the oracle is importable
