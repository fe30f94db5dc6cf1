"""graphc.nn.parallel: training one model on several processes (``torch.nn.parallel``)."""
from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
