"""graphc.utils: PyTorch's ``torch.utils`` helpers (data loading)."""
from . import data  # noqa: F401
