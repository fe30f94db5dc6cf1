"""Package discovery for graphc's split source layout. All metadata lives in pyproject.toml.

    graphc/    -> graphc            (frontend: Tensor, autograd, nn, optim, utils, CLI)
    ir/        -> graphc.ir
    passes/    -> graphc.passes
    codegen/   -> graphc.codegen
    runtime/   -> graphc.runtime

Every subpackage (a folder with an __init__.py) inside these folders is found automatically, so a
new one such as graphc.utils.data or graphc.passes.autodiff needs no edit here. Nothing named
`ir`, `passes`, `codegen` or `runtime` is installed at the top level of site-packages.
"""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

# Installed package name -> source folder (relative to this file). Keep in sync with
# tests/test_packaging.py (SOURCE_DIRS) and tests/test_layering.py.
PACKAGE_DIRS = {
    "graphc": "graphc",
    "graphc.ir": "ir",
    "graphc.passes": "passes",
    "graphc.codegen": "codegen",
    "graphc.runtime": "runtime",
}


def discover():
    packages = []
    for name, folder in PACKAGE_DIRS.items():
        packages.append(name)
        packages += [f"{name}.{sub}" for sub in find_packages(os.path.join(HERE, folder))]
    return packages


setup(packages=discover(), package_dir=dict(PACKAGE_DIRS))
