"""skip_init: build a module without running its parameter initialization."""
from __future__ import annotations


def skip_init(module_cls, *args, **kwargs):
    """PyTorch builds on the meta device and then allocates uninitialized memory; graphc builds the
    module normally and returns it (its values are simply whatever initialization produced)."""
    from ..modules.module import Module
    if not issubclass(module_cls, Module):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    kwargs.pop("device", None)
    return module_cls(*args, **kwargs)
