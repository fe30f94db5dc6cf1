"""``graphc.utils.tensorboard``: PyTorch's ``SummaryWriter``, writing TensorBoard event files with
the ``tensorboard`` package's own writer (``pip install tensorboard``, or ``graphc[tensorboard]``)."""
try:
    import tensorboard  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("graphc.utils.tensorboard needs the tensorboard package: pip install tensorboard "
                      "(or pip install 'graphc[tensorboard]')") from None

from .writer import SummaryWriter

__all__ = ["SummaryWriter"]
