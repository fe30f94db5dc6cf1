"""Reverse and forward mode as transformations of the traced graph.

Each transform traces ``f`` into a graph (``trace.FuncTrace``) and extends it with the autodiff
pass's reverse sweep (``passes.autodiff.backprop``, the VJP table): a vjp appends the sweep from
cotangent inputs. Forward mode uses the **double-VJP trick** instead of a table of JVP rules: the
reverse sweep computes ``u -> J^T u``, which is linear in ``u``; sweeping back through it from
the tangent ``t`` gives ``J t``. One rule table (the VJP rules, which are written with primitives
and are themselves differentiable) then serves both modes, so every differentiable primitive has
forward mode for free and the two modes cannot disagree; the price is that a jvp runs a backward
sweep over the backward sweep (roughly 2-3x the work of a forward-mode rule), and dead-code
elimination drops what the tangent does not need.

The graph is then run on the caller's tensors in two parts: the part that does not depend on the
cotangents/tangents once (the forward values), the rest each time the returned function is called.
``jacrev``/``jacfwd`` call that function under ``vmap`` on a basis, as PyTorch does.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from graphc.ir import prims as P
from graphc.ir.graph import Graph, Value, building
from graphc.passes.autodiff.backprop import backprop, reaches
from graphc.passes.dce import dce
from graphc.passes.vmap import interpret

from ..autograd import grad_mode
from ..device import using_device
from ..tensors import Tensor
from . import pytree
from .trace import DataDependentError, FuncTrace
from .vmap import vmap


# ---- argument handling (PyTorch's messages) --------------------------------------------------

def _argnums(argnums: Any, n: int) -> tuple[tuple[int, ...], bool]:
    """``argnums`` as a tuple of non-negative ints, and whether it was a single int."""
    def one(a):
        if not isinstance(a, int):
            raise RuntimeError(f"argnum must be int, got: {type(a)}")
        if not -n <= a < n:
            raise RuntimeError(f"Got argnum={a}, but only {n} positional inputs")
        return a % n
    if isinstance(argnums, int):
        return (one(argnums),), True
    if not isinstance(argnums, tuple):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    if not argnums:
        raise RuntimeError("argnums must be non-empty")
    if len(set(argnums)) != len(argnums):
        raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    return tuple(one(a) for a in argnums), False


def _split_aux(api: str, out: Any, has_aux: bool) -> tuple[Any, Any]:
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{api}(f, ...): output of function f should be a tuple: (output, aux) if has_aux is True")
    return out


def _zeros(v: Value) -> Value:
    return P.full(shape=tuple(v.shape), value=0, dtype=v.dtype)


def _late_nodes(g: Graph, late: list[Value]) -> tuple[list, list]:
    """``g``'s nodes split into those that do not depend on the ``late`` inputs and those that do."""
    dep = {id(v) for v in late}
    early, rest = [], []
    for n in g.nodes:
        if any(id(x) in dep for x in n.value_inputs()):
            dep.add(id(n.output))
            rest.append(n)
        else:
            early.append(n)
    return early, rest


class _Traced:
    """``f`` traced with the differentiated arguments' tensors as graph inputs."""

    def __init__(self, api: str, func: Callable, primals: tuple, has_aux: bool) -> None:
        self.api = api
        flat, self.primal_spec = pytree.flatten(primals)
        for t in flat:
            if not isinstance(t, Tensor):
                raise ValueError(f"Thing passed to transform API must be Tensor, got {type(t)}")
            if not t.dtype.is_floating_point:
                raise RuntimeError(f"{api}: only Tensors of floating point dtype can be differentiated, got {t.dtype}")
        self.flat_primals = flat
        self.trace = trace = FuncTrace(api, flat[0].device if flat else None)
        self.inputs = [trace.input(tuple(t.shape), t.dtype, True) for t in flat]
        with grad_mode.enable_grad():  # grad ignores an outer no_grad, as PyTorch's does
            out = trace.run(func, *pytree.unflatten(self.inputs, self.primal_spec))
        out, aux = _split_aux(api, out, has_aux)
        self.out, self.aux = out, aux
        self.flat_out, self.out_spec = pytree.flatten(out)
        self.flat_aux, self.aux_spec = pytree.flatten(aux)

    def check_outputs(self) -> None:
        for o in self.flat_out:
            if not isinstance(o, Tensor):
                raise RuntimeError(f"{self.api}: Expected f(*primals) to return only tensors, got unsupported type "
                                   f"{type(o)}")
            if not o.dtype.is_floating_point:
                raise RuntimeError(f"{self.api}(f, ...): All outputs of f must be floating-point or complex Tensors, "
                                   f"got Tensor with dtype {o.dtype}")

    def split(self, late: list[Value], results: list[Value], zeros: tuple = ()) -> Callable:
        """Run the part of the graph that does not depend on ``late`` now; return the function of
        the late values that runs the rest and gives ``results``. ``zeros``: inputs read as zeros."""
        trace, g = self.trace, self.trace.graph
        out_vals = [trace.value(o) for o in self.flat_out]
        aux_vals = [trace.value(a) for a in self.flat_aux]
        g.set_outputs([v for v in out_vals + aux_vals + results if v is not None])
        dce(g)
        early, rest = _late_nodes(g, late)
        env = trace.lifted_env()
        for s, t in zip(self.inputs, self.flat_primals):
            env[id(s._value)] = (t, False)
        with using_device(trace.device):  # constants the graph creates go on its inputs' device
            for z in zeros:
                env[id(z)] = (_zeros(z), False)
            interpret(early, env)
        self.out_real = pytree.unflatten([env[id(v)][0] for v in out_vals], self.out_spec)
        self.aux_real = pytree.unflatten([o if v is None else env[id(v)][0] for o, v in zip(self.flat_aux, aux_vals)],
                                         self.aux_spec)

        def run_late(values: list) -> list:
            e = dict(env)
            for v, x in zip(late, values):
                e[id(v)] = (x, False)
            with using_device(trace.device):
                interpret(rest, e)
            return [e[id(r)][0] for r in results]
        return run_late


