"""simplify's rules for stacked per-step values (an RNN unrolled over time): a sum of per-step
sums is one sum of a stack, slices of a concat, a slice_scatter or a pad read what they read directly,
views of a full are a full, and a zero full added is dropped. IR text in, checked structure and
values out (the reference interpreter against numpy)."""
from __future__ import annotations

import textwrap

import numpy as np

import graphc  # noqa: F401  (registers every primitive)
from graphc.ir.interpret import interpret
from graphc.ir.printer import parse_graph, print_graph
from graphc.passes.cse import cse
from graphc.passes.dce import dce
from graphc.passes.manager import PassManager
from graphc.passes.simplify import simplify


def run(text: str, *passes):
    g = parse_graph(textwrap.dedent(text).strip("\n") + "\n")
    pm = PassManager([(p.__name__, p) for p in passes], verify=True)
    return pm.run(g)


def prims(g) -> list[str]:
    return [n.prim.name for n in g.nodes]


SUMS = """
    graph f(%a: f64[4,6], %b: f64[4,6], %c: f64[4,6], %x: f64[3,4,6]) {
      %0: f64[1,6] = sum(%a) dims=[0] keepdim=True
      %1: f64[6] = reshape(%0) shape=[6]
      %2: f64[1,6] = sum(%b) dims=[0] keepdim=True
      %3: f64[6] = reshape(%2) shape=[6]
      %4: f64[1,6] = sum(%c) dims=[0] keepdim=True
      %5: f64[6] = reshape(%4) shape=[6]
      %6: f64[6] = add(%1, %3)
      %7: f64[6] = add(%6, %5)
      %8: f64[1,4,6] = reshape(%c) shape=[1,4,6]
      %9: f64[1,4,6] = reshape(%a) shape=[1,4,6]
      %10: f64[1,4,6] = reshape(%b) shape=[1,4,6]
      %11: f64[3,4,6] = concat(%8, %9, %10) axis=0
      %12: f64[1,1,6] = sum(%11) dims=[0,1] keepdim=True
      %13: f64[6] = reshape(%12) shape=[6]
      %14: f64[3,4,6] = mul(%11, %x)
      return %7, %13, %14
    }
"""


def test_a_sum_of_per_step_sums_is_one_sum_of_the_existing_stack():
    g = run(SUMS, simplify, cse, dce)
    # one stack (the existing one, in its order), one sum that both results share
    assert prims(g).count("concat") == 1 and prims(g).count("sum") == 1 and "add" not in prims(g)
    assert g.outputs[0] is g.outputs[1]
    rng = np.random.default_rng(0)
    a, b, c, x = (rng.standard_normal(s) for s in ((4, 6), (4, 6), (4, 6), (3, 4, 6)))
    r0, r1, r2 = interpret(g, [a, b, c, x])
    np.testing.assert_allclose(r0, a.sum(0) + b.sum(0) + c.sum(0), rtol=1e-12)
    np.testing.assert_allclose(r1, r0, rtol=1e-12)
    np.testing.assert_allclose(r2, np.stack([c, a, b]) * x, rtol=1e-12)


def three_sums(c: str = "f32[4,6]", c_dim: int = 0, last: str = "add(%2, %3)", returns: str = "%4") -> str:
    """sum(a) + sum(b) + sum(c) over dim 0 of f32[4,6] operands, %c's type, its summed dim, the
    last add and what is returned given."""
    return f"""
        graph f(%a: f32[4,6], %b: f32[4,6], %c: {c}) {{
          %0: f32[6] = sum(%a) dims=[0] keepdim=False
          %1: f32[6] = sum(%b) dims=[0] keepdim=False
          %2: f32[6] = sum(%c) dims=[{c_dim}] keepdim=False
          %3: f32[6] = add(%0, %1)
          %4: f32[6] = {last}
          return {returns}
        }}
    """


def test_a_sum_of_sums_without_a_stack_makes_one():
    g = run(three_sums(), simplify, cse, dce)
    assert prims(g).count("sum") == 1 and prims(g).count("concat") == 1 and "add" not in prims(g)
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal((4, 6)).astype(np.float32) for _ in range(3))
    (r,) = interpret(g, [a, b, c])
    np.testing.assert_allclose(r, a.sum(0) + b.sum(0) + c.sum(0), rtol=1e-5)


