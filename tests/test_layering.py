"""Imports in ir/, passes/, codegen/ and runtime/ point only downwards (DESIGN.md's layering table).

    graphc (frontend)  ->  may import everything below (not checked here)
    graphc.passes      ->  graphc.ir
    graphc.codegen     ->  graphc.ir
    graphc.runtime     ->  graphc.ir, graphc.codegen (and CuPy, the cuda device's library, only lazily)
    graphc.ir          ->  nothing of graphc; numpy, networkx, scipy, ml_dtypes (scipy and ml_dtypes only lazily)

Every `import`/`from ... import` in every .py file of those folders is parsed with `ast`, wherever it
sits (module level, inside functions, under `if TYPE_CHECKING:`), plus `importlib.import_module("...")`
and `__import__("...")` calls with a literal name. Relative imports are resolved against the name
the module gets once installed (ir/prims.py is graphc.ir.prims, so `from .. import tensor` there
means graphc.tensor). Each offending import is reported as file:line.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

STDLIB = frozenset(sys.stdlib_module_names)


@dataclass(frozen=True)
class Layer:
    folder: str  # source folder, relative to the repository root
    package: str  # installed package name
    may_import: tuple[str, ...]  # graphc packages below this one
    third_party: frozenset[str]  # allowed non-stdlib top-level modules
    lazy_only: frozenset[str] = frozenset()  # of those, the ones allowed only inside functions


LAYERS = {
    # ml_dtypes: bfloat16's numpy type, an optional package imported when bfloat16 is first used
    "ir": Layer("ir", "graphc.ir", (), frozenset({"numpy", "networkx", "scipy", "ml_dtypes"}),
                frozenset({"scipy", "ml_dtypes"})),
    "passes": Layer("passes", "graphc.passes", ("graphc.ir",), frozenset({"numpy", "networkx", "scipy"})),
    "codegen": Layer("codegen", "graphc.codegen", ("graphc.ir",), frozenset({"numpy", "networkx", "scipy", "triton"})),
    "runtime": Layer(
        "runtime", "graphc.runtime", ("graphc.ir", "graphc.codegen"),
        frozenset({"numpy", "networkx", "scipy", "triton", "cupy", "cupyx"}), frozenset({"cupy", "cupyx"}),
    ),
}

# graphc packages that live in their own folder; anything else under `graphc` is the frontend.
LOWER_PACKAGES = ("graphc.ir", "graphc.passes", "graphc.codegen", "graphc.runtime")
UNMAPPED_NAMES = {"ir", "passes", "codegen", "runtime"}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def module_name(layer: Layer, relpath: str) -> tuple[str, bool]:
    """Installed dotted name of a file inside `layer.folder`, and whether it is a package __init__."""
    parts = Path(relpath).with_suffix("").parts
    assert parts[0] == layer.folder, relpath
    parts = parts[1:]
    is_pkg = bool(parts) and parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    return ".".join((layer.package, *parts)), is_pkg


def _resolve_relative(modname: str, is_pkg: bool, level: int, target: str | None) -> str | None:
    base = modname.split(".") if is_pkg else modname.split(".")[:-1]
    if level - 1 > len(base) - 1:
        return None  # beyond the top-level package
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _graphc_owner(name: str) -> str:
    """Which graphc package a graphc.* module belongs to ('graphc' means the frontend)."""
    for pkg in LOWER_PACKAGES:
        if _within(name, pkg):
            return pkg
    return "graphc"


class _Collector(ast.NodeVisitor):
    """Collects (lineno, source text, imported module, in_function) for every import."""

    def __init__(self, modname: str, is_pkg: bool, source: str):
        self.modname, self.is_pkg, self.source = modname, is_pkg, source
        self.depth = 0
        self.found: list[tuple[int, str, str | None, bool]] = []

    def _text(self, node: ast.AST) -> str:
        return (ast.get_source_segment(self.source, node) or "").split("\n")[0].strip()

    def _scope(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _scope

    def visit_Import(self, node: ast.Import):
        for alias in node.names:
            self.found.append((node.lineno, self._text(node), alias.name, self.depth > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom):
        if node.level:
            base = _resolve_relative(self.modname, self.is_pkg, node.level, node.module)
        else:
            base = node.module
        if base is None:
            self.found.append((node.lineno, self._text(node), None, self.depth > 0))
            return
        for alias in node.names:
            # `from graphc import ir` / `from .. import ir` imports the subpackage graphc.ir.
            sub = f"{base}.{alias.name}"
            target = sub if any(_within(sub, p) for p in LOWER_PACKAGES) else base
            self.found.append((node.lineno, self._text(node), target, self.depth > 0))

    def visit_Call(self, node: ast.Call):
        func = node.func
        fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if (
            fname in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            self.found.append((node.lineno, self._text(node), node.args[0].value, self.depth > 0))
        self.generic_visit(node)


def check_source(source: str, relpath: str) -> list[str]:
    """Layering violations in one file, as 'relpath:line: message' strings.

    `relpath` is the path relative to the repository root (e.g. 'passes/fuse.py'); its first part
    picks the layer.
    """
    layer = LAYERS[Path(relpath).parts[0]]
    modname, is_pkg = module_name(layer, relpath)
    try:
        tree = ast.parse(source, filename=relpath)
    except SyntaxError as e:
        return [f"{relpath}:{e.lineno}: cannot parse: {e.msg}"]
    collector = _Collector(modname, is_pkg, source)
    collector.visit(tree)

    allowed = ", ".join((layer.package, *layer.may_import, "the standard library", *sorted(layer.third_party)))
    problems = []
    for lineno, text, target, lazy in collector.found:
        where = f"{relpath}:{lineno}: `{text}`"
        if target is None:
            problems.append(f"{where}: relative import goes above the top-level package graphc")
            continue
        top = target.split(".")[0]
        if top == "graphc":
            owner = _graphc_owner(target)
            if owner == layer.package or owner in layer.may_import:
                continue
            what = "the graphc frontend" if owner == "graphc" else owner
            problems.append(
                f"{where}: {layer.package} must not import {target} ({what}); it may import only: {allowed}"
            )
        elif top in STDLIB:
            continue
        elif top in layer.third_party:
            if top in layer.lazy_only and not lazy:
                problems.append(
                    f"{where}: {top} may be imported in {layer.package} only lazily, inside the function that needs it"
                )
        elif top in UNMAPPED_NAMES:
            problems.append(
                f"{where}: there is no top-level package `{top}` once installed; it is graphc.{top} "
                f"(and {layer.package} may import only: {allowed})"
            )
        else:
            problems.append(f"{where}: {layer.package} must not import {target}; it may import only: {allowed}")
    return problems


def layered_files() -> list[Path]:
    files = []
    for layer in LAYERS.values():
        folder = REPO / layer.folder
        if folder.is_dir():
            files += sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def test_imports_point_only_downwards():
    files = layered_files()
    assert files, "found no .py files under ir/, passes/, codegen/, runtime/"
    problems = []
    for path in files:
        relpath = path.relative_to(REPO).as_posix()
        problems += check_source(path.read_text(encoding="utf-8"), relpath)
    assert not problems, "layering violations (see DESIGN.md's table):\n  " + "\n  ".join(problems)


BAD = [
    ("passes/fuse.py", "from graphc.nn import Linear\n", "graphc.nn"),
    ("passes/fuse.py", "import graphc\n", "graphc frontend"),
    ("passes/autodiff/rules.py", "from ...tensor import Tensor\n", "graphc.tensor"),
    ("passes/fuse.py", "from graphc.codegen import numpy_backend\n", "graphc.codegen"),
    ("passes/fuse.py", "def f():\n    import graphc.runtime\n", "graphc.runtime"),
    ("passes/fuse.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from graphc.autograd import Function\n", "graphc.autograd"),
    ("ir/graph.py", "from ..passes import autodiff\n", "graphc.passes"),
    ("ir/graph.py", "from .. import optim\n", "graphc"),
    ("ir/graph.py", "from scipy.special import erf\n", "lazily"),
    ("ir/graph.py", "import triton\n", "triton"),
    ("ir/graph.py", "from .... import x\n", "above the top-level"),
    ("codegen/triton_gen.py", "from graphc.runtime import cache\n", "graphc.runtime"),
    ("codegen/numpy_gen.py", "import importlib\nm = importlib.import_module('graphc.utils.data')\n", "graphc.utils.data"),
    ("runtime/exec.py", "import torch\n", "torch"),
    ("runtime/devices.py", "import cupy\n", "lazily"),
    ("runtime/exec.py", "from ir import Graph\n", "no top-level package"),
    ("runtime/exec.py", "from graphc.passes import pipeline\n", "graphc.passes"),
]


@pytest.mark.parametrize("relpath,source,expected", BAD)
def test_checker_flags_bad_imports(relpath, source, expected):
    problems = check_source(source, relpath)
    assert problems, f"{relpath}: {source!r} was not flagged"
    assert len(problems) == 1, problems
    assert problems[0].startswith(relpath + ":"), problems
    assert expected in problems[0], problems


GOOD = [
    ("ir/graph.py", "from __future__ import annotations\nimport numpy as np\nimport networkx as nx\nfrom . import dtypes\nfrom .prims import add\n"),
    ("ir/prims.py", "def erf(x):\n    from scipy.special import erf\n    return erf(x)\n"),
    ("ir/sub/__init__.py", "from .. import dtypes\nfrom . import x\n"),
    ("passes/fuse.py", "from graphc.ir import Graph\nimport graphc.ir as ir\nfrom graphc import ir\nfrom ..ir import prims\nfrom . import manager\n"),
    ("passes/autodiff/rules.py", "from ...ir import prims\nfrom .. import manager\nfrom graphc.passes.manager import Pass\n"),
    ("codegen/triton_gen.py", "import triton\nimport triton.language as tl\nfrom graphc.ir import Graph\n"),
    ("runtime/devices.py", "def load():\n    import cupy\n    import cupyx.scipy.special\n"),
    ("runtime/exec.py", "from graphc.codegen import numpy_gen\nfrom ..codegen.triton_gen import launch\nfrom graphc.ir import Graph\nimport os, json, hashlib\n"),
]


@pytest.mark.parametrize("relpath,source", GOOD)
def test_checker_accepts_allowed_imports(relpath, source):
    assert check_source(source, relpath) == []
