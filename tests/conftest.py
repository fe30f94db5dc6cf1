"""Suite-wide settings for everything graphc.compile does during the tests.

* Generated code is cached in a fresh folder per test session (``GRAPHC_CACHE_DIR``), never in the
  user's ~/.cache; subprocess tests inherit it unless they set their own.
* Every graph any test compiles is round-tripped through the IR text form: the pass manager prints
  it before and after every pass, parses the text back and checks that it prints identically
  (``graphc.passes.manager.CHECK_ROUNDTRIP``).
"""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _graphc_compile_settings(tmp_path_factory):
    from graphc.passes import manager
    old_dir = os.environ.get("GRAPHC_CACHE_DIR")
    os.environ["GRAPHC_CACHE_DIR"] = str(tmp_path_factory.mktemp("graphc-cache"))
    old_check, manager.CHECK_ROUNDTRIP = manager.CHECK_ROUNDTRIP, True
    yield
    manager.CHECK_ROUNDTRIP = old_check
    if old_dir is None:
        os.environ.pop("GRAPHC_CACHE_DIR", None)
    else:
        os.environ["GRAPHC_CACHE_DIR"] = old_dir
