"""Random number generation: ``Generator``, ``manual_seed`` and the default generators.

Streams come from numpy's PCG64; the same seed gives the same numbers in every graphc process
(they are not PyTorch's numbers: PyTorch uses a different generator).

Each GPU has its own generator, as in PyTorch (``graphc.cuda.manual_seed`` seeds it). It draws on
the host too, and the numbers are copied to the GPU: the same seed gives the same numbers on the
CPU and on the GPU.
"""
from __future__ import annotations

import math

import numpy as np

from graphc.ir import dtypes as dt
from graphc.ir import prims as P

from .dispatch import current as _dispatch

_STATE_WORDS = 6  # PCG64 state: 128-bit state, 128-bit increment, has_uint32, uinteger


_DEFAULT_SEED = 67280421310721


class Generator:
    def __init__(self, device="cpu") -> None:
        from .device import check_device
        self._start(check_device(device), _DEFAULT_SEED)

    def _start(self, device, seed: int) -> None:
        self.device = device
        self._seed = seed
        self._np = np.random.Generator(np.random.PCG64(seed))

    def manual_seed(self, seed: int) -> "Generator":
        seed = int(seed)
        if seed < 0:
            seed &= 0xFFFF_FFFF_FFFF_FFFF
        self._seed = seed
        self._np = np.random.Generator(np.random.PCG64(seed))
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy) & 0xFFFF_FFFF_FFFF_FFFF
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        """The state as a uint8 tensor, as PyTorch returns it."""
        from .tensors import Tensor
        st = self._np.bit_generator.state
        words = [st["state"]["state"], st["state"]["inc"], st["has_uint32"], st["uinteger"]]
        raw = b"".join(int(w).to_bytes(16, "little") for w in words)
        return Tensor._make(np.frombuffer(raw, dtype=np.uint8).copy())

    def set_state(self, new_state) -> "Generator":
        raw = bytes(np.asarray(new_state._data if hasattr(new_state, "_data") else new_state, dtype=np.uint8))
        if len(raw) != 64:
            raise RuntimeError(f"Expected a graphc RNG state of 64 bytes, got {len(raw)}")
        w = [int.from_bytes(raw[i:i + 16], "little") for i in range(0, 64, 16)]
        bg = np.random.PCG64()
        bg.state = {"bit_generator": "PCG64", "state": {"state": w[0], "inc": w[1]},
                    "has_uint32": w[2], "uinteger": w[3]}
        self._np = np.random.Generator(bg)
        return self

    @property
    def np(self) -> np.random.Generator:
        return self._np


default_generator = Generator()
_cuda_generators: dict[int, Generator] = {}
_cuda_seed = [_DEFAULT_SEED]  # where GPU generators made later start (graphc.manual_seed's last seed)


def cuda_generator(index: int) -> Generator:
    """GPU ``index``'s default generator. Made without checking for a GPU: seeding calls are
    accepted without CUDA, as in PyTorch."""
    g = _cuda_generators.get(index)
    if g is None:
        from .device import device
        g = _cuda_generators[index] = object.__new__(Generator)
        g._start(device("cuda", index), _cuda_seed[0])
    return g


def seed_cuda_generators(seed: int) -> None:
    _cuda_seed[0] = int(seed)
    for g in _cuda_generators.values():
        g.manual_seed(seed)


def manual_seed(seed: int) -> Generator:
    """Seed the CPU's and every GPU's generator."""
    seed_cuda_generators(seed)
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state) -> None:
    default_generator.set_state(new_state)


def gen(generator: Generator | None, device=None) -> np.random.Generator:
    """The numpy stream for a draw of numbers that will live on ``device`` (a checked device;
    None: the CPU): ``generator``'s, else that device's default generator's."""
    _dispatch().drawing_random()
    kind = "cpu" if device is None else device.type
    if generator is not None:
        if generator.device.type != kind:
            raise RuntimeError(f"Expected a '{kind}' device type for generator but found '{generator.device.type}'")
        return generator.np
    return (default_generator if kind == "cpu" else cuda_generator(device.index)).np


def sample(kind: str, shape: tuple[int, ...], dtype: dt.DType, generator=None, device=None, **kw) -> np.ndarray:
    """Draw in float64 (or int64) and cast, so results don't depend on numpy's dtype paths.
    The numbers are drawn on the host for every device (see the module docstring)."""
    g = gen(generator, device)
    if kind == "uniform":
        a = P.unit_uniform(g.random(shape), dtype) * (kw.get("high", 1.0) - kw.get("low", 0.0)) + kw.get("low", 0.0)
    elif kind == "normal":
        a = g.standard_normal(shape) * kw.get("std", 1.0) + kw.get("mean", 0.0)
    elif kind == "integers":
        a = g.integers(kw["low"], kw["high"], size=shape, dtype=np.int64)
    else:
        raise ValueError(kind)
    return np.asarray(a).astype(dtype.np, copy=False)


def draw_key(g: np.random.Generator | None = None) -> np.ndarray:
    """The key of one random op: two int64 from ``g`` (default: graphc's default CPU generator)."""
    return (default_generator.np if g is None else g).integers(0, 1 << 62, size=2, dtype=np.int64)


def _keyed_uniform(shape: tuple[int, ...], dtype: dt.DType, device, g: np.random.Generator | None = None):
    """``rand_uniform`` on a freshly drawn key, as a tensor on ``device`` (None: the CPU)."""
    from .device import array_to
    from .tensors import Tensor
    draw = P.rand_uniform.impl(draw_key(g), shape=tuple(shape), dtype=dtype, stream=0)
    return Tensor._make(draw if device is None else array_to(draw, device))


def uniform_tensor(shape: tuple[int, ...], dtype: dt.DType, device=None):
    """U[0, 1) samples (dropout masks) as a tensor on ``device`` (a checked device; None: the
    CPU): ``rand_uniform`` on a key drawn from the default generator. Inside a compiled function
    the op is traced with the key as an input drawn the same way at every call, so with the same
    seed a compiled function draws exactly the numbers eager mode does."""
    ops = _dispatch().random("uniform", tuple(shape), dtype)
    return ops if ops is not None else _keyed_uniform(shape, dtype, device)


def keyed_sample(kind: str, shape: tuple[int, ...], dtype: dt.DType, device=None):
    """Eager ``rand``/``randn`` (``kind``: uniform | normal) as a tensor on ``device`` (a checked
    device; None: the CPU), drawn as a compiled function draws them: ``rand_uniform`` on keys from
    the device's default generator (normal: by Box-Muller), so on the CPU one seed gives the same
    numbers eager and compiled."""
    g = gen(None, device)

    def uniform(d):
        return _keyed_uniform(shape, d, device, g)
    return uniform(dtype) if kind == "uniform" else normal_from_uniform(uniform, dtype)


def normal_from_uniform(uniform, dtype: dt.DType):
    """Standard normal samples made from ``uniform(dtype)`` draws by Box-Muller (as ops: random
    numbers inside a compiled function)."""
    wide = dt.float32 if dtype.is_low_precision else dtype  # in float16/bfloat16, u is too coarse
    u, u2 = uniform(wide), uniform(wide)
    # u may round up to 1.0 in float32, so 1 - u is kept above 0
    z = (-2.0 * (1.0 - u).clamp(min=1e-30).log()).sqrt() * (u2 * (2.0 * math.pi)).cos()
    return z if wide is dtype else z.to(dtype)
