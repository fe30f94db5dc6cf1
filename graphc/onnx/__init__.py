"""graphc.onnx: export a model to ONNX (PyTorch's ``torch.onnx.export``).

``export`` traces the model with graphc's tracer, runs the decomposition passes and writes the
primitives as ONNX operators (one builder per primitive: ``ops.ONNX_OPS``). It needs the ``onnx``
package (``pip install 'graphc[onnx]'``), imported only when ``export`` runs; the exporter's own
modules load on first use too, so ``import graphc`` stays as fast as before.
"""
from __future__ import annotations

from .errors import OnnxExporterError, UnsupportedOperatorError

__all__ = ["ONNXProgram", "OnnxExporterError", "UnsupportedOperatorError", "export"]


def __getattr__(name: str):
    if name in ("export", "ONNXProgram"):
        from . import exporter
        return getattr(exporter, name)
    raise AttributeError(f"module 'graphc.onnx' has no attribute {name!r}")
