"""Rewrites of lowered graphs only (after autodiff): forms that compute the same values in fewer
passes, but that autodiff must not see, since their derivatives would be computed differently.

A product with a sigmoid read nowhere else, ``a * sigmoid(z)`` (silu, swish, the LSTM's gates, a
GLU), is ``a / (1 + exp(-z))``: a large float32 sigmoid is four numpy passes (``1 / (1 +
exp(-z))``), and the division by the denominator replaces the reciprocal and the product (on 1M
float32 elements: silu 1.14 ms against 0.73 ms for the plain numpy form). The values are the
same limits included: z = -inf gives exp(inf) = inf and a / inf = 0, as 0 * a; z = +inf gives a;
NaN stays NaN. Only large float32 arrays: smaller ones, and other types, compute sigmoid in one
scipy call, against which four passes would be slower. (Autodiff of ``a / (1 + exp(-z))`` would
give NaN gradients for z below -88, where exp(-z) overflows: so not in the composite.)

A ``stop_gradient`` is its operand once autodiff is done (softmax's shift): no node of its own
between a reduction and its readers.

A sign flip ``(1 - 2 * float(z > 0)) * z`` (logsigmoid's and softplus's stable form, written so
for its derivative at 0) is ``-abs(z)``, bit for bit (-0.0 and NaN included): two passes instead of
five; and ``abs(-x)`` is ``abs(x)``.

gelu's ``0.5 x * (1 + erf(x / sqrt 2))`` on a large float32 array, its parts read nowhere else,
is ``x / (1 + exp2(x * H(x^2)))``: the normal CDF as a sigmoid of a polynomial (H fitted by
``tools/fit_erf.py --gelu``), 17 numpy passes where erf's tanh form and gelu's own arithmetic take
19, with exp2 (0.24 ns an element here) in place of tanh (0.38); 64x256: 30 against 36 us. Its
error is within 2.4 ulp for x >= 0 and 1.2e-7 absolute below (erf's form: 2.4 ulp, 3.1e-7, as it
cancels for x < 0); +inf gives inf, -inf NaN (-inf * 0 in erf's form), -0.0 stays -0.0. A saved
erf (training) keeps the erf form: its value is read by the backward anyway.

A clamp, ``where(x > c, c, x)`` (or ``where(x < c, c, x)``) of a float ``x`` and a nonzero
number ``c``, is ``minimum(x, c)`` (``maximum``), bit for bit (NaN stays NaN; a tie returns c,
which is x), which generated code computes in one clip pass against the comparison and a
three-pass select (clamp's and softplus's form).

softplus's select, ``where(beta x > t, x, log1p(exp(min(beta x, t))) / beta)`` for beta > 0,
is ``maximum(x, ...)`` where log1p(exp(t)) rounds to t in x's type (float32 and PyTorch's
threshold 20): past the threshold the second operand is then t / beta, below x but for rounding,
and below it log1p(exp(beta x)) / beta >= x but for rounding; where rounding decides, the two
differ by an ulp. One pass for the select's three, which with the clamp above brings softplus on
1M float32 from 1.37x to 0.85x of its plain numpy form.

A stride-1 convolution's input gradient, ``fold`` (col2im) of the product of the output gradient
with the weight, is the transposed convolution: the output gradient unfolded with padding ``k - 1
- p`` (so each input pixel gathers the windows it fed) times the spatially flipped weight, one
product and no scatter-add. In the CNN step (conv2: 16 to 32 channels of 8x8, batch 64, one
thread, per-statement profile) fold + product took 1085 us, unfold + product 871; the windows
hold K * OC columns (fold's product K * C), so this pays only with unfold's one-copy,
channels-innermost buffer (with the channels before the kernel, that unfold alone took 783 us).
The identity holds for any product of that shape, so the match only checks the shapes and the
reshape/permute chain conv's VJP builds (one group, no stride, no dilation, padding at most
k - 1; under vmap the product has another shape and fold stays).
"""
from __future__ import annotations

import math

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir import prims as P
from graphc.ir.graph import Graph, Node, Value


def _producer(v, prim) -> Node | None:
    """``v``'s producer when ``v`` is a value that ``prim`` makes, else None."""
    n = v.producer if isinstance(v, Value) else None
    return n if n is not None and n.prim is prim else None


def _sigmoid_read_once(s, n: Node, outputs: set[int]) -> bool:
    """Whether ``s`` is a float32 sigmoid computed in numpy passes (not by scipy's one call: see
    ``prims.sigmoid_is_expit``) whose only reader is ``n`` (of its own type), and not a graph
    output (``outputs``: their ids)."""
    return (_producer(s, P.sigmoid) is not None and s.users == [n] and id(s) not in outputs
            and s.dtype is dt.float32 and n.output.dtype is dt.float32
            and not P.sigmoid_is_expit(s.dtype.np, math.prod(s.shape)))


