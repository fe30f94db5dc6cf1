"""DistributedSampler: PyTorch's padding and splitting, index for index; graphc's shuffle."""
import pytest

import graphc
from graphc.utils.data import DataLoader, TensorDataset
from graphc.utils.data.distributed import DistributedSampler

CASES = [(n, r, drop) for n in (1, 7, 10, 12, 13) for r in (1, 2, 3, 5, 16) for drop in (False, True)]


def _shares(n, replicas, **kw):
    return [list(DistributedSampler(range(n), num_replicas=replicas, rank=k, **kw)) for k in range(replicas)]


@pytest.mark.parametrize("shuffle", [False, True])
def test_matches_pytorch_padding_and_split(shuffle):
    tdata = pytest.importorskip("torch.utils.data.distributed")
    for n, replicas, drop in CASES:
        perm = (graphc.randperm(n, generator=graphc.Generator().manual_seed(7 + 3)).tolist()
                if shuffle else list(range(n)))
        for rank in range(replicas):
            # torch's unshuffled sampler gives positions; with shuffle graphc's permutation maps
            # them, which is what torch's shuffle does with torch's permutation
            ref = tdata.DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False,
                                           drop_last=drop)
            mine = DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=shuffle,
                                      seed=7, drop_last=drop)
            mine.set_epoch(3)
            assert list(mine) == [perm[i] for i in ref], (n, replicas, rank, drop)
            assert len(mine) == len(ref)


@pytest.mark.parametrize("n,replicas,drop", CASES)
def test_documented_properties(n, replicas, drop):
    shares = _shares(n, replicas, shuffle=True, seed=1, drop_last=drop)
    assert len({len(s) for s in shares}) == 1  # every rank gets as many indices
    flat = [i for s in shares for i in s]
    if drop:
        assert len(flat) == (n // replicas) * replicas and len(set(flat)) == len(flat)
    else:
        assert set(flat) == set(range(n)) and len(flat) == -(-n // replicas) * replicas


def test_epochs_and_seeds_change_the_order_on_every_rank_alike():
    def order(epoch, seed=0):
        out = []
        for k in range(2):
            s = DistributedSampler(range(50), num_replicas=2, rank=k, seed=seed)
            s.set_epoch(epoch)
            out.append(list(s))
        return out
    assert order(0) == order(0)
    assert order(0) != order(1) and order(0) != order(0, seed=5)
    assert sorted(order(1)[0] + order(1)[1]) == list(range(50))


def test_errors():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        DistributedSampler(range(4))


def test_in_a_dataloader():
    ds = TensorDataset(graphc.arange(10))
    loader = DataLoader(ds, batch_size=2, sampler=DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False))
    assert [b[0].tolist() for b in loader] == [[1, 3], [5, 7], [9]]
