"""graphc.compiler: tracing, compile(), graph breaks, and the dump tool."""
from .api import CompiledFunction, GraphBreakError, OptimizedModule, compile
from .explain import ExplainOutput, explain
from .tracing import GraphBreak, SymbolicTensor

__all__ = ["CompiledFunction", "ExplainOutput", "explain", "GraphBreak", "GraphBreakError", "OptimizedModule", "SymbolicTensor", "compile"]
