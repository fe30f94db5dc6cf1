"""Devices. Eager tensors live on the CPU; asking for an accelerator that isn't there is an error."""
from __future__ import annotations


class DeviceUnavailableError(RuntimeError, AssertionError):
    """No such device here. Both a RuntimeError (PyTorch with CUDA, no driver) and an
    AssertionError (PyTorch built without CUDA), so code written for either catches it."""


class device:
    __slots__ = ("type", "index")

    def __init__(self, type_or_str, index: int | None = None) -> None:
        if isinstance(type_or_str, device):
            self.type, self.index = type_or_str.type, type_or_str.index
            return
        if isinstance(type_or_str, int):
            type_or_str, index = "cuda", type_or_str
        s = str(type_or_str)
        if ":" in s:
            s, idx = s.split(":", 1)
            if index is not None:
                raise RuntimeError(f"type (string) must not include an index because index was passed explicitly: {type_or_str}")
            try:
                index = int(idx)
            except ValueError:
                raise RuntimeError(f"Invalid device string: '{type_or_str}'") from None
        if s not in KNOWN_TYPES:
            raise RuntimeError(
                f"Expected one of {', '.join(KNOWN_TYPES)} device type at start of device string: {type_or_str}")
        if index is not None and index < 0:
            raise RuntimeError(f"Device index must not be negative, got {index}")
        self.type, self.index = s, index

    def __repr__(self) -> str:
        return f"device(type='{self.type}')" if self.index is None else f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except RuntimeError:
                return False
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


KNOWN_TYPES = ("cpu", "cuda", "mps", "xpu", "meta")
CPU = device("cpu")


def check_device(dev) -> device:
    """Normalize a device argument; raise the clear error for anything but the CPU."""
    if dev is None:
        return CPU
    d = dev if isinstance(dev, device) else device(dev)
    if d.type != "cpu":
        raise DeviceUnavailableError(
            f"{d.type} device requested ({d}), but graphc found no {d.type.upper()} device: "
            f"graphc.{'cuda' if d.type == 'cuda' else 'accelerator'}.is_available() is False. "
            "Use device='cpu', or pick the device with "
            "`'cuda' if graphc.cuda.is_available() else 'cpu'`.")
    return d