def test_sums_that_differ_or_are_read_elsewhere_stay():
    differ = three_sums(c="f32[6,4]", c_dim=1, last="add(%3, %2)")
    assert prims(run(differ, simplify, dce)).count("sum") == 3
    read_elsewhere = three_sums(last="add(%3, %2)", returns="%4, %0")
    assert prims(run(read_elsewhere, simplify, dce)).count("sum") == 3
    two = """
        graph f(%a: f32[4,6], %b: f32[4,6]) {
          %0: f32[6] = sum(%a) dims=[0] keepdim=False
          %1: f32[6] = sum(%b) dims=[0] keepdim=False
          %2: f32[6] = add(%0, %1)
          return %2
        }
    """
    assert print_graph(run(two, simplify, dce)) == print_graph(run(two, dce))
    broadcast = """
        graph f(%a: f32[4,6], %b: f32[4,6], %c: f32[4,6]) {
          %0: f32[6] = sum(%a) dims=[0] keepdim=False
          %1: f32[1,6] = reshape(%0) shape=[1,6]
          %2: f32[6] = sum(%b) dims=[0] keepdim=False
          %3: f32[6,1] = reshape(%2) shape=[6,1]
          %4: f32[6] = sum(%c) dims=[0] keepdim=False
          %5: f32[1,6] = reshape(%4) shape=[1,6]
          %6: f32[6,6] = add(%1, %3)
          %7: f32[6,6] = add(%6, %5)
          return %7
        }
    """  # an outer sum by broadcasting: not one sum of a stack
    assert prims(run(broadcast, simplify, dce)).count("sum") == 3


def test_the_last_step_of_stacked_outputs_and_its_scattered_gradient():
    # h = stack(h0, h1, h2) (time first) read batch first at the last step, and the gradient of
    # that read scattered into zeros and read back per step: no stack, no scatter, no zero adds
    g = run("""
        graph f(%h0: f64[2,5], %h1: f64[2,5], %h2: f64[2,5], %g: f64[2,1,5], %y: f64[2,5]) {
          %0: f64[1,2,5] = reshape(%h0) shape=[1,2,5]
          %1: f64[1,2,5] = reshape(%h1) shape=[1,2,5]
          %2: f64[1,2,5] = reshape(%h2) shape=[1,2,5]
          %3: f64[3,2,5] = concat(%0, %1, %2) axis=0
          %4: f64[2,3,5] = permute(%3) dims=[1,0,2]
          %5: f64[2,1,5] = slice(%4) index=[[0,2,1],[2,3,1],[0,5,1]]
          %6: f64[2,3,5] = full() shape=[2,3,5] value=0 dtype=f64
          %7: f64[2,3,5] = slice_scatter(%6, %g) index=[[0,2,1],[2,3,1],[0,5,1]]
          %8: f64[3,2,5] = permute(%7) dims=[1,0,2]
          %9: f64[1,2,5] = slice(%8) index=[[1,2,1],[0,2,1],[0,5,1]]
          %10: f64[2,5] = reshape(%9) shape=[2,5]
          %11: f64[2,5] = add(%10, %y)
          %12: f64[1,2,5] = slice(%8) index=[[2,3,1],[0,2,1],[0,5,1]]
          return %5, %11, %12
        }
    """, simplify, cse, dce)
    assert not {"concat", "slice_scatter", "add", "full"} & set(prims(g))
    rng = np.random.default_rng(2)
    h0, h1, h2, y = (rng.standard_normal((2, 5)) for _ in range(4))
    gr = rng.standard_normal((2, 1, 5))
    r5, r11, r12 = interpret(g, [h0, h1, h2, gr, y])
    np.testing.assert_array_equal(r5, np.stack([h0, h1, h2]).transpose(1, 0, 2)[:, 2:3])
    np.testing.assert_array_equal(r11, y)
    np.testing.assert_array_equal(r12, gr.transpose(1, 0, 2))


