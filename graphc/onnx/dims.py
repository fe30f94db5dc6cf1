"""Sizes that depend on the dynamic axes of an export (``dynamic_axes``).

graphc's IR is shape-specialized: a reshape target, a slice bound or the divisor of a mean is a
plain number in the traced graph. To export a graph that works for any size of a dynamic axis,
the model is traced again at other sizes of the axes (``trace_sizes``), and every number that
changed is fitted as a whole-number polynomial of the axis sizes with terms up to products of two
different axes (``Dim``: ``q + p * batch + r * batch * time``), or as the reciprocal of one (a
mean's ``1 / count``). The ONNX builders compute such a number at run time from the input's
shape. One more trace, with every dynamic axis changed at once, checks the fit: a size the model
computes otherwise (``batch // 2``, ``batch * batch``) is refused, never exported wrongly. Value
shapes are fitted per dimension, and one that can't be is an ``Unfit``: an error only where a
builder needs its value (ONNX's own Conv computes ``h // 2``; a Reshape target can't).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import OnnxExporterError

GROW, CHECK_GROW = 3, 5  # how much longer an axis is in the fitting traces and in the check trace


@dataclass(frozen=True)
class Dim:
    """``const + sum(coefficient * product of symbol sizes)``: a number that follows the dynamic axes."""

    const: int
    terms: tuple[tuple[tuple[str, ...], int], ...]  # (symbols multiplied, coefficient), sorted, none zero

    def __str__(self) -> str:
        text = ""
        for names, p in self.terms:
            term = "*".join(([str(abs(p))] if abs(p) != 1 else []) + list(names))
            text += (" - " if p < 0 else " + ") + term if text else ("-" if p < 0 else "") + term
        if self.const or not text:
            text += (" - " if self.const < 0 else " + ") + str(abs(self.const)) if text else str(self.const)
        return text

    def at(self, sizes: dict[str, int]) -> int:
        return self.const + sum(p * int(np.prod([sizes[n] for n in names])) for names, p in self.terms)


def _monomials(names: list[str]) -> list[tuple[str, ...]]:
    return [(n,) for n in names] + list(itertools.combinations(names, 2))


def trace_sizes(base: dict[str, int]) -> list[dict[str, int]]:
    """The axis sizes to trace at: the example's, one trace per term of the fit (each symbol, each
    pair of symbols, GROW longer), and the check trace (every symbol CHECK_GROW longer)."""
    grown = [{**base, **{n: base[n] + GROW for n in m}} for m in _monomials(list(base))]
    return [base] + grown + [{k: v + CHECK_GROW for k, v in base.items()}]


@dataclass(frozen=True)
class Unfit:
    """A dimension that follows the dynamic axes in a way export can't compute (``h // 2`` after a
    strided convolution). Harmless until a builder needs its value: then ``error`` is raised."""

    samples: tuple[int, ...]  # its size in each trace: equal Unfits are the same size
    error: str = field(compare=False)


def fit_shape(samples: list[tuple[int, ...]], sizes: list[dict[str, int]], what: str) -> tuple:
    """A value's shape, fitted dimension by dimension; a dimension that can't be is an ``Unfit``."""
    dims = []
    for k, sizes_k in enumerate(zip(*samples)):
        try:
            dims.append(fit(list(sizes_k), sizes, f"{what}, dimension {k}"))
        except OnnxExporterError as err:
            dims.append(Unfit(tuple(sizes_k), str(err)))
    return tuple(dims)


@dataclass(frozen=True)
class Reciprocal:
    """``1 / dim`` as a float (a mean over a dynamic axis multiplies by it)."""

    dim: Dim

    def __str__(self) -> str:
        return f"1 / ({self.dim})"


def fit(samples: list, sizes: list[dict[str, int]], what: str) -> Any:
    """The structure of ``samples[0]`` (a number, or tuples/lists/dicts of them) with every number
    that differs between the samples replaced by its fit. ``samples[k]`` was traced with the axis
    sizes ``sizes[k]`` (``trace_sizes``). ``what`` names the thing in errors."""
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
    if all(float(s).is_integer() for s in samples):  # a size (also as a float: full(..., float(t)))
        d = _affine([int(s) for s in samples], sizes)
        if d is not None:
            return d
    if all(s != 0 for s in samples):  # a reciprocal of a size (a mean's 1 / count)?
        recips = [1.0 / s for s in samples]
        rounded = [round(r) for r in recips]
        if all(abs(r - k) <= 1e-6 * max(1, abs(k)) for r, k in zip(recips, rounded)):
            d = _affine(rounded, sizes)
            if d is not None and d.terms:
                return Reciprocal(d)
    raise OnnxExporterError(
        f"graphc.onnx.export: {what} depends on the dynamic axes in a way ONNX export can't express "
        f"(it is {_show(samples, sizes)}; only whole-number sizes like 4*batch + 1 or batch*time, or their "
        "reciprocal, can be computed from the input's shape). Export without dynamic_axes for that axis, or "
        "compute the size from the input's shape in a supported way.")


def _same(a, b) -> bool:
    return type(a) is type(b) and (a == b or (isinstance(a, float) and a != a and b != b))  # nan == nan here


def _affine(samples: list[int], sizes: list[dict[str, int]]) -> Dim | None:
    """The polynomial through the fitting traces' samples, if its coefficients are whole numbers
    and it also gives the check trace's sample."""
    monos = [()] + _monomials(list(sizes[0]))
    design = np.array([[np.prod([s[n] for n in m]) for m in monos] for s in sizes[:-1]], np.float64)
    coef = np.linalg.solve(design, np.array(samples[:-1], np.float64))
    whole = np.round(coef)
    if np.abs(coef - whole).max() > 1e-6:
        return None
    d = Dim(int(whole[0]), tuple(sorted((m, int(c)) for m, c in zip(monos[1:], whole[1:]) if c)))
    if any(d.at(s) != v for s, v in zip(sizes, samples)):
        return None  # the check trace disagrees: not such a polynomial
    return d


def _show(samples, sizes) -> str:
    return ", ".join(f"{s!r} with {', '.join(f'{k}={v}' for k, v in z.items())}" for s, z in zip(samples, sizes))


def _mismatch(what: str, samples, sizes) -> OnnxExporterError:
    return OnnxExporterError(f"graphc.onnx.export: the traced graph changes with the size of a dynamic axis ({what} is "
                       f"{_show(samples, sizes)}); ONNX export needs one graph for every size. Export without "
                       "dynamic_axes for that axis.")
