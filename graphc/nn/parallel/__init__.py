"""graphc.nn.parallel (``torch.nn.parallel``): ``DataParallel`` and ``data_parallel`` on one device
(data_parallel.py), and training one model on several processes (distributed.py)."""
from .data_parallel import DataParallel, data_parallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]
