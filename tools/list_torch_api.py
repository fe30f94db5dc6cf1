"""Write PyTorch's public names, one ``namespace name`` per line, to tests/data/torch_api_<version>.txt.

Run once with PyTorch installed (``python tools/list_torch_api.py``); the output is committed data
that tests/test_api_surface.py checks graphc against (graphc never imports torch).

Which names count as public (the rule, applied to every namespace the same way):

- a module namespace: the names in its ``__all__`` where it defines one, plus the public names it
  leaves out of ``__all__`` that it does define (functions and classes whose ``__module__`` is in
  torch, and torch submodules): ``torch.__all__`` omits ``set_grad_enabled``, ``unique``,
  ``broadcast_shapes``..., which programs use all the time. A module without ``__all__``: its
  public names that are torch's own (so ``typing.Optional`` or ``math`` imported into
  ``torch.nn.functional`` do not count), plus constants (numbers, strings, dtypes).
- ``torch.Tensor``: every public attribute of the class.
- "public" always means: no leading underscore.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import types
from pathlib import Path

# The namespaces issue #13 names, plus the submodule paths programs import from directly.
NAMESPACES = """torch torch.nn torch.nn.functional torch.nn.init torch.nn.utils torch.nn.utils.rnn
    torch.nn.parallel torch.optim torch.optim.lr_scheduler torch.utils.data torch.autograd torch.linalg
    torch.special torch.fft torch.func torch.distributions torch.distributions.transforms torch.amp
    torch.cuda torch.testing torch.nn.modules""".split()


def _defined_under(value, home: str, anywhere_in_torch: bool) -> bool:
    """Whether ``value`` is defined in the module ``home`` (or below it, private files included:
    ``torch.testing._comparison.assert_close``), or, with ``anywhere_in_torch``, in any public torch
    module or torch's C extension (its ops say ``__module__ == "torch"``); never in a private module
    elsewhere (``torch._jit_internal.boolean_dispatch`` in ``torch.nn.functional``)."""
    if isinstance(value, types.ModuleType):
        return value.__name__.startswith(home + ".")
    if isinstance(value, bool):  # TYPE_CHECKING and friends
        return False
    if isinstance(value, (int, float, str)):
        return True
    mod = getattr(value, "__module__", None)
    if not isinstance(mod, str):
        mod = type(value).__module__
    if mod == home or mod.startswith(home + "."):
        return True
    parts = mod.split(".")
    return anywhere_in_torch and parts[0] == "torch" and (
        parts[1:2] == ["_C"] or all(not p.startswith("_") for p in parts[1:]))


def module_names(mod: types.ModuleType) -> set[str]:
    public = {n for n in dir(mod) if not n.startswith("_")}
    declared = getattr(mod, "__all__", None)
    # with __all__, an extra name must be defined in this module; without, anything torch's own
    anywhere = declared is None or mod.__name__ == "torch"
    own = {n for n in public if _defined_under(getattr(mod, n), mod.__name__, anywhere)}
    return (set(declared) | own) if declared is not None else own


def nn_module_files() -> list[str]:
    """``torch.nn.modules.<file>`` for every public file (``activation``, ``conv``, ...)."""
    import torch.nn.modules as m
    return [f"torch.nn.modules.{i.name}" for i in pkgutil.iter_modules(m.__path__) if not i.name.startswith("_")]


def collect() -> dict[str, set[str]]:
    import torch
    spaces = NAMESPACES + nn_module_files()
    mods = {ns: importlib.import_module(ns) for ns in spaces}  # import all first: dir(torch) grows
    out = {ns: module_names(mods[ns]) for ns in spaces}
    out["torch.Tensor"] = {n for n in dir(torch.Tensor) if not n.startswith("_")}
    return {ns: names for ns, names in out.items() if names}


def main() -> None:
    import torch
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    version = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests" / "data" /
                                         f"torch_api_{version}.txt"))
    args = ap.parse_args()
    names = collect()
    lines = [f"# PyTorch {torch.__version__} public names (namespace name), written by tools/list_torch_api.py"]
    lines += [f"{ns} {n}" for ns in sorted(names) for n in sorted(names[ns])]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"{args.out}: {sum(map(len, names.values()))} names in {len(names)} namespaces")


if __name__ == "__main__":
    main()
