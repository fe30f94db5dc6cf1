"""The IR passes, written as IR text in -> IR text out; the printer/parser and the verifier.

Each pass test parses a graph, runs the pass through a ``PassManager`` (which verifies the result,
renumbers the values and round-trips the text) and compares the printed graph with the expected
text. Numeric checks (the reference interpreter) back the transformations that change math.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

import graphc  # noqa: F401  (registers every primitive, as user code does)
from graphc.codegen import numpy_codegen
from graphc.codegen.memory_plan import plan_memory
from graphc.codegen.scheduler import build_schedule
from graphc.ir.interpret import interpret
from graphc.ir.printer import ParseError, parse_graph, print_graph
from graphc.ir.verify import VerificationError, verify
from graphc.passes.autodiff.transform import differentiate
from graphc.passes.cse import cse
from graphc.passes.dce import dce
from graphc.passes.fold import constant_fold
from graphc.passes.fusion import fuse
from graphc.passes.manager import PassManager, check_roundtrip
from graphc.passes.simplify import simplify
from graphc.runtime import backends


def ir(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


def run(text: str, *passes) -> str:
    """Parse, run the passes (named by function), and print."""
    g = parse_graph(ir(text))
    pm = PassManager([(p.__name__, p) for p in passes], verify=True)
    return print_graph(pm.run(g))


# ---- simplify --------------------------------------------------------------------------------

def test_simplify_algebraic_identities_and_movement_chains():
    out = run("""
        graph f(%x: f32[2,3], %i: i64[2,3]) {
          %0: f32[2,3] = mul(%x, 1)
          %1: f32[2,3] = add(0.0, %0)
          %2: f32[2,3] = div(%1, 1.0)
          %3: f32[2,3] = sub(%2, 0)
          %4: f32[3,2] = permute(%3) dims=[1,0]
          %5: f32[2,3] = permute(%4) dims=[1,0]
          %6: f32[6] = reshape(%5) shape=[6]
          %7: f32[3,2] = reshape(%6) shape=[3,2]
          %8: f32[3,2] = cast(%7) dtype=f32
          %9: f32[3,2] = expand(%8) shape=[3,2]
          %10: i64[2,3] = mul(%i, 0)
          return %9, %10
        }
    """, simplify, dce)
    assert out == ir("""
        graph f(%x: f32[2,3], %i: i64[2,3]) {
          %0: f32[3,2] = reshape(%x) shape=[3,2]
          %1: i64[2,3] = full() shape=[2,3] value=0 dtype=i64
          return %0, %1
        }
    """)


def test_simplify_keeps_what_is_not_an_identity():
    text = """
        graph f(%x: f32[2,3], %y: f32[3]) {
          %0: f32[2,3] = mul(%x, 0.0)
          %1: f32[3,2] = permute(%x) dims=[1,0]
          %2: f64[2,3] = cast(%x) dtype=f64
          %3: f32[2,3] = mul(%x, True)
          %4: f32[3] = add(%y, %y)
          return %0, %1, %2, %3, %4
        }
    """
    # x * 0.0 is nan for inf/nan x; a transpose; a real cast; True is not the number 1
    assert run(text, simplify, dce) == ir(text)


def test_simplify_combines_permutes():
    out = run("""
        graph f(%x: f32[2,3,4]) {
          %0: f32[3,4,2] = permute(%x) dims=[1,2,0]
          %1: f32[4,2,3] = permute(%0) dims=[1,2,0]
          return %1
        }
    """, simplify, dce)
    assert out == ir("""
        graph f(%x: f32[2,3,4]) {
          %0: f32[4,2,3] = permute(%x) dims=[2,0,1]
          return %0
        }
    """)
    x = np.random.default_rng(0).random((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(interpret(parse_graph(out), [x])[0], x.transpose(1, 2, 0).transpose(1, 2, 0))


# ---- constant folding ------------------------------------------------------------------------

def test_constant_fold_uniform_results_become_full():
    out = run("""
        graph f(%x: f32[3]) {
          %0: f32[3] = full() shape=[3] value=2.0 dtype=f32
          %1: f32[3] = full() shape=[3] value=0.5 dtype=f32
          %2: f32[3] = mul(%0, %1)
          %3: f32[3] = exp(%2)
          %4: f32[3] = add(%x, %3)
          %5: i64[] = full() shape=[] value=7 dtype=i64
          %6: i64[] = floor_divide(%5, 2)
          return %4, %6
        }
    """, constant_fold, dce)
    assert out == ir("""
        graph f(%x: f32[3]) {
          %0: f32[3] = full() shape=[3] value=2.7182819843292236 dtype=f32
          %1: f32[3] = add(%x, %0)
          %2: i64[] = full() shape=[] value=3 dtype=i64
          return %1, %2
        }
    """)


def test_constant_fold_leaves_non_uniform_and_non_finite_results():
    text = """
        graph f() {
          %0: i64[4] = arange() start=0 end=4 step=1 dtype=i64
          %1: i64[4] = mul(%0, 2)
          %2: f32[2] = full() shape=[2] value=0.0 dtype=f32
          %3: f32[2] = log(%2)
          return %1, %3
        }
    """
    # log(0) = -inf would fold to a full() of -inf: kept as computed at run time instead
    assert run(text, constant_fold, dce) == ir(text)


# ---- common-subexpression elimination --------------------------------------------------------

def test_cse_merges_identical_nodes_only():
    out = run("""
        graph f(%x: f32[4]) {
          %0: f32[4] = exp(%x)
          %1: f32[4] = exp(%x)
          %2: f32[4] = add(%0, %1)
          %3: f32[4] = add(%0, %1)
          %4: f32[4] = add(%x, 0.0)
          %5: f32[4] = add(%x, -0.0)
          %6: f32[] = sum(%2) dims=[0] keepdim=False
          %7: f32[1] = sum(%3) dims=[0] keepdim=True
          %8: f32[4] = add(%x, 1)
          %9: f32[4] = add(%x, 1.0)
          return %2, %3, %4, %5, %6, %7, %8, %9
        }
    """, cse, dce)
    # 0.0 and -0.0 differ for x = -0.0; keepdim differs; 1 and 1.0 are different scalars
    assert out == ir("""
        graph f(%x: f32[4]) {
          %0: f32[4] = exp(%x)
          %1: f32[4] = add(%0, %0)
          %2: f32[4] = add(%x, 0.0)
          %3: f32[4] = add(%x, -0.0)
          %4: f32[] = sum(%1) dims=[0] keepdim=False
          %5: f32[1] = sum(%1) dims=[0] keepdim=True
          %6: f32[4] = add(%x, 1)
          %7: f32[4] = add(%x, 1.0)
          return %1, %1, %2, %3, %4, %5, %6, %7
        }
    """)


# ---- dead-code elimination -------------------------------------------------------------------

def test_dce_drops_unused_nodes_and_keeps_inputs():
    out = run("""
        graph f(%x: f32[4], %unused: f32[2] param) {
          %0: f32[4] = exp(%x)
          %1: f32[4] = sin(%0)
          %2: f32[4] = cos(%x)
          %3: f32[] = sum(%2) dims=[0] keepdim=False
          return %1
        }
    """, dce)
    assert out == ir("""
        graph f(%x: f32[4], %unused: f32[2] param) {
          %0: f32[4] = exp(%x)
          %1: f32[4] = sin(%0)
          return %1
        }
    """)


def test_default_pipeline_end_to_end():
    from graphc.passes.manager import default_pipeline
    g = parse_graph(ir("""
        graph f(%x: f32[2,2]) {
          %0: f32[2,2] = full() shape=[2,2] value=1.0 dtype=f32
          %1: f32[2,2] = mul(%x, %0)
          %2: f32[2,2] = mul(%x, 1.0)
          %3: f32[2,2] = tanh(%1)
          %4: f32[2,2] = tanh(%2)
          %5: f32[2,2] = add(%3, %4)
          return %5
        }
    """))
    pm = PassManager(default_pipeline())
    out = print_graph(pm.run(g))
    assert out == ir("""
        graph f(%x: f32[2,2]) {
          %0: f32[2,2] = full() shape=[2,2] value=1.0 dtype=f32
          %1: f32[2,2] = mul(%x, %0)
          %2: f32[2,2] = tanh(%1)
          %3: f32[2,2] = tanh(%x)
          %4: f32[2,2] = add(%2, %3)
          return %4
        }
    """)
    assert [r.name for r in pm.report] == ["decompose", "simplify", "constant_fold", "cse", "dce"]
    assert "simplify" in pm.summary() and "nodes 6 -> " in pm.summary()


# ---- fusion ----------------------------------------------------------------------------------

def _fuse(text: str) -> tuple[str, list[str]]:
    log: list[str] = []
    g = PassManager([("fusion", lambda g: fuse(g, log))]).run(parse_graph(ir(text)))
    return print_graph(g), log


def test_fusion_reduction_group_with_work_before_and_after_the_reduction():
    out, log = _fuse("""
        graph f(%x: f32[8,4], %b: f32[4]) {
          %0: f32[8,4] = add(%x, %b)
          %1: f32[8,4] = mul(%0, %0)
          %2: f32[8] = sum(%1) dims=[1] keepdim=False
          %3: f32[8] = sqrt(%2)
          %4: f32[8,4] = exp(%x)
          %5: f32[8,4] = tanh(%4)
          return %3, %5
        }
    """)
    # sqrt runs over the reduced shape: it joins; exp reads %x, which the group already reads,
    # and runs over its domain: it joins as a sibling (one kernel reads %x once)
    assert out == ir("""
        graph f(%x: f32[8,4], %b: f32[4]) {
          %0: f32[8], %1: f32[8,4] = fused(%x, %b) body={
            graph fused_0(%a0: f32[8,4], %a1: f32[4]) {
              %0: f32[8,4] = add(%a0, %a1)
              %1: f32[8,4] = mul(%0, %0)
              %2: f32[8] = sum(%1) dims=[1] keepdim=False
              %3: f32[8] = sqrt(%2)
              %4: f32[8,4] = exp(%a0)
              %5: f32[8,4] = tanh(%4)
              return %3, %5
            }
          } kind="reduction" domain=[8,4]
          return %0, %1
        }
    """)
    assert log == []


def test_fusion_softmax_and_mean_variance_are_one_group_each():
    """Reductions over the same dimensions share a group, with pointwise work over the domain
    or the reduced shape in between (softmax: max, exp(x - max), sum, divide); sum(y) and
    sum(y * y) are siblings reading y; a reduction over other dimensions does not join."""
    text = """
        graph f(%x: f32[4,6], %y: f32[4,6]) {
          %0: f32[4,1] = amax(%x) dims=[1] keepdim=True
          %1: f32[4,6] = sub(%x, %0)
          %2: f32[4,6] = exp(%1)
          %3: f32[4,1] = sum(%2) dims=[1] keepdim=True
          %4: f32[4,6] = div(%2, %3)
          %5: f32[1,6] = sum(%4) dims=[0] keepdim=True
          %6: f32[4,1] = sum(%y) dims=[1] keepdim=True
          %7: f32[4,6] = mul(%y, %y)
          %8: f32[4,1] = sum(%7) dims=[1] keepdim=True
          %9: f32[4,1] = mul(%6, %6)
          %10: f32[4,1] = sub(%8, %9)
          return %4, %5, %10
        }
    """
    out, log = _fuse(text)
    g = parse_graph(out)
    fused = [n for n in g.nodes if n.prim.name == "fused"]
    assert [n.attrs["kind"] for n in fused] == ["reduction", "reduction"]
    assert [bn.prim.name for bn in fused[0].attrs["body"].nodes] == ["amax", "sub", "exp", "sum", "div"]
    assert [bn.prim.name for bn in fused[1].attrs["body"].nodes] == ["sum", "mul", "sum", "mul", "sub"]
    assert "%5 (sum) not fused: it reduces other dimensions than the group's reductions" in log
    rng = np.random.default_rng(5)
    x = [rng.random((4, 6)).astype(np.float32), rng.random((4, 6)).astype(np.float32)]
    want = interpret(parse_graph(ir(text)), x)
    for w, got in zip(want, interpret(g, x)):
        np.testing.assert_allclose(got, w, rtol=1e-5)
    compiled = backends.get("numpy", "cpu").compile(parse_graph(out), "k")
    for w, got in zip(want, compiled(x)):
        np.testing.assert_allclose(got, w, rtol=1e-5)


def test_fusion_matmul_epilogue_and_rejected_cycle():
    """add(%0, %1) could join exp's group, but its other operand (the matmul) depends on that
    group: the fused node would depend on itself. It is rejected (and logged), then joins the
    matmul's epilogue instead."""
    out, log = _fuse("""
        graph f(%x: f32[4,4], %w: f32[4,4]) {
          %0: f32[4,4] = exp(%x)
          %1: f32[4,4] = matmul(%0, %w)
          %2: f32[4,4] = add(%0, %1)
          %3: f32[4,4] = relu(%2)
          return %3
        }
    """)
    assert log == ["%2 (add) not fused: operand %1 depends on the group, fusing would create a cycle"]
    assert out == ir("""
        graph f(%x: f32[4,4], %w: f32[4,4]) {
          %0: f32[4,4] = exp(%x)
          %1: f32[4,4] = fused(%0, %w) body={
            graph fused_1(%a0: f32[4,4], %a1: f32[4,4]) {
              %0: f32[4,4] = matmul(%a0, %a1)
              %1: f32[4,4] = add(%a0, %0)
              %2: f32[4,4] = relu(%1)
              return %2
            }
          } kind="matmul_epilogue" domain=[4,4]
          return %1
        }
    """)


