"""RNN, LSTM, GRU (multi-layer, bidirectional, batch_first, initial states) and their cells."""
from __future__ import annotations

import math

import numpy as np

from ... import creation, math_ops, shape_ops
from ...tensors import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def apply_permutation(tensor: Tensor, permutation: Tensor, dim: int = 1) -> Tensor:
    """Reorder ``tensor`` along ``dim`` (PyTorch's helper for a PackedSequence's sorted order)."""
    return tensor.index_select(dim, permutation)


def _cell_step(mode: str, gi, h, c, w_hh_t, b_hh, w_hr=None):
    """One time step given the precomputed input projection ``gi`` (N, gates*H) and the
    transposed recurrent weight ``w_hh_t``; ``w_hr`` is the LSTM output projection (proj_size > 0)."""
    gh = math_ops.matmul(h, w_hh_t)
    if b_hh is not None:
        gh = gh + b_hh
    if mode == "LSTM":
        # one sigmoid over all four gates (the cell gate's share unused): one op on the whole
        # pre-activation instead of three on its quarters, and in a compiled step one derivative
        # s * (1 - s) for the three gates
        pre = gi + gh
        hidden = pre.shape[1] // 4
        i, f, _, o = pre.sigmoid().chunk(4, 1)
        g = pre[:, 2 * hidden:3 * hidden].tanh()
        c = f * c + i * g
        h = o * c.tanh()
        return (h if w_hr is None else math_ops.matmul(h, w_hr.t())), c
    if mode == "GRU":
        ir, iz, in_ = gi.chunk(3, 1)
        hr, hz, hn = gh.chunk(3, 1)
        r = (ir + hr).sigmoid()
        z = (iz + hz).sigmoid()
        n = (in_ + r * hn).tanh()
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (pre.tanh() if mode == "RNN_TANH" else pre.relu()), None


