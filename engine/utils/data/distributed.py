"""DistributedSampler (torch.utils.data.distributed): each rank iterates over its own share of a dataset.

Same rules as torch: the (optionally shuffled) index list is padded by repeating its start so that
it divides evenly into `num_replicas` shares (or, with drop_last=True, cut to a multiple), and rank
r takes every num_replicas-th index starting at r.  Shuffling uses engine's Philox generator seeded
with `seed + epoch`, so every rank draws the same permutation (and the same one on every device);
call `set_epoch(epoch)` before each epoch for a new order.  The order differs from torch's (torch
has its own generator); the partition rules are the same.
"""
import math

from .sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler):
    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from ... import distributed as dist
            if not dist.is_initialized():
                raise RuntimeError("Requires distributed package to be available: call "
                                   "engine.distributed.init_process_group() first, or pass num_replicas and rank")
            if num_replicas is None:
                num_replicas = dist.get_world_size()
            if rank is None:
                rank = dist.get_rank()
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        if self.drop_last and len(self.dataset) % self.num_replicas != 0:
            # drop the tail so that every rank gets the same amount of data
            self.num_samples = math.ceil((len(self.dataset) - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(len(self.dataset) / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            from ...ops.random_ops import randperm
            from ...random import Generator
            g = Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding_size = self.total_size - len(indices)
            if padding_size <= len(indices):
                indices += indices[:padding_size]
            else:
                indices += (indices * math.ceil(padding_size / len(indices)))[:padding_size]
        else:
            indices = indices[:self.total_size]
        indices = indices[self.rank:self.total_size:self.num_replicas]
        return iter(indices)

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Make the next iteration use the permutation of `seed + epoch` (call it at each epoch's start)."""
        self.epoch = epoch