def _made_by(v, prim, *operands) -> Node | None:
    """``v``'s producer when it is ``prim`` of operands matching ``operands`` (a number: equal;
    None: any), else None."""
    n = _producer(v, prim)
    if n is None or len(n.inputs) != len(operands):
        return None
    for x, want in zip(n.inputs, operands):
        if want is not None and (isinstance(x, Value) or x != want):
            return None
    return n


def _sign_flip_of(s, z) -> bool:
    """Whether ``s`` is ``1 - 2 * cast(z > 0)`` (or ``1 - cast(z > 0) * 2``), read only by its product."""
    sub = _made_by(s, P.sub, 1, None)
    if sub is None or len(s.users) != 1:
        return False
    m = sub.inputs[1]
    prod = _made_by(m, P.mul, None, 2) or _made_by(m, P.mul, 2, None)
    if prod is None:
        return False
    c = next(x for x in prod.inputs if isinstance(x, Value))
    cast = _made_by(c, P.cast, None)
    gt = cast and _made_by(cast.inputs[0], P.gt, None, 0)
    return bool(gt) and gt.inputs[0] is z and z.dtype.is_floating_point and s.dtype is z.dtype


def _only_user(v, prim) -> Node | None:
    """``v``'s producer when it is ``prim`` and ``v`` has one reader."""
    n = _producer(v, prim)
    return n if n is not None and len(v.users) == 1 else None


def _appended_since(g: Graph, start: int) -> list[Node]:
    """The nodes appended to ``g`` since it had ``start`` nodes, taken off its end (they take a
    replaced node's place in the order)."""
    made = g.nodes[start:]
    del g.nodes[start:]
    return made


# H, highest coefficient first (tools/fit_erf.py --gelu): negative for every x, so the CDF is
# above one half for x > 0; overflow of the powers gives exp2(-inf) = 0 (gelu = x) for large x > 0
# and exp2(inf) = inf (gelu = -0.0) for large x < 0, as erf's form
_GELU_H = (-5.018658988502103e-09, 3.800351959361252e-07, -1.1413352104941172e-05, 0.00015935229262614229,
           9.487615391611914e-05, -0.1048360379060602, -2.302209026035844)


def _gelu_erf(n: Node, outputs: set[int]) -> tuple[Value, list[Node]] | None:
    """For ``n`` = ``(x * 0.5) * (erf(x * (1 / sqrt 2)) + 1)`` (in either order) on a float32 ``x``
    whose erf takes the numpy passes, its parts read by ``n`` only: ``x`` and the nodes the rewrite
    replaces; else None."""
    for half, one_plus in ((n.inputs[0], n.inputs[1]), (n.inputs[1], n.inputs[0])):
        h = _made_by(half, P.mul, None, 0.5)
        a = _made_by(one_plus, P.add, None, 1) or _made_by(one_plus, P.add, 1, None)
        if h is None or a is None:
            continue
        e = next((v for v in a.inputs if isinstance(v, Value)), None)
        erf = _producer(e, P.erf)
        scaled = erf and _made_by(erf.inputs[0], P.mul, None, 1 / math.sqrt(2))
        x = h.inputs[0]
        if scaled is None or scaled.inputs[0] is not x or x.dtype is not dt.float32 \
                or n.output.dtype is not dt.float32 or not P.in_numpy_passes(x.dtype.np, math.prod(x.shape)):
            continue
        parts = (half, one_plus, e, erf.inputs[0])
        if all(len(v.users) == 1 and id(v) not in outputs for v in parts):
            return x, [n, h, a, erf, scaled]
    return None


def _gelu_nodes(g: Graph, x: Value, n: Node) -> Value:
    """``x / (1 + exp2(x * H(x^2)))`` appended to ``g``, typed as ``n``'s output."""
    u = g.add_node(P.mul, [x, x], {}, loc=n.loc)
    p = g.add_node(P.mul, [u, _GELU_H[0]], {}, loc=n.loc)
    for c in _GELU_H[1:-1]:
        p = g.add_node(P.mul, [g.add_node(P.add, [p, c], {}, loc=n.loc), u], {}, loc=n.loc)
    z = g.add_node(P.mul, [g.add_node(P.add, [p, _GELU_H[-1]], {}, loc=n.loc), x], {}, loc=n.loc)
    d = g.add_node(P.add, [g.add_node(P.exp2, [z], {}, loc=n.loc), 1], {}, loc=n.loc)
    return g.add_node(P.div, [x, d], {}, n.output.type, n.loc)


