"""``x[i]`` along one dimension is the ``select`` primitive (PyTorch's select): one view, eager and
compiled, with PyTorch's errors, gradients and aliasing; and ``x.sum()`` keeps its semantics
after losing its renaming wrapper."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import graphc
from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir.graph import Graph
from graphc.ir.primitive import TensorType
from graphc.ir.printer import parse_graph, print_graph

rng = np.random.default_rng(7)
A = rng.standard_normal((4, 5, 3))

# key -> what numpy gives; every one an int index (possibly with whole slices and ...)
KEYS = {
    "x[1]": (lambda x: x[1]),
    "x[-1]": (lambda x: x[-1]),
    "x[1, 2]": (lambda x: x[1, 2]),
    "x[:, 1]": (lambda x: x[:, 1]),
    "x[:, -2, 1]": (lambda x: x[:, -2, 1]),
    "x[..., 1]": (lambda x: x[..., 1]),
    "x[1, 2, 0]": (lambda x: x[1, 2, 0]),   # down to a 0-d view
    "x[1:3, 2]": (lambda x: x[1:3, 2]),     # a slice, then a select
}


def _traced_prims(compiled) -> list[str]:
    return [m for e in compiled.cache.values() for m in re.findall(r"= (\w+)\(", e.stages["traced"])]


@pytest.mark.parametrize("name", sorted(KEYS))
def test_int_index_is_select_views_eager_and_compiled(name):
    f = KEYS[name]
    want = f(A)
    x = graphc.tensor(A)
    y = f(x)
    np.testing.assert_array_equal(y.numpy(), want)
    assert y.shape == want.shape
    ints = name.count(",") + 1 - name.count(":") - name.count("...")
    # one view primitive per int (and a slice first where a range is cut), made from x
    ops = [p.name for p, _ in y._view_ops]
    assert ops == ["slice"] * (":3" in name) + ["select"] * ints and y._base is x
    y.fill_(7.0)   # writes through to x, as PyTorch's select view does
    ref = A.copy()
    exec(f"ref{name[1:]} = 7.0", {"ref": ref})
    np.testing.assert_array_equal(x.numpy(), ref)

    compiled = graphc.compile(f)
    x = graphc.tensor(A)
    np.testing.assert_array_equal(compiled(x).numpy(), want)
    traced = _traced_prims(compiled)
    assert traced.count("select") == ints and "reshape" not in traced, traced


def test_x_i_is_one_select_view():
    """The eager hot path: ``x[i]`` is one select view (no slice + reshape), recorded with its
    index normalized, so that replaying the record (a regenerated grad_fn) gives the same rows."""
    x = graphc.tensor(A)
    for key, index in ((2, 2), (-1, 3)):
        y = x[key]
        assert y._view_ops == ((P.select, {"dim": 0, "index": index}),) and y._base is x
        np.testing.assert_array_equal(P.select.impl(A, **y._view_ops[0][1]), y.numpy())


@pytest.mark.parametrize("key, msg", [
    (5, "index 5 is out of bounds for dimension 0 with size 4"),
    (-5, "index -5 is out of bounds for dimension 0 with size 4"),
    ((1, 5), "index 5 is out of bounds for dimension 1 with size 5"),
    ((slice(None), -6), "index -6 is out of bounds for dimension 1 with size 5"),
    ((Ellipsis, 3), "index 3 is out of bounds for dimension 1 with size 3"),  # (its place in the key)
    ((None, 1, -6), "index -6 is out of bounds for dimension 2 with size 5"),
    ((1, 2, 0, 0), "too many indices for tensor of dimension 3"),
])
def test_out_of_range_index_raises_pytorchs_error_eager_and_compiled(key, msg):
    def f(x):
        return x[key]

    with pytest.raises(IndexError, match=re.escape(msg)):
        f(graphc.tensor(A))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(IndexError, match=re.escape(msg)):
            graphc.compile(f)(graphc.tensor(A))


def test_select_function_errors_and_values():
    x = graphc.tensor(A)
    np.testing.assert_array_equal(graphc.select(x, 1, -1).numpy(), A[:, -1])
    np.testing.assert_array_equal(x.select(-1, 0).numpy(), A[..., 0])
    with pytest.raises(IndexError, match=re.escape("select(): index 5 out of range for tensor of size [4, 5, 3] "
                                                   "at dimension 1")):
        x.select(1, 5)
    with pytest.raises(IndexError, match=re.escape("select() cannot be applied to a 0-dim tensor.")):
        graphc.tensor(1.0).select(0, 0)
    with pytest.raises(IndexError, match=re.escape("invalid index of a 0-dim tensor")):
        graphc.tensor(1.0)[0]
    # unbind: one select per piece, each a view
    parts = x.unbind(1)
    assert len(parts) == 5 and all(p._base is x and [q.name for q, _ in p._view_ops] == ["select"] for p in parts)
    np.testing.assert_array_equal(parts[3].numpy(), A[:, 3])


def test_primitive_rejects_unnormalized_attributes():
    x = graphc.tensor(A)
    with pytest.raises(IndexError, match="out of range"):
        P.select(x, dim=0, index=-1)   # the frontend wraps negative indices before binding
    with pytest.raises(RuntimeError, match="dim 3 of a 3-d tensor"):
        P.select(x, dim=3, index=0)


def _numeric_grad(f, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        hi, lo = a.copy(), a.copy()
        hi[i] += eps
        lo[i] -= eps
        g[i] = (f(graphc.tensor(hi)).item() - f(graphc.tensor(lo)).item()) / (2 * eps)
    return g


def _loss(x):
    return (x[1] * x[-1, 2]).sum() + (x[:, 1] ** 2).sum() + x[2, 3, 1] * 3


def test_gradient_matches_finite_differences_eager_and_compiled():
    want = _numeric_grad(_loss, A)
    for fn in (_loss, graphc.compile(_loss)):
        x = graphc.tensor(A, requires_grad=True)
        fn(x).backward()
        np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-6, atol=1e-8)
    x = graphc.tensor(A, requires_grad=True)
    assert x[1].grad_fn.name() == "SelectBackward0" and x[1, 2].grad_fn.name() == "SelectBackward0"


def test_gradient_through_a_write_into_a_selected_view():
    """x[1] is a view: an in-place write through it reaches the base's gradient history."""
    w = graphc.tensor(A, requires_grad=True)
    x = w * 1.0
    row = x[1]
    row.mul_(3.0)
    x.sum().backward()
    want = np.ones_like(A)
    want[1] = 3.0
    np.testing.assert_array_equal(w.grad.numpy(), want)


