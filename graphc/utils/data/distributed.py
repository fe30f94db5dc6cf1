"""``DistributedSampler``: each rank of a data-parallel job loads its own share of a dataset
(``torch.utils.data.distributed``, the same algorithm index for index)."""
from __future__ import annotations

import math
from typing import Iterator, Sized

from .sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler[int]):
    """Indices ``rank, rank + num_replicas, ...`` of the (shuffled) dataset, padded by repeating
    its first indices to a multiple of ``num_replicas`` (or cut to one with ``drop_last``), so
    every rank gets ``len(self)`` indices and they together cover the dataset. With ``shuffle`` the
    order is ``randperm`` from a generator seeded with ``seed + epoch``: the same on every rank,
    new each epoch when ``set_epoch`` is called. (graphc's generator is not PyTorch's, so the
    shuffled order differs from PyTorch's; how it is padded and split is the same.)"""

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from graphc import distributed as dist
            if not dist.is_available():
                raise RuntimeError("Requires distributed package to be available")
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
            # the last, incomplete round of indices is dropped
            self.num_samples = math.ceil((len(self.dataset) - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(len(self.dataset) / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            import graphc
            g = graphc.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = graphc.randperm(n, generator=g).tolist()
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
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration shuffles for: every rank must set the same one."""
        self.epoch = epoch
