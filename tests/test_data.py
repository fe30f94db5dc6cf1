"""graphc.utils.data: datasets, samplers, default_collate and the DataLoader (single- and multi-process).

Expected values are torch.utils.data's documented behaviour (error messages included), written out
explicitly. Worker tests use tiny datasets; the datasets they use are module-level classes so the
workers get them by fork (the Linux default) and, for the spawn test, by pickling.
"""
import collections
import math
import os
import pickle
import time

import numpy as np
import pytest

import graphc as torch
from graphc.utils.data import (BatchSampler, ChainDataset, ConcatDataset, DataLoader, Dataset, IterableDataset,
                               RandomSampler, Sampler, SequentialSampler, StackDataset, Subset,
                               SubsetRandomSampler, TensorDataset, WeightedRandomSampler, default_collate,
                               default_convert, get_worker_info, random_split)

Point = collections.namedtuple("Point", ["x", "y"])


def as_list(t):
    return t.tolist()


def batches_equal(a, b):
    """Deep equality of two collated batches (tensors compared by dtype, shape and values)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist()
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(batches_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(batches_equal(x, y) for x, y in zip(a, b))
    return a == b


# ---- datasets used by the tests (module level: workers must reach them) -------------------------

class Squares(Dataset):
    """Sample i is (float tensor [i], int i, {"name": str(i)})."""

    def __init__(self, n=10):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i % 4 == 0:
            time.sleep(0.005)  # workers finish out of order; the loader must restore the order
        return torch.tensor([float(i)]), i, {"name": str(i)}


class FailsAt(Dataset):
    def __init__(self, bad):
        self.bad = bad

    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == self.bad:
            raise ValueError(f"cannot load sample {i}")
        return i


class ShardedRange(IterableDataset):
    """range(start, end), split between workers with get_worker_info() (PyTorch's documented example)."""

    def __init__(self, start, end):
        self.start, self.end = start, end

    def __len__(self):
        return self.end - self.start

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            return iter(range(self.start, self.end))
        per_worker = int(math.ceil((self.end - self.start) / float(info.num_workers)))
        lo = self.start + info.id * per_worker
        return iter(range(lo, min(lo + per_worker, self.end)))


class PlainRange(IterableDataset):
    def __init__(self, n, with_len=True):
        self.n = n
        self.with_len = with_len

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        if not self.with_len:
            raise TypeError("no len")
        return self.n


class WorkerReport(Dataset):
    """Sample i reports which worker loaded it, that worker's seed, and draws from graphc and numpy."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        info = get_worker_info()
        return [i, info.id, info.num_workers, info.seed, int(torch.randint(0, 10**6, (1,)).item()),
                int(np.random.randint(10**6)), os.getpid()]


class DiesInWorker(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        os._exit(3)


class Unpicklable(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return lambda: i


class KeyErrorDataset(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return {}["missing"]


def record_init(worker_id):
    info = get_worker_info()
    assert info is not None and info.id == worker_id
    try:
        info.id = 99
    except AttributeError:  # dataclasses.FrozenInstanceError: WorkerInfo is read-only
        pass
    else:
        raise AssertionError("WorkerInfo should be frozen")
    # worker_init_fn runs in the worker before loading; it may reconfigure this worker's dataset copy
    info.dataset.offset = 100 * (worker_id + 1)


class OffsetDataset(Dataset):
    offset = 0

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return self.offset + i


def failing_init(worker_id):
    raise RuntimeError(f"init failed in {worker_id}")


# ---- Dataset, TensorDataset, Subset, ConcatDataset, StackDataset, ChainDataset --------------------

def test_base_dataset_getitem_raises():
    with pytest.raises(NotImplementedError, match="Subclasses of Dataset should implement __getitem__."):
        Dataset()[0]


def test_tensor_dataset():
    x = torch.arange(12.0).reshape(4, 3)
    y = torch.tensor([0, 1, 0, 1])
    ds = TensorDataset(x, y)
    assert len(ds) == 4
    xi, yi = ds[2]
    assert xi.tolist() == [6.0, 7.0, 8.0] and yi.item() == 0
    assert ds.tensors[0] is x


def test_tensor_dataset_size_mismatch():
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        TensorDataset(torch.zeros(3, 2), torch.zeros(4))


def test_subset_and_getitems():
    ds = Subset(list(range(10, 20)), [3, 1, 4])
    assert len(ds) == 3
    assert [ds[i] for i in range(3)] == [13, 11, 14]
    assert ds.__getitems__([2, 0]) == [14, 13]


def test_subset_subclass_must_override_getitems():
    class Bad(Subset):
        def __getitem__(self, idx):
            return 0

    with pytest.raises(NotImplementedError, match="overrides __getitem__ but not __getitems__"):
        Bad(list(range(3)), [0])


def test_concat_dataset_and_add():
    a, b = TensorDataset(torch.arange(3)), TensorDataset(torch.arange(10, 14))
    cat = a + b
    assert isinstance(cat, ConcatDataset)
    assert len(cat) == 7 and cat.cumulative_sizes == [3, 7]
    assert [cat[i][0].item() for i in range(7)] == [0, 1, 2, 10, 11, 12, 13]
    assert cat[-1][0].item() == 13
    with pytest.raises(ValueError, match="absolute value of index should not exceed dataset length"):
        cat[-8]
    with pytest.raises(AssertionError, match="datasets should not be an empty iterable"):
        ConcatDataset([])
    with pytest.raises(AssertionError, match="ConcatDataset does not support IterableDataset"):
        ConcatDataset([PlainRange(3)])


def test_iterable_dataset_add_chains():
    chained = PlainRange(2) + PlainRange(3)
    assert isinstance(chained, ChainDataset)
    assert list(chained) == [0, 1, 0, 1, 2] and len(chained) == 5


def test_stack_dataset():
    s = StackDataset(list("abc"), [1, 2, 3])
    assert s[1] == ("b", 2) and len(s) == 3
    d = StackDataset(letter=list("abc"), num=[1, 2, 3])
    assert d[2] == {"letter": "c", "num": 3}
    assert d.__getitems__([0, 1]) == [{"letter": "a", "num": 1}, {"letter": "b", "num": 2}]
    with pytest.raises(ValueError, match="Size mismatch between datasets"):
        StackDataset([1], [1, 2])
    with pytest.raises(ValueError, match="At least one dataset should be passed"):
        StackDataset()


# ---- random_split --------------------------------------------------------------------------------

def test_random_split_sizes_disjoint_and_complete():
    parts = random_split(range(30), [10, 15, 5], generator=torch.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [10, 15, 5]
    items = [x for p in parts for x in p]
    assert sorted(items) == list(range(30))
    assert all(isinstance(p, Subset) for p in parts)


def test_random_split_fractions_distribute_remainder_round_robin():
    parts = random_split(range(10), [0.33, 0.33, 0.34], generator=torch.Generator().manual_seed(1))
    # floor gives 3, 3, 3; the one left over goes to the first split
    assert [len(p) for p in parts] == [4, 3, 3]
    with pytest.warns(UserWarning, match="Length of split at index 2 is 0"):
        parts = random_split(range(3), [0.5, 0.5, 0.0])
    assert [len(p) for p in parts] == [2, 1, 0]


def test_random_split_reproducible_with_generator_and_global_seed():
    def split(**kw):
        return [list(p) for p in random_split(range(20), [0.5, 0.5], **kw)]

    assert split(generator=torch.Generator().manual_seed(7)) == split(generator=torch.Generator().manual_seed(7))
    assert split(generator=torch.Generator().manual_seed(7)) != split(generator=torch.Generator().manual_seed(8))
    torch.manual_seed(3)
    first = split()
    torch.manual_seed(3)
    assert split() == first


def test_random_split_errors():
    with pytest.raises(ValueError, match="Sum of input lengths does not equal the length of the input dataset!"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="Fraction at index 0 is not between 0 and 1"):
        random_split(range(10), [1.5, -0.5])


# ---- samplers ------------------------------------------------------------------------------------

def test_sequential_sampler():
    s = SequentialSampler(range(5))
    assert list(s) == [0, 1, 2, 3, 4] and len(s) == 5


def test_sampler_base():
    with pytest.raises(NotImplementedError):
        iter(Sampler())
    with pytest.raises(TypeError):
        len(Sampler())


def test_random_sampler_permutation_and_reproducibility():
    s = RandomSampler(range(10), generator=torch.Generator().manual_seed(0))
    first = list(s)
    assert sorted(first) == list(range(10)) and len(s) == 10
    assert list(RandomSampler(range(10), generator=torch.Generator().manual_seed(0))) == first
    # the generator advances: a second epoch is another permutation
    second = list(s)
    assert sorted(second) == list(range(10)) and second != first


def test_random_sampler_num_samples_and_replacement():
    g = torch.Generator().manual_seed(0)
    s = RandomSampler(range(4), num_samples=10, generator=g)
    out = list(s)
    assert len(out) == 10 == len(s)
    # without replacement: two full permutations, then part of a third
    assert sorted(out[:4]) == sorted(out[4:8]) == [0, 1, 2, 3] and len(set(out[8:])) == 2
    r = RandomSampler(range(3), replacement=True, num_samples=70, generator=g)
    out = list(r)
    assert len(out) == 70 and set(out) == {0, 1, 2}


def test_random_sampler_errors():
    with pytest.raises(TypeError, match="replacement should be a boolean value, but got replacement=1"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, but got num_samples=0"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, but got num_samples=0"):
        RandomSampler([])


def test_subset_random_sampler():
    idx = [5, 7, 11, 13]
    s = SubsetRandomSampler(idx, generator=torch.Generator().manual_seed(2))
    out = list(s)
    assert sorted(out) == idx and len(s) == 4
    assert list(SubsetRandomSampler(idx, generator=torch.Generator().manual_seed(2))) == out


def test_weighted_random_sampler_distribution():
    weights = [1.0, 2.0, 3.0, 4.0]
    s = WeightedRandomSampler(weights, num_samples=10000, generator=torch.Generator().manual_seed(0))
    out = list(s)
    assert len(out) == 10000 == len(s)
    counts = np.bincount(out, minlength=4)
    expected = np.array(weights) / sum(weights) * 10000
    # binomial std is about 50 here; 250 is five of them, and the seed is fixed
    assert np.all(np.abs(counts - expected) < 250), counts
    assert list(WeightedRandomSampler(weights, 50, generator=torch.Generator().manual_seed(0))) == out[:50]
    assert s.weights.dtype == torch.float64


def test_weighted_random_sampler_zero_weight_and_no_replacement():
    out = list(WeightedRandomSampler([0.0, 1.0, 0.0, 1.0], 200, generator=torch.Generator().manual_seed(1)))
    assert set(out) == {1, 3}
    out = list(WeightedRandomSampler([1.0, 5.0, 1.0, 1.0, 2.0], 5, replacement=False,
                                     generator=torch.Generator().manual_seed(1)))
    assert sorted(out) == [0, 1, 2, 3, 4]


def test_weighted_random_sampler_errors():
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, but got num_samples=0"):
        WeightedRandomSampler([1.0], 0)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, but got num_samples=True"):
        WeightedRandomSampler([1.0], True)
    with pytest.raises(ValueError, match="replacement should be a boolean value, but got replacement=0"):
        WeightedRandomSampler([1.0], 1, replacement=0)
    with pytest.raises(ValueError, match=r"weights should be a 1d sequence but given weights have shape \(1, 2\)"):
        WeightedRandomSampler([[1.0, 2.0]], 1)


def test_batch_sampler():
    assert list(BatchSampler(SequentialSampler(range(10)), 3, False)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert list(BatchSampler(SequentialSampler(range(10)), 3, True)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert len(BatchSampler(range(10), 3, False)) == 4 and len(BatchSampler(range(10), 3, True)) == 3
    assert list(BatchSampler(range(6), 3, True)) == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("args, msg", [
    ((0, False), "batch_size should be a positive integer value, but got batch_size=0"),
    ((True, False), "batch_size should be a positive integer value, but got batch_size=True"),
    ((2.0, False), "batch_size should be a positive integer value, but got batch_size=2.0"),
    ((2, 1), "drop_last should be a boolean value, but got drop_last=1"),
])
def test_batch_sampler_errors(args, msg):
    with pytest.raises(ValueError, match=msg):
        BatchSampler(range(4), *args)


# ---- default_collate / default_convert -----------------------------------------------------------

def test_collate_tensors_stacked():
    out = default_collate([torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])])
    assert out.shape == (2, 2) and out.dtype == torch.float32 and as_list(out) == [[1.0, 2.0], [3.0, 4.0]]


def test_collate_mismatched_tensor_shapes_error():
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate([torch.zeros(2), torch.zeros(3)])


def test_collate_python_numbers():
    ints = default_collate([1, 2, 3])
    assert ints.dtype == torch.int64 and as_list(ints) == [1, 2, 3]
    floats = default_collate([1.5, 2.0])
    assert floats.dtype == torch.float64 and as_list(floats) == [1.5, 2.0]
    bools = default_collate([True, False])
    assert bools.dtype == torch.bool and as_list(bools) == [True, False]


def test_collate_numpy():
    arrays = default_collate([np.array([1, 2], dtype=np.int32), np.array([3, 4], dtype=np.int32)])
    assert isinstance(arrays, torch.Tensor) and arrays.dtype == torch.int32 and as_list(arrays) == [[1, 2], [3, 4]]
    scalars = default_collate([np.float32(1.0), np.float32(2.5)])
    assert scalars.dtype == torch.float32 and as_list(scalars) == [1.0, 2.5]
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors, numpy arrays, numbers, "
                                        "dicts or lists; found <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])


def test_collate_strings_kept():
    assert default_collate(["a", "b"]) == ["a", "b"]
    assert default_collate([b"x", b"y"]) == [b"x", b"y"]


def test_collate_tuples_and_lists_transposed():
    out = default_collate([(1, "a", 2.0), (3, "b", 4.0)])
    assert isinstance(out, list) and len(out) == 3  # tuples come back as lists, as in PyTorch
    assert as_list(out[0]) == [1, 3] and out[1] == ("a", "b") and out[2].dtype == torch.float64
    out = default_collate([[1, 2], [3, 4]])
    assert isinstance(out, list) and [as_list(t) for t in out] == [[1, 3], [2, 4]]
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [3]])


def test_collate_dicts_and_namedtuples():
    out = default_collate([{"a": 1, "b": torch.zeros(2)}, {"a": 2, "b": torch.ones(2)}])
    assert list(out) == ["a", "b"] and as_list(out["a"]) == [1, 2] and out["b"].shape == (2, 2)
    od = default_collate([collections.OrderedDict(x=1), collections.OrderedDict(x=2)])
    assert type(od) is collections.OrderedDict and as_list(od["x"]) == [1, 2]
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert type(p) is Point and as_list(p.x) == [1, 3] and p.y.dtype == torch.float64


def test_collate_nested():
    batch = [{"img": torch.zeros(3), "meta": (i, f"f{i}")} for i in range(4)]
    out = default_collate(batch)
    assert out["img"].shape == (4, 3) and as_list(out["meta"][0]) == [0, 1, 2, 3]
    assert out["meta"][1] == ("f0", "f1", "f2", "f3")


def test_collate_unsupported_type():
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors, numpy arrays, numbers, "
                                        "dicts or lists; found <class 'object'>"):
        default_collate([object(), object()])


def test_default_convert():
    t = default_convert(np.array([1.0, 2.0]))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    assert default_convert(3) == 3 and default_convert("s") == "s"
    out = default_convert((np.array(1), 2))
    assert isinstance(out, list) and isinstance(out[0], torch.Tensor) and out[1] == 2
    p = default_convert(Point(np.array(0), 5))
    assert type(p) is Point and isinstance(p.x, torch.Tensor) and p.y == 5
    strings = np.array(["a", "b"])
    assert default_convert(strings) is strings


# ---- DataLoader: arguments -----------------------------------------------------------------------

TD = TensorDataset(torch.arange(10), torch.arange(10) * 10)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(shuffle=True, sampler=SequentialSampler(TD)), "sampler option is mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive with batch_size, "
                                              "shuffle, sampler, and drop_last"),
    (dict(batch_sampler=[[0]], shuffle=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], sampler=[0]), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_size=None, drop_last=True), "batch_size=None option disables auto-batching and is mutually "
                                            "exclusive with drop_last"),
    (dict(num_workers=-1), "num_workers option should be non-negative; use num_workers=0 to disable "
                           "multiprocessing."),
    (dict(timeout=-1), "timeout option should be non-negative"),
    (dict(prefetch_factor=2), "prefetch_factor option could only be specified in multiprocessing."),
    (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
    (dict(multiprocessing_context="fork"), "multiprocessing_context can only be used with multi-process loading "
                                           r"\(num_workers > 0\), but got num_workers=0"),
    (dict(num_workers=1, multiprocessing_context="bogus"), "multiprocessing_context option should specify a valid "
                                                           "start method"),
])
def test_dataloader_argument_errors(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        DataLoader(TD, **kwargs)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(shuffle=True), "DataLoader with IterableDataset: expected unspecified shuffle option, but got shuffle=True"),
    (dict(sampler=[0]), r"DataLoader with IterableDataset: expected unspecified sampler option, but got sampler=\[0\]"),
    (dict(batch_sampler=[[0]]), "DataLoader with IterableDataset: expected unspecified batch_sampler option"),
])
def test_dataloader_iterable_dataset_argument_errors(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        DataLoader(PlainRange(4), **kwargs)


def test_dataloader_attributes_frozen_after_init():
    dl = DataLoader(TD, batch_size=2)
    for attr in ("batch_size", "sampler", "batch_sampler", "drop_last", "dataset", "persistent_workers"):
        with pytest.raises(ValueError, match=f"{attr} attribute should not be set after DataLoader is initialized"):
            setattr(dl, attr, None)
    dl.num_workers = 0  # other attributes stay settable


def test_dataloader_defaults():
    dl = DataLoader(TD)
    assert dl.batch_size == 1 and dl.drop_last is False and dl.num_workers == 0 and dl.prefetch_factor is None
    assert isinstance(dl.sampler, SequentialSampler) and isinstance(dl.batch_sampler, BatchSampler)
    assert dl.collate_fn is default_collate
    assert isinstance(DataLoader(TD, shuffle=True).sampler, RandomSampler)
    assert DataLoader(TD, batch_size=None).collate_fn is default_convert
    assert DataLoader(TD, num_workers=1).prefetch_factor == 2


def test_dataloader_pin_memory_accepted():
    with pytest.warns(UserWarning, match="'pin_memory' argument is set as true but no accelerator is found"):
        out = list(DataLoader(TD, batch_size=5, pin_memory=True))
    assert len(out) == 2


def test_dataloader_timeout_needs_workers():
    with pytest.raises(AssertionError, match="_SingleProcessDataLoaderIter requires timeout == 0"):
        iter(DataLoader(TD, timeout=1))


# ---- DataLoader: single process ------------------------------------------------------------------

def test_dataloader_sequential_order():
    out = list(DataLoader(TD, batch_size=4))
    assert [as_list(x) for x, _ in out] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [as_list(y) for _, y in out] == [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90]]


def test_dataloader_len_and_drop_last():
    assert len(DataLoader(TD, batch_size=3)) == 4
    dl = DataLoader(TD, batch_size=3, drop_last=True)
    out = list(dl)
    assert len(dl) == 3 == len(out) and all(x.shape == (3,) for x, _ in out)
    assert len(DataLoader(TD, batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(TD, batch_size=None)) == 10
    assert len(DataLoader(TD, batch_sampler=[[0, 1], [2]])) == 2


def test_dataloader_batch_size_none():
    out = list(DataLoader(TD, batch_size=None))
    assert len(out) == 10
    x, y = out[3]
    assert x.shape == () and x.item() == 3 and y.item() == 30
    # no batching: numpy samples are only converted, python numbers stay as they are
    assert list(DataLoader([np.array([1.0]), 2], batch_size=None))[1] == 2
    assert isinstance(list(DataLoader([np.array([1.0]), 2], batch_size=None))[0], torch.Tensor)


def test_dataloader_batch_sampler_and_sampler():
    out = list(DataLoader(TD, batch_sampler=[[3, 1], [0]]))
    assert [as_list(x) for x, _ in out] == [[3, 1], [0]]
    out = list(DataLoader(TD, batch_size=2, sampler=[9, 8, 7]))
    assert [as_list(x) for x, _ in out] == [[9, 8], [7]]


def test_dataloader_shuffle_each_index_once_per_epoch():
    dl = DataLoader(TD, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(0))
    epochs = []
    for _ in range(2):
        seen = [v for x, _ in dl for v in as_list(x)]
        assert sorted(seen) == list(range(10))
        epochs.append(seen)
    assert epochs[0] != epochs[1]  # reshuffled every epoch
    assert epochs[0] != list(range(10))


def test_dataloader_shuffle_reproducible_with_generator():
    def order(seed):
        dl = DataLoader(TD, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(seed))
        return [v for x, _ in dl for v in as_list(x)]

    assert order(42) == order(42)
    assert order(42) != order(43)


def test_dataloader_shuffle_reproducible_with_global_seed():
    def order():
        return [v for x, _ in DataLoader(TD, batch_size=4, shuffle=True) for v in as_list(x)]

    torch.manual_seed(5)
    a = order()
    torch.manual_seed(5)
    assert order() == a
    torch.manual_seed(6)
    assert order() != a


def test_dataloader_collates_structures():
    batch = next(iter(DataLoader(Squares(6), batch_size=3)))
    x, i, meta = batch
    assert x.shape == (3, 1) and x.dtype == torch.float32
    assert i.dtype == torch.int64 and as_list(i) == [0, 1, 2]
    assert meta == {"name": ["0", "1", "2"]}


def test_dataloader_custom_collate_fn():
    def collate(samples):
        return sum(int(x.item()) for x, _ in samples), len(samples)

    assert list(DataLoader(TD, batch_size=4, collate_fn=collate)) == [(6, 4), (22, 4), (17, 2)]
    assert list(DataLoader(list(range(5)), batch_size=2, collate_fn=lambda b: b)) == [[0, 1], [2, 3], [4]]


def test_dataloader_uses_getitems():
    class Batched(Dataset):
        calls = []

        def __len__(self):
            return 5

        def __getitem__(self, i):
            raise AssertionError("__getitems__ should be used")

        def __getitems__(self, idx):
            self.calls.append(list(idx))
            return [i * 2 for i in idx]

    ds = Batched()
    assert [as_list(b) for b in DataLoader(ds, batch_size=2)] == [[0, 2], [4, 6], [8]]
    assert ds.calls == [[0, 1], [2, 3], [4]]


def test_dataloader_iterable_dataset():
    assert [as_list(b) for b in DataLoader(PlainRange(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [as_list(b) for b in DataLoader(PlainRange(7), batch_size=3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]
    assert list(DataLoader(PlainRange(3), batch_size=None)) == [0, 1, 2]
    assert len(DataLoader(PlainRange(7), batch_size=3)) == 3
    assert len(DataLoader(PlainRange(7), batch_size=3, drop_last=True)) == 2
    assert len(DataLoader(PlainRange(7), batch_size=None)) == 7
    with pytest.raises(TypeError):
        len(DataLoader(PlainRange(7, with_len=False)))


def test_dataloader_iterable_dataset_len_warning():
    class Liar(PlainRange):
        def __len__(self):
            return 2

    dl = DataLoader(Liar(4), batch_size=None)
    assert len(dl) == 2
    with pytest.warns(UserWarning, match="was reported to be 2"):
        assert list(dl) == [0, 1, 2, 3]


def test_get_worker_info_in_main_process():
    assert get_worker_info() is None


def test_dataloader_iterator_not_picklable():
    with pytest.raises(NotImplementedError):
        pickle.dumps(iter(DataLoader(TD)))


# ---- tensors cross process boundaries by pickling -------------------------------------------------

def test_tensor_pickle_round_trip():
    t = torch.arange(6.0).reshape(2, 3)
    back = pickle.loads(pickle.dumps(t))
    assert back.dtype == t.dtype and back.shape == t.shape and back.tolist() == t.tolist()
    r = pickle.loads(pickle.dumps(torch.ones(2, requires_grad=True)))
    assert r.requires_grad


# ---- DataLoader: worker processes ----------------------------------------------------------------

def test_workers_match_single_process_in_order():
    def run(num_workers):
        dl = DataLoader(Squares(13), batch_size=3, shuffle=True, num_workers=num_workers,
                        generator=torch.Generator().manual_seed(11))
        return list(dl)

    single, multi = run(0), run(2)
    assert len(single) == len(multi) == 5
    assert all(batches_equal(a, b) for a, b in zip(single, multi))


def test_workers_batch_size_none_and_drop_last():
    assert [x.item() for x, _ in DataLoader(TD, batch_size=None, num_workers=2)] == list(range(10))
    out = list(DataLoader(TD, batch_size=4, drop_last=True, num_workers=2))
    assert [as_list(x) for x, _ in out] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_worker_exception_reraised_with_traceback():
    dl = DataLoader(FailsAt(5), batch_size=2, num_workers=2)
    with pytest.raises(ValueError) as info:
        list(dl)
    msg = str(info.value)
    assert msg.startswith("Caught ValueError in DataLoader worker process ")
    assert "Original Traceback (most recent call last):" in msg
    assert "cannot load sample 5" in msg and "__getitem__" in msg


def test_worker_init_fn_exception_reraised():
    with pytest.raises(RuntimeError, match="Caught RuntimeError in DataLoader worker process 0"):
        list(DataLoader(OffsetDataset(), num_workers=1, worker_init_fn=failing_init))


def test_worker_init_fn_and_worker_info():
    out = list(DataLoader(OffsetDataset(), batch_size=None, num_workers=2, worker_init_fn=record_init))
    # tasks go round-robin: even positions to worker 0 (offset 100), odd to worker 1 (offset 200)
    assert out == [100, 201, 102, 203, 104, 205]
    assert OffsetDataset.offset == 0  # the main process's dataset is untouched


def test_worker_seeds_and_rng():
    def run():
        return list(DataLoader(WorkerReport(), batch_size=None, num_workers=2))

    torch.manual_seed(123)
    a = run()
    assert [r[0] for r in a] == list(range(6))
    assert [r[1] for r in a] == [0, 1, 0, 1, 0, 1] and all(r[2] == 2 for r in a)
    seeds = {r[1]: r[3] for r in a}
    assert seeds[1] == seeds[0] + 1  # seed = base_seed + worker_id
    assert len({r[6] for r in a}) == 2 and os.getpid() not in {r[6] for r in a}
    torch.manual_seed(123)
    b = run()
    assert [r[:6] for r in b] == [r[:6] for r in a]  # base seed from graphc's RNG: reproducible
    torch.manual_seed(124)
    c = run()
    assert [r[3] for r in c] != [r[3] for r in a]


def test_workers_iterable_dataset_sharding():
    out = list(DataLoader(ShardedRange(3, 10), batch_size=None, num_workers=2))
    # worker 0 has [3, 7), worker 1 has [7, 10); results alternate between workers
    assert out == [3, 7, 4, 8, 5, 9, 6]
    batches = [as_list(b) for b in DataLoader(ShardedRange(0, 7), batch_size=2, num_workers=2)]
    assert batches == [[0, 1], [4, 5], [2, 3], [6]]
    # without sharding every worker yields the whole dataset
    dup = sorted(DataLoader(PlainRange(3), batch_size=None, num_workers=2))
    assert dup == [0, 0, 1, 1, 2, 2]


def test_workers_shut_down_on_early_stop():
    it = iter(DataLoader(Squares(20), batch_size=2, num_workers=2))
    next(it)
    workers = list(it._workers)
    assert all(w.is_alive() for w in workers)
    del it
    assert not any(w.is_alive() for w in workers)


def test_workers_shut_down_after_exhaustion_and_error():
    it = iter(DataLoader(TD, batch_size=4, num_workers=2))
    assert len(list(it)) == 3
    assert not any(w.is_alive() for w in it._workers)

    def consume():
        it = iter(DataLoader(FailsAt(0), batch_size=2, num_workers=2))
        workers = list(it._workers)
        with pytest.raises(ValueError):
            list(it)
        return workers

    workers = consume()
    assert not any(w.is_alive() for w in workers)


def test_persistent_workers_reused_across_epochs():
    dl = DataLoader(TD, batch_size=3, num_workers=2, persistent_workers=True)
    first = list(dl)
    pids = [w.pid for w in dl._iterator._workers]
    second = list(dl)
    assert [w.pid for w in dl._iterator._workers] == pids
    assert all(batches_equal(a, b) for a, b in zip(first, second)) and len(first) == 4
    dl._iterator._shutdown_workers()


def test_worker_unpicklable_batch_is_an_error():
    with pytest.raises(Exception, match="in DataLoader worker process"):
        list(DataLoader(Unpicklable(), batch_size=None, num_workers=1))


def test_dead_worker_detected():
    dl = DataLoader(DiesInWorker(), num_workers=1, timeout=1)
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"):
        list(dl)


def test_workers_spawn_context():
    ds = TensorDataset(torch.arange(7.0), torch.arange(7))
    # spawn pickles the dataset, collate_fn and sampler state into a fresh interpreter
    out = list(DataLoader(ds, batch_size=3, num_workers=1, multiprocessing_context="spawn"))
    assert [as_list(x) for x, _ in out] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0]]


def test_workers_out_of_order_delivery_allowed():
    import multiprocessing
    dl = DataLoader(Squares(9), batch_size=None, num_workers=2, in_order=False,
                    multiprocessing_context=multiprocessing.get_context("fork"))
    assert sorted(i for _, i, _ in dl) == list(range(9))


def test_worker_key_error_message_readable():
    with pytest.raises(KeyError) as info:
        list(DataLoader(KeyErrorDataset(), num_workers=1))
    assert "Caught KeyError in DataLoader worker process 0" in str(info.value)
    assert "\\n" not in str(info.value)  # the traceback is printed as text, not as a repr


def test_generic_subscription():
    class Ints(Dataset[int]):
        def __getitem__(self, i):
            return i

        def __len__(self):
            return 3

    assert list(DataLoader(Ints(), batch_size=None)) == [0, 1, 2]
    assert Sampler[int] is not None and IterableDataset[int] is not None