class RNNBase(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__()
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if dropout > 0 and num_layers == 1:
            import warnings
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=3)
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        gate = _GATES[mode] * hidden_size
        dirs = 2 if bidirectional else 1
        real_hidden = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                in_size = input_size if layer == 0 else real_hidden * dirs
                names = [f"weight_ih{sfx}", f"weight_hh{sfx}"]
                setattr(self, names[0], Parameter(creation.empty(gate, in_size, dtype=dtype, device=device)))
                setattr(self, names[1], Parameter(creation.empty(gate, real_hidden, dtype=dtype, device=device)))
                if bias:
                    names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
                    setattr(self, f"bias_ih{sfx}", Parameter(creation.empty(gate, dtype=dtype, device=device)))
                    setattr(self, f"bias_hh{sfx}", Parameter(creation.empty(gate, dtype=dtype, device=device)))
                if proj_size > 0:
                    names.append(f"weight_hr{sfx}")
                    setattr(self, f"weight_hr{sfx}", Parameter(creation.empty(proj_size, hidden_size, dtype=dtype, device=device)))
                self._flat_weights_names += names
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    @property
    def all_weights(self):
        per = (4 if self.bias else 2) + (1 if self.proj_size > 0 else 0)
        return [[getattr(self, n) for n in self._flat_weights_names[i:i + per]]
                for i in range(0, len(self._flat_weights_names), per)]

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    def _weights(self, layer: int, direction: int):
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        get = lambda n: getattr(self, n + sfx) if self.bias or n.startswith("weight") else None  # noqa: E731
        w_hr = getattr(self, "weight_hr" + sfx) if self.proj_size > 0 else None
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), w_hr

    def forward(self, input, hx=None):
        from ..utils.rnn import PackedSequence
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        is_lstm = self.mode == "LSTM"
        unbatched = input.dim() == 2
        if input.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)
        h0, c0 = self._initial_state(x, hx, unbatched)
        output, h_n, c_n = self._run(x, h0, c0, None)
        if unbatched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if c_n is not None else None
        elif self.batch_first:
            output = output.transpose(0, 1)
            if not is_lstm:  # PyTorch's RNN/GRU kernels transpose in place (LSTM's does not)
                from graphc.math_ops import grad_named
                output = grad_named(output, "TransposeBackward1")
        return (output, (h_n, c_n)) if is_lstm else (output, h_n)

    def _initial_state(self, x, hx, unbatched):
        is_lstm = self.mode == "LSTM"
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {x.shape[-1]}")
        dirs = 2 if self.bidirectional else 1
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        state_shape = (self.num_layers * dirs, x.shape[1], real_hidden)
        cell_shape = (self.num_layers * dirs, x.shape[1], self.hidden_size)
        if hx is None:
            h0 = creation.zeros(state_shape, dtype=x.dtype, device=x.device)
            return h0, (creation.zeros(cell_shape, dtype=x.dtype, device=x.device) if is_lstm else None)
        if is_lstm and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise RuntimeError("LSTM expects hx as a tuple (h_0, c_0)")
        h0, c0 = hx if is_lstm else (hx, None)
        if unbatched:
            if h0.dim() != 2:
                raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {h0.dim()}-D tensor")
            h0 = h0.unsqueeze(1)
            c0 = c0.unsqueeze(1) if c0 is not None else None
        for name, st, shape in (("hidden", h0, state_shape), ("cell", c0, cell_shape)):
            if st is not None and tuple(st.shape) != shape:
                raise RuntimeError(f"Expected {name} size {shape}, got {list(st.shape)}")
        return h0, c0

    def _run(self, x, h0, c0, lengths):
        """x: (T, N, input_size), sequence-first. ``lengths`` (numpy, or None for full length): a sample
        stops updating its state after its last step, and the reverse direction starts at its end."""
        is_lstm = self.mode == "LSTM"
        seq_len = x.shape[0]
        dirs = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        layer_in = x
        masks = None
        if lengths is not None:
            masks = [Tensor._make((lengths > t).reshape(-1, 1)) for t in range(seq_len)]
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, d)
                gi_all = math_ops.matmul(layer_in, w_ih.t())
                if b_ih is not None and self.mode != "GRU":
                    # gi + (h @ w_hh.T + b_hh) = (gi + b_hh) + h @ w_hh.T: both biases added
                    # once for all steps, not b_hh at every step (GRU's reset gate scales its b_hh)
                    gi_all = gi_all + (b_ih + b_hh)
                    b_hh = None
                elif b_ih is not None:
                    gi_all = gi_all + b_ih
                # the transposed recurrent weight, read at every step, copied once: compiled, the
                # copy is row-major and every step's product reads both operands contiguously
                # (OpenBLAS, one thread: 5.7 against 14 us for 16x64 @ 64x256 through a transpose)
                w_hh_t = w_hh.t().clone()
                k = layer * dirs + d
                h, c = h0[k], (c0[k] if is_lstm else None)
                steps = range(seq_len - 1, -1, -1) if d else range(seq_len)
                ys = [None] * seq_len
                for t in steps:
                    h_new, c_new = _cell_step(self.mode, gi_all[t], h, c, w_hh_t, b_hh, w_hr)
                    if masks is not None:
                        h_new = math_ops.where(masks[t], h_new, h)
                        c_new = math_ops.where(masks[t], c_new, c) if is_lstm else None
                    h, c = h_new, c_new
                    ys[t] = h
                outs.append(shape_ops.stack(ys, 0))
                h_n.append(h)
                if is_lstm:
                    c_n.append(c)
            layer_in = outs[0] if dirs == 1 else shape_ops.cat(outs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        return layer_in, shape_ops.stack(h_n, 0), (shape_ops.stack(c_n, 0) if is_lstm else None)

    def _forward_packed(self, packed, hx):
        from ..utils.rnn import PackedSequence
        data, batch_sizes, sorted_idx, unsorted_idx = packed
        bs = batch_sizes._data.astype(np.int64)
        steps, batch = len(bs), int(bs[0])
        lengths = np.array([(bs > b).sum() for b in range(batch)], dtype=np.int64)
        rows, offset = [], 0
        for t in range(steps):
            n = int(bs[t])
            step = data[offset:offset + n]
            offset += n
            if n < batch:
                step = shape_ops.cat([step, creation.zeros((batch - n,) + tuple(data.shape[1:]), dtype=data.dtype,
                                                              device=data.device)], 0)
            rows.append(step)
        x = shape_ops.stack(rows, 0)
        is_lstm = self.mode == "LSTM"
        if hx is not None and sorted_idx is not None:  # hx comes in the caller's batch order
            hx = tuple(s.index_select(1, sorted_idx) for s in hx) if is_lstm else hx.index_select(1, sorted_idx)
        h0, c0 = self._initial_state(x, hx, False)
        out, h_n, c_n = self._run(x, h0, c0, lengths)
        data_out = shape_ops.cat([out[t, :int(bs[t])] for t in range(steps)], 0)
        if unsorted_idx is not None:
            h_n = h_n.index_select(1, unsorted_idx)
            c_n = c_n.index_select(1, unsorted_idx) if c_n is not None else None
        packed_out = PackedSequence(data_out, batch_sizes, sorted_idx, unsorted_idx)
        return (packed_out, (h_n, c_n)) if is_lstm else (packed_out, h_n)

    def flatten_parameters(self) -> None:
        """A cuDNN memory-layout hint in PyTorch; nothing to do here."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    def __init__(self, *args, nonlinearity: str = "tanh", **kwargs) -> None:
        if len(args) > 3:
            nonlinearity = args[3]
            args = args[:3] + args[4:]
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", *args, **kwargs)


class LSTM(RNNBase):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    _mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, num_chunks: int = 1,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = Parameter(creation.empty(num_chunks * hidden_size, input_size, dtype=dtype, device=device))
        self.weight_hh = Parameter(creation.empty(num_chunks * hidden_size, hidden_size, dtype=dtype, device=device))
        if bias:
            self.bias_ih = Parameter(creation.empty(num_chunks * hidden_size, dtype=dtype, device=device))
            self.bias_hh = Parameter(creation.empty(num_chunks * hidden_size, dtype=dtype, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        stdv = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def _run(self, input, h, c):
        unbatched = input.dim() == 1
        if unbatched:
            input = input.unsqueeze(0)
            h = h.unsqueeze(0) if h is not None else None
            c = c.unsqueeze(0) if c is not None else None
        zeros = creation.zeros(input.shape[0], self.hidden_size, dtype=input.dtype)
        h = zeros if h is None else h
        if self._mode == "LSTM" and c is None:
            c = zeros
        gi = math_ops.matmul(input, self.weight_ih.t())
        if self.bias_ih is not None:
            gi = gi + self.bias_ih
        h, c = _cell_step(self._mode, gi, h, c, self.weight_hh.t(), self.bias_hh)
        if unbatched:
            h = h.squeeze(0)
            c = c.squeeze(0) if c is not None else None
        return h, c

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"

    def forward(self, input, hx=None):
        return self._run(input, hx, None)[0]


class LSTMCell(RNNCellBase):
    _mode = "LSTM"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        h, c = (None, None) if hx is None else hx
        return self._run(input, h, c)


class GRUCell(RNNCellBase):
    _mode = "GRU"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        return self._run(input, hx, None)[0]