def _vjp_parts(api: str, func: Callable, primals: tuple, has_aux: bool):
    """The traced call, and the function of the output cotangents (flat) giving the primals'
    gradients (flat)."""
    tr = _Traced(api, func, primals, has_aux)
    tr.check_outputs()
    g = tr.trace.graph
    out_vals = [tr.trace.value(o) for o in tr.flat_out]
    cts = [g.add_input(v.type, "input", f"ct{i}") for i, v in enumerate(out_vals)]
    ct = backprop(g, list(zip(out_vals, cts)), {id(s._value) for s in tr.inputs})
    with building(g):
        grads = [ct.get(id(s._value)) or _zeros(s._value) for s in tr.inputs]
    return tr, tr.split(cts, grads)


def _jvp_parts(api: str, func: Callable, primals: tuple, has_aux: bool, strict: bool = False):
    """The traced call, and the function of the primals' tangents (flat) giving the outputs'
    tangents (flat): the transpose of the reverse sweep (double VJP)."""
    tr = _Traced(api, func, primals, has_aux)
    tr.check_outputs()
    g = tr.trace.graph
    out_vals = [tr.trace.value(o) for o in tr.flat_out]
    # the cotangent the sweep is linear in (an input: the second sweep starts there; its value is never used)
    us = [g.add_input(v.type, "input", f"u{i}") for i, v in enumerate(out_vals)]
    sources = {id(s._value) for s in tr.inputs}
    if strict and not all(id(v) in reaches(g.nodes, set(sources)) for v in out_vals):
        raise RuntimeError("jvp(f, primals, tangents, strict=True): The output of f is independent of the inputs. "
                           "This is not allowed with strict=True.")
    ct = backprop(g, list(zip(out_vals, us)), sources)
    tangents = [g.add_input(s._value.type, "input", f"t{i}") for i, s in enumerate(tr.inputs)]
    seeds = [(ct[id(s._value)], t) for s, t in zip(tr.inputs, tangents) if id(s._value) in ct]
    ct2 = backprop(g, seeds, {id(u) for u in us}) if seeds else {}
    with building(g):
        jv = [ct2.get(id(u)) or _zeros(u) for u in us]
    return tr, tr.split(tangents, jv, us)


def _with_primals(func: Callable, args: tuple, nums: tuple[int, ...]) -> Callable:
    def f(*primals):
        a = list(args)
        for i, p in zip(nums, primals):
            a[i] = p
        return func(*a)
    return f


def _ones_like(t: Tensor):
    return P.full(shape=tuple(t.shape), value=1.0, dtype=t.dtype)


# ---- public transforms -----------------------------------------------------------------------

