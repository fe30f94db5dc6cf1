"""graphc.ir: dtypes, shapes, the primitive op set and the IR data structures."""
from . import dtypes, prims, shapes
from .dtypes import DType
from .primitive import PRIMITIVES, Handler, Primitive, TensorType, bind

__all__ = ["DType", "Handler", "PRIMITIVES", "Primitive", "TensorType", "bind", "dtypes", "prims", "shapes"]
