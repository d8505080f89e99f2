"""Per-landmark uncertainty: the Gaussian and Laplace scale models, their calibration, coverage.

A run with `uncertainty = "gaussian" | "laplace"` predicts for each point an isotropic scale
sigma: each coordinate's error is N(0, sigma^2) or Laplace(0, sigma). Calibration multiplies
every sigma of a run by one temperature T, the maximum-likelihood value on validation (closed
form for both families); coverage is the share of coordinates inside the central interval.
"""

from __future__ import annotations

import math

import numpy as np

KINDS = ("gaussian", "laplace")


def nll(errors: np.ndarray, sigma: np.ndarray, kind: str) -> float:
    """Mean negative log-likelihood per coordinate of `errors` (n, N, 2) under `sigma` (n, N).

    Missing values (NaN errors) are left out.
    """
    scale = np.broadcast_to(np.asarray(sigma, np.float64)[..., None], errors.shape)
    present = np.isfinite(errors)
    e, s = np.abs(errors[present]), scale[present]
    if kind == "gaussian":
        return float(np.mean(0.5 * (e / s) ** 2 + np.log(s) + 0.5 * math.log(2 * math.pi)))
    return float(np.mean(e / s + np.log(s) + math.log(2)))


def fit_temperature(errors: np.ndarray, sigma: np.ndarray, kind: str) -> float:
    """The T minimising nll(errors, T * sigma): sqrt(mean (e/s)^2) or mean |e|/s."""
    scale = np.broadcast_to(np.asarray(sigma, np.float64)[..., None], errors.shape)
    present = np.isfinite(errors)
    ratio = np.abs(errors[present]) / scale[present]
    if not len(ratio):
        return 1.0
    t = math.sqrt(float(np.mean(ratio**2))) if kind == "gaussian" else float(np.mean(ratio))
    return t if t > 0 else 1.0


def interval_halfwidth(level: float, kind: str) -> float:
    """Half width, in units of sigma, of the central `level` interval of one coordinate."""
    if kind == "gaussian":
        from statistics import NormalDist

        return NormalDist().inv_cdf(0.5 + level / 2)
    return -math.log(1 - level)  # P(|e| <= t sigma) = 1 - exp(-t) for Laplace(0, sigma)


def coverage(errors: np.ndarray, sigma: np.ndarray, kind: str, level: float) -> float:
    """Share of the present coordinates inside the central `level` interval of their sigma."""
    scale = np.broadcast_to(np.asarray(sigma, np.float64)[..., None], errors.shape)
    present = np.isfinite(errors)
    inside = np.abs(errors[present]) <= interval_halfwidth(level, kind) * scale[present]
    return float(inside.mean()) if inside.size else math.nan
