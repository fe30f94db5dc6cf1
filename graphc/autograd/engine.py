"""The backward engine: walks grad_fn nodes in reverse creation order and routes gradients."""
from __future__ import annotations

import contextlib
import heapq
import sys
import threading
import warnings
from typing import Iterator, Sequence

import numpy as np

from graphc.ir.array_module import array_module
from graphc.ir.primitive import no_operand_policy
from graphc.passes.autodiff import NoDerivative

from ..device import array_to, get_default_device, using_device
from . import grad_mode
from .graph import AccumulateGrad, Node, gradient_edge, tensor_class


# This thread's running backward passes, innermost last: each a list of callbacks queued to run
# when it ends (queue_callback).
_running = threading.local()


def queue_callback(callback) -> None:
    """Run ``callback()`` when the backward pass now running on this thread has finished
    (PyTorch's ``Variable._execution_engine.queue_callback``): DistributedDataParallel waits
    there for the gradient all-reduces it started during the pass."""
    stack = getattr(_running, "passes", None)
    if not stack:
        raise RuntimeError("Final callbacks can only be installed during backward pass.")
    stack[-1].append(callback)


@contextlib.contextmanager
def backward_pass() -> Iterator[None]:
    """A backward pass on this thread (eager, or traced inside a compiled function): callbacks
    queued during it (``queue_callback``) run when it ends without error."""
    stack = _running.__dict__.setdefault("passes", [])
    stack.append([])
    try:
        yield
        callbacks = stack[-1]
        while callbacks:  # a callback may queue another
            callbacks.pop(0)()
    finally:
        stack.pop()


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def _root_grads(outputs: tuple, grads: tuple, create_graph: bool) -> list:
    Tensor = tensor_class()
    if len(grads) == 0:
        grads = (None,) * len(outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(f"grad can be implicitly created only for scalar outputs; got "
                           f"{len(grads)} gradients for {len(outputs)} outputs")
    out = []
    for i, (t, g) in enumerate(zip(outputs, grads)):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected a Tensor as output {i}, got {type(t).__name__}")
        if g is None:
            if t.requires_grad and t.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if not t.dtype.is_floating_point:
                raise RuntimeError(
                    f"grad can be implicitly created only for real scalar outputs but got {t.dtype}")
            g = Tensor._make(array_to(np.ones(t._data.shape, dtype=t._data.dtype), t.device))
        elif not isinstance(g, Tensor):
            g = Tensor._make(array_to(np.asarray(g, dtype=t._data.dtype), t.device))
        elif tuple(g.shape) != tuple(t.shape):
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and output[{i}] "
                f"has a shape of {t.shape}.")
        if not create_graph:
            g = g.detach()
        out.append(g)
    return out


def _collect(roots: list[Node]) -> dict[Node, int]:
    deps: dict[Node, int] = {}
    seen = set(roots)
    stack = list(seen)  # a node reached from several outputs (a multi-output node) counts once
    while stack:
        n = stack.pop()
        for nxt, _ in n.next_functions:
            if nxt is None:
                continue
            deps[nxt] = deps.get(nxt, 0) + 1
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return deps


def _accumulate(buf: list, nr: int, g) -> None:
    if buf[nr] is None:
        buf[nr] = g
    else:
        buf[nr] = buf[nr] + g


def _device_of(grads: list):
    """The device of the first gradient in ``grads``, None if there is none."""
    for g in grads:
        if g is not None:
            return g.device
    return None


def _call_tensor_hooks(node: Node, grads: list) -> None:
    for nr, hooks in node._tensor_hooks.items():
        for hook in list(hooks.values()):
            if grads[nr] is None:
                continue
            r = hook(grads[nr])
            if r is not None:
                grads[nr] = r
    for nr, hook in node._retain_grad_hooks.items():
        if grads[nr] is not None:
            hook(grads[nr])


def _sole_owner(g) -> bool:
    """Whether the gradient ``g`` reaches no one but this leaf, so that it may become ``.grad``
    without a copy: a C-contiguous array of its own held only by ``g`` (``g``'s slot, the local
    and getrefcount's argument), and ``g`` held only by the engine on its way here. Anything more
    (the same gradient routed to two leaves, the user's own ``gradient=`` tensor, a hook that
    kept it) shows as a higher count, and the gradient is copied."""
    arr = g._data
    return (getattr(arr, "base", 0) is None and arr.flags.c_contiguous and sys.getrefcount(arr) == 3
            and sys.getrefcount(g) <= _ENGINE_REFS)


