"""graphc.autograd.functional: jacobian, hessian, vjp, jvp, hvp and vhp of a Python function,
as in ``torch.autograd.functional``, built on ``autograd.grad`` (row by row, no vectorization)."""
from __future__ import annotations

from .engine import grad as _grad
from .grad_mode import enable_grad

__all__ = ["jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"]


def _tensor_type():
    from graphc.tensors import Tensor
    return Tensor


def _as_tuple(x, name: str, fn_name: str):
    T = _tensor_type()
    is_tuple = isinstance(x, tuple)
    xs = x if is_tuple else (x,)
    for i, t in enumerate(xs):
        if not isinstance(t, T):
            raise TypeError(f"The {name} given to {fn_name} must be either a Tensor or a tuple of Tensors but "
                            f"the value at index {i} has type {type(t)}.")
    return is_tuple, xs


def _prep(inputs, create_graph: bool):
    """Fresh leaves (or differentiable aliases with create_graph) that require grad."""
    return tuple(t.view_as(t) if create_graph and t.requires_grad else t.detach().requires_grad_(True)
                 for t in inputs)


def _grads(out, inputs, grad_out, create_graph: bool, strict: bool, fn_name: str):
    if not out.requires_grad:
        if strict:
            raise RuntimeError(f"The output of the user-provided function is independent of input 0. This is "
                               f"not allowed in strict mode.")
        return tuple(None for _ in inputs)
    gs = _grad(out, inputs, grad_out, retain_graph=True, create_graph=create_graph, allow_unused=True)
    if strict:
        for i, g in enumerate(gs):
            if g is None:
                raise RuntimeError(f"The output of the user-provided function is independent of input {i}. "
                                   f"This is not allowed in strict mode.")
    return gs


def _fill(gs, inputs, create_graph: bool):
    import graphc
    res = []
    for g, x in zip(gs, inputs):
        if g is None:
            g = graphc.zeros_like(x)
        res.append(g if create_graph else g.detach())
    return tuple(res)


def _unpack(is_tuple: bool, xs):
    return xs if is_tuple else xs[0]


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    import graphc
    if strategy != "reverse-mode" and not vectorize:
        raise ValueError("torch.autograd.functional.jacobian: `strategy=\"forward-mode\"` is only supported "
                         "when `vectorize=True`.")
    in_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
    with enable_grad():
        inputs = _prep(inputs, create_graph)
        outputs = func(*inputs)
        out_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function", "jacobian")
        jac = []
        for out in outputs:
            flat = out.reshape(-1)
            rows = [[] for _ in inputs]
            for j in range(flat.numel()):
                gs = _grads(flat[j], inputs, None, create_graph, strict, "jacobian")
                for k, g in enumerate(_fill(gs, inputs, create_graph)):
                    rows[k].append(g)
            per_in = []
            for k, x in enumerate(inputs):
                if rows[k]:
                    J = graphc.stack(rows[k]).reshape(tuple(out.shape) + tuple(x.shape))
                else:
                    J = graphc.zeros(tuple(out.shape) + tuple(x.shape), dtype=x.dtype)
                per_in.append(J)
            jac.append(tuple(per_in))
    if out_tuple:
        return tuple(_unpack(in_tuple, j) for j in jac)
    return _unpack(in_tuple, jac[0])


def hessian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    in_tuple, inputs_t = _as_tuple(inputs, "inputs", "hessian")

    def jac_func(*inp):
        out = func(*inp)
        T = _tensor_type()
        if not isinstance(out, T) or out.numel() != 1:
            raise RuntimeError("The function given to hessian should return a single Tensor with a single "
                               "element.")
        out = out.reshape(())
        with enable_grad():
            gs = _grad(out, inp, create_graph=True, allow_unused=True)
        return _fill(gs, inp, True)

    res = jacobian(jac_func, inputs_t, create_graph=create_graph, strict=strict, vectorize=vectorize)
    if not in_tuple:
        return res[0][0]
    return res


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    in_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
    with enable_grad():
        inputs = _prep(inputs, create_graph)
        outputs = func(*inputs)
        out_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function", "vjp")
        if v is None:
            if len(outputs) != 1 or outputs[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the user-provided function returns a "
                                   "single Tensor with a single element.")
            vs = None
        else:
            _, vs = _as_tuple(v, "v", "vjp")
        gs = _grad(outputs, inputs, vs, retain_graph=True, create_graph=create_graph, allow_unused=True)
        gs = _fill(gs, inputs, create_graph)
    outs = tuple(o if create_graph else o.detach() for o in outputs)
    return _unpack(out_tuple, outs), _unpack(in_tuple, gs)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """Forward product J v through the double-backward trick: g(u) = J^T u, then d<g(u), v>/du."""
    import graphc
    in_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
    if v is None:
        if len(inputs) != 1 or inputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the input to the user-provided function is "
                               "a single Tensor with a single element.")
        vs = (graphc.ones_like(inputs[0]),)
    else:
        _, vs = _as_tuple(v, "v", "jvp")
    with enable_grad():
        inputs = _prep(inputs, create_graph)
        outputs = func(*inputs)
        out_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function", "jvp")
        us = tuple(graphc.zeros_like(o).requires_grad_(True) for o in outputs)
        gs = _grad(outputs, inputs, us, create_graph=True, allow_unused=True)
        pairs = [(g, vv) for g, vv in zip(gs, vs) if g is not None and g.requires_grad]
        if pairs:
            res = _grad([g for g, _ in pairs], us, [vv for _, vv in pairs], create_graph=create_graph,
                        allow_unused=True)
        else:
            res = (None,) * len(us)
        res = _fill(res, outputs, create_graph)
    outs = tuple(o if create_graph else o.detach() for o in outputs)
    return _unpack(out_tuple, outs), _unpack(out_tuple, res)


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    in_tuple, inputs = _as_tuple(inputs, "inputs", "vhp")
    _, vs = _as_tuple(v, "v", "vhp") if v is not None else (False, None)
    with enable_grad():
        inputs = _prep(inputs, create_graph)
        out = func(*inputs)
        if out.numel() != 1:
            raise RuntimeError("The function given to vhp should return a single Tensor with a single element.")
        gs = _grad(out, inputs, create_graph=True, allow_unused=True)
        pairs = [(g, vv, i) for i, (g, vv) in enumerate(zip(gs, vs)) if g is not None and g.requires_grad]
        res = [None] * len(inputs)
        if pairs:
            hs = _grad([g for g, _, _ in pairs], inputs, [vv for _, vv, _ in pairs], create_graph=create_graph,
                       allow_unused=True)
            res = list(hs)
        res = _fill(res, inputs, create_graph)
    return (out if create_graph else out.detach()), _unpack(in_tuple, res)


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    # the Hessian of a scalar function is symmetric, so H v = (v^T H)^T
    return vhp(func, inputs, v, create_graph, strict)
