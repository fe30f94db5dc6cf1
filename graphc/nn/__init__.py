"""graphc.nn: modules, layers, losses, functional API and initializers, as torch.nn."""
from . import functional, init, parallel, utils
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all  # noqa: F401
from .parameter import Buffer, Parameter, UninitializedBuffer, UninitializedParameter
from .parallel import DataParallel
