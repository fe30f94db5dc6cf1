"""The Triton backend: one ``@triton.jit`` kernel per schedule ``Kernel``, launched by a host
function on the device's arrays. On cuda the arrays are CuPy's and the kernels compiled for the
GPU; on cpu (``compile(..., backend="triton")`` with CPU tensors) the same kernels run under
Triton's interpreter on numpy arrays, for debugging and for CI, which has no GPU."""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from graphc.codegen import numpy_runtime, triton_codegen, triton_kernels
from graphc.codegen.schedule import Schedule

from . import triton_runtime
from .backends import Backend


_rendered: dict[str, triton_kernels.RenderedKernel] = {}  # source hash -> kernel, every one rendered here


def rendered_kernels() -> list[triton_kernels.RenderedKernel]:
    """Every kernel this process has rendered (CI compiles each ahead of time for sm_90)."""
    return list(_rendered.values())


class TritonBackend(Backend):
    name = "triton"
    target = triton_codegen.TARGET
    generator_modules = Backend.generator_modules + (
        "graphc.codegen.numpy_codegen", "graphc.codegen.triton_kernels", "graphc.codegen.triton_codegen")

    def __init__(self, device: str) -> None:
        self.device = device
        self.alignment = 256 if device == "cuda" else 64  # cudaMalloc's own alignment

    def compile(self, graph, name: str, *args, **kwargs):
        # Triton has no complex type: a complex value would be computed on its real part only
        for v in list(graph.inputs) + [n.output for n in graph.nodes]:
            if getattr(v, "dtype", None) is not None and v.dtype.is_complex:
                raise NotImplementedError(
                    f"the Triton backend has no complex types ({v.dtype} value in graph {name!r}): "
                    "compile complex programs with backend='numpy'")
        return super().compile(graph, name, *args, **kwargs)

    def environment(self) -> str:
        import triton
        if self.device != "cuda":
            return f"triton {triton.__version__} interpreter"
        cc = self.runtime().lib().cuda.Device().compute_capability
        return f"triton {triton.__version__} sm_{cc}"

    def _load(self, schedule: Schedule, fn_name: str, key: str) -> tuple[Callable, str, bool, str | None]:
        # ieee float32 dot products, as PyTorch's default matmul precision (no TF32)
        rendered = triton_codegen.render_kernels(schedule, input_precision="ieee")
        _rendered.update((r.source_hash, r) for r in rendered.values())
        host = triton_codegen.generate(schedule, fn_name)
        xp = self.xp()
        ns = numpy_runtime.namespace()
        # library results may be strided (cumsum of a transpose, LAPACK's column-major output):
        # kernels index buffers as C-contiguous
        ns.update(xp=xp, _empty=lambda shape, dtype: xp.empty(shape, dtype),
                  _dev=lambda a: xp.asarray(a, order="C"),
                  _launch=_launcher({name: triton_runtime.Launcher(r) for name, r in rendered.items()}))
        exec(compile(host, f"<graphc:{fn_name}>", "exec"), ns)
        fn = ns[fn_name]

        @functools.wraps(fn)
        def run(*args):
            with np.errstate(all="ignore"):  # extern calls on host arrays follow IEEE rules silently
                return fn(*args)
        source = host + "".join(f"\n# ---- kernel {name} ----\n{r.source}" for name, r in rendered.items())
        return run, source, False, "the triton backend regenerates its host code (kernel files are reused)"


def _launcher(kernels: dict) -> Callable:
    """``_launch(name, args, outs)`` for generated host code: the named kernel's launcher."""
    def launch(name: str, args: tuple, outs: tuple) -> None:
        kernels[name](args, outs)
    return launch
