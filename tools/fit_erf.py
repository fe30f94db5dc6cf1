"""The coefficients of graphc's float32 erf and gelu polynomials, each a weighted minimax fit by a
linear program.

``python tools/fit_erf.py [--degree 6] [--end 4]`` prints S of ``ir/prims.py``'s erf,
erf(x) ~ tanh(x * S(x^2)) (``_ERF_S``), highest coefficient first, and the errors of its float32
numpy passes against scipy's float64 erf. S minimizes the largest relative error of erf on (0,
end]: an error dz in z = x * S(x^2) moves tanh(z) by (1 - erf^2) dz, so the linear program
minimizes max |w * (x * S(x^2) - atanh(erf(x)))| with w = (1 - erf^2) / erf. On [3.92, 4.09) the
result is 1 ulp below 1, where float32 erf is 1 (numpy's float32 tanh reaches 1 at z = 10 only):
asking x * S(x^2) >= 10 there too would cost a fifth of the accuracy elsewhere.

``python tools/fit_erf.py --gelu [--degree 6] [--end 5]`` prints H of ``passes/lowered_rewrites.py``'s
float32 gelu, gelu(x) ~ x / (1 + exp2(x * H(x^2))) (``_GELU_H``), and the errors of its float32
passes against x * Phi(x) in float64. With Phi = 1 / (1 + 2^z), z = -log2(Phi / (1 - Phi)), an
error dz moves Phi by Phi (1 - Phi) ln 2 dz: the weight is Phi (1 - Phi), so the fit bounds the
absolute error of Phi, what gelu's own formula 0.5 x (1 + erf(x / sqrt 2)) can reach in float32
(it cancels for x < 0). Odd degrees end on a negative coefficient, and H must stay negative for
all x: only even degrees work.
"""
from __future__ import annotations

import argparse

import numpy as np
from scipy.optimize import linprog
from scipy.special import erf, erfc, log_ndtr, ndtr


def _minimax(x: np.ndarray, target: np.ndarray, w: np.ndarray, degree: int) -> np.ndarray:
    """The coefficients c (lowest first) of p(x) = x * sum c_k x^(2k) minimizing max |w (p - target)|."""
    basis = np.stack([x * (x * x) ** k for k in range(degree + 1)], 1)
    wb, wt = w[:, None] * basis, w * target
    # variables: the coefficients, then the bound t; minimize t with -t <= w (basis c - target) <= t
    ones = np.ones((len(x), 1))
    a_ub = np.vstack([np.hstack([wb, -ones]), np.hstack([-wb, -ones])])
    b_ub = np.concatenate([wt, -wt])
    cost = np.zeros(degree + 2)
    cost[-1] = 1
    r = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * (degree + 1) + [(0, None)], method="highs")
    return r.x[:-1]


def _grid(end: float) -> np.ndarray:
    return np.concatenate([np.linspace(1e-4, 1, 3000), np.linspace(1, end, 6000)])


def fit(degree: int, end: float) -> np.ndarray:
    """erf's S, lowest coefficient first (float64)."""
    x = _grid(end)
    target = 0.5 * np.log((2 - erfc(x)) / erfc(x))  # atanh(erf(x)), without erf's rounding near 1
    e = erf(x)
    return _minimax(x, target, (1 - e * e) / e, degree)


def fit_gelu(degree: int, end: float) -> np.ndarray:
    """gelu's H, lowest coefficient first (float64)."""
    x = _grid(end)
    target = (log_ndtr(-x) - log_ndtr(x)) / np.log(2)  # log2((1 - Phi) / Phi), without rounding
    phi = ndtr(x)
    return _minimax(x, target, phi * (1 - phi), degree)


def _horner32(u: np.ndarray, coefs_high_first) -> np.ndarray:
    p = np.full_like(u, np.float32(coefs_high_first[0]))
    for ck in coefs_high_first[1:]:
        p = p * u + np.float32(ck)
    return p


def _report(got: np.ndarray, want: np.ndarray, x: np.ndarray, ranges) -> None:
    err = np.abs(got.astype(np.float64) - want)
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    for lo, hi in ranges:
        m = (x >= lo) & (x <= hi) & (np.abs(want) > 1e-30)
        print(f"  x in [{lo:g}, {hi:g}]: max abs error {err[m].max():.3g}, max relative "
              f"{(err[m] / np.abs(want[m])).max():.3g}, max {(err[m] / ulp[m]).max():.2f} ulp")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gelu", action="store_true", help="fit gelu's H instead of erf's S")
    ap.add_argument("--degree", type=int, default=6)
    ap.add_argument("--end", type=float, default=None, help="fit on (0, end] (erf: 4, gelu: 5)")
    a = ap.parse_args()
    end = a.end if a.end is not None else 5.0 if a.gelu else 4.0
    c = (fit_gelu if a.gelu else fit)(a.degree, end)
    print(f"{'H' if a.gelu else 'S'}, highest first:", ", ".join(repr(float(v)) for v in c[::-1]))
    x = np.linspace(-12 if a.gelu else -7, 12 if a.gelu else 7, 2_400_001).astype(np.float32)
    p = x * _horner32(x * x, c[::-1])
    x64 = x.astype(np.float64)
    print("float32 passes against float64:")
    if a.gelu:
        with np.errstate(over="ignore"):
            got = x / (np.float32(1) + np.exp2(p))
        _report(got, x64 * ndtr(x64), x64, [(0, 12), (-1, 0), (-3, -1), (-5, -3), (-12, -5)])
    else:
        _report(np.tanh(p), erf(x64), x64, [(-7, 7)])


if __name__ == "__main__":
    main()
