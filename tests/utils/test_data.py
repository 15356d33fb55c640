"""engine.utils.data against torch.utils.data where the behaviour is deterministic."""
import collections
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import engine
import engine.utils.data as eud
from engine.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler,
                               SequentialSampler, Subset, SubsetRandomSampler, TensorDataset, default_collate,
                               default_convert, random_split)


def _same(e, t):
    """Structural equality of an engine result and a torch result (types, dtypes, values)."""
    if isinstance(t, torch.Tensor):
        assert isinstance(e, engine.Tensor), (type(e), type(t))
        assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        assert tuple(e.shape) == tuple(t.shape)
        np.testing.assert_array_equal(e.numpy(), t.numpy())
    elif isinstance(t, dict):
        assert type(e) is type(t) and list(e) == list(t)
        for k in t:
            _same(e[k], t[k])
    elif isinstance(t, (list, tuple)):
        assert type(e).__name__ == type(t).__name__ and len(e) == len(t)
        for a, b in zip(e, t):
            _same(a, b)
    else:
        assert type(e) is type(t) and e == t


class _Sq(Dataset):
    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        if i >= self.n:
            raise IndexError(i)
        return i * i

    def __len__(self):
        return self.n


class _Sqt(tud.Dataset):
    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        return i * i

    def __len__(self):
        return self.n


class _It(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


class _Itt(tud.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


Point = collections.namedtuple("Point", "x y")


# --------------------------------------------------------------------------------- collate
@pytest.mark.parametrize("batch_fn", [
    lambda T: [1, 2, 3],
    lambda T: [1.5, 2.0],
    lambda T: [True, False],
    lambda T: ["a", "b"],
    lambda T: [np.arange(3, dtype=np.float32), np.arange(3, dtype=np.float32)],
    lambda T: [np.float32(1), np.float32(2)],
    lambda T: [np.int32(1), np.int32(2)],
    lambda T: [T.tensor([1, 2]), T.tensor([3, 4])],
    lambda T: [T.tensor(1.0), T.tensor(2.0)],
    lambda T: [(T.tensor([1.0]), 1, "x"), (T.tensor([2.0]), 2, "y")],
    lambda T: [[1, 2.0], [3, 4.0]],
    lambda T: [{"a": T.tensor([1]), "b": {"c": 1.0}}, {"a": T.tensor([2]), "b": {"c": 2.0}}],
    lambda T: [collections.OrderedDict(a=1), collections.OrderedDict(a=2)],
    lambda T: [Point(1, T.tensor([1.0])), Point(2, T.tensor([2.0]))],
])
def test_default_collate_matches_torch(batch_fn):
    _same(default_collate(batch_fn(engine)), tud.default_collate(batch_fn(torch)))


def test_default_collate_errors():
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object(), object()])
    with pytest.raises(TypeError):
        tud.default_collate([object(), object()])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [3]])


def test_default_convert():
    _same(default_convert({"a": np.arange(3), "b": [np.float64(1.5)], "c": "s", "t": (np.ones(2),)}),
          tud.default_convert({"a": np.arange(3), "b": [np.float64(1.5)], "c": "s", "t": (np.ones(2),)}))
    p = default_convert(Point(np.ones(2), 3))
    assert type(p) is Point and isinstance(p.x, engine.Tensor) and p.y == 3


# --------------------------------------------------------------------------------- datasets
def test_tensor_dataset():
    x, y = engine.arange(10.).reshape(5, 2), engine.arange(5)
    ds = TensorDataset(x, y)
    assert len(ds) == 5
    a, b = ds[2]
    assert a.tolist() == [4.0, 5.0] and b.item() == 2
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        TensorDataset(x, engine.arange(4))