def test_slices_of_a_pad_read_its_operand_or_its_fill():
    # the gradient of an RNN output read at its last step padded into zeros (batch first) and
    # read back per step (time first): the steps before the last add nothing, the last one is the
    # gradient; a slice across the operand's edge stays a slice of the pad; a nonzero fill is kept
    g = run("""
        graph f(%g: f64[2,1,5], %y: f64[2,5], %z: f64[2,2]) {
          %0: f64[2,3,5] = pad(%g) pads=[[0,0],[2,0],[0,0]]
          %1: f64[3,2,5] = permute(%0) dims=[1,0,2]
          %2: f64[1,2,5] = slice(%1) index=[[1,2,1],[0,2,1],[0,5,1]]
          %3: f64[2,5] = reshape(%2) shape=[2,5]
          %4: f64[2,5] = add(%3, %y)
          %5: f64[1,2,5] = slice(%1) index=[[2,3,1],[0,2,1],[0,5,1]]
          %6: f64[2,2,5] = slice(%1) index=[[1,3,1],[0,2,1],[0,5,1]]
          %7: f64[2,4] = pad(%z) pads=[[0,0],[1,1]] value=2.5
          %8: f64[2,2] = slice(%7) index=[[0,2,1],[1,3,1]]
          %9: f64[2,1] = slice(%7) index=[[0,2,1],[0,1,1]]
          %10: f64[1,2] = slice(%7) index=[[0,1,1],[2,4,1]]
          return %4, %5, %6, %8, %9, %10
        }
    """, simplify, cse, dce)
    assert "add" not in prims(g) and prims(g).count("pad") == 2  # %0 for %6, %7 for %10
    rng = np.random.default_rng(5)
    gr, y, z = rng.standard_normal((2, 1, 5)), rng.standard_normal((2, 5)), rng.standard_normal((2, 2))
    assert g.outputs[3] is g.inputs[2]  # %8 reads all of %z
    r4, r5, r6, r8, r9, r10 = interpret(g, [gr, y, z])
    padded = np.pad(gr, ((0, 0), (2, 0), (0, 0))).transpose(1, 0, 2)
    np.testing.assert_array_equal(r4, y)
    np.testing.assert_array_equal(r5, gr.transpose(1, 0, 2))
    np.testing.assert_array_equal(r6, padded[1:3])
    zp = np.pad(z, ((0, 0), (1, 1)), constant_values=2.5)
    np.testing.assert_array_equal(r8, z)
    np.testing.assert_array_equal(r9, zp[:, 0:1])
    np.testing.assert_array_equal(r10, zp[0:1, 2:4])


def test_a_select_of_stacked_outputs_reads_the_one_it_selects():
    # out[:, -1] of outputs stacked time first and read batch first: h2 itself, no stack; a select
    # within an operand of several steps reads that operand; a select across the stacked axis (a
    # batch row of every step) still needs the stack
    g = run("""
        graph f(%p: f64[2,2,5], %h2: f64[2,5]) {
          %0: f64[1,2,5] = reshape(%h2) shape=[1,2,5]
          %1: f64[3,2,5] = concat(%p, %0) axis=0
          %2: f64[2,3,5] = permute(%1) dims=[1,0,2]
          %3: f64[2,5] = select(%2) dim=1 index=2
          %4: f64[5,3,2] = permute(%1) dims=[2,0,1]
          %5: f64[5,2] = select(%4) dim=1 index=1
          %6: f64[3,5] = select(%2) dim=0 index=1
          return %3, %5, %6
        }
    """, simplify, cse, dce)
    assert g.outputs[0] is g.inputs[1]
    picked = g.outputs[1].producer  # a permute of a select of %p
    assert picked.prim.name == "permute" and picked.inputs[0].producer.inputs[0] is g.inputs[0]
    assert g.outputs[2].producer.prim.name == "select" and prims(g).count("concat") == 1  # for %6 only
    rng = np.random.default_rng(7)
    p, h2 = rng.standard_normal((2, 2, 5)), rng.standard_normal((2, 5))
    r3, r5, r6 = interpret(g, [p, h2])
    stack = np.concatenate([p, h2[None]])
    np.testing.assert_array_equal(r3, stack.transpose(1, 0, 2)[:, 2])
    np.testing.assert_array_equal(r5, stack.transpose(2, 0, 1)[:, 1])
    np.testing.assert_array_equal(r6, stack.transpose(1, 0, 2)[1])


