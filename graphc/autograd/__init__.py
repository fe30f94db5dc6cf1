"""graphc.autograd: the backward engine, grad modes, custom Functions and gradcheck."""
from . import grad_mode
from .engine import backward, grad
from .function import Function, FunctionCtx, once_differentiable
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .graph import Node

from . import graph
from . import functional
from ..compat_extras import detect_anomaly, set_detect_anomaly  # noqa: E402

__all__ = ["Function", "FunctionCtx", "GradcheckError", "Node", "backward", "enable_grad", "functional", "grad",
           "grad_mode", "gradcheck", "gradgradcheck", "inference_mode", "is_grad_enabled", "no_grad",
           "once_differentiable", "set_grad_enabled"]
