"""Result dtypes of traced elementwise ops (fast paths in ir.prims/ir.dtypes: operands that are
all tensors of one dtype skip ``result_type``; tensor types are remembered after the first probe)
agree with eager mode and with PyTorch's promotion, for mixed operands, 0-d tensors and scalars."""
import numpy as np
import pytest

import graphc as torch
from graphc.ir import dtypes as dt

# (a's dtype and shape, b: a dtype and shape, or a Python scalar), PyTorch's result for a + b
CASES = [
    ((torch.float32, (3,)), (torch.float32, (3,)), torch.float32),   # one dtype: the fast path
    ((torch.int32, (3,)), (torch.int32, ()), torch.int32),           # one dtype, a 0-d operand
    ((torch.int32, (3,)), (torch.int64, ()), torch.int32),           # 0-d of the same category: ignored
    ((torch.int32, (3,)), (torch.float64, ()), torch.float64),       # 0-d of a higher category: wins
    ((torch.float16, (3,)), (torch.float64, ()), torch.float16),
    ((torch.float32, (3,)), (torch.float64, (3,)), torch.float64),
    ((torch.int64, (3,)), 2.5, torch.float32),                       # a float scalar: the default float
    ((torch.float16, (3,)), 2.5, torch.float16),
    ((torch.bool, (3,)), 3, torch.int64),
    ((torch.int32, ()), (torch.int32, ()), torch.int32),
]


def _make(spec, seed):
    if not isinstance(spec, tuple):
        return spec
    d, shape = spec
    arr = np.random.default_rng(seed).integers(0, 4, size=shape)
    return torch.tensor(arr.astype(d.np if d is not torch.bool else np.bool_), dtype=d)


@pytest.mark.parametrize("a_spec,b_spec,expected", CASES)
def test_traced_result_dtype_matches_eager(a_spec, b_spec, expected):
    a, b = _make(a_spec, 0), _make(b_spec, 1)

    def f(a, b):
        return a + b, a * b, b * a, (a + b).sin() if expected.is_floating_point else a * b + b
    eager = f(a, b)
    if isinstance(b, (int, float)):  # a Python number is baked into the graph
        compiled = torch.compile(lambda a: f(a, b), fullgraph=True)(a)
    else:
        compiled = torch.compile(f, fullgraph=True)(a, b)
    assert eager[0].dtype is expected
    for e, c in zip(eager, compiled):
        assert c.dtype is e.dtype
        np.testing.assert_allclose(c.numpy().astype(np.float64), e.numpy().astype(np.float64), rtol=1e-3)


def test_result_type_remembers_only_tensor_classes():
    x = torch.ones(2, dtype=torch.float64)
    assert dt.result_type(x, np.float32(1.0)) is torch.float64  # a numpy scalar ranks as a number
    assert type(x) in dt.TENSOR_TYPES and np.float32 not in dt.TENSOR_TYPES

    class WithDtype:  # has a dtype only on the instance: probed each time, never remembered
        def __init__(self, d, ndim):
            self.dtype, self.ndim = d, ndim
    assert dt.result_type(WithDtype(torch.int32, 1), WithDtype(torch.int32, 1)) is torch.int32
    assert WithDtype not in dt.TENSOR_TYPES
    with pytest.raises(TypeError, match="expected a tensor or a Python number"):
        dt.result_type(torch.ones(1), "x")


def test_against_pytorch():
    real = pytest.importorskip("torch")
    for a_spec, b_spec, expected in CASES:
        def to_real(spec):
            if not isinstance(spec, tuple):
                return spec
            return real.zeros(spec[1], dtype=getattr(real, str(spec[0]).split(".")[-1]))
        got = real.result_type(to_real(a_spec), to_real(b_spec))
        assert str(got).split(".")[-1] == str(expected).split(".")[-1], (a_spec, b_spec)


def test_broadcast_shapes_agrees_with_numpy():
    # the fast path (equal shapes, or one shape with 0-d operands) and the general rule alike
    from graphc.ir.shapes import ShapeError, broadcast_shapes
    cases = [((2, 3), (2, 3)), ((), (4, 5)), ((4, 5), (), ()), ((), ()), ((1, 3), (2, 1)), ((3,), (2, 3)),
             ((2, 1, 3), (2, 1, 3), ()), ((0, 3), (1, 3)), ((0,), ()), ((5, 1), (5, 1), (1, 7))]
    for shapes in cases:
        assert broadcast_shapes(*shapes) == np.broadcast_shapes(*shapes), shapes
    for bad in [((2, 3), (3, 2)), ((2, 3), (), (2, 4)), ((2, 3), (2, 3), (2,))]:
        with pytest.raises(ShapeError, match="must match the size"):
            broadcast_shapes(*bad)


def test_two_operand_type_rule_shortcut_agrees_with_promotion():
    """The two-operand shortcut of elementwise type rules (``ir.prims._plain_pair``: one shape and
    dtype, a Python number of no higher category, a 0-d tensor beside one with dimensions) gives
    what broadcasting and ``result_type`` give, for every mode (add promotes, div computes in a
    float, gt compares) and both operand orders."""
    from graphc.ir import prims as P
    from graphc.ir.graph import Graph
    from graphc.ir.primitive import TensorType
    from graphc.ir.shapes import broadcast_shapes

    g = Graph("t")
    tensors = [g.add_input(TensorType(shape, d)) for shape in ((2, 3), (), (1, 3))
               for d in (dt.float32, dt.float64, dt.float16, dt.int64, dt.int32, dt.bool_, dt.complex64)]
    numbers = [True, 2, 2.5, 1j]
    for prim in (P.add, P.div, P.gt):
        for a in tensors:
            for b in tensors + numbers:
                for x, y in ((a, b), (b, a)):
                    shape = broadcast_shapes(*(tuple(v.shape) if hasattr(v, "shape") else () for v in (x, y)))
                    d = dt.result_type(x, y)
                    want = dt.bool_ if prim is P.gt else dt.get_default_dtype() if prim is P.div and \
                        not d.is_inexact else d
                    try:
                        got = prim.infer(x, y)
                    except (RuntimeError, NotImplementedError):  # complex comparisons: refused either way
                        assert prim is P.gt and dt.complex64 in (getattr(x, "dtype", None), getattr(y, "dtype", None)) \
                            or 1j in (x, y)
                        continue
                    assert got == TensorType(shape, want), (prim.name, x, y)