def test_concat_subset():
    ds = ConcatDataset([_Sq(3), _Sq(4)])
    dt = tud.ConcatDataset([_Sqt(3), _Sqt(4)])
    assert len(ds) == len(dt) == 7 and ds.cumulative_sizes == dt.cumulative_sizes
    assert [ds[i] for i in range(-7, 7)] == [dt[i] for i in range(-7, 7)]
    with pytest.raises(ValueError, match="absolute value of index should not exceed dataset length"):
        ds[-8]
    assert len(_Sq(2) + _Sq(3)) == 5
    with pytest.raises(AssertionError, match="datasets should not be an empty iterable"):
        ConcatDataset([])
    with pytest.raises(AssertionError, match="does not support IterableDataset"):
        ConcatDataset([_It(3)])
    s = Subset(_Sq(10), [9, 1, 4])
    assert len(s) == 3 and [s[i] for i in range(3)] == [81, 1, 16]
    assert list(_It(2) + _It(3)) == [0, 1, 0, 1, 2]
    with pytest.raises(NotImplementedError):
        Dataset()[0]


@pytest.mark.parametrize("lengths", [[3, 7], [0.3, 0.7], [0.5, 0.25, 0.25], [1, 1, 8], [0.33, 0.33, 0.34],
                                     [0.1] * 10])
def test_random_split(lengths):
    for n in (10, 11, 7):
        if all(isinstance(x, int) for x in lengths) and sum(lengths) != n:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parts = random_split(_Sq(n), lengths, generator=engine.Generator().manual_seed(1))
            ref = tud.random_split(_Sqt(n), lengths, generator=torch.Generator().manual_seed(1))
        assert [len(p) for p in parts] == [len(r) for r in ref]
        idx = [i for p in parts for i in p.indices]
        assert sorted(idx) == list(range(n))  # disjoint and covering
    # reproducible with the same seed, different with another
    a = random_split(_Sq(20), [10, 10], generator=engine.Generator().manual_seed(3))
    b = random_split(_Sq(20), [10, 10], generator=engine.Generator().manual_seed(3))
    c = random_split(_Sq(20), [10, 10], generator=engine.Generator().manual_seed(4))
    assert a[0].indices == b[0].indices != c[0].indices


def test_random_split_errors():
    with pytest.raises(ValueError, match="Sum of input lengths does not equal the length of the input dataset!"):
        random_split(_Sq(10), [3, 3])
    with pytest.raises(ValueError, match="Fraction at index 0 is not between 0 and 1"):
        random_split(_Sq(10), [1.5, -0.5])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(_Sq(2), [1.0, 0.0])


