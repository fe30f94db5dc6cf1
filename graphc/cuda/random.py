"""graphc.cuda.random: the per-GPU random generators (graphc ``Generator``s drawing on the host;
see ``graphc.random``). Seeding calls are accepted without CUDA, as in PyTorch."""
from __future__ import annotations

from graphc.runtime import devices as _rt

from .. import random as _random

__all__ = ["get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all", "manual_seed",
           "manual_seed_all", "seed", "seed_all", "initial_seed"]


def _index(device) -> int:
    from . import _index
    return _index(device)


def manual_seed(seed: int) -> None:
    """Seed the current GPU's generator (accepted and kept for later without CUDA, as in PyTorch)."""
    _random.cuda_generator(_rt.CUDA.current).manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    _random.seed_cuda_generators(seed)


def seed() -> int:
    return _random.cuda_generator(_rt.CUDA.current).seed()


def initial_seed() -> int:
    return _random.cuda_generator(_rt.CUDA.current).initial_seed()


def get_rng_state(device="cuda"):
    """The state of ``device``'s generator (a uint8 tensor, as PyTorch's)."""
    return _random.cuda_generator(_index(device)).get_state()


def set_rng_state(new_state, device="cuda") -> None:
    _random.cuda_generator(_index(device)).set_state(new_state)


def get_rng_state_all() -> list:
    return [get_rng_state(i) for i in range(_rt.CUDA.device_count())]


def set_rng_state_all(new_states) -> None:
    for i, state in enumerate(new_states):
        set_rng_state(state, i)


def seed_all() -> None:
    """A fresh random seed for every GPU's generator."""
    for i in range(_rt.CUDA.device_count()):
        _random.cuda_generator(i).seed()