# references to a gradient on its way into a leaf when nothing else holds it: the engine's
# buffer and loop variables, _accumulate_into_leaf's and _sole_owner's arguments, getrefcount's
# (tests/test_grad_adoption.py checks that such a gradient is not copied)
_ENGINE_REFS = 6


def _accumulate_into_leaf(node: AccumulateGrad, g, create_graph: bool, run_hooks: bool = True) -> None:
    Tensor = tensor_class()
    var = node.variable
    if var._hooks and run_hooks:
        for hook in list(var._hooks.values()):
            r = hook(g)
            if r is not None:
                g = r
    if g.dtype is not var.dtype:
        g = g.to(var.dtype)
    if var._grad is None:
        if create_graph:
            var._grad = g
        elif _sole_owner(g):
            var._grad = Tensor._make(g._data)  # nothing else can see this array: no copy
        else:
            # a private buffer: the same gradient tensor can reach several leaves (add passes it
            # through to both operands) or be the user's own `gradient=` tensor, and .grad is
            # later accumulated in place
            var._grad = Tensor._make(array_module(g._data).array(g._data, order="C", copy=True))
    elif create_graph or var._grad.requires_grad:
        var._grad = var._grad + g
    else:
        var._grad._data += g._data
        var._grad._version.value += 1
    for hook in list(node._post_hooks.values()):
        hook((g,), (g,))
    post = var.__dict__.get("_post_accumulate_hooks")
    if post:
        for hook in list(post.values()):
            hook(var)


def run_backward(outputs: Sequence, grad_outputs: Sequence, retain_graph: bool, create_graph: bool,
                 inputs: Sequence | None = None, accumulate: bool = True, allow_unused: bool = False):
    """Shared by ``Tensor.backward``/``autograd.backward`` (accumulate) and ``autograd.grad``."""
    outputs = _as_tuple(outputs)
    grads = _root_grads(outputs, _as_tuple(grad_outputs), create_graph)
    roots = []
    for i, t in enumerate(outputs):
        node, nr = gradient_edge(t)
        if node is None:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn")
        roots.append((node, nr))

    capture: dict[tuple, int] = {}
    capture_leaf: dict[Node, int] = {}
    if inputs is not None:
        for k, t in enumerate(inputs):
            if not t.requires_grad:
                raise RuntimeError(f"One of the differentiated Tensors does not require grad")
            if t.grad_fn is None:
                capture_leaf[t._grad_accumulator()] = k
            else:
                capture[(t.grad_fn, t._output_nr)] = k
    results: list = [None] * (len(inputs) if inputs is not None else 0)

    root_nodes = [n for n, _ in roots]
    deps = _collect(root_nodes)
    buffers: dict[Node, list] = {}
    for (node, nr), g in zip(roots, grads):
        buf = buffers.setdefault(node, [None] * node.num_outputs)
        _accumulate(buf, nr, g)
    ready = [(-n._seq, id(n), n) for n in dict.fromkeys(root_nodes) if deps.get(n, 0) == 0]
    heapq.heapify(ready)

    with backward_pass():
        _sweep(ready, buffers, deps, capture, capture_leaf, results, accumulate, retain_graph, create_graph)

    if inputs is not None and not accumulate:
        for k, r in enumerate(results):
            if r is None and not allow_unused:
                raise RuntimeError(
                    f"The differentiated Tensor at index {k} appears to not have been used in the graph. "
                    "Set allow_unused=True if this is the desired behavior.")
        return tuple(results)
    return None