_CLAMPS = {P.gt: P.minimum, P.lt: P.maximum}


def _clamp_of(n: Node) -> tuple[object, list] | None:
    """For a where ``n`` = ``where(x > c, c, x)`` or ``where(x < c, c, x)`` (x a float value of the
    result's type, c a finite nonzero number): (minimum or maximum, [x, c]); else None."""
    cond, c, x = n.inputs
    cmp = cond.producer if isinstance(cond, Value) else None
    if cmp is None or cmp.prim not in _CLAMPS or type(c) not in (int, float) or not math.isfinite(c) or c == 0 \
            or not isinstance(x, Value) or x.type != n.output.type or not x.dtype.is_floating_point \
            or x.dtype.is_complex or cmp.inputs[0] is not x or isinstance(cmp.inputs[1], Value) or cmp.inputs[1] != c:
        return None
    return _CLAMPS[cmp.prim], [x, c]


def _softplus_select(n: Node) -> tuple[object, list] | None:
    """For a where ``n`` of softplus's form (see the module docstring): (maximum, [x, the soft
    branch]); else None."""
    cond, x, soft = n.inputs
    gt = _producer(cond, P.gt)
    if gt is None or not isinstance(x, Value) or x.type != n.output.type or not x.dtype.is_floating_point:
        return None
    bx, t = gt.inputs
    div = _producer(soft, P.div)
    beta = div.inputs[1] if div is not None else 1
    if type(beta) not in (int, float) or not beta > 0 or type(t) not in (int, float) or not math.isfinite(t):
        return None
    with np.errstate(over="ignore"):
        tt = x.dtype.np.type(t)
        if np.log1p(np.exp(tt)) != tt:  # past the threshold the second operand would exceed x
            return None
    log1p = _producer(div.inputs[0] if div is not None else soft, P.log1p)
    exp = log1p and _producer(log1p.inputs[0], P.exp)
    low = exp and _made_by(exp.inputs[0], P.minimum, None, t)
    scaled = bx is x or (_made_by(bx, P.mul, None, beta) is not None and bx.producer.inputs[0] is x)
    return (P.maximum, [x, soft]) if low is not None and low.inputs[0] is bx and scaled else None


def _in_place_of(g: Graph, n: Node, start: int, q: Value, made: dict[int, list[Node]]) -> None:
    """``q``, made of the nodes appended to ``g`` since it had ``start``, replaces ``n``'s output:
    its readers read ``q``, and those nodes take ``n``'s place in the order."""
    made[id(n)] = _appended_since(g, start)
    g.replace_all_uses(n.output, q)


def _conv_input_grad(g: Graph, n: Node, made: dict[int, list[Node]]) -> list[Node] | None:
    """For ``n`` = fold(reshape(permute(reshape(matmul(G, B))))) as conv's VJP builds it for a
    stride-1 convolution: the transposed convolution computing the same value put in its place
    (``_in_place_of``), and the nodes it replaces returned (see the module docstring); else None."""
    kernel, size, padding = n.attrs["kernel"], n.attrs["size"], n.attrs["padding"]
    nsp = len(kernel)
    if any(s != 1 for s in n.attrs["stride"]) or any(d != 1 for d in n.attrs["dilation"]) \
            or any(not (0 <= p <= k - 1) for (lo, hi), k in zip(padding, kernel) for p in (lo, hi)):
        return None
    r3 = _only_user(n.inputs[0], P.reshape)
    r2 = r3 and _only_user(r3.inputs[0], P.permute)
    r1 = r2 and _only_user(r2.inputs[0], P.reshape)
    mm = r1 and _only_user(r1.inputs[0], P.matmul)
    if not mm:
        return None
    a, b = mm.inputs
    batch, c = n.output.shape[:2]
    out_sp = tuple(n.inputs[0].shape[2:2 + nsp])
    kk, pixels = math.prod(kernel), math.prod(out_sp)
    oc = a.shape[-1] if len(a.shape) == 4 else 0
    if (tuple(a.shape), tuple(b.shape)) != ((batch, 1, pixels, oc), (1, oc, c * kk)) \
            or tuple(r1.attrs["shape"]) != (batch, 1) + out_sp + tuple(kernel) + (c,) \
            or tuple(r2.attrs["dims"]) != (0, 1, 2 + 2 * nsp) + tuple(range(2, 2 + 2 * nsp)):
        return None
    sp = tuple(range(1, 1 + nsp))
    start = len(g.nodes)
    img = g.add_node(P.reshape, [g.add_node(P.permute, [a], {"dims": (0, 1, 3, 2)}, loc=n.loc)],
                     {"shape": (batch, oc) + out_sp}, loc=n.loc)
    cols = g.add_node(P.unfold, [img], {"kernel": tuple(kernel), "stride": (1,) * nsp, "padding": tuple(
        (k - 1 - lo, k - 1 - hi) for (lo, hi), k in zip(padding, kernel)), "dilation": (1,) * nsp}, loc=n.loc)
    # (N, size..., kernel..., OC): unfold's memory order, so this permute + reshape are views
    cols = g.add_node(P.reshape, [g.add_node(P.permute, [cols], {"dims": (0,) + tuple(range(2, 2 + 2 * nsp)) + (1,)},
                                             loc=n.loc)], {"shape": (batch, math.prod(size), kk * oc)}, loc=n.loc)
    # B's columns are (kernel..., C) per output channel; the flipped kernel's rows (kernel..., OC)
    w = g.add_node(P.reshape, [b], {"shape": (oc,) + tuple(kernel) + (c,)}, loc=n.loc)
    w = g.add_node(P.slice, [w], {"index": ((0, oc, 1),) + tuple((k - 1, -1, -1) for k in kernel) + ((0, c, 1),)},
                   loc=n.loc)
    w = g.add_node(P.reshape, [g.add_node(P.permute, [w], {"dims": (1 + nsp,) + sp + (0,)}, loc=n.loc)],
                   {"shape": (c, kk * oc)}, loc=n.loc)
    # (C, K * OC) times each image's (K * OC, pixels): the result is channels-first already, no
    # transposing copy (a 32-to-16-channel 3x3 conv of 8x8 at batch 64: 375 us against 491 for one
    # (N * pixels, K * OC) product and the copy)
    cols = g.add_node(P.permute, [cols], {"dims": (0, 2, 1)}, loc=n.loc)
    y = g.add_node(P.reshape, [g.add_node(P.matmul, [w, cols], {}, loc=n.loc)], {"shape": (batch, c) + tuple(size)},
                   n.output.type, n.loc)
    _in_place_of(g, n, start, y, made)
    return [n, r3, r2, r1, mm]


