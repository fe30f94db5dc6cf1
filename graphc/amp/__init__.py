"""graphc.amp: mixed precision. ``autocast`` runs each op in a lower-precision dtype or in
float32 as PyTorch's autocast lists say (``rules``); ``GradScaler`` scales the loss so that
float16 gradients do not underflow."""
from .autocast_mode import (autocast, custom_bwd, custom_fwd, get_autocast_dtype, is_autocast_available,  # noqa: F401
                            is_autocast_enabled)
from .grad_scaler import GradScaler  # noqa: F401

__all__ = ["GradScaler", "autocast", "custom_bwd", "custom_fwd", "get_autocast_dtype", "is_autocast_available",
           "is_autocast_enabled"]
