"""graphc.onnx: export a model to ONNX (PyTorch's ``torch.onnx.export``).

``export`` traces the model with graphc's tracer, runs the decomposition passes and writes the
primitives as ONNX operators (one builder per primitive: ``ops.ONNX_OPS``). It needs the ``onnx``
package (``pip install 'graphc[onnx]'``), imported only when ``export`` runs.
"""
from __future__ import annotations

from .errors import OnnxExporterError, UnsupportedOperatorError
from .export import ONNXProgram, export

__all__ = ["ONNXProgram", "OnnxExporterError", "UnsupportedOperatorError", "export"]