TEXT_MM_SUM = """
    graph f(%x: f32[4,3], %w: f32[3,2]) {
      %0: f32[4,2] = matmul(%x, %w)
      %1: f32[4,2] = tanh(%0)
      %2: f32[2] = sum(%1) dims=[0] keepdim=False
      return %2
    }
"""


def test_fusion_matmul_epilogue_never_reduces():
    """An epilogue computes each output element where the matmul stores it: a sum over the
    matmul's rows starts a group of its own (the fusion contract for every backend)."""
    out, log = _fuse(TEXT_MM_SUM)
    assert log == ["%2 (sum) not fused: a matmul epilogue is pointwise per output element; it can't reduce"]
    g = parse_graph(out)
    assert [n.attrs.get("kind") for n in g.nodes] == ["matmul_epilogue", None]
    # a backend that calls matmul as a library routine (numpy) gets no epilogue: tanh and the
    # sum form one reduction group after the matmul
    g = fuse(parse_graph(ir(TEXT_MM_SUM)), [], lambda prim: prim.name != "matmul")
    assert [n.prim.name for n in g.nodes] == ["matmul", "fused"]
    assert g.nodes[1].attrs["kind"] == "reduction"


def test_fusion_rejects_a_cycle_through_another_group():
    """%6 may join exp's group A as far as its own operands go (nothing in A reaches %5 directly),
    but A feeds group B (through the reshape into %3) and B produces %5: fusing would make A and B
    depend on each other. Found on layer_norm's backward graph; the check runs on the graph of
    groups. B also shows a fused node with two outputs."""
    text = """
        graph f(%x: f32[4], %z: f32[2,4]) {
          %0: f32[2,4] = neg(%z)
          %1: f32[4] = exp(%x)
          %2: f32[1,4] = reshape(%1) shape=[1,4]
          %3: f32[2,4] = add(%0, %2)
          %4: f32[2,4] = mul(%0, 2.0)
          %5: f32[4] = sum(%4) dims=[0] keepdim=False
          %6: f32[4] = add(%1, %5)
          return %3, %6
        }
    """
    out, log = _fuse(text)
    # refused by exp's group (a cycle), %6 then joins B after its reduction (it runs over B's
    # reduced shape, and B doesn't reach exp's group)
    assert log == ["%6 (add) not fused: operand %5 depends on the group, fusing would create a cycle"]
    assert out == ir("""
        graph f(%x: f32[4], %z: f32[2,4]) {
          %0: f32[4] = exp(%x)
          %1: f32[1,4] = reshape(%0) shape=[1,4]
          %2: f32[2,4], %3: f32[4] = fused(%z, %1, %0) body={
            graph fused_0(%a0: f32[2,4], %a1: f32[1,4], %a2: f32[4]) {
              %0: f32[2,4] = neg(%a0)
              %1: f32[2,4] = add(%0, %a1)
              %2: f32[2,4] = mul(%0, 2.0)
              %3: f32[4] = sum(%2) dims=[0] keepdim=False
              %4: f32[4] = add(%a2, %3)
              return %1, %4
            }
          } kind="reduction" domain=[2,4]
          return %2, %3
        }
    """)
    rng = np.random.default_rng(1)
    args = [rng.random(4).astype(np.float32), rng.random((2, 4)).astype(np.float32)]
    for want, got in zip(interpret(parse_graph(ir(text)), args), interpret(parse_graph(out), args)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    compiled = backends.get("numpy", "cpu").compile(parse_graph(out), "k")  # one kernel per fused group
    assert [k.name for k in compiled.schedule.kernels()] == ["poi_0", "red_1"]  # the reshape is an index map
    for want, got in zip(interpret(parse_graph(ir(text)), args), compiled(args)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_fusion_merges_pointwise_groups_greedy_placement_split():
    """An Adam-like update: the squared gradient joins the first moment's group (a sibling: both
    read %g), so the second moment's group depends on it and the step (reading both) can only
    join the second. Greedily that is two kernels over the same domain; no other path joins
    them, so they merge into one."""
    text = """
        graph f(%g: f32[4,3], %m: f32[4,3], %v: f32[4,3]) {
          %0: f32[4,3] = sub(%g, %m)
          %1: f32[4,3] = mul(%0, 0.1)
          %2: f32[4,3] = add(%m, %1)
          %3: f32[4,3] = mul(%v, 0.9)
          %4: f32[4,3] = mul(%g, %g)
          %5: f32[4,3] = add(%3, %4)
          %6: f32[4,3] = sqrt(%5)
          %7: f32[4,3] = div(%2, %6)
          return %2, %5, %7
        }
    """
    out, log = _fuse(text)
    g = parse_graph(out)
    assert [n.prim.name for n in g.nodes] == ["fused"] and len(g.nodes[0].outputs) == 3
    assert any("merged into the group" in line for line in log)
    rng = np.random.default_rng(8)
    args = [rng.random((4, 3)).astype(np.float32) for _ in range(3)]
    for want, got in zip(interpret(parse_graph(ir(text)), args), interpret(g, args)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_fusion_respects_iteration_domains():
    out, log = _fuse("""
        graph f(%x: f32[3,4], %y: f32[4]) {
          %0: f32[4] = exp(%y)
          %1: f32[3,4] = mul(%x, %0)
          return %1
        }
    """)
    assert "fused" not in out
    assert log == ["%1 (mul) not fused: iteration domain [3, 4] differs from the group's [4]"]


# ---- memory planning (on the numpy backend's schedule) -------------------------------------

def _plan(text: str):
    g = parse_graph(ir(text))
    s = build_schedule(g, numpy_codegen.TARGET)
    s.plan = plan_memory(s, "cpu", 64, per_body_node=True)
    return g, s


def _slots(s) -> dict[str, str]:
    """IR value -> where it lives: 'slot N' (+ ' over %M' when written in place) or the role."""
    out = {}
    for name, b in s.buffers.items():
        if b.role == "input":
            continue
        v = b.value.split(":")[0]
        if name in s.plan.assignment:
            where = f"slot {s.plan.assignment[name]}"
            if name in s.plan.inplace:
                where += " over " + s.buffers[s.plan.inplace[name]].value.split(":")[0]
        else:
            where = b.role
        out[v] = where
    return out


def test_memory_plan_in_place_chains_and_reuse():
    g, s = _plan("""
        graph f(%x: f32[4,4]) {
          %0: f32[4,4] = exp(%x)
          %1: f32[4,4] = neg(%0)
          %2: f32[4,4] = sin(%1)
          %3: f32[4] = sum(%2) dims=[1] keepdim=False
          %4: f32[4,4] = cos(%x)
          %5: f32[4,4] = mul(%4, %4)
          %6: f32[4] = sum(%5) dims=[0] keepdim=False
          %7: f32[4] = add(%3, %6)
          return %7
        }
    """)
    # neg and sin overwrite the operand that dies at them; %4 reuses slot 0 once sin's result died
    # in %3; mul reads %4 twice, so it gets its own slot; %6 can't take %3's slot (still alive)
    assert _slots(s) == {"%0": "slot 0", "%1": "slot 0 over %0", "%2": "slot 0 over %1", "%3": "slot 1",
                         "%4": "slot 0", "%5": "slot 2", "%6": "slot 3", "%7": "output"}
    assert s.plan.slots == [64, 16, 64, 16] and s.plan.offsets == [0, 64, 128, 192]
    assert s.plan.workspace_bytes == 208 and s.plan.device == "cpu"
    assert "slot 0: offset 0, 64 bytes" in s.plan.text()


def test_memory_plan_keeps_buffers_alive_under_views():
    """%1 views %0's buffer (slice), so slot 0 can't be reused before %1's last use (in %6)."""
    g, s = _plan("""
        graph f(%x: f32[4,4]) {
          %0: f32[4,4] = exp(%x)
          %1: f32[2,4] = slice(%0) index=[[0,4,2],[0,4,1]]
          %2: f32[2,4] = cos(%1)
          %3: f32[4,4] = pad(%2) pads=[[1,1],[0,0]] value=0.0
          %4: f32[4,4] = tanh(%x)
          %5: f32[2,4] = slice(%4) index=[[1,4,2],[0,4,1]]
          %6: f32[2,4] = add(%5, %1)
          return %6, %3
        }
    """)
    slots = _slots(s)
    # pad copies its operand into its own (output) array, so cos writes a workspace slot; tanh
    # takes a new slot: %1 still views slot 0
    assert slots["%0"] == "slot 0" and slots["%2"] == "slot 1" and slots["%4"] == "slot 2", slots
    assert slots["%3"] == "output" and slots["%6"] == "output"
    x = [np.random.default_rng(2).random((4, 4)).astype(np.float32)]
    compiled = backends.get("numpy", "cpu").compile(g, "k")
    for want, got in zip(interpret(g, x), compiled(x)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_memory_plan_never_buffers_outputs_or_values_they_view():
    g, s = _plan("""
        graph f(%x: f32[4,4]) {
          %0: f32[4,4] = exp(%x)
          %1: f32[16] = reshape(%0) shape=[16]
          %2: f32[4,4] = sin(%x)
          return %1, %2
        }
    """)
    assert s.plan.assignment == {} and s.plan.workspace_bytes == 0
    assert _slots(s) == {"%0": "output", "%2": "output"}   # %1 is a view of %0's buffer, no buffer


def test_each_call_gets_its_own_workspace_threads_and_reentry():
    """Calls running at the same time never share planned buffers (4 threads, 200 calls each)."""
    from threads import wrong_answers
    g = parse_graph(ir("""
        graph f(%x: f32[64,64]) {
          %0: f32[64,64] = exp(%x)
          %1: f32[64,64] = neg(%0)
          %2: f32[64] = sum(%1) dims=[1] keepdim=False
          return %2
        }
    """))
    compiled = backends.get("numpy", "cpu").compile(g, "k")
    assert compiled.plan.workspace_bytes > 0
    rng = np.random.default_rng(0)
    data = [rng.random((64, 64)).astype(np.float32) for _ in range(4)]
    want = [-np.exp(d).sum(1) for d in data]
    assert wrong_answers(lambda i: np.allclose(compiled([data[i]])[0], want[i], rtol=1e-5), reps=200) == []
    # re-entry: a call made while another call of the same graph holds a workspace
    outer = compiled.pool.acquire()
    try:
        np.testing.assert_allclose(compiled([data[0]])[0], want[0], rtol=1e-5)
    finally:
        compiled.pool.release(outer)


# ---- autodiff: joint graph split into forward and backward -----------------------------------

AUTODIFF_IN = """
    graph f(%x: f64[3], %w: f64[3] param, %k: i64[3]) {
      %0: f64[3] = matmul(%x, %w)
      %1: f64[3] = sin(%x)
      %2: f64[3] = mul(%1, %0)
      %3: f64[3] = cast(%k) dtype=f64
      %4: f64[3] = mul(%2, %3)
      %5: f64[] = sum(%4) dims=[0] keepdim=False
      return %5, %1
    }
"""


def test_autodiff_split_saves_what_backward_needs_and_recomputes_pointwise():
    """Pointwise values backward needs are recomputed from saved inputs (exp(w), cos(x), the cast),
    except the user's own output sin(x), which forward returns anyway: it is saved."""
    split = differentiate(parse_graph(ir(AUTODIFF_IN.replace("%0: f64[3] = matmul(%x, %w)",
                                                               "%0: f64[3] = exp(%w)"))), [0, 1], [0])
    assert print_graph(split.forward) == ir("""
        graph f_forward(%x: f64[3], %w: f64[3] param, %k: i64[3]) {
          %0: f64[3] = exp(%w)
          %1: f64[3] = sin(%x)
          %2: f64[3] = mul(%1, %0)
          %3: f64[3] = cast(%k) dtype=f64
          %4: f64[3] = mul(%2, %3)
          %5: f64[] = sum(%4) dims=[0] keepdim=False
          return %5, %1, %w, %1, %k, %x
        }
    """)
    assert print_graph(split.backward) == ir("""
        graph f_backward(%grad0: f64[], %w: f64[3], %saved1: f64[3], %k: i64[3], %x: f64[3]) {
          %0: f64[3] = exp(%w)
          %1: f64[3] = cast(%k) dtype=f64
          %2: f64[3] = cos(%x)
          %3: f64[1] = reshape(%grad0) shape=[1]
          %4: f64[3] = expand(%3) shape=[3]
          %5: f64[3] = mul(%4, %1)
          %6: f64[3] = mul(%5, %0)
          %7: f64[3] = mul(%5, %saved1)
          %8: f64[3] = mul(%6, %2)
          %9: f64[3] = mul(%7, %0)
          return %8, %9
        }
    """)
    assert (split.n_outputs, split.diff_outputs, split.wrt) == (2, [0], [0, 1])
    rng = np.random.default_rng(4)
    x, w, k = rng.random(3), rng.random(3), np.array([1, 2, 3])
    fwd = interpret(split.forward, [x, w, k])
    gx, gw = interpret(split.backward, [np.array(1.0)] + fwd[2:])
    np.testing.assert_allclose(gx, np.cos(x) * np.exp(w) * k)
    np.testing.assert_allclose(gw, np.sin(x) * np.exp(w) * k)


def test_autodiff_split_saves_non_pointwise_values_and_is_correct():
    split = differentiate(parse_graph(ir(AUTODIFF_IN.replace("%0: f64[3] = matmul(%x, %w)",
                                                               "%0: f64[3] = cumsum(%w) dim=0"))), [0, 1], [0])
    # the cumsum is computed once, in forward, and saved (backward's cumsum is cumsum's VJP)
    assert sum(n.prim.name == "cumsum" for n in split.forward.nodes) == 1
    saved_cumsum = split.forward.nodes[0].output
    assert split.forward.nodes[0].prim.name == "cumsum" and saved_cumsum in split.forward.outputs[2:]
    assert sum(n.prim.name == "cumsum" for n in split.backward.nodes) == 1
    rng = np.random.default_rng(3)
    x, w, k = rng.random(3), rng.random(3), np.array([1, 2, 3])
    fwd = interpret(split.forward, [x, w, k])
    gx, gw = interpret(split.backward, [np.array(1.0)] + fwd[2:])
    np.testing.assert_allclose(fwd[0], (np.sin(x) * np.cumsum(w) * k).sum())
    np.testing.assert_allclose(gx, np.cos(x) * np.cumsum(w) * k)
    np.testing.assert_allclose(gw, np.cumsum((np.sin(x) * k)[::-1])[::-1])


def test_autodiff_saves_only_what_the_backward_graph_reads():
    """Only w2 is trained: backward computes x@w1 * grad, then y^T @ that: it reads y and x@w1.
    Values the joint split first marked as saved (x, w1, ...) that DCE of the backward graph
    leaves unread are not saved."""
    split = differentiate(parse_graph(ir("""
        graph f(%x: f32[4,3], %w1: f32[3,5] param, %y: f32[4,3], %w2: f32[3,5] param) {
          %0: f32[4,5] = matmul(%x, %w1)
          %1: f32[4,5] = matmul(%y, %w2)
          %2: f32[4,5] = mul(%0, %1)
          return %2
        }
    """)), [3], [0])
    saved = split.forward.outputs[1:]
    assert len(saved) == len(split.backward.inputs) - 1 == 2
    assert all(v.users for v in split.backward.inputs[1:])   # every saved value is read
    rng = np.random.default_rng(4)
    x, w1, y, w2 = (rng.random(s).astype(np.float32) for s in ((4, 3), (3, 5), (4, 3), (3, 5)))
    fwd = interpret(split.forward, [x, w1, y, w2])
    g = rng.random((4, 5)).astype(np.float32)
    (gw2,) = interpret(split.backward, [g] + fwd[1:])
    np.testing.assert_allclose(gw2, y.T @ ((x @ w1) * g), rtol=1e-5)


@pytest.mark.parametrize("used", [(0, 1, 2, 3), (3, 1, 0, 2), (0, 2)])
def test_autodiff_sums_gradients_of_disjoint_slices_without_additions(used):
    """The gradients of x's chunks (an LSTM's gates) are one concat, not summed as zero-padded
    copies: autodiff concatenates them when the chunks used tile x, else scatters them in turn
    into zeros, which simplify makes one concat with zeros in the gaps."""
    slices = "\n".join(f"  %{k}: f64[4,2] = slice(%x) index=[[0,4,1],[{2 * c},{2 * c + 2},1]]"
                       for k, c in enumerate(used))
    n = len(used)
    body = [f"  %{n}: f64[4,2] = mul(%0, %w)"] + [
        f"  %{n + j}: f64[4,2] = add(%{n + j - 1}, %{j})" for j in range(1, n)]
    out = n + n - 1
    text = (f"graph f(%x: f64[4,8], %w: f64[4,2]) {{\n{slices}\n" + "\n".join(body)
            + f"\n  %{out + 1}: f64[4,2] = sin(%{out})\n  %{out + 2}: f64[] = sum(%{out + 1}) dims=[0,1] keepdim=False"
              f"\n  return %{out + 2}\n}}\n")
    split = differentiate(parse_graph(text), [0], [0])
    bwd = PassManager([("simplify", simplify), ("cse", cse), ("dce", dce)], verify=True).run(split.backward)
    names = [m.prim.name for m in bwd.nodes]
    assert names.count("concat") == 1 and "slice_scatter" not in names
    assert names.count("full") == (len(used) < 4)  # the gaps' zeros (one, CSE)
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((4, 8)), rng.standard_normal((4, 2))

    def loss(x):
        parts = [x[:, 2 * c:2 * c + 2] for c in used]
        t = parts[0] * w
        for p in parts[1:]:
            t = t + p
        return np.sin(t).sum()

    fwd = interpret(split.forward, [x, w])
    (gx,) = interpret(bwd, [np.array(1.0)] + fwd[1:])
    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):  # central differences in float64
        e = np.zeros_like(x)
        e[i] = 1e-6
        fd[i] = (loss(x + e) - loss(x - e)) / 2e-6
    np.testing.assert_allclose(gx, fd, rtol=1e-6, atol=1e-8)


# ---- printer and parser ----------------------------------------------------------------------

ROUNDTRIP = """
    graph "<lambda>_forward"(%x: f32[2,3], %w: f32[3] param, %b: i64[] buffer, %c: b8[2] const, %rng: i64[2] rng) {
      %0: f32[2,3] = add(%x, -1.5)
      %1: f32[2,3] = mul(%0, inf)
      %2: f32[2,3] = where(True, %1, nan)
      %3: f32[2,3] = pad(%2) pads=[[0,0],[1,-1]] value=-inf
      %4: f32[2,3] = rand_uniform(%rng) shape=[2,3] dtype=f32 stream=1
      %5: f32[2,3], %6: f32[2] = fused(%3, %4, %w) body={
        graph fused_5(%a0: f32[2,3], %a1: f32[2,3], %a2: f32[3]) {
          %0: f32[2,3] = add(%a0, %a1)
          %1: f32[2,3] = mul(%0, %a2)
          %2: f32[2] = sum(%1) dims=[1] keepdim=False
          return %1, %2
        }
      } kind="reduction" domain=[2,3]
      %7: i64[] = add(%b, 2)
      %8: f32[2] = cast(%c) dtype=f32
      return %5, %6, %7, %8
    }
"""


def test_printer_parser_round_trip_all_syntax():
    text = ir(ROUNDTRIP)
    g = parse_graph(text)
    assert print_graph(g) == text
    verify(g)
    assert g.name == "<lambda>_forward"
    assert [v.role for v in g.inputs] == ["input", "param", "buffer", "const", "rng"]
    assert g.nodes[0].inputs[1] == -1.5 and isinstance(g.nodes[6].inputs[1], int)
    check_roundtrip(g)


def test_parser_identifiers_starting_like_numbers():
    text = ir("""
        graph inference(%nan_mask: b8[2], %info: f32[2]) {
          %0: f32[2] = where(%nan_mask, %info, nan)
          return %0
        }
    """)
    assert print_graph(parse_graph(text)) == text


@pytest.mark.parametrize("body, message", [
    ("%0: f32[2] = exp(%y)\n  return %0", "use of undefined value %y"),
    ("%0: f32[3] = exp(%x)\n  return %0", "%0 is declared f32[3], the op gives f32[2]"),
    ("%0: f32[2] = frobnicate(%x)\n  return %0", "unknown primitive 'frobnicate'"),
    ("%0: f32[2] = exp(%x)\n  %0: f32[2] = exp(%x)\n  return %0", "%0 defined twice"),
    ("%0: f32[2] = exp(%x)\n  return %1", "return of undefined value %1"),
    ("%0: f32[2] = exp(%x) $\n  return %0", "unexpected character '$'"),
])
def test_parse_errors_name_the_line(body, message):
    with pytest.raises(ParseError, match="line") as e:
        parse_graph(f"graph g(%x: f32[2]) {{\n  {body}\n}}\n")
    assert message in str(e.value)


def test_verifier_catches_broken_graphs():
    g = parse_graph(ir("""
        graph g(%x: f32[2]) {
          %0: f32[2] = exp(%x)
          %1: f32[2] = sin(%0)
          return %1
        }
    """))
    verify(g)
    g.nodes.reverse()
    with pytest.raises(VerificationError, match="before it is defined"):
        verify(g)
    g.nodes.reverse()
    from graphc.ir.primitive import TensorType
    g.nodes[1].outputs[0].type = TensorType((3,), g.nodes[1].outputs[0].type.dtype)
    with pytest.raises(VerificationError, match="declared f32\\[3\\] but the type rule gives f32\\[2\\]"):
        verify(g)


def test_pass_manager_verifies_between_passes():
    def broken(g):
        g.nodes.pop(0)  # leaves a dangling use
        return g
    g = parse_graph(ir("""
        graph g(%x: f32[2]) {
          %0: f32[2] = exp(%x)
          %1: f32[2] = sin(%0)
          return %1
        }
    """))
    with pytest.raises(VerificationError, match="before it is defined"):
        PassManager([("broken", broken)]).run(g)


def test_simplify_computes_a_transposed_product_in_its_read_layout():
    # (x.T @ g).T, the weight gradient of x @ w.T, becomes g.T @ x: written contiguous in the
    # layout the parameter update reads
    out = run("""
        graph f(%x: f32[4,3], %g: f32[4,2]) {
          %0: f32[3,4] = permute(%x) dims=[1,0]
          %1: f32[3,2] = matmul(%0, %g)
          %2: f32[2,3] = permute(%1) dims=[1,0]
          return %2
        }
    """, simplify, dce)
    assert out == ir("""
        graph f(%x: f32[4,3], %g: f32[4,2]) {
          %0: f32[2,4] = permute(%g) dims=[1,0]
          %1: f32[2,3] = matmul(%0, %x)
          return %1
        }
    """)
    kept = """
        graph f(%x: f32[3,4], %g: f32[4,2]) {
          %0: f32[3,2] = matmul(%x, %g)
          %1: f32[2,3] = permute(%0) dims=[1,0]
          return %0, %1
        }
    """
    assert run(kept, simplify, dce) == ir(kept)  # the product is read as it is too: unchanged


def test_simplify_multiplies_a_batch_of_rows_by_a_matrix_in_one_product():
    # x @ w for x (2, 3, 4): one product over the 6 rows; x.transpose(0, 1) @ w: the permute
    # moves after the product, so the rows flatten without a copy
    out = run("""
        graph f(%x: f64[2,3,4], %w: f64[4,5]) {
          %0: f64[3,2,4] = permute(%x) dims=[1,0,2]
          %1: f64[3,2,5] = matmul(%0, %w)
          %2: f64[2,3,5] = matmul(%x, %w)
          return %1, %2
        }
    """, simplify, cse, dce)
    assert out == ir("""
        graph f(%x: f64[2,3,4], %w: f64[4,5]) {
          %0: f64[6,4] = reshape(%x) shape=[6,4]
          %1: f64[6,5] = matmul(%0, %w)
          %2: f64[2,3,5] = reshape(%1) shape=[2,3,5]
          %3: f64[3,2,5] = permute(%2) dims=[1,0,2]
          return %3, %2
        }
    """)
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))
    y1, y2 = interpret(parse_graph(out), [x, w])
    np.testing.assert_allclose(y1, x.transpose(1, 0, 2) @ w, rtol=1e-12)
    np.testing.assert_allclose(y2, x @ w, rtol=1e-12)


@pytest.mark.parametrize("keepdim", [False, True])
def test_simplify_sums_a_batch_of_products_as_one_product(keepdim):
    # sum_t x[t] @ y[t] (a weight gradient autodiff derived from a batched x @ w) is one
    # product of the batches laid side by side: (K, T*M) @ (T*M, N)
    out_shape = "1,4,5" if keepdim else "4,5"
    text = f"""
        graph f(%x: f64[3,4,2], %y: f64[3,2,5]) {{
          %0: f64[3,4,5] = matmul(%x, %y)
          %1: f64[{out_shape}] = sum(%0) dims=[0] keepdim={keepdim}
          return %1
        }}
    """
    out = run(text, simplify, dce)
    g = parse_graph(out)
    assert [n.prim.name for n in g.nodes if n.prim.name in ("matmul", "sum")] == ["matmul"]
    assert all(v.ndim == 2 for n in g.nodes if n.prim.name == "matmul" for v in n.inputs)
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 2, 5))
    (r,) = interpret(g, [x, y])
    np.testing.assert_allclose(r, (x @ y).sum(0, keepdims=keepdim), rtol=1e-12)
    float16 = text.replace("f64", "f16")
    assert "sum(" in run(float16, simplify, dce)  # half precision sums in float32: left alone
    int32 = text.replace("f64[3,4,2]", "i32[3,4,2]").replace("f64[3,2,5]", "i32[3,2,5]") \
        .replace("f64[3,4,5]", "i32[3,4,5]").replace(f"f64[{out_shape}]", f"i64[{out_shape}]")
    assert "sum(" in run(int32, simplify, dce)  # an integer sum widens to int64: left alone



def test_a_numpy_float_operand_prints_as_a_number_that_parses_back():
    """``x * np.sqrt(0.5)`` traces a numpy float64 operand; numpy 2 reprs it as np.float64(...),
    which the IR text (explain, dump, the verifier's round trip) must not contain."""
    from graphc.ir import dtypes as dt
    from graphc.ir import prims as P
    from graphc.ir.graph import Graph
    from graphc.ir.primitive import TensorType
    g = Graph("f")
    x = g.add_input(TensorType((2, 3), dt.float32))
    g.outputs = [g.add_node(P.mul, [x, np.sqrt(np.float64(0.5))], {})]
    text = print_graph(g)
    assert "np." not in text and "0.7071067811865476" in text, text
    assert print_graph(parse_graph(text)) == text
