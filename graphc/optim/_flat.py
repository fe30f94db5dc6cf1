"""One update for a whole parameter group: parameters and their state as views of flat buffers.

Eagerly, running an update rule once per parameter costs a dozen numpy calls each, which
dominates for models with many small tensors. When every parameter of a group that has a
gradient shares a dtype and a device (and the same state layout), the group's parameters become
views of one flat buffer, their state tensors views of one flat buffer per state entry, and the
update rule runs once, on the flat arrays (``foreach``/``fused`` in PyTorch). Results are the
same element by element: the rules are elementwise.

A parameter's array is moved into the flat buffer only when nothing else holds it (another
tensor sharing it through ``.data``, a numpy view of it), so no alias the user made is cut; such
a group keeps the per-parameter path. Replacing a parameter's array later (``p.data = ...``,
``.to()``) or the state (``load_state_dict``) is noticed at the next step, which rebuilds.
"""
from __future__ import annotations

import itertools
import sys
from typing import Any

from graphc.ir.array_module import array_module

from ..tensors import Tensor

CHUNK = 1 << 15  # elements updated at once: the rule's temporaries fit in a core's cache


class FlatGroup:
    def __init__(self, params: list[Tensor]) -> None:
        self.params = params
        first = params[0]._data
        xp = array_module(first)
        self.sizes = [p._data.size for p in params]
        self.buffer = xp.empty(sum(self.sizes), dtype=first.dtype)
        self.views = []
        start = 0
        for p, n in zip(params, self.sizes):
            view = self.buffer[start:start + n]
            view[...] = p._data.reshape(-1)
            p._data = view.reshape(p._data.shape)
            self.views.append(p._data)
            start += n
        # pieces of about CHUNK elements: (start, stop, [(parameter, its start, its stop), ...])
        self.pieces: list[tuple[int, int, list]] = []
        ends = list(itertools.accumulate(self.sizes))
        start = 0
        while start < ends[-1]:
            stop = min(start + CHUNK, ends[-1])
            parts, lo = [], 0
            for i, hi in enumerate(ends):
                if hi > start and lo < stop:
                    parts.append((i, max(start, lo) - lo, min(stop, hi) - lo))
                lo = hi
            self.pieces.append((start, stop, parts))
            start = stop
        self.tensor = Tensor._make(self.buffer)  # stands for the group in the update rule
        self.state: dict[str, Any] = {}  # the flat state, as the update rule sees it
        # per parameter: key -> (its state tensor, the array it held when made a view of the flat state)
        self.state_views: list[dict] = []

    def fits(self, params: list[Tensor]) -> bool:
        """Whether the group still is these parameters, each still viewing the flat buffer."""
        return len(params) == len(self.params) and all(
            p is q and p._data is v for p, q, v in zip(params, self.params, self.views))

    def gather_state(self, optimizer_state) -> bool:
        """Make ``self.state`` the flat view of the parameters' state (re-pointing their state
        tensors into flat buffers when needed). False when the states differ in layout or in their
        scalars (e.g. step counts), which one flat update cannot express."""
        states = [optimizer_state.get(p, {}) for p in self.params]
        if all(not s for s in states):
            self.state, self.state_views = {}, []
            return True
        keys = states[0].keys()
        if any(s.keys() != keys for s in states):
            return False
        if self.state_views and all(s.get(k) is t and t._data is a for s, views in zip(states, self.state_views)
                                    for k, (t, a) in views.items()):
            return self._scalars_agree(states)
        flat: dict[str, Any] = {}
        for k in keys:
            values = [s[k] for s in states]
            if not all(isinstance(v, Tensor) for v in values):
                return False
            if all(v.ndim == 0 for v in values):
                flat[k] = Tensor._make(values[0]._data.copy())
            elif not all(v._data.size == n and v.dtype is self.tensor.dtype for v, n in zip(values, self.sizes)):
                return False
        self.state_views = [{} for _ in states]
        xp = array_module(self.buffer)
        for k in keys:
            if k not in flat:
                buf = xp.concatenate([s[k]._data.reshape(-1) for s in states])
                flat[k] = Tensor._make(buf)
                self._adopt(k, buf, states)
        self.state = flat
        return self._scalars_agree(states)

    def chunks(self, grads: list):
        """(tensor, gradient, state) per cache-sized piece of the flat buffer: the piece of the
        parameters, of their gradients (a view when the piece lies in one parameter, else its
        parts joined) and of each state vector; scalar state (the step count) copied for each
        piece, and the flat state takes the new one from the first piece's (``scatter_state``)."""
        xp = array_module(self.buffer)
        flat_grads = [g.reshape(-1) for g in grads]
        self._chunk_states = []
        for start, stop, parts in self.pieces:
            t = Tensor._make(self.buffer[start:stop])
            g = [flat_grads[i][a:b] for i, a, b in parts]
            state = {k: Tensor._make(v._data.copy() if v.ndim == 0 else v._data[start:stop])
                     for k, v in self.state.items()}
            self._chunk_states.append(state)
            yield t, g[0] if len(g) == 1 else xp.concatenate(g), state

    def _scalars_agree(self, states: list[dict]) -> bool:
        for k, v in self.state.items():
            if v.ndim == 0:
                if any(bool(s[k]._data != states[0][k]._data) for s in states):
                    return False
                v._data[...] = states[0][k]._data
        return True

    def _adopt(self, key: str, buf, states: list[dict]) -> None:
        """The parameters' ``key`` state tensors become views of the flat ``buf``."""
        start = 0
        for s, views, n in zip(states, self.state_views, self.sizes):
            t = s[key]
            t._data = buf[start:start + n].reshape(t._data.shape)
            views[key] = (t, t._data)
            start += n

    def scatter_state(self, optimizer_state) -> None:
        """After an update: parameters without state get state tensors viewing the new flat
        state; every parameter's scalar state (the step count) takes the new value."""
        states = [optimizer_state[p] for p in self.params]
        if not self.state_views:
            self.state_views = [{} for _ in states]
        self._merge_chunk_states()
        for k, v in self.state.items():
            if v.ndim == 0:
                for s in states:
                    if isinstance(s.get(k), Tensor):
                        s[k]._data[...] = v._data
                    else:
                        s[k] = Tensor._make(v._data.copy())
            elif k not in self.state_views[0]:
                start = 0
                for s, views, p, n in zip(states, self.state_views, self.params, self.sizes):
                    s[k] = t = Tensor._make(v._data[start:start + n].reshape(p._data.shape))
                    views[k] = (t, t._data)
                    start += n


    def _merge_chunk_states(self) -> None:
        """The pieces' new state as the flat state: vectors are views already, except state the
        step created (joined here); scalars from the first piece (all pieces count alike)."""
        pieces = self._chunk_states
        if not self.state:
            xp = array_module(self.buffer)
            self.state = {k: Tensor._make(v._data.copy()) if v.ndim == 0 else
                          Tensor._make(xp.concatenate([p[k]._data for p in pieces]))
                          for k, v in pieces[0].items()}
            return
        for k, v in self.state.items():
            if v.ndim == 0:
                v._data[...] = pieces[0][k]._data


def flat_group(cache: dict, group: dict, params: list[Tensor]) -> FlatGroup | None:
    """The flat form of ``group``'s parameters with gradients (cached in ``cache``), or None when
    they can't share one buffer."""
    found = cache.get(id(group))
    if found is not None and found.fits(params):
        return found
    if len(params) < 2 or len({id(p) for p in params}) != len(params):
        return None
    # p._data held by p and by getrefcount's argument only: nothing else shares the array
    if any(sys.getrefcount(p._data) > 2 for p in params):
        return None
    first = params[0]._data
    if any(type(p._data) is not type(first) or p._data.dtype != first.dtype or not p._data.flags.c_contiguous
           or getattr(p._data, "device", None) != getattr(first, "device", None) for p in params):
        return None
    cache[id(group)] = found = FlatGroup(params)
    return found
