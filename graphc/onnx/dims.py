"""Sizes that depend on the dynamic axes of an export (``dynamic_axes``).

graphc's IR is shape-specialized: a reshape target, a slice bound or the divisor of a mean is a
plain number in the traced graph. To export a graph that works for any size of a dynamic axis,
the model is traced again with that axis a few elements longer, and every number that changed
is fitted as an affine function of the axis sizes (``Dim``: ``q + p1 * batch + ...``), or as the
reciprocal of one (a mean's ``1 / count``). The ONNX builders compute such a number at run time
from the input's shape. One more trace, with every dynamic axis changed at once, checks the fit:
a size the model computes otherwise (``batch // 2``, ``batch * batch``) is refused, never
exported wrongly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphc.ir.dtypes import DType

from .errors import OnnxExporterError


@dataclass(frozen=True)
class Dim:
    """``const + sum(coefficient * size of symbol)``: a number that follows the dynamic axes."""

    const: int
    terms: tuple[tuple[str, int], ...]  # (symbol, coefficient), sorted by symbol, no zero coefficient

    def __str__(self) -> str:
        parts = [name if p == 1 else f"{p}*{name}" for name, p in self.terms]
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts)

    def at(self, sizes: dict[str, int]) -> int:
        return self.const + sum(p * sizes[name] for name, p in self.terms)


@dataclass(frozen=True)
class Reciprocal:
    """``1 / dim`` as a float (a mean over a dynamic axis multiplies by it)."""

    dim: Dim

    def __str__(self) -> str:
        return f"1 / ({self.dim})"


def _plain(x) -> bool:
    return isinstance(x, (bool, int, float, str, type(None), DType))


def fit(samples: list, sizes: list[dict[str, int]], what: str) -> Any:
    """The structure of ``samples[0]`` (a number, or tuples/lists/dicts of them) with every number
    that differs between the samples replaced by its fit. ``samples[k]`` was traced with the axis
    sizes ``sizes[k]``: ``sizes[0]`` the example's, then one trace per symbol with only that
    symbol changed, then one with all of them changed (the check). ``what`` names the thing in
    errors."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        if any(not isinstance(s, (tuple, list)) or len(s) != len(first) for s in samples):
            raise _mismatch(what, samples, sizes)
        return type(first)(fit([s[i] for s in samples], sizes, what) for i in range(len(first)))
    if isinstance(first, dict):
        if any(not isinstance(s, dict) or s.keys() != first.keys() for s in samples):
            raise _mismatch(what, samples, sizes)
        return {k: fit([s[k] for s in samples], sizes, f"{what}, {k}") for k in first}
    if all(_same(s, first) for s in samples):
        return first
    if isinstance(first, bool) or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in samples):
        raise _mismatch(what, samples, sizes)
    if all(isinstance(s, int) for s in samples):
        d = _affine(samples, sizes)
        if d is not None:
            return d
    elif all(s != 0 for s in samples):  # floats: a reciprocal of a size (a mean's 1 / count)?
        recips = [1.0 / s for s in samples]
        rounded = [round(r) for r in recips]
        if all(abs(r - k) <= 1e-6 * max(1, abs(k)) for r, k in zip(recips, rounded)):
            d = _affine(rounded, sizes)
            if d is not None and d.terms:
                return Reciprocal(d)
    raise OnnxExporterError(
        f"graphc.onnx.export: {what} depends on the dynamic axes in a way ONNX export can't express "
        f"(it is {_show(samples, sizes)}; only whole-number affine sizes like 4 * batch + 1, or their "
        "reciprocal, can be computed from the input's shape). Export without dynamic_axes for that axis, or "
        "compute the size from the input's shape in a supported way.")


def _same(a, b) -> bool:
    return type(a) is type(b) and (a == b or (isinstance(a, float) and a != a and b != b))  # nan == nan here


def _affine(samples: list[int], sizes: list[dict[str, int]]) -> Dim | None:
    base, names = sizes[0], list(sizes[0])
    terms = []
    const = samples[0]
    for k, name in enumerate(names, start=1):
        delta = sizes[k][name] - base[name]
        step = samples[k] - samples[0]
        if step % delta:
            return None
        p = step // delta
        if p:
            terms.append((name, p))
            const -= p * base[name]
    d = Dim(const, tuple(sorted(terms)))
    if any(d.at(s) != v for s, v in zip(sizes, samples)):
        return None  # the check trace disagrees: not affine
    return d


def _show(samples, sizes) -> str:
    return ", ".join(f"{s!r} with {', '.join(f'{k}={v}' for k, v in z.items())}" for s, z in zip(samples, sizes))


def _mismatch(what: str, samples, sizes) -> OnnxExporterError:
    return OnnxExporterError(f"graphc.onnx.export: the traced graph changes with the size of a dynamic axis ({what} is "
                       f"{_show(samples, sizes)}); ONNX export needs one graph for every size. Export without "
                       "dynamic_axes for that axis.")
