"""Loading, launching, tuning and ahead-of-time compiling rendered Triton kernels.

- Each kernel's source is written to ``<cache_dir>/triton/<name>_<source hash>.py`` (Triton's JIT
  reads the function's source with ``inspect``, so it must live in a real file) and imported. The
  folder and its files follow the cache's trust rules (``cache.py``): a file is imported only if
  this user owns it, no one else may write it or its folder, and it holds exactly the rendered
  source; otherwise the kernel is written anew, to a private temporary folder of this process if
  the cache's folder is refused.
- Where the arrays live decides how a kernel runs: numpy arrays (cpu) go through Triton's
  interpreter, CuPy arrays (cuda) through the compiled kernel. ``triton.jit`` picks interpreted
  or compiled when it decorates (``knobs.runtime.interpret``, read from ``TRITON_INTERPRET`` at
  that moment, in Triton 3.6 and 3.9 alike), so each mode imports the file as its own module with
  the variable set accordingly; the process need not set it. Interpreted launches also run with it
  set (``tl`` helpers built on ``constexpr_function`` read it while the kernel runs).
- The interpreter cannot call libdevice (its functions are stubs there): the interpreted module's
  ``libdevice`` is replaced by numpy equivalents of the functions generated code uses.
- Launch configs: under the interpreter, the largest blocks (its cost is per program instance);
  on a GPU, a few candidates timed with CUDA events (never ``triton.testing.do_bench``, which
  imports torch), the best cached on disk per kernel source, device and Triton version.

Nothing here imports triton (or CuPy) at module import: ``import graphc`` must stay light.
"""
from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from graphc.codegen.triton_kernels import RenderedKernel, next_pow2

from . import cache

_lock = threading.RLock()            # TRITON_INTERPRET is process-wide: one import/launch at a time
_modules: dict[tuple[str, bool], Any] = {}
_private: list[Path] = []            # this process's own kernel folder, made when the cache's is refused


def kernel_dir() -> Path:
    """``<cache_dir>/triton``, made private to this user if absent; if it (or the cache directory)
    is refused or can't be made, a temporary folder private to this process (logged once)."""
    try:
        cache.private_dir(cache.cache_dir())
        return cache.private_dir(cache.cache_dir() / "triton")
    except cache.Untrusted as e:
        why = str(e)
    except OSError as e:
        why = cache.describe(e)
    fallback = _private_dir()
    cache.say_once(why, f"Triton kernel files go to {fallback} instead")
    return fallback


def _private_dir() -> Path:
    with _lock:
        if not _private:
            d = Path(tempfile.mkdtemp(prefix="graphc-triton-"))  # mode 0700, a fresh random name
            atexit.register(shutil.rmtree, d, ignore_errors=True)
            _private.append(d)
        return _private[0]


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _interpret(on: bool) -> Iterator[None]:
    with _lock:
        old = os.environ.get("TRITON_INTERPRET")
        os.environ["TRITON_INTERPRET"] = "1" if on else "0"
        try:
            yield
        finally:
            if old is None:
                del os.environ["TRITON_INTERPRET"]
            else:
                os.environ["TRITON_INTERPRET"] = old


def source_path(rendered: RenderedKernel) -> Path:
    """The kernel's source file, written if absent or not what we would write (a file is used
    only when this user owns it, no one else may write it, and its content is exactly the
    rendered source); in this process's private folder if the kernel folder's file is refused."""
    name = f"{rendered.name}_{rendered.source_hash}.py"
    data = rendered.source.encode()
    folder = kernel_dir()
    path = folder / name
    try:
        try:
            same = cache.read_entry(path) == data
        except cache.Untrusted as e:  # replaced below, unless another user's
            cache.say_once(str(e), "not using it; the kernel is written anew")
            same = False
        if not same:
            cache.write_entry(path, data)
        return path
    except cache.Untrusted as e:
        why = str(e)
    except OSError as e:
        why = cache.describe(e)
    if _private and folder == _private[0]:
        raise OSError(f"cannot write the Triton kernel file {path}: {why}")
    path = _private_dir() / name
    cache.say_once(why, f"the kernel is written to {path} instead")
    cache.write_entry(path, data)
    return path


def load(rendered: RenderedKernel, interpret: bool) -> Any:
    """The kernel function: a ``JITFunction`` (compiled mode) or an ``InterpretedFunction``."""
    key = (rendered.source_hash, interpret)
    with _lock:
        mod = _modules.get(key)
        if mod is None:
            path = source_path(rendered)
            name = f"graphc_triton_{rendered.name}_{rendered.source_hash}{'_interp' if interpret else ''}"
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            with _interpret(interpret):
                spec.loader.exec_module(mod)
            if interpret and hasattr(mod, "libdevice"):
                mod.libdevice = _numpy_libdevice()
            _modules[key] = mod
    return getattr(mod, rendered.name)


