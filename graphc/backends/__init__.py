"""graphc.backends: availability flags PyTorch programs query (``backends.mps.is_available()``)."""
from . import cudnn, mps

__all__ = ["cudnn", "mps"]
