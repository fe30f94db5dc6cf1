"""graphc.compiler: tracing, compile(), graph breaks, and the dump tool."""
from .api import CompiledFunction, GraphBreakError, OptimizedModule, compile
from .tracing import GraphBreak, SymbolicTensor

__all__ = ["CompiledFunction", "GraphBreak", "GraphBreakError", "OptimizedModule", "SymbolicTensor", "compile"]
