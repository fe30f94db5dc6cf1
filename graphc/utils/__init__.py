"""graphc.utils: PyTorch's ``torch.utils`` helpers (data loading, DLPack; ``utils.tensorboard`` on import)."""
from . import data, dlpack  # noqa: F401