# --------------------------------------------------------------------------------- samplers
def test_samplers():
    assert list(SequentialSampler(range(5))) == [0, 1, 2, 3, 4]
    g = engine.Generator().manual_seed(0)
    perm = list(RandomSampler(range(10), generator=g))
    assert sorted(perm) == list(range(10))
    rs = RandomSampler(range(10), replacement=True, num_samples=70, generator=g)
    draws = list(rs)
    assert len(rs) == 70 and len(draws) == 70 and all(0 <= d < 10 for d in draws)
    rs = RandomSampler(range(4), num_samples=10, generator=g)
    draws = list(rs)
    assert len(draws) == 10 and sorted(draws[:4]) == [0, 1, 2, 3] and sorted(draws[4:8]) == [0, 1, 2, 3]
    with pytest.raises(TypeError, match="replacement should be a boolean value"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        RandomSampler(range(3), num_samples=0)
    s = list(SubsetRandomSampler([5, 7, 9], generator=g))
    assert sorted(s) == [5, 7, 9]
    for n, bs, dl in [(10, 3, False), (10, 3, True), (9, 3, True), (0, 2, False), (2, 5, True)]:
        e = BatchSampler(SequentialSampler(range(n)), bs, dl)
        t = tud.BatchSampler(tud.SequentialSampler(range(n)), bs, dl)
        assert list(e) == list(t) and len(e) == len(t)
    with pytest.raises(ValueError, match="batch_size should be a positive integer value"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean value"):
        BatchSampler(range(3), 2, 1)


def test_random_sampler_seeded_by_manual_seed():
    engine.manual_seed(7)
    a = list(RandomSampler(range(50)))
    engine.manual_seed(7)
    b = list(RandomSampler(range(50)))
    assert a == b and sorted(a) == list(range(50)) and a != list(range(50))


# --------------------------------------------------------------------------------- DataLoader
@pytest.mark.parametrize("n,bs,drop_last", [(10, 3, False), (10, 3, True), (10, 5, False), (10, 1, False),
                                             (3, 5, False), (3, 5, True)])
def test_loader_tensor_dataset_matches_torch(n, bs, drop_last):
    xs = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    ys = np.arange(n, dtype=np.int64)
    e = DataLoader(TensorDataset(engine.tensor(xs), engine.tensor(ys)), batch_size=bs, drop_last=drop_last)
    t = tud.DataLoader(tud.TensorDataset(torch.tensor(xs), torch.tensor(ys)), batch_size=bs, drop_last=drop_last)
    assert len(e) == len(t)
    eb, tb = list(e), list(t)
    assert len(eb) == len(tb)
    for a, b in zip(eb, tb):
        _same(a, b)


def test_loader_fast_path_equals_general_path():
    x = engine.randn(13, 3, 2)
    y = engine.randint(0, 5, (13,))
    ds = TensorDataset(x, y)
    g1, g2 = engine.Generator().manual_seed(5), engine.Generator().manual_seed(5)
    fast = list(DataLoader(ds, batch_size=4, shuffle=True, generator=g1))
    slow = list(DataLoader(ds, batch_size=4, shuffle=True, generator=g2, collate_fn=lambda b: default_collate(b)))
    assert len(fast) == len(slow) == 4
    for (a, b), (c, d) in zip(fast, slow):
        np.testing.assert_array_equal(a.numpy(), c.numpy())
        np.testing.assert_array_equal(b.numpy(), d.numpy())
    # the fast path really covers every sample once
    seen = sorted(int(v) for _, yb in fast for v in (yb.tolist()))
    assert seen == sorted(y.tolist())
    # Subsets of a TensorDataset (random_split) take the fast path too
    part = Subset(random_split(ds, [10, 3], generator=engine.Generator().manual_seed(0))[0], list(range(9, -1, -1)))
    fast = list(DataLoader(part, batch_size=3))
    slow = list(DataLoader(part, batch_size=3, collate_fn=lambda b: default_collate(b)))
    assert [len(b[0]) for b in fast] == [3, 3, 3, 1]
    for (a, b), (c, d) in zip(fast, slow):
        np.testing.assert_array_equal(a.numpy(), c.numpy())
        np.testing.assert_array_equal(b.numpy(), d.numpy())


def test_loader_map_dataset_and_collate():
    e = list(DataLoader(_Sq(7), batch_size=3))
    t = list(tud.DataLoader(_Sqt(7), batch_size=3))
    for a, b in zip(e, t):
        _same(a, b)
    # batch_size=None: no auto-batching, default_convert
    assert list(DataLoader(_Sq(3), batch_size=None)) == [0, 1, 4]
    # custom collate_fn and batch_sampler
    dl = DataLoader(_Sq(6), batch_sampler=[[0, 1], [5]], collate_fn=list)
    assert list(dl) == [[0, 1], [25]] and len(dl) == 2
    # dict samples
    class D(Dataset):
        def __getitem__(self, i):
            return {"x": np.full(2, i, np.float32), "label": i, "name": f"s{i}"}

        def __len__(self):
            return 3

    class Dt(tud.Dataset):
        __getitem__, __len__ = D.__getitem__, D.__len__

    for a, b in zip(DataLoader(D(), batch_size=2), tud.DataLoader(Dt(), batch_size=2)):
        _same(a, b)


@pytest.mark.parametrize("bs,drop_last", [(3, False), (3, True), (None, False), (5, False)])
def test_loader_iterable(bs, drop_last):
    e = DataLoader(_It(7), batch_size=bs, drop_last=drop_last)
    t = tud.DataLoader(_Itt(7), batch_size=bs, drop_last=drop_last)
    assert len(e) == len(t)
    eb, tb = list(e), list(t)
    assert len(eb) == len(tb)
    for a, b in zip(eb, tb):
        _same(a, b)


def test_loader_shuffle_reproducible_and_complete():
    ds = TensorDataset(engine.arange(20))
    engine.manual_seed(0)
    a = [b[0].tolist() for b in DataLoader(ds, batch_size=6, shuffle=True)]
    engine.manual_seed(0)
    b = [b[0].tolist() for b in DataLoader(ds, batch_size=6, shuffle=True)]
    assert a == b and sorted(sum(a, [])) == list(range(20)) and sum(a, []) != list(range(20))
    dl = DataLoader(ds, batch_size=6, shuffle=True, generator=engine.Generator().manual_seed(1))
    e1, e2 = [x[0].tolist() for x in dl], [x[0].tolist() for x in dl]
    assert e1 != e2  # each epoch draws a new permutation


@pytest.mark.parametrize("kwargs,msg", [
    (dict(shuffle=True, sampler=SequentialSampler(range(4))), "sampler option is mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive with batch_size"),
    (dict(batch_sampler=[[0]], shuffle=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_size=None, drop_last=True), "batch_size=None option disables auto-batching"),
    (dict(num_workers=-1), "num_workers option should be non-negative"),
    (dict(timeout=-1), "timeout option should be non-negative"),
    (dict(prefetch_factor=2), "prefetch_factor option could only be specified in multiprocessing"),
    (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
    (dict(batch_size=0), "batch_size should be a positive integer value"),
])
def test_loader_errors_match_torch(kwargs, msg):
    kt = {k: (tud.SequentialSampler(range(4)) if isinstance(v, SequentialSampler) else v) for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=msg):
        tud.DataLoader(_Sqt(4), **kt)
    with pytest.raises(ValueError, match=msg):
        DataLoader(_Sq(4), **kwargs)


def test_loader_iterable_errors_and_setattr():
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(_It(3), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler option"):
        DataLoader(_It(3), sampler=[0])
    with pytest.raises(ValueError, match="expected unspecified batch_sampler option"):
        DataLoader(_It(3), batch_sampler=[[0]])
    dl = DataLoader(_Sq(3))
    with pytest.raises(ValueError, match="batch_size attribute should not be set after DataLoader is initialized"):
        dl.batch_size = 4
    dl.num_workers = 0  # other attributes stay settable

    class NoLen(IterableDataset):
        def __iter__(self):
            return iter(range(2))

    with pytest.raises(TypeError):
        len(DataLoader(NoLen()))


def test_loader_num_workers_in_process():
    calls = []

    def init(wid):
        info = eud.get_worker_info()
        calls.append((wid, info.id, info.num_workers))

    dl = DataLoader(_Sq(5), batch_size=2, num_workers=2, worker_init_fn=init, persistent_workers=True,
                    pin_memory=True)
    assert [b.tolist() for b in dl] == [[0, 1], [4, 9], [16]]
    assert calls == [(0, 0, 1)] and eud.get_worker_info() is None


def test_package_exports():
    for name in ("Dataset", "IterableDataset", "TensorDataset", "ConcatDataset", "ChainDataset", "Subset",
                 "random_split", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
                 "WeightedRandomSampler", "BatchSampler", "DataLoader", "default_collate", "default_convert",
                 "get_worker_info", "StackDataset"):
        assert hasattr(eud, name) and hasattr(tud, name), name


def test_weighted_sampler_and_stack_dataset():
    from engine.utils.data import StackDataset, WeightedRandomSampler
    s = list(WeightedRandomSampler([0.0, 0.0, 1.0], 10, generator=engine.Generator().manual_seed(0)))
    assert s == [2] * 10
    assert sorted(WeightedRandomSampler([1, 1, 1, 1], 4, replacement=False)) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        WeightedRandomSampler([1.0], 0)
    assert StackDataset(a=[1, 2], b=[3, 4])[1] == {"a": 2, "b": 4}
    assert StackDataset([1, 2], "xy")[0] == (1, "x")
    with pytest.raises(ValueError, match="Size mismatch between datasets"):
        StackDataset([1], [1, 2])
    e = list(DataLoader(StackDataset([1, 2, 3], [4.0, 5.0, 6.0]), batch_size=2))
    t = list(tud.DataLoader(tud.StackDataset([1, 2, 3], [4.0, 5.0, 6.0]), batch_size=2))
    for a, b in zip(e, t):
        _same(a, b)
