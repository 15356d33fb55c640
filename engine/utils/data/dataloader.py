"""DataLoader (torch.utils.data.DataLoader), single-process.

`num_workers > 0` is accepted and runs in this process (OpenCL contexts don't survive fork, and
every op already runs asynchronously on the device); `worker_init_fn(0)` is called once per
iterator and `get_worker_info()` then describes that single in-process worker.
Batches of a plain TensorDataset (or Subsets of one, e.g. from random_split) with the default
collate_fn are gathered with one index_select per tensor instead of indexing sample by sample."""
import math
import numbers
import warnings

import numpy as np

from .dataset import IterableDataset, Subset, TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler
from ._collate import default_collate, default_convert

__all__ = ["DataLoader", "get_worker_info", "WorkerInfo"]


class WorkerInfo:
    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            setattr(self, k, v)
        self.__keys = tuple(kwargs.keys())

    def __repr__(self):
        items = [f"{k}={getattr(self, k)}" for k in self.__keys]
        return f"{self.__class__.__name__}({', '.join(items)})"


_worker_info = None


def get_worker_info():
    """None in the main process; inside an (in-process) worker, its WorkerInfo."""
    return _worker_info


class _InfiniteConstantSampler(Sampler):
    def __iter__(self):
        while True:
            yield None


class DataLoader:
    """Combines a dataset and a sampler and iterates over batches (torch semantics and errors)."""

    __initialized = False

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing."
                             "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
        elif num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order

        if isinstance(dataset, IterableDataset):
            self._dataset_kind = "iterable"
            if shuffle not in {False, None}:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, "
                                 f"but got shuffle={shuffle}")
            elif sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, "
                                 f"but got sampler={sampler}")
            elif batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                                 f"but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
            self._dataset_kind = "map"

        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")

        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None:
            if drop_last:
                raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with "
                                 "drop_last")

        if sampler is None:
            if self._dataset_kind == "iterable":
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)

        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator

        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self.__initialized = True
        self._IterableDataset_len_called = None

    def __setattr__(self, attr, val):
        if self.__initialized and attr in ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
                                           "persistent_workers"):
            raise ValueError(f"{attr} attribute should not be set after {self.__class__.__name__} is initialized")
        super().__setattr__(attr, val)

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        return _SingleProcessDataLoaderIter(self)

    def __len__(self):
        if self._dataset_kind == "iterable":
            length = self._IterableDataset_len_called = len(self.dataset)
            if self.batch_size is not None:
                if self.drop_last:
                    length = length // self.batch_size
                else:
                    length = math.ceil(length / self.batch_size)
            return length
        return len(self._index_sampler)

    def check_worker_number_rationality(self):
        pass


class _SingleProcessDataLoaderIter:
    def __init__(self, loader):
        from ...ops.creation import empty
        from ... import dtypes as D
        self._loader = loader
        self._dataset = loader.dataset
        self._dataset_kind = loader._dataset_kind
        self._auto_collation = loader._auto_collation
        self._drop_last = loader.drop_last
        self._index_sampler = loader._index_sampler
        self._collate_fn = loader.collate_fn
        self._num_yielded = 0
        self._IterableDataset_len_called = loader._IterableDataset_len_called
        # torch draws a base seed for the workers from the loader's generator each epoch
        self._base_seed = int(empty((), dtype=D.int64).random_(generator=loader.generator).item())
        self._sampler_iter = iter(self._index_sampler)
        self._fast = (self._dataset_kind == "map" and self._auto_collation and self._collate_fn is default_collate
                      and _tensor_dataset_of(self._dataset) is not None)
        self._worker = None
        if loader.num_workers > 0:
            self._worker = WorkerInfo(id=0, num_workers=1, seed=self._base_seed, dataset=self._dataset)
            global _worker_info
            prev, _worker_info = _worker_info, self._worker
            try:
                if loader.worker_init_fn is not None:
                    loader.worker_init_fn(0)
            finally:
                _worker_info = prev
        self._dataset_iter = iter(self._dataset) if self._dataset_kind == "iterable" else None

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._loader)

    def _next_index(self):
        return next(self._sampler_iter)

    def _fetch(self, index):
        if self._dataset_kind == "iterable":
            if self._auto_collation:
                data = []
                for _ in index:
                    try:
                        data.append(next(self._dataset_iter))
                    except StopIteration:
                        break
                if len(data) == 0 or (self._drop_last and len(data) < len(index)):
                    raise StopIteration
            else:
                data = next(self._dataset_iter)
            return self._collate_fn(data)
        if self._auto_collation:
            if self._fast:
                batch = _gather_tensor_dataset(self._dataset, index)
                if batch is not None:
                    return batch
            getitems = getattr(self._dataset, "__getitems__", None)
            if getitems:
                data = getitems(index)
            else:
                data = [self._dataset[idx] for idx in index]
        else:
            data = self._dataset[index]
        return self._collate_fn(data)

    def __next__(self):
        global _worker_info
        prev = _worker_info
        if self._worker is not None:
            _worker_info = self._worker
        try:
            index = self._next_index()
            data = self._fetch(index)
        finally:
            _worker_info = prev
        self._num_yielded += 1
        if (self._dataset_kind == "iterable" and self._IterableDataset_len_called is not None
                and self._num_yielded > self._IterableDataset_len_called):
            warnings.warn(f"Length of IterableDataset {self._dataset} was reported to be "
                          f"{self._IterableDataset_len_called} (when accessing len(dataloader)), but "
                          f"{self._num_yielded} samples have been fetched. ")
        return data


def _tensor_dataset_of(dataset):
    """The TensorDataset under a plain TensorDataset or (nested) Subsets of one, else None."""
    while type(dataset) is Subset:
        dataset = dataset.dataset
    return dataset if type(dataset) is TensorDataset else None


def _gather_tensor_dataset(dataset, index):
    """A TensorDataset batch as [t.index_select(0, idx) for t in tensors] (what default_collate of
    the samples gives), or None when the indices need the general path."""
    from ...tensor import Tensor, from_numpy_array
    index = list(index)
    if not index or not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in index):
        return None
    while type(dataset) is Subset:
        n = len(dataset)
        if min(index) < 0 or max(index) >= n:
            return None
        ind = dataset.indices
        index = [ind[i] for i in index]
        if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in index):
            return None
        dataset = dataset.dataset
    n = len(dataset)
    if min(index) < 0 or max(index) >= n:
        return None  # let t[i] raise torch's IndexError (or wrap negatives)
    out = []
    idx_by_dev = {}
    host = np.asarray(index, dtype=np.int64)
    for t in dataset.tensors:
        if not isinstance(t, Tensor):
            return None
        dev = t._storage.device
        idx = idx_by_dev.get(dev)
        if idx is None:
            idx = idx_by_dev[dev] = from_numpy_array(host, dev)
        out.append(t.index_select(0, idx))
    return out
