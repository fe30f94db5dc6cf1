"""Suite-wide settings for everything graphc.compile does during the tests.

* Generated code is cached in a fresh folder per test session (``GRAPHC_CACHE_DIR``), never in the
  user's ~/.cache; subprocess tests inherit it unless they set their own.
* Every graph any test compiles is round-tripped through the IR text form: the pass manager prints
  it before and after every pass, parses the text back and checks that it prints identically
  (``graphc.passes.manager.CHECK_ROUNDTRIP``), and verified after every pass, not only at the end
  of the pipeline (``VERIFY_EACH_PASS``, as ``GRAPHC_VERIFY=1`` does).
* Tests marked ``aot_last`` run after all others (they check what the session generated).
"""
from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("aot_last") is not None)  # stable


@pytest.fixture(autouse=True, scope="session")
def _graphc_compile_settings(tmp_path_factory):
    from graphc.passes import manager
    old_dir = os.environ.get("GRAPHC_CACHE_DIR")
    os.environ["GRAPHC_CACHE_DIR"] = str(tmp_path_factory.mktemp("graphc-cache"))
    old_check, manager.CHECK_ROUNDTRIP = manager.CHECK_ROUNDTRIP, True
    old_verify, manager.VERIFY_EACH_PASS = manager.VERIFY_EACH_PASS, True
    yield
    manager.CHECK_ROUNDTRIP = old_check
    manager.VERIFY_EACH_PASS = old_verify
    if old_dir is None:
        os.environ.pop("GRAPHC_CACHE_DIR", None)
    else:
        os.environ["GRAPHC_CACHE_DIR"] = old_dir


@pytest.fixture
def cuda(monkeypatch):
    """The cuda device for one test: CuPy replaced by ``tests/fake_cupy.py`` (CI has no GPU), or
    the real CuPy and GPU when ``GRAPHC_REAL_CUDA=1``. Yields ``graphc.device('cuda:0')``."""
    import graphc
    from graphc.runtime import devices

    if os.environ.get("GRAPHC_REAL_CUDA") == "1":
        if not devices.CUDA.is_available():
            pytest.fail(f"GRAPHC_REAL_CUDA=1 but CUDA is unavailable: {devices.CUDA.unavailable_reason()}")
    else:
        import fake_cupy
        fake_cupy.install(monkeypatch)
        fake_cupy.reset_runtime(monkeypatch)  # it loads the stand-in
    yield graphc.device("cuda:0")
