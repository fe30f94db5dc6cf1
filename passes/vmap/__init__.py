"""vmap: the batching rule table (one entry per primitive) and the interpreter that applies it."""
from .batching import batch_graph, interpret
from .rules import BATCH, UNSUPPORTED, BatchContext

__all__ = ["BATCH", "UNSUPPORTED", "BatchContext", "batch_graph", "interpret"]
