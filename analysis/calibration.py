"""Calibration of predicted sigma: interval coverage, NLL, reliability bins and a verdict.

A run with `uncertainty = "gaussian" | "laplace"` predicts each point's isotropic scale sigma
(px): each coordinate's error is N(0, sigma^2) or Laplace(0, sigma). A calibrated model's RMS
error per coordinate is sigma (Gaussian) or sqrt(2) sigma (Laplace); its central 68% and 95%
intervals hold 68% and 95% of the coordinates (ensemble.competition.uncertainty computes both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ensemble.competition.uncertainty import coverage, nll

LEVELS = (0.68, 0.95)
TOLERANCE = 3.0  # percentage points of coverage either side of nominal: "well calibrated"
N_BINS = 10
RMS_PER_SIGMA = {"gaussian": 1.0, "laplace": math.sqrt(2.0)}  # RMS of N(0, s²), Laplace(0, s)


@dataclass(frozen=True)
class Reliability:
    """Quantile bins of predicted sigma: each bin's sigma and the observed RMS error."""

    sigma: np.ndarray  # (B,) root mean square of the predicted sigma of the bin's coordinates
    rms: np.ndarray  # (B,) observed RMS error per coordinate in the bin (px)
    count: np.ndarray  # (B,) coordinates in the bin
    edges: np.ndarray  # (B + 1,) px: bin b is [edges[b], edges[b + 1]), the last one closed


@dataclass(frozen=True)
class SplitCalibration:
    """One run's calibration numbers on one split."""

    split: str  # "validation" or "test"
    n_images: int
    n_coordinates: int  # labelled coordinates (x and y counted apart)
    coverage: dict[float, float]  # nominal level -> share of coordinates inside the interval
    mean_sigma: float  # px, over the labelled coordinates
    nll: float  # nats per coordinate
    reliability: Reliability

    @property
    def verdict(self) -> str:
        """'well calibrated', 'over-confident', 'under-confident' (with levels where mixed)."""
        return verdict(self.coverage)

    def as_dict(self) -> dict:
        """The numbers for summary.json."""
        return {
            "n_images": self.n_images,
            "n_coordinates": self.n_coordinates,
            **{f"coverage_{round(100 * level)}": value for level, value in self.coverage.items()},
            "mean_sigma": self.mean_sigma,
            "nll": self.nll,
            "verdict": self.verdict,
            "reliability": {
                "sigma": self.reliability.sigma.tolist(),
                "rms": self.reliability.rms.tolist(),
                "count": self.reliability.count.tolist(),
                "edges": self.reliability.edges.tolist(),
            },
        }


@dataclass(frozen=True)
class RunCalibration:
    """A run with sigma: its kind, temperature, and calibration on validation (and test)."""

    name: str
    kind: str  # "gaussian" or "laplace"
    temperature: float | None  # summary.json's sigma_temperature (already applied to sigma)
    validation: SplitCalibration
    test: SplitCalibration | None = None


def reliability(errors: np.ndarray, sigma: np.ndarray, n_bins: int = N_BINS) -> Reliability:
    """Bin the labelled coordinates of `errors` (n, N, 2) by quantiles of `sigma` (n, N).

    Bins of equal count by sigma; equal sigmas share a bin (so ties can leave fewer bins).
    """
    scale = np.broadcast_to(np.asarray(sigma, np.float64)[..., None], errors.shape)
    present = np.isfinite(errors)
    s, e = scale[present], np.asarray(errors, np.float64)[present]
    if not len(s):
        empty = np.zeros(0)
        return Reliability(empty, empty, np.zeros(0, dtype=np.int64), empty)
    ordered = np.sort(s)
    # Each bin starts at a data value (the one at its rank), so no bin is empty.
    starts = np.unique(ordered[(np.arange(n_bins) * len(s)) // n_bins])
    bins = np.searchsorted(starts, s, side="right") - 1
    count = np.bincount(bins, minlength=len(starts))
    sum_s2 = np.bincount(bins, weights=s**2, minlength=len(starts))
    sum_e2 = np.bincount(bins, weights=e**2, minlength=len(starts))
    edges = np.append(starts, ordered[-1])
    return Reliability(np.sqrt(sum_s2 / count), np.sqrt(sum_e2 / count), count, edges)


def calibrate_split(
    split: str, errors: np.ndarray, sigma: np.ndarray, kind: str, n_bins: int = N_BINS
) -> SplitCalibration:
    """Coverage, mean sigma, NLL and reliability bins of `errors` (n, N, 2) under `sigma`."""
    errors = np.asarray(errors, np.float64)
    sigma = np.asarray(sigma, np.float64)
    present = np.isfinite(errors)
    labelled = np.broadcast_to(sigma[..., None], errors.shape)[present]
    return SplitCalibration(
        split,
        len(errors),
        int(present.sum()),
        {level: coverage(errors, sigma, kind, level) for level in LEVELS},
        float(labelled.mean()) if len(labelled) else math.nan,
        nll(errors, sigma, kind) if len(labelled) else math.nan,
        reliability(errors, sigma, n_bins),
    )


def verdict(shares: dict[float, float], tolerance: float = TOLERANCE) -> str:
    """Plain words: within `tolerance` points of every nominal level is 'well calibrated'.

    Below nominal (intervals too narrow) is over-confident, above it under-confident; a verdict
    that holds at one level only names it ('under-confident at 95%').
    """
    known = {level: share for level, share in shares.items() if np.isfinite(share)}
    if not known:
        return "n/a"
    points = {level: round(100 * (share - level), 9) for level, share in known.items()}
    narrow = [level for level, off in points.items() if off < -tolerance]
    wide = [level for level, off in points.items() if off > tolerance]
    if not narrow and not wide:
        return "well calibrated"
    parts = []
    for word, levels in (("over-confident", narrow), ("under-confident", wide)):
        if levels:
            where = "" if len(levels) == len(known) else " at " + ", ".join(map(_pct, levels))
            parts.append(word + where)
    return ", ".join(parts)


def _pct(level: float) -> str:
    return f"{100 * level:.0f}%"