def test_slices_across_operands_or_scatter_edges_stay():
    text = """
        graph f(%a: f64[2,5], %b: f64[2,5], %g: f64[2,2]) {
          %0: f64[4,5] = concat(%a, %b) axis=0
          %1: f64[2,5] = slice(%0) index=[[1,3,1],[0,5,1]]
          %2: f64[4,5] = slice_scatter(%0, %g) index=[[0,2,1],[1,3,1]]
          %3: f64[2,3] = slice(%2) index=[[1,3,1],[0,3,1]]
          return %1, %3
        }
    """
    g = run(text, simplify, dce)
    assert prims(g).count("concat") == 1 and prims(g).count("slice_scatter") == 1
    rng = np.random.default_rng(3)
    a, b, gr = rng.standard_normal((2, 5)), rng.standard_normal((2, 5)), rng.standard_normal((2, 2))
    r1, r3 = interpret(g, [a, b, gr])
    cat = np.concatenate([a, b])
    scat = cat.copy()
    scat[0:2, 1:3] = gr
    np.testing.assert_array_equal(r1, cat[1:3])
    np.testing.assert_array_equal(r3, scat[1:3, 0:3])


def test_slices_of_a_concat_or_scatter_that_casts_stay():
    text = """
        graph f(%a: f32[2,5], %b: f64[2,5], %g: f32[1,5], %c: f64[2,5]) {
          %0: f64[4,5] = concat(%a, %b) axis=0
          %1: f64[2,5] = slice(%0) index=[[0,2,1],[0,5,1]]
          %2: f64[2,5] = slice_scatter(%c, %g) index=[[1,2,1],[0,5,1]]
          %3: f64[1,5] = slice(%2) index=[[1,2,1],[0,5,1]]
          return %1, %3
        }
    """
    g = run(text, simplify, dce)
    assert [v.dtype.name for v in g.outputs] == ["float64", "float64"]
    assert "concat" in prims(g) and "slice_scatter" in prims(g)


def test_a_long_chain_of_sums_is_rewritten_once():
    """The add tree's inner adds are left dead by the rewrite: they are not roots of trees to
    rewrite again (that repeated the rewrite once per sweep, a stack per inner add: quadratic)."""
    from graphc.ir.graph import Graph
    from graphc.ir.primitive import TensorType
    from graphc.ir import dtypes as dt, prims as P
    g = Graph("chain")
    xs = [g.add_input(TensorType((4, 6), dt.float64), "input", f"x{i}") for i in range(30)]
    acc = None
    for x in xs:
        s = g.add_node(P.sum, [x], {"dims": (0,), "keepdim": False})
        acc = s if acc is None else g.add_node(P.add, [acc, s], {})
    g.set_outputs([acc])
    simplify(g)
    assert prims(g).count("concat") == 1
    arrays = [np.random.default_rng(i).standard_normal((4, 6)) for i in range(30)]
    np.testing.assert_allclose(interpret(g, arrays)[0], sum(a.sum(0) for a in arrays), rtol=1e-12)


PADS = """
    graph f(%a: f64[1,4,6], %b: f64[1,4,6], %c: f64[2,4,6], %d: f64[5,4,6], %e: f64[4,6]) {
      %0: f64[5,4,6] = pad(%a) pads=[[3,1],[0,0],[0,0]]
      %1: f64[5,4,6] = pad(%b) pads=[[0,4],[0,0],[0,0]]
      %2: f64[5,4,6] = pad(%c) pads=[[1,2],[0,0],[0,0]]
      %3: f64[5,4,6] = add(%0, %1)
      %4: f64[5,4,6] = add(%3, %d)
      %5: f64[5,4,6] = add(%4, %2)
      %6: f64[5,4,6] = add(%5, %e)
      return %6
    }
"""


def test_pads_into_disjoint_ranges_summed_are_one_concat():
    # an RNN's input-projection gradient: each step's gradient padded to the whole sequence and
    # summed (quadratic in the steps) is the steps concatenated, zeros in the gaps
    g = run(PADS, simplify, cse, dce)
    assert "pad" not in prims(g) and prims(g).count("concat") == 1
    concat = next(n for n in g.nodes if n.prim.name == "concat")
    assert [tuple(v.shape) for v in concat.inputs] == [(1, 4, 6), (2, 4, 6), (1, 4, 6), (1, 4, 6)]
    check_pads(g, c_row=1)


