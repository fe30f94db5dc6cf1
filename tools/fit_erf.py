"""The coefficients of ``ir/prims.py``'s float32 erf, erf(x) ~ tanh(x * S(x^2)) (``_ERF_S``).

``python tools/fit_erf.py [--degree 6] [--end 4]`` prints S's coefficients, highest first, and the
errors of the float32 numpy passes against scipy's float64 erf. S minimizes the largest relative
error of erf on (0, end]: an error dz in z = x * S(x^2) moves tanh(z) by (1 - erf^2) dz, so the
linear program minimizes max |w * (x * S(x^2) - atanh(erf(x)))| with w = (1 - erf^2) / erf.
On [3.92, 4.09) the result is 1 ulp below 1, where float32 erf is 1 (numpy's float32 tanh reaches
1 at z = 10 only): asking x * S(x^2) >= 10 there too would cost a fifth of the accuracy elsewhere.
"""
from __future__ import annotations

import argparse

import numpy as np
from scipy.optimize import linprog
from scipy.special import erf, erfc


def fit(degree: int, end: float) -> np.ndarray:
    """S's coefficients, lowest first (float64)."""
    x = np.concatenate([np.linspace(1e-4, 1, 3000), np.linspace(1, end, 6000)])
    target = 0.5 * np.log((2 - erfc(x)) / erfc(x))  # atanh(erf(x)), without erf's rounding near 1
    e = erf(x)
    w = (1 - e * e) / e
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--degree", type=int, default=6)
    ap.add_argument("--end", type=float, default=4.0)
    a = ap.parse_args()
    c = fit(a.degree, a.end)
    print("S, highest first:", ", ".join(repr(float(v)) for v in c[::-1]))
    x = np.linspace(-7, 7, 2_000_001).astype(np.float32)
    u = x * x
    p = np.full_like(u, np.float32(c[-1]))
    for ck in c[-2::-1]:
        p = p * u + np.float32(ck)
    got = np.tanh(x * p).astype(np.float64)
    want = erf(x.astype(np.float64))
    err = np.abs(got - want)
    big = np.abs(x) > 1e-3
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    print(f"float32: max abs error {err.max():.3g}, max relative {(err[big] / np.abs(want[big])).max():.3g}, "
          f"max {(err[big] / ulp[big]).max():.2f} ulp")


if __name__ == "__main__":
    main()
