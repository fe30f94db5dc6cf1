"""0-d float64 arithmetic of the numpy backend as Python float arithmetic.

A compiled training step computes per parameter a few 0-d float64 values (Adam's bias
corrections: ``lr / (1 - beta1 ** step)``, ...). A numpy ufunc call on 0-d arrays costs about
1.2 us (2.5 us with a Python number operand, whose type numpy resolves on every call), a Python
float operation about 0.05 us. Python floats are IEEE-754 doubles with the same round-to-nearest
``+ - * /`` as numpy's float64 loops, so for those ops (and unary minus, and the exact cast of a
float16/float32 value to float64) the value is the same bit for bit.

Not here: ``**`` (numpy's power loop computes exponents 2, 0.5 and -1 as square, sqrt and
reciprocal, and may use SVML on AVX-512 machines; libm's ``pow``, which Python's ``**`` calls,
differs from both in the last bit) and every other function. A division whose divisor is zero
goes to numpy (Python raises where numpy gives inf or nan). Python float arithmetic does not
consult numpy's error state: an overflow to inf or an invalid operation gives numpy's value
without numpy's RuntimeWarning (or FloatingPointError under ``np.errstate(all="raise")``).
"""
from __future__ import annotations

from graphc.ir import dtypes as D
from graphc.ir import prims as P
from graphc.ir.graph import Node, Value

_BINARY = {P.add: "+", P.sub: "-", P.mul: "*"}
# casts to float64 that are exact, so float(x) gives numpy's astype(float64)
_EXACT_TO_F64 = (D.float16, D.float32, D.float64)
_EXACT_INT = 1 << 53  # an int literal below this in magnitude is a float64 exactly


def _operand_ok(x) -> bool:
    if isinstance(x, Value):
        return x.dtype is D.float64 and x.shape == ()
    return type(x) is float or (type(x) is int and abs(x) < _EXACT_INT)


def is_python_float(n: Node) -> bool:
    """Whether ``n`` computes a 0-d float64 value that Python float arithmetic gives exactly."""
    if n.output.dtype is not D.float64 or n.output.shape != ():
        return False
    if n.prim in _BINARY or n.prim is P.div or n.prim is P.neg:
        return all(_operand_ok(x) for x in n.inputs)
    if n.prim is P.cast:
        x = n.inputs[0]
        return isinstance(x, Value) and x.shape == () and x.dtype in _EXACT_TO_F64
    return False


def expression(n: Node, operands: list[str]) -> str:
    """The Python expression of ``n`` (see ``is_python_float``) on float operand expressions."""
    if n.prim in _BINARY:
        return f"{operands[0]} {_BINARY[n.prim]} {operands[1]}"
    if n.prim is P.div:
        return f"_fdiv({operands[0]}, {operands[1]})"  # numpy_runtime.fdiv
    if n.prim is P.neg:
        return f"-{operands[0]}"
    return operands[0]  # a cast: the operand is float() already
