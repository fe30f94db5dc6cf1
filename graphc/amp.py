"""graphc.amp: ``autocast`` and ``GradScaler`` as PyTorch code uses them on a machine without CUDA."""
from .compat_extras import GradScaler, autocast, is_autocast_enabled  # noqa: F401

__all__ = ["GradScaler", "autocast", "is_autocast_enabled"]