def check_pads(g, c_row: int) -> None:
    """``g`` computes PADS's sum with %c's rows starting at ``c_row``."""
    rng = np.random.default_rng(c_row)
    a, b, c, d, e = (rng.standard_normal(s) for s in ((1, 4, 6), (1, 4, 6), (2, 4, 6), (5, 4, 6), (4, 6)))
    want = d + e
    want[3:4] += a[0]
    want[0:1] += b[0]
    want[c_row:c_row + 2] += c
    np.testing.assert_allclose(interpret(g, [a, b, c, d, e])[0], want, rtol=1e-12)


def test_overlapping_pads_are_still_added():
    text = PADS.replace("pads=[[1,2],[0,0],[0,0]]", "pads=[[2,1],[0,0],[0,0]]")  # %c now covers row 3 too
    check_pads(run(text, simplify, cse, dce), c_row=2)


PRODUCTS = """
    graph f(%a: f64[3,5], %b: f64[3,4], %c: f64[2,5], %d: f64[2,4], %e: f64[5,4], %w: f64[4,5]) {
      %0: f64[5,3] = permute(%a) dims=[1,0]
      %1: f64[5,4] = matmul(%0, %b)
      %2: f64[5,2] = permute(%c) dims=[1,0]
      %3: f64[5,4] = matmul(%2, %d)
      %4: f64[5,4] = add(%1, %e)
      %5: f64[5,4] = add(%4, %3)
      %6: f64[3,5] = matmul(%b, %w)
      return %5, %6
    }
"""


def test_products_summed_are_one_product_over_the_joined_inner_dimension():
    # a recurrent weight's gradient: one product per step, accumulated, is one product of the
    # steps' rows stacked (the transposed operands stacked as rows, then transposed)
    g = run(PRODUCTS, simplify, cse, dce)
    assert prims(g).count("matmul") == 2 and prims(g).count("add") == 1
    rng = np.random.default_rng(0)
    a, b, c, d, e, w = (rng.standard_normal(s) for s in ((3, 5), (3, 4), (2, 5), (2, 4), (5, 4), (4, 5)))
    r0, r1 = interpret(g, [a, b, c, d, e, w])
    np.testing.assert_allclose(r0, a.T @ b + e + c.T @ d, rtol=1e-12)
    np.testing.assert_allclose(r1, b @ w, rtol=1e-12)


def test_a_product_read_elsewhere_is_not_joined():
    text = PRODUCTS.replace("return %5, %6", "%7: f64[5,4] = neg(%1)\n      return %5, %6, %7")
    g = run(text, simplify, cse, dce)
    assert prims(g).count("matmul") == 3 and "concat" not in prims(g)  # no product computed twice
    rng = np.random.default_rng(1)
    a, b, c, d, e, w = (rng.standard_normal(s) for s in ((3, 5), (3, 4), (2, 5), (2, 4), (5, 4), (4, 5)))
    r0, _, r2 = interpret(g, [a, b, c, d, e, w])
    np.testing.assert_allclose(r0, a.T @ b + e + c.T @ d, rtol=1e-12)
    np.testing.assert_allclose(r2, -(a.T @ b), rtol=1e-12)


def test_identity_permutes_are_joined_as_they_are():
    # only a transpose may be joined through (its operands stacked the other way): a permute that
    # keeps the axes (made by an earlier rule in the same sweep) is joined as it is
    from graphc.passes.simplify import _joined
    g = parse_graph(textwrap.dedent("""
        graph f(%x: f64[5,3], %y: f64[5,2]) {
          %0: f64[5,3] = permute(%x) dims=[0,1]
          %1: f64[5,2] = permute(%y) dims=[0,1]
          return %0, %1
        }
    """).strip("\n") + "\n")
    joined = _joined(g, [n.output for n in g.nodes], 1, None)
    assert tuple(joined.shape) == (5, 5)


