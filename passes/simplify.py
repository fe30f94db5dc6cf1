"""Algebraic simplification: x*1, x+0, x-0, x/1, x*0 (integers only: for floats 0*inf is nan),
double permute/reshape, no-op casts, expands, reshapes and permutes; and a transposed matmul
product computed in the layout it is read in: transpose(a @ b) = transpose(b) @ transpose(a),
so that the product is written contiguous where its reader wants it (the weight gradient of
``x @ w.T`` is ``(x.T @ g).T``, which a parameter update would otherwise read with strides).

A product of a batch of matrices with one matrix (``x @ w`` for x of shape (B, S, K): a linear
layer on a sequence) is one matrix product over the flattened rows, ``(x.reshape(B*S, K) @
w).reshape(B, S, N)``: numpy and BLAS would otherwise run B small products, and the weight's
gradient becomes one product instead of a batch of them summed. A permute that keeps the last
axis in place moves after such a product (``x.transpose(0, 1) @ w``, an RNN's input projection
over all steps), so the rows flatten without a copy."""
from __future__ import annotations

from graphc.ir import prims as P
from graphc.ir.graph import Graph, Node, Value
from graphc.ir.shapes import wrap_dims


def _scalar(x, value) -> bool:
    return not isinstance(x, Value) and not isinstance(x, bool) and x == value


def _same(v: Value, n) -> bool:
    return isinstance(v, Value) and v.type == n.output.type


def _transposed_product(a, n: Node, g: Graph) -> bool:
    """``n`` swaps the last two axes of ``a``, a matmul product of two operands of ``a``'s rank
    that nothing else reads."""
    if not (isinstance(a, Value) and a.producer is not None and a.producer.prim is P.matmul):
        return False
    dims, r = tuple(n.attrs["dims"]), a.ndim
    x, y = a.producer.inputs
    return (r >= 2 and dims == tuple(range(r - 2)) + (r - 1, r - 2) and len(a.users) == 1
            and all(isinstance(v, Value) and v.ndim == r for v in (x, y)) and all(o is not a for o in g.outputs))


def _rows_times_matrix(n: Node) -> bool:
    """``n`` multiplies a batch of matrices (rank 3 or more) by one matrix."""
    a, b = n.inputs
    return isinstance(a, Value) and isinstance(b, Value) and a.ndim >= 3 and b.ndim == 2


def _last_axis_kept(a) -> bool:
    """``a`` is a permute that leaves the last axis where it is."""
    return a.producer is not None and a.producer.prim is P.permute and \
        tuple(a.producer.attrs["dims"])[-1] == a.ndim - 1


def _summed_batch_product(n: Node, g: Graph) -> bool:
    """``n`` sums a batch of matrix products (nothing else reads) over all its batch axes: the
    weight gradient of a batched ``x @ w`` that autodiff derived before the rows were flattened
    (``loss.backward()`` inside a compiled step differentiates the traced graph)."""
    m = n.inputs[0]
    if not (isinstance(m, Value) and m.producer is not None and m.producer.prim is P.matmul and len(m.users) == 1
            and all(o is not m for o in g.outputs)) or m.dtype.is_low_precision \
            or n.output.dtype is not m.dtype:  # integer sums widen to int64: not a product's dtype
        return False
    a, b = m.producer.inputs
    r = m.ndim
    return (r >= 3 and isinstance(a, Value) and isinstance(b, Value) and a.ndim == b.ndim == r
            and a.shape[:-2] == b.shape[:-2] and wrap_dims(n.attrs["dims"], r) == tuple(range(r - 2)))