def _sweep(ready, buffers, deps, capture, capture_leaf, results, accumulate, retain_graph, create_graph) -> None:
    """Run the ready nodes in reverse creation order, routing their gradients on."""
    missing: dict = {}  # node -> the NoDerivative that reached it (see _route)
    # backward rules run in the dtypes their forward ops ran in: autocast does not recast them
    with grad_mode.set_grad_enabled(create_graph), no_operand_policy():
        while ready:
            _, _, node = heapq.heappop(ready)
            buf = buffers.pop(node, None) or [None] * node.num_outputs
            if missing and node in missing:
                # a gradient PyTorch has no formula for reached here: an error if it is wanted,
                # else it flows on unevaluated (to leaves nobody asked for, where it is dropped)
                nd = missing.pop(node)
                if (isinstance(node, AccumulateGrad) and (accumulate or node in capture_leaf)) or any(
                        (node, nr) in capture for nr in range(node.num_outputs)):
                    raise nd.error()
                if not retain_graph:
                    node.release()
                _route(node, (nd,) * len(node.next_functions), buffers, deps, ready, accumulate, capture_leaf, missing)
                continue
            if node._pre_hooks:
                for hook in list(node._pre_hooks.values()):
                    r = hook(tuple(buf))
                    if r is not None:
                        buf = list(r)
            if node._tensor_hooks or node._retain_grad_hooks:
                _call_tensor_hooks(node, buf)
            if capture:
                for nr, g in enumerate(buf):
                    k = capture.get((node, nr))
                    if k is not None and g is not None:
                        results[k] = g if results[k] is None else results[k] + g
            if isinstance(node, AccumulateGrad):
                # the local g is one of the references _ENGINE_REFS counts
                g = buf[0]
                if g is None:
                    continue
                k = capture_leaf.get(node)
                if k is not None:
                    if node.variable._hooks:
                        for hook in list(node.variable._hooks.values()):
                            r = hook(g)
                            if r is not None:
                                g = r
                    results[k] = g
                elif accumulate:
                    _accumulate_into_leaf(node, buf[0], create_graph)
                continue
            dev = _device_of(buf)
            if dev is None:  # no gradient reached this node
                in_grads = (None,) * len(node.next_functions)
            else:
                # constants the rule creates (zeros, masks) go on its gradients' device
                if dev is get_default_device():
                    in_grads = node.apply(buf)
                else:
                    with using_device(dev):
                        in_grads = node.apply(buf)
                if node._post_hooks:
                    for hook in list(node._post_hooks.values()):
                        r = hook(tuple(in_grads), tuple(buf))
                        if r is not None:
                            in_grads = tuple(r)
                if not retain_graph:
                    node.release()
            _route(node, in_grads, buffers, deps, ready, accumulate, capture_leaf, missing)


def _route(node: Node, in_grads, buffers: dict, deps: dict, ready: list, accumulate: bool, capture_leaf: dict,
           missing: dict) -> None:
    """Hand ``node``'s input gradients on to the nodes that made its inputs. A ``NoDerivative``
    is not summed: it marks its node in ``missing`` (a sum with a missing term is missing)."""
    for (nxt, nr), g in zip(node.next_functions, in_grads):
        if nxt is None:
            continue
        if g is not None:
            if type(g) is NoDerivative:
                if isinstance(nxt, AccumulateGrad) and (accumulate or nxt in capture_leaf):
                    raise g.error()  # before any other leaf of this node gets its gradient, as in PyTorch
                missing[nxt] = g
            else:
                _accumulate(buffers.setdefault(nxt, [None] * nxt.num_outputs), nr, g)
        deps[nxt] -= 1
        if deps[nxt] == 0:
            heapq.heappush(ready, (-nxt._seq, id(nxt), nxt))


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False,
             grad_variables=None, inputs=None) -> None:
    if grad_variables is not None:
        grad_tensors = grad_variables
    if retain_graph is None:
        retain_graph = create_graph
    if create_graph:
        warnings.warn(
            "Using backward() with create_graph=True will create a reference cycle between the "
            "parameter and its gradient which can cause a memory leak. We recommend using "
            "autograd.grad when creating the graph to avoid this. If you have to use this function, "
            "make sure to reset the .grad fields of your parameters to None after use to break the "
            "cycle and avoid the leak.", UserWarning, stacklevel=2)
    if inputs is not None:
        inputs = _as_tuple(inputs)
        if len(inputs) == 0:
            raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
        # backward(inputs=...) accumulates only into those tensors
        res = run_backward(tensors, grad_tensors, retain_graph, create_graph, inputs=inputs,
                           accumulate=False, allow_unused=True)
        for t, g in zip(inputs, res):
            if g is not None:
                if t.grad_fn is None:
                    _accumulate_into_leaf(t._grad_accumulator(), g, create_graph, run_hooks=False)
                else:
                    t._grad = g if t._grad is None else t._grad + g
        return
    run_backward(tensors, grad_tensors, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         only_inputs: bool = True, allow_unused: bool | None = None, is_grads_batched: bool = False,
         materialize_grads: bool = False):
    if allow_unused is None:
        allow_unused = materialize_grads
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, "
                         "but got: allow_unused=False.")
    if retain_graph is None:
        retain_graph = create_graph
    inputs = _as_tuple(inputs)
    res = run_backward(outputs, grad_outputs, retain_graph, create_graph, inputs=inputs,
                       accumulate=False, allow_unused=allow_unused)
    if materialize_grads:
        from .. import creation
        res = tuple(creation.zeros_like(x) if r is None else r for x, r in zip(inputs, res))
    return res
