"""gradcheck / gradgradcheck: analytic Jacobians from autograd against central finite differences."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from . import grad_mode
from .engine import grad as autograd_grad


class GradcheckError(RuntimeError):
    pass


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def _differentiable_inputs(inputs: tuple):
    from ..tensors import Tensor
    return [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]


def _outputs(fn, inputs):
    from ..tensors import Tensor
    return [o for o in _as_tuple(fn(*inputs)) if isinstance(o, Tensor) and o.dtype.is_floating_point]


def _numerical_jacobians(fn, inputs, idxs, eps):
    """J[k][i]: d(output k)/d(input i) as a (numel_in, numel_out) matrix."""
    with grad_mode.no_grad():
        outs = _outputs(fn, inputs)
        jac = [[np.zeros((inputs[i].numel(), o.numel())) for i in idxs] for o in outs]
        for col, i in enumerate(idxs):
            flat = inputs[i]._data.reshape(-1)  # a view: perturb in place
            if flat.size and not np.shares_memory(flat, inputs[i]._data):  # (empty: nothing to perturb)
                raise GradcheckError("gradcheck needs contiguous inputs")
            for j in range(flat.size):
                orig = flat[j].item()
                flat[j] = orig + eps
                plus = [o._data.astype(np.float64).reshape(-1).copy() for o in _outputs(fn, inputs)]
                flat[j] = orig - eps
                minus = [o._data.astype(np.float64).reshape(-1).copy() for o in _outputs(fn, inputs)]
                flat[j] = orig
                for k in range(len(outs)):
                    jac[k][col][j] = (plus[k] - minus[k]) / (2 * eps)
    return jac


def _analytical_jacobians(fn, inputs, idxs):
    from ..tensors import Tensor
    outs = _outputs(fn, inputs)
    jac = [[np.zeros((inputs[i].numel(), o.numel())) for i in idxs] for o in outs]
    for k, o in enumerate(outs):
        for j in range(o.numel()):
            seed = np.zeros(o.numel(), dtype=o._data.dtype)
            seed[j] = 1
            grads = autograd_grad(o, [inputs[i] for i in idxs], Tensor._make(seed.reshape(o._data.shape)),
                                  retain_graph=True, allow_unused=True)
            for col, g in enumerate(grads):
                if g is not None:
                    jac[k][col][:, j] = g._data.astype(np.float64).reshape(-1)
    return jac


def gradcheck(func: Callable, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, check_undefined_grad: bool = True, nondet_tol: float = 0.0,
              fast_mode: bool = False, **_ignored) -> bool:
    inputs = _as_tuple(inputs)
    idxs = _differentiable_inputs(inputs)
    if not idxs:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of "
                         "the them have requires_grad=True.")
    for i in idxs:
        if inputs[i].dtype.name != "float64":
            import warnings
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating point. "
                          "This check will likely fail if all the inputs are not of double precision "
                          "floating point.", UserWarning, stacklevel=2)
    numerical = _numerical_jacobians(func, inputs, idxs, eps)
    analytical = _analytical_jacobians(func, inputs, idxs)
    for k, (num_row, ana_row) in enumerate(zip(numerical, analytical)):
        for col, (n, a) in enumerate(zip(num_row, ana_row)):
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                msg = (f"Jacobian mismatch for output {k} with respect to input {idxs[col]},\n"
                       f"numerical:{n}\nanalytical:{a}\n")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def gradgradcheck(func: Callable, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False,
                  raise_exception: bool = True, **_ignored) -> bool:
    """Check second derivatives: gradcheck of (inputs, v) -> vJP(func)(inputs) · v."""
    from ..tensors import Tensor
    from .. import creation
    inputs = _as_tuple(inputs)
    idxs = _differentiable_inputs(inputs)
    with grad_mode.no_grad():
        outs = _outputs(func, inputs)
    if grad_outputs is None:
        grad_outputs = tuple(creation.randn(tuple(o.shape), dtype=o.dtype, requires_grad=True) for o in outs)
    grad_outputs = _as_tuple(grad_outputs)
    n_in = len(inputs)

    def first_order(*args):
        xs, vs = args[:n_in], args[n_in:]
        # gradcheck evaluates this under no_grad for the numerical Jacobian; the first-order
        # gradient itself still needs a graph to differentiate
        with grad_mode.enable_grad():
            ys = _outputs(func, xs)
            gs = autograd_grad(ys, [xs[i] for i in idxs], vs, create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_order, inputs + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
