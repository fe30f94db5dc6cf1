"""``functional_call``: call a module with some of its parameters and buffers replaced."""
from __future__ import annotations

from typing import Any

_MISSING = object()


def functional_call(module, parameter_and_buffer_dicts: Any, args: Any = None, kwargs: dict | None = None, *,
                    tie_weights: bool = True, strict: bool = False) -> Any:
    """``torch.func.functional_call``: ``module(*args, **kwargs)`` with the tensors of
    ``parameter_and_buffer_dicts`` (names as in ``named_parameters``/``named_buffers``) standing in
    for the module's own, which are put back afterwards."""
    if isinstance(parameter_and_buffer_dicts, dict):
        given = dict(parameter_and_buffer_dicts)
    elif isinstance(parameter_and_buffer_dicts, (list, tuple)):
        if not all(isinstance(d, dict) for d in parameter_and_buffer_dicts):
            raise ValueError("Expected all elements of parameter_and_buffer_dicts to be dictionaries")
        keys = [k for d in parameter_and_buffer_dicts for k in d]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of functional call is ambiguous")
        given = {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}
    else:
        raise ValueError("Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but got "
                         f"{type(parameter_and_buffer_dicts)}")
    own = dict(module.named_parameters(remove_duplicate=False))
    own.update(module.named_buffers(remove_duplicate=False))
    if tie_weights:
        given = _untie(own, given)
    if strict:
        errors = []
        unexpected = [k for k in given if k not in own]
        missing = [k for k in own if k not in given]
        if unexpected:
            errors.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
        if missing:
            errors.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
        if errors:
            raise RuntimeError("Error(s) in reparametrizing for {}:\n\t{}".format(type(module).__name__,
                                                                                "\n\t".join(errors)))
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    saved = []
    try:
        for name, value in given.items():
            saved.append(_swap(module, name, value))
        return module(*args, **(kwargs or {}))
    finally:
        for sub, store, attr, old in reversed(saved):
            _put(sub, store, attr, old)


def _untie(own: dict, given: dict) -> dict:
    """Names that share one tensor in the module (tied weights) all take the value given for any."""
    names_of: dict[int, list[str]] = {}
    for name, t in own.items():
        names_of.setdefault(id(t), []).append(name)
    out = dict(given)
    for name, value in given.items():
        if name not in own:
            continue
        tied = names_of[id(own[name])]
        values = {id(given[n]) for n in tied if n in given}
        if len(values) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(n for n in tied if n in given)}, "
                             "which are tied. Consider using tie_weights=False")
        for n in tied:
            out.setdefault(n, value)
    return out


def _swap(module, name: str, value):
    path, _, attr = name.rpartition(".")
    sub = module.get_submodule(path) if path else module
    for store in ("_parameters", "_buffers"):
        d = sub.__dict__.get(store, {})
        if attr in d:
            old = d[attr]
            d[attr] = value
            return sub, store, attr, old
    old = sub.__dict__.get(attr, _MISSING)
    sub.__dict__[attr] = value
    return sub, None, attr, old


def _put(sub, store, attr, old) -> None:
    if store is not None:
        sub.__dict__[store][attr] = old
    elif old is _MISSING:
        del sub.__dict__[attr]
    else:
        sub.__dict__[attr] = old


def stack_module_state(models) -> tuple[dict, dict]:
    """``torch.func.stack_module_state``: the parameters and the buffers of same-shaped ``models``,
    each stacked along a new dimension 0 (for ``vmap`` over an ensemble with ``functional_call``)."""
    from ..shape_ops import stack
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or not any(m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same training/eval mode.")
    first = type(models[0])
    if not all(type(m) is first for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")

    def stacked(named, leaf):
        names = [n for n, _ in named(models[0])]
        out = {}
        for n in names:
            t = stack([dict(named(m))[n] for m in models]).detach()
            out[n] = t.requires_grad_() if leaf and dict(named(models[0]))[n].requires_grad else t
        return out
    return (stacked(lambda m: m.named_parameters(), True), stacked(lambda m: m.named_buffers(), False))
