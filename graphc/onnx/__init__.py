"""graphc.onnx: export a model to ONNX (PyTorch's ``torch.onnx.export``).

``export`` traces the model with graphc's tracer, runs the decomposition passes and writes the
primitives as ONNX operators (one builder per primitive: ``ops.ONNX_OPS``). It needs the ``onnx``
package (``pip install 'graphc[onnx]'``), imported only when ``export`` runs; the exporter's own
modules load on first use too, so ``import graphc`` stays as fast as before.
"""
from __future__ import annotations

import enum

from .errors import OnnxExporterError, UnsupportedOperatorError

__all__ = ["ONNXProgram", "OnnxExporterError", "OperatorExportTypes", "TrainingMode", "UnsupportedOperatorError",
           "export"]


class TrainingMode(enum.IntEnum):
    """PyTorch's ``torch.onnx.TrainingMode``. graphc exports the model in its current mode; a
    ``training=`` that contradicts it is an error (call ``model.eval()`` or ``model.train()``)."""
    EVAL = 0
    PRESERVE = 1
    TRAINING = 2


class OperatorExportTypes(enum.IntEnum):
    """PyTorch's ``torch.onnx.OperatorExportTypes``; graphc writes standard ONNX operators only."""
    ONNX = 0
    ONNX_ATEN = 1
    ONNX_ATEN_FALLBACK = 2
    ONNX_FALLTHROUGH = 3


def __getattr__(name: str):
    if name in ("export", "ONNXProgram"):
        from . import exporter
        return getattr(exporter, name)
    raise AttributeError(f"module 'graphc.onnx' has no attribute {name!r}")
