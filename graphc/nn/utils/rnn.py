"""Variable-length sequences: PackedSequence, pack/pad helpers (torch.nn.utils.rnn)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ... import creation, shape_ops
from ...tensors import Tensor, device_tensor, host_array


def _as_long(x) -> np.ndarray:
    if isinstance(x, Tensor):
        return host_array(x._data).astype(np.int64).reshape(-1)
    return np.asarray(list(x), dtype=np.int64).reshape(-1)


class PackedSequence(NamedTuple):
    """Time-major packing of a sorted batch: ``data`` holds, for each time step t, the rows of the
    ``batch_sizes[t]`` sequences still running (longest first)."""
    data: Tensor
    batch_sizes: Tensor | None = None
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def to(self, *args, **kwargs) -> "PackedSequence":
        """The data converted; the sort permutations follow it to its device (batch_sizes stays
        on the CPU, as in PyTorch)."""
        data = self.data.to(*args, **kwargs)

        def follow(t):
            return None if t is None else t.to(data.device)
        return self._replace(data=data, sorted_indices=follow(self.sorted_indices),
                             unsorted_indices=follow(self.unsorted_indices))

    def cpu(self) -> "PackedSequence":
        return self.to("cpu")

    def cuda(self, device=None) -> "PackedSequence":
        from ...methods import cuda_device
        return self.to(cuda_device(device))

    def double(self) -> "PackedSequence":
        return self._replace(data=self.data.double())

    def float(self) -> "PackedSequence":
        return self._replace(data=self.data.float())

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return False


def _invert(perm: np.ndarray) -> np.ndarray:
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    return inv


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    lens = _as_long(lengths)
    if enforce_sorted:
        if np.any(lens[:-1] < lens[1:]):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. "
                               "You can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to "
                               "sidestep this requirement if you do not need ONNX exportability.")
        sorted_idx = None
    else:
        order = np.argsort(-lens, kind="stable")
        lens = lens[order]
        sorted_idx = device_tensor(order.astype(np.int64), input)
        input = input.index_select(0 if batch_first else 1, sorted_idx)
    if len(lens) and lens[-1] <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element in 'lengths' "
                           "that is <= 0")
    if batch_first:
        input = input.transpose(0, 1)
    steps = int(lens[0]) if len(lens) else 0
    if steps > input.shape[0]:
        raise RuntimeError(f"Expected sequence length to be at most {input.shape[0]}, but got {steps}")
    batch_sizes = np.array([(lens > t).sum() for t in range(steps)], dtype=np.int64)
    data = shape_ops.cat([input[t, :int(batch_sizes[t])] for t in range(steps)], 0)
    unsorted = None if sorted_idx is None else device_tensor(_invert(host_array(sorted_idx._data)), input)
    return PackedSequence(data, Tensor._make(batch_sizes), sorted_idx, unsorted)  # batch_sizes on the CPU, as in PyTorch


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None):
    data, batch_sizes, sorted_idx, unsorted_idx = sequence
    bs = host_array(batch_sizes._data).astype(np.int64)
    steps, batch = len(bs), int(bs[0])
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"Expected total_length to be at least the length of the longest sequence in input, "
                             f"but got total_length={total_length} and max sequence length being {steps}")
    else:
        total_length = steps
    rows, offset = [], 0
    feat = tuple(data.shape[1:])
    for t in range(total_length):
        n = int(bs[t]) if t < steps else 0
        step = data[offset:offset + n]
        offset += n
        if n < batch:
            fill = creation.full((batch - n,) + feat, padding_value, dtype=data.dtype, device=data.device)
            step = shape_ops.cat([step, fill], 0) if n else fill
        rows.append(step)
    padded = shape_ops.stack(rows, 0)                       # (T, B, *)
    lengths = np.array([(bs > b).sum() for b in range(batch)], dtype=np.int64)
    if unsorted_idx is not None:
        padded = padded.index_select(1, unsorted_idx)
        lengths = lengths[host_array(unsorted_idx._data)]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, Tensor._make(lengths)


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    sequences = list(sequences)
    longest = max(s.shape[0] for s in sequences)
    out = []
    for s in sequences:
        extra = longest - s.shape[0]
        if extra:
            fill = creation.full((extra,) + tuple(s.shape[1:]), padding_value, dtype=s.dtype, device=s.device)
            s = shape_ops.cat([s, fill] if padding_side == "right" else [fill, s], 0)
        out.append(s)
    return shape_ops.stack(out, 0 if batch_first else 1)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list[Tensor]:
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [padded_sequences[i, :int(n)] for i, n in enumerate(_as_long(lengths))]


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The permutation that undoes ``permutation`` (None stays None)."""
    if permutation is None:
        return None
    return device_tensor(_invert(_as_long(permutation)), permutation)