def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """``torch.func.grad_and_value``: the gradient of ``func``'s scalar output with respect to the
    arguments ``argnums``, and the output (with ``aux``: ``(grad, (output, aux))``)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        nums, single = _argnums(argnums, len(args))
        f = _with_primals(lambda *a: func(*a, **kwargs), args, nums)
        primals = tuple(args[i] for i in nums)
        try:
            tr = _Traced("grad_and_value", f, primals, has_aux)
        except DataDependentError:
            if any(t._symbolic for t in pytree.flatten(primals)[0]):
                raise  # inside another transform or a compile trace: no values to run on
            return _eager_grad_and_value(f, primals, single, has_aux)
        out = tr.out
        if not isinstance(out, Tensor):
            raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a Tensor, got {type(out)}")
        if out.dim() != 0:
            raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a scalar Tensor, got tensor "
                               f"with {out.dim()} dims. Maybe you wanted to use the vjp or jacrev APIs instead?")
        tr.check_outputs()
        g = tr.trace.graph
        v = tr.trace.value(out)
        with building(g):
            seed = P.full(shape=(), value=1.0, dtype=v.dtype)
        ct = backprop(g, [(v, seed)], {id(s._value) for s in tr.inputs})
        with building(g):
            grads = [ct.get(id(s._value)) or _zeros(s._value) for s in tr.inputs]
        flat = tr.split([], grads)([])
        grads = pytree.unflatten(flat, tr.primal_spec)
        grads = grads[0] if single else grads
        return (grads, (tr.out_real, tr.aux_real)) if has_aux else (grads, tr.out_real)
    return wrapper


def _eager_grad_and_value(f: Callable, primals: tuple, single: bool, has_aux: bool):
    """``grad_and_value`` of a function that reads its tensors' values in Python (``.item()``,
    ``if x > 0:``), which no graph can hold: by eager autograd on concrete tensors, as PyTorch's
    eager transform does. Tensors that already require grad stay connected to their history."""
    from ..autograd import grad as autograd_grad
    flat, spec = pytree.flatten(primals)
    leaves = [t if t.requires_grad else t.detach().requires_grad_() for t in flat]
    with grad_mode.enable_grad():
        out = f(*pytree.unflatten(leaves, spec))
        out, aux = _split_aux("grad_and_value", out, has_aux)
        if not isinstance(out, Tensor) or out.dim() != 0:
            raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a scalar Tensor, got "
                               f"{type(out) if not isinstance(out, Tensor) else f'tensor with {out.dim()} dims'}")
        create = any(t.requires_grad for t in flat)
        grads = autograd_grad(out, leaves, allow_unused=True, create_graph=create) if out.requires_grad else \
            [None] * len(leaves)
    with using_device(flat[0].device):
        grads = [g if g is not None else P.full(shape=tuple(t.shape), value=0, dtype=t.dtype)
                 for g, t in zip(grads, flat)]
    grads = pytree.unflatten(grads, spec)
    grads = grads[0] if single else grads
    value = out if create else out.detach()
    return (grads, (value, aux)) if has_aux else (grads, value)


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """``torch.func.grad``: the gradient of ``func``'s scalar output (with ``aux``: ``(grad, aux)``)."""
    gv = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        return (g, value[1]) if has_aux else g
    return wrapper


def vjp(func: Callable, *primals, has_aux: bool = False):
    """``torch.func.vjp``: ``(output, vjp_fn)`` (and ``aux``); ``vjp_fn(cotangents)`` gives a tuple
    with the gradient for each primal."""
    tr, run = _vjp_parts("vjp", func, primals, has_aux)

    def vjp_fn(cotangents, retain_graph: bool = True, create_graph: bool | None = None):
        flat, spec = pytree.flatten(cotangents)
        if spec != tr.out_spec:
            raise RuntimeError("Expected pytree structure of cotangents to be the same as pytree structure of outputs "
                               f"to the function. cotangents: {spec}, primal output: {tr.out_spec}")
        for i, (c, o) in enumerate(zip(flat, tr.flat_out)):
            if not isinstance(c, Tensor) or tuple(c.shape) != tuple(o.shape):
                got = list(c.shape) if isinstance(c, Tensor) else type(c).__name__
                raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {got} and output[{i}] has a "
                                   f"shape of {list(o.shape)}.")
        return pytree.unflatten(run(flat), tr.primal_spec)

    return (tr.out_real, vjp_fn, tr.aux_real) if has_aux else (tr.out_real, vjp_fn)


def jvp(func: Callable, primals: Any, tangents: Any, *, strict: bool = False, has_aux: bool = False):
    """``torch.func.jvp``: ``(output, jvp_out)`` (and ``aux``), the Jacobian of ``func`` at ``primals``
    times ``tangents``."""
    if not isinstance(primals, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals to be a tuple. E.g. it should be valid to "
                           "call f(*primals).")
    flat_p, ps = pytree.flatten(primals)
    flat_t, ts = pytree.flatten(tangents)
    if ps != ts:
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have the same python "
                           f"structure. For example, if primals is a tuple of 3 tensors, tangents also must be. Got "
                           f"primals with structure {ps} and tangents with structure {ts}")
    for p, t in zip(flat_p, flat_t):
        if not isinstance(t, Tensor) or tuple(t.shape) != tuple(p.shape):
            raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have the same shape, "
                               f"got {list(p.shape)} and {list(t.shape) if isinstance(t, Tensor) else type(t)}")
    tr, run = _jvp_parts("jvp", func, primals, has_aux, strict)
    out = pytree.unflatten(run(flat_t), tr.out_spec)
    return (tr.out_real, out, tr.aux_real) if has_aux else (tr.out_real, out)


