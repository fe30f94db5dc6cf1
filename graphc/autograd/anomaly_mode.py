"""PyTorch's module path ``torch.autograd.anomaly_mode`` (the functions live in compat_extras)."""
from ..compat_extras import detect_anomaly, set_detect_anomaly

__all__ = ["detect_anomaly", "set_detect_anomaly"]
