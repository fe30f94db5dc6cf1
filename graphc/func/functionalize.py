"""``functionalize``, ``debug_unwrap`` and ``replace_all_batch_norm_modules_``: the parts of
``torch.func`` that exist for its eager tensor-wrapper design. graphc's traces are functional
already (an in-place write becomes a new value in the graph) and its transforms never wrap
tensors, so the first two have nothing to do; the third makes BatchNorm usable under ``vmap``."""
from __future__ import annotations

import functools
from typing import Any, Callable


def functionalize(func: Callable, *, remove: str = "mutations") -> Callable:
    """``torch.func.functionalize``: the same function. Every graphc transform and ``compile``
    already records in-place writes and views functionally, so there are no mutations to remove."""
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError(f"functionalize(f, remove='mutations'): received invalid argument for remove={remove}. "
                           "Valid options are:\n     remove='mutations': all inplace and out= operators will be "
                           "removed from the program, and replaced with their out-of-place equivalents.\n     "
                           "remove='mutations_and_views': In addition to the above, all aliasing operators "
                           "{view} will be replaced with their non-aliasing counterparts, {view}_copy.\n")

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        return func(*args, **kwargs)
    return wrapped


def debug_unwrap(tensor: Any, *, recurse: bool = True) -> Any:
    """``torch.func.debug_unwrap``: graphc's transforms hand the function plain (or traced) tensors,
    never wrappers, so there is nothing to unwrap."""
    return tensor


def replace_all_batch_norm_modules_(root):
    """``torch.func.replace_all_batch_norm_modules_``: BatchNorm modules under ``root`` stop
    tracking running statistics (whose in-place update cannot be vmapped), in place."""
    from ..nn.modules.normalization import _BatchNorm
    for m in root.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
            m.track_running_stats = False
    return root