def jacrev(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           chunk_size: int | None = None, _preallocate_and_copy: bool = False) -> Callable:
    """``torch.func.jacrev``: the Jacobian by reverse mode (vjp, vmapped over the output basis)."""
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")

    @functools.wraps(func)
    def wrapper(*args):
        nums, single = _argnums(argnums, len(args))
        tr, run = _vjp_parts("jacrev", _with_primals(func, args, nums), tuple(args[i] for i in nums), has_aux)
        outs = tr.flat_out
        sizes = [o.numel() for o in outs]
        basis = _basis(outs, sizes)
        rows = vmap(lambda *cts: run(list(cts)), chunk_size=chunk_size)(*basis)  # per primal: (total, *x.shape)
        jacs, start = [], 0
        for o, n in zip(outs, sizes):
            per_primal = [r[start:start + n].reshape(tuple(o.shape) + tuple(x.shape))
                          for r, x in zip(rows, tr.flat_primals)]
            tree = pytree.unflatten(per_primal, tr.primal_spec)
            jacs.append(tree[0] if single else tree)
            start += n
        jac = pytree.unflatten(jacs, tr.out_spec)
        return (jac, tr.aux_real) if has_aux else jac
    return wrapper


def jacfwd(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:
    """``torch.func.jacfwd``: the Jacobian by forward mode (jvp, vmapped over the input basis)."""
    @functools.wraps(func)
    def wrapper(*args):
        nums, single = _argnums(argnums, len(args))
        tr, run = _jvp_parts("jacfwd", _with_primals(func, args, nums), tuple(args[i] for i in nums), has_aux)
        prims = tr.flat_primals
        sizes = [x.numel() for x in prims]
        basis = _basis(prims, sizes)
        cols = vmap(lambda *ts: run(list(ts)), randomness=randomness)(*basis)  # per output: (total, *o.shape)
        jacs = []
        for o, c in zip(tr.flat_out, cols):
            per_primal, start = [], 0
            for x, n in zip(prims, sizes):
                piece = c[start:start + n].reshape(tuple(x.shape) + tuple(o.shape))
                nx, no = x.dim(), o.dim()
                per_primal.append(piece.permute(*range(nx, nx + no), *range(nx)))
                start += n
            tree = pytree.unflatten(per_primal, tr.primal_spec)
            jacs.append(tree[0] if single else tree)
        jac = pytree.unflatten(jacs, tr.out_spec)
        return (jac, tr.aux_real) if has_aux else jac
    return wrapper


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """``torch.func.hessian``: ``jacfwd(jacrev(func))``, as in PyTorch."""
    return jacfwd(jacrev(func, argnums), argnums)


def _basis(tensors: list, sizes: list[int]) -> list:
    """For each tensor, its block of the identity over all their elements: (total, *its shape)."""
    from ..creation import eye
    total = sum(sizes)
    basis, start = [], 0
    for t, n in zip(tensors, sizes):
        basis.append(eye(total, dtype=t.dtype, device=t.device)[:, start:start + n].reshape((total,) + tuple(t.shape)))
        start += n
    return basis


def linearize(func: Callable, *primals) -> tuple[Any, Callable]:
    """``torch.func.linearize``: ``(func(*primals), jvp_fn)``; ``jvp_fn(*tangents)`` is the jvp at
    ``primals``, reusing the forward values computed once."""
    tr, run = _jvp_parts("linearize", func, primals, False)

    def jvp_fn(*tangents):
        flat, spec = pytree.flatten(tangents)
        if spec != tr.primal_spec:
            raise RuntimeError("linearize: Expected tangents to have the same python structure as primals. Got "
                               f"primals with structure {tr.primal_spec} and tangents with structure {spec}")
        for t, p in zip(flat, tr.flat_primals):
            if not isinstance(t, Tensor) or tuple(t.shape) != tuple(p.shape) or t.dtype is not p.dtype:
                raise RuntimeError(f"linearize: expected each tangent to have the shape and dtype of its primal "
                                   f"({list(p.shape)}, {p.dtype}), got {t!r}")
        return pytree.unflatten(run(flat), tr.out_spec)
    return tr.out_real, jvp_fn