def _numpy_libdevice():
    """The libdevice functions generated kernels call, as numpy code on the interpreter's
    tensors (its ``tl.tensor`` wraps a ``TensorHandle`` holding a numpy array)."""
    import types

    import triton.language as tl
    from triton.runtime.interpreter import TensorHandle

    def wrap(fn):
        def call(*args):
            ref = next(a for a in args if isinstance(a, tl.tensor))
            data = [a.handle.data if isinstance(a, tl.tensor) else a for a in args]
            with np.errstate(all="ignore"):
                out = np.asarray(fn(*data)).astype(ref.handle.data.dtype)
            return tl.tensor(TensorHandle(out, ref.dtype.scalar), ref.type)
        return call

    def special(name):
        def run(*a):
            import scipy.special
            return getattr(scipy.special, name)(*a)
        return run

    fns = {"rint": np.rint, "trunc": np.trunc, "expm1": np.expm1, "log10": np.log10, "log1p": np.log1p,
           "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh,
           "cosh": np.cosh, "tanh": np.tanh, "atan2": np.arctan2, "pow": np.power,
           "div_rn": np.divide,
           "lgamma": special("gammaln"), "erfinv": special("erfinv")}
    return types.SimpleNamespace(**{k: wrap(f) for k, f in fns.items()})


# ---------------------------------------------------------------------------------------------
# Arrays as kernel arguments
# ---------------------------------------------------------------------------------------------

class _HostStorage:
    """The bytes of a host buffer. Host and "device" memory are the same for the interpreter, so
    ``cpu()`` is the storage itself and copying back onto itself is a no-op."""

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw

    def data_ptr(self) -> int:
        return self.raw.ctypes.data

    def cpu(self) -> "_HostStorage":
        return self

    def copy_(self, other: "_HostStorage") -> "_HostStorage":
        if other.data_ptr() != self.data_ptr():
            np.copyto(self.raw, other.raw)
        return self


