"""The errors ONNX export raises (PyTorch's ``torch.onnx.errors`` names)."""
from __future__ import annotations


class OnnxExporterError(RuntimeError):
    """The model can't be exported to ONNX as asked; the message says why and what to do."""


class UnsupportedOperatorError(OnnxExporterError):
    """The model uses an operation that has no ONNX form."""