def test_scatters_into_zeros_are_pads_and_pads_summed_one_concat():
    # an LSTM step's gate gradients scattered in turn into zeros (the cell gate's column range
    # left out): one concat with zeros in the gap; scatters over a nonzero base, over a pad's
    # operand or with a cast stay
    g = run("""
        graph f(%a: f64[2,2], %b: f64[2,2], %c: f64[2,2], %y: f64[2,8], %p: f64[2,4], %h: f32[2,2]) {
          %0: f64[2,8] = full() shape=[2,8] value=0 dtype=f64
          %1: f64[2,8] = slice_scatter(%0, %a) index=[[0,2,1],[6,8,1]]
          %2: f64[2,8] = slice_scatter(%1, %b) index=[[0,2,1],[2,4,1]]
          %3: f64[2,8] = slice_scatter(%2, %c) index=[[0,2,1],[0,2,1]]
          %4: f64[2,8] = slice_scatter(%y, %a) index=[[0,2,1],[0,2,1]]
          %5: f64[2,8] = pad(%p) pads=[[0,0],[2,2]]
          %6: f64[2,8] = slice_scatter(%5, %b) index=[[0,2,1],[4,6,1]]
          %7: f64[2,8] = slice_scatter(%0, %h) index=[[0,2,1],[0,2,1]]
          return %3, %4, %6, %7
        }
    """, simplify, cse, dce)
    assert prims(g).count("slice_scatter") == 3 and prims(g).count("concat") == 1
    assert g.outputs[0].producer.prim.name == "concat"
    rng = np.random.default_rng(6)
    a, b, c = (rng.standard_normal((2, 2)) for _ in range(3))
    y, p, h = rng.standard_normal((2, 8)), rng.standard_normal((2, 4)), rng.standard_normal((2, 2)).astype(np.float32)
    r3, r4, r6, r7 = interpret(g, [a, b, c, y, p, h])
    np.testing.assert_array_equal(r3, np.concatenate([c, b, np.zeros((2, 2)), a], 1))
    want4 = y.copy()
    want4[:, 0:2] = a
    np.testing.assert_array_equal(r4, want4)
    want6 = np.pad(p, ((0, 0), (2, 2)))
    want6[:, 4:6] = b
    np.testing.assert_array_equal(r6, want6)
    assert r7.dtype == np.float64
    np.testing.assert_array_equal(r7[:, :2], h.astype(np.float64))


def test_joined_products_share_the_stack_of_their_steps_gradients():
    # a recurrent weight's gradient sum_t h_t^T @ d_t, accumulated from the last step back, and
    # the input projection's gradient, each d_t padded into its step of the sequence: the
    # products are joined in step order, so both read one stack of the d_t
    g = run("""
        graph f(%h0: f64[2,3], %h1: f64[2,3], %h2: f64[2,3], %d0: f64[2,4], %d1: f64[2,4], %d2: f64[2,4]) {
          %0: f64[3,2] = permute(%h2) dims=[1,0]
          %1: f64[3,4] = matmul(%0, %d2)
          %2: f64[3,2] = permute(%h1) dims=[1,0]
          %3: f64[3,4] = matmul(%2, %d1)
          %4: f64[3,2] = permute(%h0) dims=[1,0]
          %5: f64[3,4] = matmul(%4, %d0)
          %6: f64[3,4] = add(%1, %3)
          %7: f64[3,4] = add(%6, %5)
          %8: f64[1,2,4] = reshape(%d0) shape=[1,2,4]
          %9: f64[3,2,4] = pad(%8) pads=[[0,2],[0,0],[0,0]]
          %10: f64[1,2,4] = reshape(%d2) shape=[1,2,4]
          %11: f64[3,2,4] = pad(%10) pads=[[2,0],[0,0],[0,0]]
          %12: f64[1,2,4] = reshape(%d1) shape=[1,2,4]
          %13: f64[3,2,4] = pad(%12) pads=[[1,1],[0,0],[0,0]]
          %14: f64[3,2,4] = add(%9, %11)
          %15: f64[3,2,4] = add(%14, %13)
          return %7, %15
        }
    """, simplify, cse, dce)
    assert prims(g).count("concat") == 2 and prims(g).count("matmul") == 1  # the d_t once, the h_t once
    assert g.outputs[1].producer.prim.name == "concat"
    rng = np.random.default_rng(8)
    h = [rng.standard_normal((2, 3)) for _ in range(3)]
    d = [rng.standard_normal((2, 4)) for _ in range(3)]
    r7, r15 = interpret(g, h + d)
    np.testing.assert_allclose(r7, sum(ht.T @ dt for ht, dt in zip(h, d)), rtol=1e-12)
    np.testing.assert_array_equal(r15, np.stack(d))