class HostArray:
    """A C-contiguous numpy array, seen the way Triton's interpreter sees a tensor argument."""

    def __init__(self, array: np.ndarray) -> None:
        if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
            raise ValueError("Triton kernels take contiguous buffers; got "
                             f"{type(array).__name__} {getattr(array, 'shape', '')} that is not C-contiguous")
        self.array = array

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype          # str() is the canonical name Triton parses: "float32", "bool"

    def data_ptr(self) -> int:
        return self.array.ctypes.data

    def untyped_storage(self) -> _HostStorage:
        return _HostStorage(self.array.reshape(-1).view(np.uint8))

    def storage_offset(self) -> int:
        return 0

    def size(self) -> tuple[int, ...]:
        return self.array.shape

    def stride(self) -> tuple[int, ...]:
        return tuple(s // self.array.itemsize for s in self.array.strides)

    def new_empty(self, *size, device: str = "cpu") -> "HostArray":
        return HostArray(np.empty(size, self.array.dtype))

    def set_(self, storage: _HostStorage, offset: int, size, stride) -> "HostArray":
        item = self.array.itemsize
        flat = storage.raw.view(self.array.dtype)[offset:]
        self.array = np.lib.stride_tricks.as_strided(flat, tuple(size), tuple(s * item for s in stride))
        return self


class DeviceArray:
    """A CuPy array as a compiled kernel's pointer argument (Triton reads ``data_ptr()`` and
    ``dtype``)."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.dtype = array.dtype

    def data_ptr(self) -> int:
        return self.array.data.ptr


def _on_gpu(arrays: Sequence[Any]) -> bool:
    kinds = {type(a).__module__.split(".")[0] == "cupy" for a in arrays}
    if len(kinds) > 1:
        raise ValueError("a Triton kernel's arrays must all be numpy (interpreter) or all CuPy (GPU)")
    return kinds == {True}


# ---------------------------------------------------------------------------------------------
# Launch configs
# ---------------------------------------------------------------------------------------------

def candidate_configs(rendered: RenderedKernel) -> list[dict[str, int]]:
    """A few launch configs (constexprs + num_warps) for a GPU, by kernel kind."""
    c = rendered.constexprs
    if rendered.kind == "pointwise":
        top = next_pow2(rendered.scalars["xnumel"])
        return [{"XBLOCK": min(x, top), "num_warps": w} for x, w in ((256, 4), (1024, 4), (2048, 8))]
    if rendered.kind == "reduction":
        if rendered.persistent:
            rb = c["RBLOCK"]
            top = next_pow2(rendered.scalars["xnumel"])
            return [{"XBLOCK": min(max(1, x // rb), top), "RBLOCK": rb, "num_warps": w}
                    for x, w in ((1024, 4), (4096, 8), (16384, 16))]
        return [{"XBLOCK": x, "RBLOCK": r, "num_warps": w} for x, r, w in ((1, 2048, 8), (8, 512, 4), (64, 64, 4))]
    # integer matmuls have no K block: _run passes only the constexprs a kernel declares
    return [{"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k, "num_warps": w}
            for m, n, k, w in ((64, 64, 32, 4), (128, 128, 32, 8), (128, 64, 64, 4), (64, 128, 64, 4))]


def interpreter_config(rendered: RenderedKernel) -> dict[str, int]:
    """The largest blocks: the interpreter's cost is per program instance, not per element."""
    s, c = rendered.scalars, rendered.constexprs
    if rendered.kind == "pointwise":
        return {"XBLOCK": min(next_pow2(s["xnumel"]), 1 << 16)}
    if rendered.kind == "reduction":
        rb = c["RBLOCK"] if rendered.persistent else min(next_pow2(s["rnumel"]), 4096)
        return {"XBLOCK": max(1, min(next_pow2(s["xnumel"]), (1 << 16) // rb)), "RBLOCK": rb}
    return {name: max(block, 64) for name, block in c.items()}


def _tuning_file() -> Path:
    return kernel_dir() / "autotune.json"


def _tuning_key(rendered: RenderedKernel) -> str:
    import cupy
    import triton
    dev = cupy.cuda.Device()
    name = cupy.cuda.runtime.getDeviceProperties(dev.id)["name"]
    name = name.decode() if isinstance(name, bytes) else name
    return f"{rendered.source_hash}|{name}|{triton.__version__}"


def _read_tuning() -> dict:
    try:
        data = json.loads(cache.read_entry(_tuning_file()) or b"{}")
        return data if isinstance(data, dict) else {}
    except cache.Untrusted as e:
        cache.say_once(str(e), "not using its launch configurations")
        return {}
    except (OSError, ValueError):
        return {}


def tuned_config(rendered: RenderedKernel, args: Sequence[Any], outs: Sequence[Any], reps: int = 20) -> dict[str, int]:
    """The fastest candidate config on this GPU (CUDA-event timing), cached on disk."""
    import cupy
    key = _tuning_key(rendered)
    with _lock:
        known = _read_tuning().get(key)
    if known is not None:
        return known
    # an output written over an input (a reused buffer) would change the input between runs
    ptrs = {a.data.ptr for a in args}
    if any(o.data.ptr in ptrs for o in outs):
        args, outs = [a.copy() for a in args], [cupy.empty_like(o) for o in outs]
    best, best_ms = None, float("inf")
    for config in candidate_configs(rendered):
        try:
            _run(rendered, args, outs, config, interpret=False)  # compiles
        except Exception:  # a config the GPU can't run (out of shared memory/registers)
            continue
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(reps):
            _run(rendered, args, outs, config, interpret=False)
        stop.record()
        stop.synchronize()
        ms = cupy.cuda.get_elapsed_time(start, stop) / reps
        if ms < best_ms:
            best, best_ms = config, ms
    if best is None:
        raise RuntimeError(f"{rendered.name}: no launch config compiled and ran on this GPU")
    with _lock:
        data = _read_tuning()
        data[key] = best
        try:
            cache.write_entry(_tuning_file(), json.dumps(data, indent=1, sort_keys=True).encode())
        except cache.Untrusted as e:  # tuned again by the next process
            cache.say_once(str(e), "launch configurations are not saved")
        except OSError as e:
            cache.say_once(cache.describe(e), "launch configurations are not saved")
    return best


# ---------------------------------------------------------------------------------------------
# Launching
# ---------------------------------------------------------------------------------------------

class _Prepared:
    """What a launch needs besides the arrays: fixed for a kernel and a config (shapes are static)."""

    def __init__(self, rendered: RenderedKernel, config: Mapping[str, int], interpret: bool) -> None:
        self.kernel = load(rendered, interpret)
        self.interpret = interpret
        self.constexprs = {k: v for k, v in config.items() if k in rendered.constexprs}
        self.options = {k: v for k, v in config.items() if k in ("num_warps", "num_stages")}
        if not interpret:  # explicit, so Triton 3.9 does not warn that TRITON_DEFAULT_FP_FUSION is unset
            self.options["enable_fp_fusion"] = True
        self.grid = rendered.grid(self.constexprs)
        self.scalars = tuple(rendered.scalars.values())

    def __call__(self, args: Sequence[Any], outs: Sequence[Any]) -> None:
        if self.interpret:
            pointers = [HostArray(a) for a in (*args, *outs)]
            with _interpret(True):
                self.kernel[self.grid](*pointers, *self.scalars, **self.constexprs)
        else:
            pointers = [DeviceArray(a) for a in (*args, *outs)]
            self.kernel[self.grid](*pointers, *self.scalars, **self.constexprs, **self.options)


def _run(rendered: RenderedKernel, args: Sequence[Any], outs: Sequence[Any], config: Mapping[str, int],
         interpret: bool) -> None:
    _Prepared(rendered, config, interpret)(args, outs)


class Launcher:
    """Launches one kernel of a compiled graph. On a GPU, the first launch picks the config
    (tuned or default), loads the kernel and computes the grid; later launches only wrap the
    pointers and call, which keeps the per-kernel host overhead of a training step small."""

    def __init__(self, rendered: RenderedKernel) -> None:
        self.rendered = rendered
        self._gpu: _Prepared | None = None

    def __call__(self, args: Sequence[Any], outs: Sequence[Any]) -> None:
        if self._gpu is not None:
            self._gpu(args, outs)
        elif _on_gpu([*args, *outs]):
            config = _gpu_config(self.rendered, args, outs)  # tuned once per kernel and GPU
            self._gpu = _Prepared(self.rendered, {**self.rendered.constexprs, **config}, interpret=False)
            self._gpu(args, outs)
        else:
            launch(self.rendered, args, outs)


def launch(rendered: RenderedKernel, args: Sequence[Any], outs: Sequence[Any],
           config: Mapping[str, int] | None = None) -> None:
    """Run the kernel on ``args`` (one buffer per ``kernel.args`` entry) writing ``outs`` (one per
    ``kernel.outs``): numpy arrays through the interpreter, CuPy arrays on the GPU. ``config``
    (constexprs, optionally num_warps) overrides the tuned/interpreter choice."""
    if len(args) + len(outs) != sum(t.startswith("*") for t in rendered.signature.values()):
        raise ValueError(f"{rendered.name}: takes {sum(p.startswith('in') for p in rendered.params)} inputs and "
                         f"{sum(p.startswith('out') for p in rendered.params)} outputs, got {len(args)} and {len(outs)}")
    gpu = _on_gpu([*args, *outs])
    if config is None:
        config = _gpu_config(rendered, args, outs) if gpu else interpreter_config(rendered)
    _run(rendered, args, outs, {**rendered.constexprs, **config}, interpret=not gpu)


def _gpu_config(rendered: RenderedKernel, args: Sequence[Any], outs: Sequence[Any]) -> dict[str, int]:
    """The tuned config of a large kernel (cached on disk); the renderer's defaults otherwise."""
    return tuned_config(rendered, args, outs) if worth_tuning(rendered) else {}


# Kernels over fewer elements than this run with the renderer's default blocks: tuning costs a
# compile per candidate config, which small kernels (most of a training step's) never repay. On
# the H200, an MLP step (batch 256, 784-2048-2048-10) took 19 s to compile with 1M here.
TUNE_MIN_ELEMENTS = 1 << 24


def worth_tuning(rendered: RenderedKernel) -> bool:
    """Whether a kernel is large enough for the autotuner (elements of its iteration space,
    batch x M x N for a matmul)."""
    n = 1
    for axis in rendered.grid_factors:
        for extent, _ in axis:
            n *= extent
    return n * rendered.scalars.get("rnumel", 1) >= TUNE_MIN_ELEMENTS


# ---------------------------------------------------------------------------------------------
# Ahead-of-time compilation (CI proves every kernel builds for a GPU it doesn't have)
# ---------------------------------------------------------------------------------------------

def compile_aot(rendered: RenderedKernel, arch: int = 90, num_warps: int = 4) -> Any:
    """``triton.compile`` for ``cuda`` compute capability ``arch`` with the default constexprs;
    the result's ``asm`` holds ttir/ttgir/llir/ptx/cubin. Same call in Triton 3.6 and 3.9."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = load(rendered, interpret=False)
    src = ASTSource(fn=fn, signature=dict(rendered.signature), constexprs=dict(rendered.constexprs))
    return triton.compile(src, target=GPUTarget("cuda", arch, 32),
                          options={"num_warps": num_warps, "enable_fp_fusion": True})