def lowered_rewrites(g: Graph) -> Graph:
    made: dict[int, list[Node]] = {}  # id(node replaced) -> the nodes computing it, in order
    gone: list[Node] = []
    outputs = {id(v) for v in g.outputs}
    for n in list(g.nodes):
        if n.prim is P.stop_gradient and id(n.output) not in outputs:
            g.replace_all_uses(n.output, n.inputs[0])  # autodiff is done: it is its operand now
            gone.append(n)
            continue
        if n.prim is P.abs and (inner := _made_by(n.inputs[0], P.neg, None)) is not None:
            n.inputs[0].users.remove(n)
            n.inputs = [inner.inputs[0]]
            inner.inputs[0].users.append(n)
            continue
        if n.prim is P.where and (one := _clamp_of(n) or _softplus_select(n)) is not None:
            start = len(g.nodes)
            _in_place_of(g, n, start, g.add_node(one[0], one[1], {}, n.output.type, n.loc), made)
            gone.append(n)
            continue
        if n.prim is P.fold and (replaced := _conv_input_grad(g, n, made)) is not None:
            gone += replaced
            continue
        if n.prim is not P.mul or len(n.inputs) != 2:
            continue
        if (gelu := _gelu_erf(n, outputs)) is not None:
            start = len(g.nodes)
            _in_place_of(g, n, start, _gelu_nodes(g, gelu[0], n), made)
            gone += gelu[1]
            continue
        flip = next(((s, z) for s, z in ((n.inputs[0], n.inputs[1]), (n.inputs[1], n.inputs[0]))
                     if isinstance(z, Value) and _sign_flip_of(s, z)), None)
        if flip is not None and n.output.dtype is flip[1].dtype:
            start = len(g.nodes)
            q = g.add_node(P.neg, [g.add_node(P.abs, [flip[1]], {}, loc=n.loc)], {}, n.output.type, n.loc)
            _in_place_of(g, n, start, q, made)
            gone.append(n)
            continue
        for s, a in ((n.inputs[1], n.inputs[0]), (n.inputs[0], n.inputs[1])):
            if _sigmoid_read_once(s, n, outputs) and (isinstance(a, Value) and a.dtype is dt.float32 or type(a) in (int, float)):
                z = s.producer.inputs[0]
                start = len(g.nodes)
                e = g.add_node(P.exp, [g.add_node(P.neg, [z], {}, loc=n.loc)], {}, loc=n.loc)
                q = g.add_node(P.div, [a, g.add_node(P.add, [e, 1], {}, loc=n.loc)], {}, n.output.type, n.loc)
                _in_place_of(g, n, start, q, made)
                gone += [n, s.producer]
                break
    g.remove_nodes(gone, made)
    return g