def test_vmap_of_an_int_index():
    out = graphc.func.vmap(lambda r: r[1, -1])(graphc.tensor(A))
    np.testing.assert_array_equal(out.numpy(), A[:, 1, -1])


def test_select_prints_and_parses_back():
    g = Graph("g")
    x = g.add_input(TensorType((4, 5), dt.float32))
    g.set_outputs([g.add_node(P.select, [x], {"dim": 1, "index": 3})])
    text = print_graph(g)
    assert "select(%" in text and "dim=1" in text and "index=3" in text
    assert print_graph(parse_graph(text)) == text


def test_onnx_export_of_an_int_index():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import io
    buf = io.BytesIO()
    x = graphc.tensor(A.astype(np.float32))
    graphc.onnx.export(lambda t: t[:, -1] * 2, (x,), buf)
    proto = onnx.load_from_string(buf.getvalue())
    assert "Gather" in [n.op_type for n in proto.graph.node]
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {proto.graph.input[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, A[:, -1].astype(np.float32) * 2)


# ---- sum: the same semantics without the renaming wrapper -------------------------------------

def test_sum_semantics_and_grad_fn_names():
    x = graphc.tensor(A, requires_grad=True)
    np.testing.assert_allclose(x.sum().item(), A.sum())
    np.testing.assert_allclose(graphc.sum(x, 1, keepdim=True).detach().numpy(), A.sum(1, keepdims=True))
    np.testing.assert_allclose(x.sum((0, -1)).detach().numpy(), A.sum((0, 2)))
    assert graphc.sum(graphc.tensor([1, 2, 3], dtype=graphc.int8)).dtype is graphc.int64
    assert x.sum(dtype=graphc.float32).dtype is graphc.float32
    assert x.sum().grad_fn.name() == "SumBackward0" and x.sum(1).grad_fn.name() == "SumBackward1"
    assert x.sum(dim=[]).grad_fn.name() == "SumBackward1"   # an empty dim list: all of it, PyTorch's name
    with pytest.raises(IndexError, match=re.escape("Dimension out of range (expected to be in range of [-3, 2], "
                                                   "but got 3)")):
        x.sum(3)
    out = graphc.zeros(())
    assert graphc.sum(graphc.tensor(A), out=out) is out and np.isclose(out.item(), A.sum())


def test_against_pytorch():
    torch = pytest.importorskip("torch")
    for name, f in KEYS.items():
        t = torch.tensor(A, requires_grad=True)
        g = graphc.tensor(A, requires_grad=True)
        ft, fg = f(t), f(g)
        np.testing.assert_array_equal(fg.detach().numpy(), ft.detach().numpy(), err_msg=name)
        assert fg.grad_fn.name() == ft.grad_fn.name(), name
        (ft * 2).sum().backward()
        (fg * 2).sum().backward()
        np.testing.assert_array_equal(g.grad.numpy(), t.grad.numpy(), err_msg=name)
    for key in (4, -5, (1, 5), (Ellipsis, 3), (None, 1, -6), (0, Ellipsis, 7)):
        with pytest.raises(IndexError) as want:
            torch.tensor(A)[key]
        with pytest.raises(IndexError, match=re.escape(str(want.value))):
            graphc.tensor(A)[key]
