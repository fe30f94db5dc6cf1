"""How many full-size passes a compiled batch norm's training step makes, and that the rewrites
that cut them keep its values: the weight scales the per-channel rsqrt (not the normalized input),
the mean's negated cotangent is summed before it is negated, a square's cotangent is one product
(2g) x, and an expand scaled by a number is scaled before it is expanded (simplify)."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

import graphc
from graphc.ir.interpret import interpret
from graphc.ir.printer import parse_graph
from graphc.passes.manager import PassManager
from graphc.passes.simplify import simplify

SHAPE = (6, 4, 5, 5)  # N, C, H, W: its full size appears in the IR as [6,4,5,5]


def _bn_step(dtype=graphc.float64):
    graphc.manual_seed(0)
    bn = graphc.nn.BatchNorm2d(4).to(dtype)
    with graphc.no_grad():
        bn.weight.copy_(graphc.linspace(0.5, 2.0, 4, dtype=dtype))
        bn.bias.copy_(graphc.linspace(-1.0, 1.0, 4, dtype=dtype))
    w = graphc.from_numpy(np.random.default_rng(1).standard_normal(SHAPE)).to(dtype)
    # a parameter in front, so the gradient flows through the normalization to its input
    p = graphc.nn.Parameter(graphc.linspace(0.5, 1.5, 4, dtype=dtype).reshape(1, 4, 1, 1))

    def step(x):
        bn.weight.grad = bn.bias.grad = p.grad = None
        loss = (graphc.relu(bn(x * p)) * w).sum()
        loss.backward()
        return loss.detach(), bn.weight.grad, bn.bias.grad
    return bn, p, step


def _x(requires_grad=False):
    x = np.random.default_rng(2).standard_normal(SHAPE) * 3 + 5  # a mean far from 0
    return graphc.from_numpy(x).requires_grad_(requires_grad)


def test_compiled_step_matches_eager_and_finite_differences():
    bn_e, p_e, eager = _bn_step()
    bn_c, p_c, step = _bn_step()
    compiled = graphc.compile(step, fullgraph=True)
    x = _x()
    for _ in range(2):  # the running statistics are updated in place, as eager mode does
        want, got = eager(x), compiled(x)
        for a, b in zip(want, got):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(p_c.grad.numpy(), p_e.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn_c.running_mean.numpy(), bn_e.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn_c.running_var.numpy(), bn_e.running_var.numpy(), rtol=1e-12)
    # the gradient of x, weight and bias against finite differences (training mode, float64)
    bn, _, _ = _bn_step()
    f = graphc.nn.functional
    wt = bn.weight.detach().clone().requires_grad_()
    bs = bn.bias.detach().clone().requires_grad_()
    assert graphc.autograd.gradcheck(
        lambda x, w, b: graphc.relu(f.batch_norm(x, None, None, w, b, training=True)) * 1.5,
        (_x(True)[:3, :, :3, :3].contiguous(), wt, bs))


def test_matches_torch_float32():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal(SHAPE).astype(np.float32) * 3 + 5
    g = np.random.default_rng(4).standard_normal(SHAPE).astype(np.float32)
    out = {}
    for lib in (graphc, torch):
        bn = lib.nn.BatchNorm2d(4)
        with lib.no_grad():
            bn.weight.copy_(lib.linspace(0.5, 2.0, 4))
        xt = lib.from_numpy(x.copy()).requires_grad_()
        y = bn(xt)
        y.backward(lib.from_numpy(g.copy()))
        out[lib.__name__] = [t.detach().numpy() for t in (y, xt.grad, bn.weight.grad, bn.bias.grad)]
    for a, b in zip(out["graphc"], out["torch"]):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


def _full_size_passes(ir_text: str) -> int:
    """Nodes that compute a full-size value (views excluded) or reduce one, in a lowered graph."""
    full = "[" + ",".join(map(str, SHAPE)) + "]"
    names = {}  # value name -> its type, per fused body (names restart in each body)
    count = 0
    for line in ir_text.splitlines():
        line = line.split("#")[0].strip()
        if " = " not in line or not line.startswith("%"):
            continue
        lhs, rhs = line.split(" = ", 1)
        name, typ = lhs.split(": ", 1)
        op = rhs.split("(", 1)[0]
        args = rhs.split("(", 1)[1].split(")", 1)[0].replace(" ", "").split(",") if "(" in rhs else []
        names[name] = typ
        if op in ("reshape", "expand", "permute", "fused", "slice"):
            continue
        if typ.endswith(full) or (op == "sum" and any(names.get(a, "").endswith(full) for a in args)):
            count += 1
    return count


def test_full_size_passes_of_a_training_step(tmp_path):
    """A scale, batch norm, ReLU and a weighted sum, forward and backward, one step: 23 nodes
    compute or reduce a full-size value (29 before the rewrites above: the normalized input
    times the weight and its gradient's product and sum, the mean's negated cotangent, the
    square's second product and the add of it)."""
    _, _, step = _bn_step(graphc.float32)
    compiled = graphc.compile(step, fullgraph=True, dump_dir=str(tmp_path))
    compiled(_x().float())
    compiled(_x().float())
    lowered = sorted(tmp_path.glob("*/*_lowered_after_fusion.ir"))
    assert lowered, list(tmp_path.iterdir())
    assert _full_size_passes(lowered[-1].read_text()) <= 23


def test_simplify_scales_an_expand_before_expanding():
    g = parse_graph(textwrap.dedent("""
        graph f(%s: f64[1,4,1,1], %d: f64[6,4,5,5]) {
          %0: f64[6,4,5,5] = expand(%s) shape=[6,4,5,5]
          %1: f64[6,4,5,5] = mul(%0, 2)
          %2: f64[6,4,5,5] = mul(%1, %d)
          return %2
        }
    """).strip("\n") + "\n")
    s = np.random.default_rng(0).standard_normal((1, 4, 1, 1))
    d = np.random.default_rng(1).standard_normal((6, 4, 5, 5))
    want = interpret(g, [s, d])[0]
    out = PassManager([("simplify", simplify)], verify=True).run(g)
    scaled = [n for n in out.nodes if n.prim.name == "mul" and not isinstance(n.inputs[1], type(n.output))]
    assert [tuple(n.output.shape) for n in scaled] == [(1, 4, 1, 1)]  # the number meets the small side
    np.testing.assert_array_equal(interpret(out, [s, d])[0], want)
