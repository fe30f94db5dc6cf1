"""graphc.autograd: the backward engine, grad modes, custom Functions and gradcheck."""
from . import grad_mode
from .engine import backward, grad
from .function import Function, FunctionCtx, once_differentiable
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .graph import Node

from . import graph
from . import functional
from . import anomaly_mode, forward_ad  # noqa: E402
from .anomaly_mode import detect_anomaly, set_detect_anomaly  # noqa: E402


def Variable(data, requires_grad: bool = False, volatile: bool = False):  # noqa: N802  (PyTorch's name)
    """The pre-0.4 wrapper: today a Variable is the tensor itself (``requires_grad`` applied)."""
    return data.requires_grad_(requires_grad) if requires_grad else data


class set_multithreading_enabled:  # noqa: N801
    """Accepted for compatibility: graphc's backward runs on the calling thread either way."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *args) -> None:
        pass

__all__ = ["Function", "FunctionCtx", "GradcheckError", "Node", "backward", "enable_grad", "functional", "grad",
           "grad_mode", "gradcheck", "gradgradcheck", "inference_mode", "is_grad_enabled", "no_grad",
           "once_differentiable", "set_grad_enabled"]
