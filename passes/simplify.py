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
over all steps), so the rows flatten without a copy.

A sum of sums of equally shaped tensors over the same axes, ``sum(x1, d) + ... + sum(xn, d)``
(a bias used at every step of an RNN: its gradient is one reduction per step, accumulated), is
one sum over the tensors stacked on a new leading axis, in the order of an existing stack of
exactly those tensors when there is one (the gates' gradients stacked for the input weights'
gradient), so that CSE makes the two stacks one, and the two sums one where another bias's
gradient sums that stack too. One reduction instead of n reductions and n - 1 additions.

A slice (possibly through a permute) of a ``concat`` that lies within one operand is a slice of
that operand (and a select along the concatenated axis a select of the operand it reads), and a
slice of a ``slice_scatter`` is its source where it reads exactly the scattered range, and a
slice of its base where it misses that range; a slice of a ``pad`` is a slice of its operand
where it lies within it, and the pad's fill where it misses it; a reshape, permute or slice of a
``full`` is a ``full``, and adding a zero ``full`` of no larger shape is the other operand. So the
gradient of an RNN output read at its last step, scattered (or padded) into zeros, is not added
step by step, and the stacked outputs are not concatenated only to read their last step.

A ``slice_scatter`` into a range where its base is zero (a zero ``full``, a zero pad placing its
operand elsewhere, a sum of such) is the base plus the scattered tensor zero-padded: the gradients
of the chunks of one tensor (an LSTM step's gates), scattered in turn into zeros, become pads that
the next rule joins into one concat.

Zero pads of one tensor's type, each widening along the same one axis and placing its operand in
a range no other one overlaps, added together, are one ``concat`` of their operands (zero fulls in
the gaps): the gradient of an RNN's per-step slices of its input projection, which would
otherwise pad every step to the whole sequence and add them (quadratic in the steps; 30% of an
LSTM step of 20 steps). Likewise matrix products added together, ``x1 @ y1 + ... + xn @ yn``
(a recurrent weight's gradient, one product per step), are one product over the joined inner
dimension, ``concat(x_i, 1) @ concat(y_i, 0)``: one BLAS call instead of n calls and n - 1
additions (another 16% of that LSTM step). The products are joined in the order their operands
are stacked elsewhere (an RNN step's gate gradient padded into the input projection's), their
rows as a stack on a new axis, so CSE makes the two stacks one."""
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


def _scaled_expand(a, b, n: Node) -> bool:
    """``n`` multiplies ``a``, an expand nothing else reads, by a Python number, keeping its dtype
    (a gradient broadcast back over a reduction, then scaled: a variance's, ``2 * g * x``)."""
    return (isinstance(a, Value) and a.producer is not None and a.producer.prim is P.expand and len(a.users) == 1
            and isinstance(b, (int, float)) and not isinstance(b, bool) and a.dtype is n.output.dtype
            and a.producer.inputs[0].dtype is a.dtype)


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


def _add_tree_leaves(n: Node, g: Graph) -> list:
    """The operands of the tree of ``add`` nodes rooted at ``n``: interior adds have the root's
    type (no broadcasting), one reader (their parent) and are not graph outputs."""
    leaves, stack = [], list(reversed(n.inputs))
    while stack:
        x = stack.pop()
        if isinstance(x, Value) and x.producer is not None and x.producer.prim is P.add and \
                x.type == n.output.type and len(x.users) == 1 and all(o is not x for o in g.outputs):
            stack.extend(reversed(x.producer.inputs))
        else:
            leaves.append(x)
    return leaves


def _summed(v, g: Graph):
    """The sum node ``v`` is (possibly seen through one reshape), read only here, or None."""
    if isinstance(v, Value) and v.producer is not None and v.producer.prim is P.reshape and len(v.users) == 1:
        v = v.producer.inputs[0]
    if not (isinstance(v, Value) and v.producer is not None and v.producer.prim is P.sum and len(v.users) == 1
            and all(o is not v for o in g.outputs)):
        return None
    x = v.producer.inputs[0]
    if not isinstance(x, Value) or x.dtype.is_low_precision or v.dtype is not x.dtype:  # int sums widen
        return None
    return v.producer


def _tree_root(n: Node, g: Graph) -> bool:
    """Whether the add ``n`` is the live root of its add tree (see ``_add_tree_leaves``)."""
    users = n.output.users
    if not users and all(o is not n.output for o in g.outputs):
        return False  # dead: an inner add of a tree rewritten earlier (rewriting it again would repeat forever)
    return not (len(users) == 1 and users[0].prim is P.add and users[0].output.type == n.output.type
                and all(o is not n.output for o in g.outputs))  # else not the root of its tree


def _pad_axis(v, n: Node, g: Graph) -> int | None:
    """The one axis along which ``v``, a zero pad read only by the add tree of ``n`` and of its
    type, widens its operand; else None."""
    if not (isinstance(v, Value) and v.producer is not None and v.producer.prim is P.pad and len(v.users) == 1
            and v.type == n.output.type and v.producer.attrs.get("value", 0.0) == 0
            and isinstance(v.producer.inputs[0], Value) and all(o is not v for o in g.outputs)):
        return None
    axes = [i for i, (lo, hi) in enumerate(v.producer.attrs["pads"]) if lo or hi]
    return axes[0] if len(axes) == 1 else None


def _disjoint_pads(leaves: list, n: Node, g: Graph) -> list | None:
    """The leaves of the add tree of ``n`` that are two or more zero pads along one axis placing
    their operands in disjoint ranges (the gradient of the steps of an RNN sliced out of one
    tensor), in the order of their ranges; else None."""
    axis_of = [_pad_axis(v, n, g) for v in leaves]
    counts: dict[int, int] = {}
    for k in axis_of:
        if k is not None:
            counts[k] = counts.get(k, 0) + 1
    if not counts:
        return None
    k = max(counts, key=counts.get)
    if counts[k] < 2:
        return None
    pads = sorted((v for v, a in zip(leaves, axis_of) if a == k), key=lambda v: v.producer.attrs["pads"][k][0])
    end = 0
    for v in pads:
        lo = v.producer.attrs["pads"][k][0]
        if lo < end:
            return None  # overlapping ranges add up: not a concat
        end = lo + v.producer.inputs[0].shape[k]
    return pads


def _pads_as_concat(n: Node, g: Graph, pads: list) -> Value:
    """``concat`` of the pads' operands along their axis, zeros filling the gaps between them."""
    k = _pad_axis(pads[0], n, g)
    parts, end = [], 0
    shape = list(n.output.shape)
    for v in pads + [None]:
        lo = shape[k] if v is None else v.producer.attrs["pads"][k][0]
        if lo > end:
            gap = tuple(shape[:k] + [lo - end] + shape[k + 1:])
            parts.append(g.add_node(P.full, [], {"shape": gap, "value": 0, "dtype": n.output.dtype}, loc=n.loc))
        if v is not None:
            parts.append(v.producer.inputs[0])
            end = lo + v.producer.inputs[0].shape[k]
    return g.add_node(P.concat, parts, {"axis": k}, loc=n.loc)


def _product_leaf(v, n: Node, g: Graph) -> bool:
    """Whether ``v`` is a 2-D matrix product of ``n``'s type read only by the add tree of ``n``."""
    return isinstance(v, Value) and v.producer is not None and v.producer.prim is P.matmul and len(v.users) == 1 \
        and v.type == n.output.type and v.ndim == 2 and all(isinstance(x, Value) and x.ndim == 2 for x in v.producer.inputs) \
        and all(x.dtype is v.dtype for x in v.producer.inputs) and all(o is not v for o in g.outputs)


def _products(leaves: list, n: Node, g: Graph) -> list | None:
    """The leaves of the add tree of ``n`` that are two or more matrix products ``x_i @ y_i`` of
    its type (a weight's gradient accumulated over an RNN's steps); else None."""
    prods = [v for v in leaves if _product_leaf(v, n, g)]
    return prods if len(prods) >= 2 else None


def _transposed(x) -> bool:
    return x.producer is not None and x.producer.prim is P.permute and tuple(x.producer.attrs["dims"]) == (1, 0)


def _concat(g: Graph, xs: list, axis: int, loc) -> Value:
    """``concat(xs, axis)`` of 2-D values; rows of equally shaped ones as their stack on a new
    leading axis, reshaped: CSE then makes it one with a stack of the same values in the same
    order (the gate gradients' stack that the input projection's gradient reads)."""
    if axis == 0 and len({tuple(x.shape) for x in xs}) == 1:
        rows = [g.add_node(P.reshape, [x], {"shape": (1, *x.shape)}, loc=loc) for x in xs]
        stack = g.add_node(P.concat, rows, {"axis": 0}, loc=loc)
        return g.add_node(P.reshape, [stack], {"shape": (len(xs) * xs[0].shape[0], xs[0].shape[1])}, loc=loc)
    return g.add_node(P.concat, list(xs), {"axis": axis}, loc=loc)


def _joined(g: Graph, xs: list, axis: int, loc) -> Value:
    """``concat(xs, axis)`` of 2-D values, made as the transpose of a concat of the transposed
    operands where every one is a transpose (so rows are stacked contiguously)."""
    if all(_transposed(x) for x in xs):
        inner = _concat(g, [x.producer.inputs[0] for x in xs], 1 - axis, loc)
        return g.add_node(P.permute, [inner], {"dims": (1, 0)}, loc=loc)
    return _concat(g, xs, axis, loc)


def _stacked_at(x) -> int | None:
    """Where ``x``, seen as one step ``reshape(x, (1, ...))``, is placed along the leading axis of
    a zero pad or a concat that stacks it (an RNN step's gradient in the input projection's),
    else None."""
    for r in x.users:
        if r.prim is not P.reshape or tuple(r.output.shape) != (1, *x.shape):
            continue
        for u in r.output.users:
            if u.prim is P.pad and u.attrs.get("value", 0.0) == 0 and all(
                    lo == hi == 0 for lo, hi in u.attrs["pads"][1:]):
                return u.attrs["pads"][0][0]
            if u.prim is P.concat and u.attrs["axis"] == 0 and all(v.shape[0] == 1 for v in u.inputs):
                return u.inputs.index(r.output)
    return None


def _step_order(prods: list) -> list:
    """The products ``x_i @ y_i`` in the order their left or else their right operands (seen
    through a transpose) are stacked elsewhere (see ``_stacked_at``), else as given: the sum is
    the same in any order, and a stack shared with another reader is made once."""
    for side in (0, 1):
        xs = [v.producer.inputs[side] for v in prods]
        at = [_stacked_at(x.producer.inputs[0] if _transposed(x) else x) for x in xs]
        if None not in at and len(set(at)) == len(at):
            return [v for _, v in sorted(zip(at, prods), key=lambda kv: kv[0])]
    return prods


def _products_as_one(n: Node, g: Graph, prods: list) -> Value:
    """``sum_i x_i @ y_i`` as one product over the joined inner dimension, ``concat(x_i, 1) @
    concat(y_i, 0)``."""
    prods = _step_order(prods)
    xs = _joined(g, [v.producer.inputs[0] for v in prods], 1, n.loc)
    ys = _joined(g, [v.producer.inputs[1] for v in prods], 0, n.loc)
    return g.add_node(P.matmul, [xs, ys], {}, loc=n.loc)


# add trees with some leaves summed in one op: (which leaves, the op that sums them)
_TREE_REWRITES = ((_disjoint_pads, _pads_as_concat), (_products, _products_as_one))


def _rewritten_tree(n: Node, g: Graph) -> list[Node] | None:
    """The nodes (appended to ``g``) of the add tree rooted at ``n`` with the leaves of the
    first of ``_TREE_REWRITES`` that finds some summed in one op, plus the other leaves; or None."""
    if not _tree_root(n, g):
        return None
    leaves = _add_tree_leaves(n, g)
    for select, combine in _TREE_REWRITES:
        chosen = select(leaves, n, g)
        if chosen is None or len({id(v) for v in chosen}) != len(chosen):
            continue
        first = len(g.nodes)
        total = combine(n, g, chosen)
        picked = {id(v) for v in chosen}
        for other in leaves:
            if id(other) not in picked:
                total = g.add_node(P.add, [total, other], {}, loc=n.loc)
        return g.nodes[first:]
    return None


def _sum_of_sums(n: Node, g: Graph) -> list[Node] | None:
    """The reductions an add tree rooted at ``n`` sums, when it sums three or more reductions of
    equally typed tensors over the same axes (see the module docstring), else None."""
    if not _tree_root(n, g):
        return None
    leaves = _add_tree_leaves(n, g)
    if len(leaves) < 3 or any(not isinstance(v, Value) or v.type != n.output.type for v in leaves):
        return None  # few, or broadcast into the sum
    sums = [_summed(v, g) for v in leaves]
    if any(s is None for s in sums):
        return None
    first = sums[0]
    xs = [s.inputs[0] for s in sums]
    dims = wrap_dims(first.attrs["dims"], xs[0].ndim)
    if len({id(x) for x in xs}) != len(xs) or any(
            x.type != xs[0].type or wrap_dims(s.attrs["dims"], x.ndim) != dims
            or bool(s.attrs["keepdim"]) != bool(first.attrs["keepdim"]) for s, x in zip(sums, xs)):
        return None
    return sums


def _stack_order(xs: list) -> list:
    """``xs`` in the order of an existing ``concat`` that stacks exactly them on a new leading
    axis (so CSE makes the new stack that one), else as given."""
    want = {id(x) for x in xs}
    stacked_shape = (1, *xs[0].shape)
    for r in xs[0].users:
        if r.prim is not P.reshape or tuple(r.output.shape) != stacked_shape:
            continue
        for c in r.output.users:
            if c.prim is not P.concat or c.attrs["axis"] != 0 or len(c.inputs) != len(xs):
                continue
            order = [v.producer.inputs[0] for v in c.inputs if isinstance(v, Value) and v.producer is not None
                     and v.producer.prim is P.reshape and tuple(v.shape) == stacked_shape]
            if len(order) == len(xs) and {id(x) for x in order} == want:
                return order
    return xs


def _zeros_full(v) -> bool:
    return isinstance(v, Value) and v.producer is not None and v.producer.prim is P.full and \
        not isinstance(v.producer.attrs["value"], bool) and v.producer.attrs["value"] == 0


def _unit_ranges(index) -> bool:
    return all(step == 1 and 0 <= start <= stop for start, stop, step in index)


def _disjoint(a, b) -> bool:
    """Two unit-step ranges lists miss each other along some axis."""
    return any(s1 >= e2 or s2 >= e1 for (s1, e1, _), (s2, e2, _) in zip(a, b))


def _zero_over(v, index) -> bool:
    """``v`` is zero wherever the unit-step ranges ``index`` read: a zero ``full``, a zero pad
    placing its operand elsewhere, or a sum (of ``v``'s type) of such."""
    if _zeros_full(v):
        return True
    if not (isinstance(v, Value) and v.producer is not None):
        return False
    src = v.producer
    if src.prim is P.pad:
        held = tuple((lo, lo + d, 1) for (lo, _), d in zip(src.attrs["pads"], src.inputs[0].shape))
        return src.attrs.get("value", 0.0) == 0 and all(lo >= 0 and hi >= 0 for lo, hi in src.attrs["pads"]) \
            and _disjoint(index, held)
    return src.prim is P.add and all(isinstance(x, Value) and x.type == v.type and _zero_over(x, index)
                                     for x in src.inputs)


def _scatter_as_pad(n: Node, g: Graph) -> list[Node] | None:
    """The slice_scatter ``n`` of a tensor over a range where its base is zero (see
    ``_zero_over``) as the base plus the tensor zero-padded to the base's shape (appended to
    ``g``), or None: a slice's gradient, scattered into zeros, is a pad that add trees of pads
    join into one concat (the gradients of the gates an LSTM step slices out of one tensor)."""
    base, src = n.inputs
    index = tuple(tuple(r) for r in n.attrs["index"])
    if not (isinstance(src, Value) and src.dtype is n.output.dtype and _unit_ranges(index)  # (no cast,
            and tuple(src.shape) == tuple(e - s for s, e, _ in index) and _zero_over(base, index)):  # no broadcast)
        return None
    pads = tuple((s, d - e) for (s, e, _), d in zip(index, n.output.shape))
    padded = g.add_node(P.pad, [src], {"pads": pads}, loc=n.loc)
    made = [padded.producer]
    if not _zeros_full(base):
        made.append(g.add_node(P.add, [base, padded], {}, loc=n.loc).producer)
    return made


def _through_permute(a) -> tuple[tuple | None, Value] | None:
    """(None, ``a``) for a produced value that is not a permute; (the permute's dims, its operand)
    for a permute of a produced value; None for anything else (a number, a graph input, a permute
    of one)."""
    if not (isinstance(a, Value) and a.producer is not None):
        return None
    if a.producer.prim is not P.permute:
        return None, a
    b = a.producer.inputs[0]
    if not (isinstance(b, Value) and b.producer is not None):
        return None
    return tuple(a.producer.attrs["dims"]), b


def _slice_part(n: Node, g: Graph) -> tuple[Value, list[Node]] | None:
    """What the slice ``n`` reads when it reads one operand of a ``concat``, a part of a
    ``slice_scatter`` the scatter decides, or only the operand or only the fill of a ``pad`` (see
    the module docstring), with the nodes made for it (appended to ``g``), or None."""
    index = tuple(tuple(r) for r in n.attrs["index"])
    seen = _through_permute(n.inputs[0]) if _unit_ranges(index) else None
    if seen is None:
        return None
    dims, b = seen
    if dims is not None:
        inner = [None] * len(dims)
        for i, d in enumerate(dims):
            inner[d] = index[i]
        index = tuple(inner)
    src = b.producer
    made: list[Node] = []
    if src.prim is P.concat:
        k = wrap_dims((src.attrs["axis"],), b.ndim)[0]
        off, part = 0, None
        for x in src.inputs:
            if index[k][0] >= off and index[k][1] <= off + x.shape[k]:
                part = x
                break
            off += x.shape[k]
        if part is None or not isinstance(part, Value) or part.dtype is not n.output.dtype:
            return None  # a concat of mixed dtypes casts its operands
        index = index[:k] + ((index[k][0] - off, index[k][1] - off, 1),) + index[k + 1:]
        r = part
        if any((s, e) != (0, d) for (s, e, _), d in zip(index, part.shape)):
            r = g.add_node(P.slice, [part], {"index": index}, loc=n.loc)
            made.append(r.producer)
    elif src.prim is P.slice_scatter:
        base, scattered = src.inputs
        where = tuple(tuple(r) for r in src.attrs["index"])
        if not _unit_ranges(where):
            return None
        if index == where:
            if not isinstance(scattered, Value) or scattered.dtype is not n.output.dtype:
                return None  # the scatter casts its source
            r = scattered
        elif _disjoint(index, where):
            r = g.add_node(P.slice, [base], {"index": index}, loc=n.loc)
            made.append(r.producer)
        else:
            return None
    elif src.prim is P.pad and all(lo >= 0 and hi >= 0 for lo, hi in src.attrs["pads"]):
        x = src.inputs[0]
        held = tuple((lo, lo + d, 1) for (lo, _), d in zip(src.attrs["pads"], x.shape))
        if _disjoint(index, held):  # only padding: the fill
            r = g.add_node(P.full, [], {"shape": tuple(e - s for s, e, _ in index),
                                        "value": src.attrs.get("value", 0.0), "dtype": n.output.dtype}, loc=n.loc)
            made.append(r.producer)
        elif all(h0 <= s and e <= h1 for (s, e, _), (h0, h1, _) in zip(index, held)):  # only the operand
            if not isinstance(x, Value):
                return None
            index = tuple((s - h0, e - h0, 1) for (s, e, _), (h0, _, _) in zip(index, held))
            r = x
            if any((s, e) != (0, d) for (s, e, _), d in zip(index, x.shape)):
                r = g.add_node(P.slice, [x], {"index": index}, loc=n.loc)
                made.append(r.producer)
        else:
            return None
    else:
        return None
    if dims is not None:
        r = g.add_node(P.permute, [r], {"dims": dims}, loc=n.loc)
        made.append(r.producer)
    return r, made


def _selected_part(n: Node, g: Graph) -> tuple[Value, list[Node]] | None:
    """The ``select`` ``n`` (possibly through a permute) of a ``concat`` along the concatenated
    axis, as a select of the one operand it reads, with the nodes made for it (appended to
    ``g``), or None: the last step of an RNN's stacked outputs, read without the stack."""
    d, i = n.attrs["dim"], n.attrs["index"]
    seen = _through_permute(n.inputs[0])
    if seen is None:
        return None
    dims, b = seen
    if dims is not None:
        d = dims[d]
    src = b.producer
    if src.prim is not P.concat or wrap_dims((src.attrs["axis"],), b.ndim)[0] != d:
        return None
    off = 0
    for x in src.inputs:
        if off <= i < off + x.shape[d]:
            break
        off += x.shape[d]
    if not isinstance(x, Value) or x.dtype is not n.output.dtype:
        return None  # a concat of mixed dtypes casts its operands
    r = g.add_node(P.select, [x], {"dim": d, "index": i - off}, loc=n.loc)
    made = [r.producer]
    if dims is not None:  # the other axes, in the permuted order, renumbered without d
        rest = tuple(k - (k > d) for k in dims if k != d)
        if rest != tuple(range(len(rest))):
            r = g.add_node(P.permute, [r], {"dims": rest}, loc=n.loc)
            made.append(r.producer)
    return r, made


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
            elif p is P.mul and _scaled_expand(a, b, n):  # expand(x) * c = expand(x * c): on x's size
                small = g.add_node(P.mul, [a.producer.inputs[0], b], {}, loc=n.loc)
                new = g.add_node(P.expand, [small], dict(a.producer.attrs), n.output.type, n.loc)
                before[id(n)] = g.nodes[-2:]
                del g.nodes[-2:]
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
            elif p is P.add and _zeros_full(a) and _same(b, n):
                new = b
            elif p is P.add and _zeros_full(b) and _same(a, n):
                new = a
            elif p in (P.reshape, P.permute, P.slice) and isinstance(a, Value) and \
                    a.producer is not None and a.producer.prim is P.full:  # a view of a fill (never larger)
                new = g.add_node(P.full, [], {**a.producer.attrs, "shape": tuple(n.output.shape)}, n.output.type, n.loc)
                g.nodes.pop()
                before[id(n)] = [new.producer]
            elif p is P.select and a.shape[n.attrs["dim"]] == 1 and a.producer is not None and \
                    a.producer.prim is P.reshape and _same(a.producer.inputs[0], n):  # a unit axis added, dropped
                new = a.producer.inputs[0]
            elif p is P.select and (part := _selected_part(n, g)) is not None:
                new, made = part
                before[id(n)] = made
                del g.nodes[-len(made):]
            elif p is P.slice and (part := _slice_part(n, g)) is not None:
                new, made = part
                if made:
                    before[id(n)] = made
                    del g.nodes[-len(made):]
            elif p is P.slice_scatter and (made := _scatter_as_pad(n, g)) is not None:
                new = made[-1].output
                before[id(n)] = made
                del g.nodes[-len(made):]
            elif p is P.add and (sums := _sum_of_sums(n, g)) is not None:  # one sum of a stack
                xs = _stack_order([s.inputs[0] for s in sums])
                rows = [g.add_node(P.reshape, [x], {"shape": (1, *x.shape)}, loc=n.loc) for x in xs]
                stack = g.add_node(P.concat, rows, {"axis": 0}, loc=n.loc)
                made = [r.producer for r in rows] + [stack.producer]
                dims = (0, *(d + 1 for d in wrap_dims(sums[0].attrs["dims"], xs[0].ndim)))
                total = g.add_node(P.sum, [stack], {"dims": dims, "keepdim": True}, loc=n.loc)
                new = g.add_node(P.reshape, [total], {"shape": tuple(n.output.shape)}, loc=n.loc)
                made += [total.producer, new.producer]
                before[id(n)] = made
                del g.nodes[-len(made):]
            elif p is P.add and (made := _rewritten_tree(n, g)) is not None:  # a concat, one product
                new = made[-1].output
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
