"""Loads a program of this folder as a fresh module, for graphc or, with its source's ``graphc``
replaced by ``torch``, for PyTorch (tests/test_programs.py and benchmarks/programs.py)."""
from __future__ import annotations

import os
import types

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = ["mnist_cnn", "regression", "vae", "dcgan", "word_lm_lstm", "word_lm_transformer", "time_sequence",
            "custom_function", "seq2seq"]


def load(name: str, framework: str = "graphc", deterministic: bool = False) -> types.ModuleType:
    """The program as a fresh module; ``framework="torch"``: its source with graphc replaced by torch."""
    path = os.path.join(HERE, f"{name}.py")
    with open(path) as f:
        source = f.read()
    if framework == "torch":
        source = source.replace("graphc", "torch")
    module = types.ModuleType(f"program_{name}_{framework}")
    module.__file__ = path
    exec(compile(source, path, "exec"), module.__dict__)
    module.DETERMINISTIC = deterministic
    return module
