"""``graphc.func`` (PyTorch's ``torch.func``): function transforms built on the traced graph.

Each transform traces the function into a graph of primitives and transforms the graph:
``grad``/``vjp``/``jacrev`` with the autodiff pass's reverse sweep (the VJP table), ``jvp``/
``jacfwd``/``hessian`` with the double-VJP trick, ``vmap`` with the batching table
(``passes/vmap``). The result runs on the caller's tensors, so transforms nest
(``vmap(grad(f))``) and compose with ``graphc.compile``.
"""
from .autodiff import grad, grad_and_value, hessian, jacfwd, jacrev, jvp, linearize, vjp
from .functional_call import functional_call, stack_module_state
from .functionalize import debug_unwrap, functionalize, replace_all_batch_norm_modules_
from .einops import rearrange
from .vmap import vmap

__all__ = ["debug_unwrap", "functional_call", "functionalize", "grad", "grad_and_value", "hessian", "jacfwd",
           "jacrev", "jvp", "linearize", "rearrange", "replace_all_batch_norm_modules_", "stack_module_state", "vjp", "vmap"]