def simplify(g: Graph) -> Graph:
    changed = True
    while changed:  # sweeps in topological order until nothing changes (usually two)
        changed = False
        removed: set[int] = set()
        before: dict[int, list[Node]] = {}  # id(node) -> new nodes to put in front of it
        for n in list(g.nodes):
            a = n.inputs[0] if n.inputs else None
            b = n.inputs[1] if len(n.inputs) > 1 else None
            new = None
            p = n.prim
            if p is P.mul and _scalar(b, 1) and _same(a, n):
                new = a
            elif p is P.mul and _scalar(a, 1) and _same(b, n):
                new = b
            elif p in (P.add, P.sub) and _scalar(b, 0) and _same(a, n):
                new = a
            elif p is P.add and _scalar(a, 0) and _same(b, n):
                new = b
            elif p is P.div and _scalar(b, 1) and _same(a, n):
                new = a
            elif p is P.mul and (_scalar(b, 0) or _scalar(a, 0)) and not n.output.dtype.is_floating_point:
                new = g.add_node(P.full, [], {"shape": n.output.shape, "value": 0, "dtype": n.output.dtype},
                                 n.output.type, n.loc)
                g.nodes.pop()  # appended: it goes in front of n below
                before[id(n)] = [new.producer]
            elif p in (P.cast, P.expand, P.reshape) and _same(a, n):
                new = a
            elif p is P.permute and tuple(n.attrs["dims"]) == tuple(range(len(n.attrs["dims"]))):
                new = a
            elif p is P.reshape and isinstance(a, Value) and a.producer is not None and a.producer.prim is P.reshape:
                n.inputs[0] = a.producer.inputs[0]
                a.users.remove(n)
                n.inputs[0].users.append(n)
                changed = True
                continue
            elif p is P.permute and _transposed_product(a, n, g):
                x, y = a.producer.inputs
                swap = {"dims": tuple(n.attrs["dims"])}
                yt = g.add_node(P.permute, [y], dict(swap), loc=n.loc)
                xt = g.add_node(P.permute, [x], dict(swap), loc=n.loc)
                new = g.add_node(P.matmul, [yt, xt], {}, loc=n.loc)
                before[id(n)] = g.nodes[-3:]  # appended: they go in front of n below
                del g.nodes[-3:]
            elif p is P.sum and _summed_batch_product(n, g):  # sum_t a[t] @ b[t]: one product
                x, y = a.producer.inputs
                r, inner = a.ndim, x.shape[-1]
                for d in x.shape[:-2]:
                    inner *= d  # the contracted length: every batch's inner dimension in a row
                lead = g.add_node(P.permute, [x], {"dims": (r - 2, *range(r - 2), r - 1)}, loc=n.loc)
                x2 = g.add_node(P.reshape, [lead], {"shape": (x.shape[-2], inner)}, loc=n.loc)
                y2 = g.add_node(P.reshape, [y], {"shape": (inner, y.shape[-1])}, loc=n.loc)
                prod = g.add_node(P.matmul, [x2, y2], {}, loc=n.loc)
                made = [x2.producer.inputs[0].producer, x2.producer, y2.producer, prod.producer]
                if tuple(prod.shape) != tuple(n.output.shape):  # keepdim: leading ones
                    prod = g.add_node(P.reshape, [prod], {"shape": tuple(n.output.shape)}, loc=n.loc)
                    made.append(prod.producer)
                new = prod
                before[id(n)] = made
                del g.nodes[-len(made):]
            elif p is P.matmul and _rows_times_matrix(n):
                if _last_axis_kept(a):  # permute(x) @ w = permute(x @ w)
                    dims = tuple(a.producer.attrs["dims"])
                    prod = g.add_node(P.matmul, [a.producer.inputs[0], b], {}, loc=n.loc)
                    new = g.add_node(P.permute, [prod], {"dims": dims}, loc=n.loc)
                    before[id(n)] = g.nodes[-2:]
                    del g.nodes[-2:]
                else:  # one product over the flattened rows
                    rows = 1
                    for d in a.shape[:-1]:
                        rows *= d
                    flat = g.add_node(P.reshape, [a], {"shape": (rows, a.shape[-1])}, loc=n.loc)
                    prod = g.add_node(P.matmul, [flat, b], {}, loc=n.loc)
                    new = g.add_node(P.reshape, [prod], {"shape": tuple(n.output.shape)}, loc=n.loc)
                    before[id(n)] = g.nodes[-3:]
                    del g.nodes[-3:]
            elif p is P.permute and isinstance(a, Value) and a.producer is not None and a.producer.prim is P.permute:
                inner, outer = a.producer.attrs["dims"], n.attrs["dims"]
                combined = tuple(inner[d] for d in outer)
                n.attrs = {"dims": combined}
                n.inputs[0] = a.producer.inputs[0]
                a.users.remove(n)
                n.inputs[0].users.append(n)
                changed = True
                continue
            if new is not None:
                g.replace_all_uses(n.output, new)
                for v in n.value_inputs():
                    if n in v.users:
                        v.users.remove(n)
                removed.add(id(n))
                changed = True
        if removed or before:  # one pass over the node list, not one list.remove/insert per node
            g.nodes = [m for n in g.nodes for m in ((*before[id(n)], n) if id(n) in before else (n,))
                       if id(m) not in removed]
    return g
