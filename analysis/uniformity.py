"""Is every landmark index equally likely to be scored? Counts and a chi-square test.

Each test row names K distinct indices out of N (drawn without replacement within a row), so
index i appears in a row with probability K/N and its expected count is n_rows * K / N. The
Pearson statistic is sum((count - expected)^2 / expected). Drawing without replacement makes the
counts slightly less variable than a multinomial: under uniform sampling the statistic follows
c * chi2(N - 1) with c = (N - K) / (N - 1), so the verdict uses the design-adjusted p-value
P(chi2(N - 1) > statistic / c); the plain p-value is reported beside it (analysis.chi2).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from analysis.chi2 import chi2_sf
from ensemble.competition.layout import Layout


@dataclass(frozen=True)
class RegionCount:
    """Observed and expected index counts of one region, with a z-score under uniformity."""

    name: str
    size: int
    observed: int
    expected: float
    z: float


@dataclass(frozen=True)
class Uniformity:
    """Point-frequency uniformity of a test_points table."""

    n_rows: int
    n_points: int
    k: int
    rows_with_other_k: int
    counts: np.ndarray
    expected: float
    count_sd: float  # standard deviation of one index's count under uniformity
    statistic: float
    df: int
    p_value: float
    design_factor: float
    p_value_design: float
    alpha: float
    z: np.ndarray
    z_critical: float
    regions: list[RegionCount]

    @property
    def uniform(self) -> bool:
        """True when the design-adjusted test does not reject uniformity at level alpha."""
        return self.p_value_design >= self.alpha

    def largest_deviations(self, count: int = 10) -> np.ndarray:
        """Indices with the largest |z| (most over- or under-represented), largest first."""
        return np.argsort(-np.abs(self.z), kind="stable")[:count]


def index_counts(indices: np.ndarray, n_points: int) -> np.ndarray:
    """How often each index in [0, n_points) appears (negative padding ignored): (n_points,)."""
    flat = np.asarray(indices).ravel()
    return np.bincount(flat[flat >= 0], minlength=n_points)


def uniformity(indices: np.ndarray, layout: Layout, alpha: float = 0.01) -> Uniformity:
    """Chi-square test of uniform index frequency for `indices` (n, K), -1 = ragged padding."""
    indices = np.asarray(indices)
    n_points = layout.n_points
    per_row = (indices >= 0).sum(axis=1)
    frequency = np.bincount(per_row)
    k = int(len(frequency) - 1 - frequency[::-1].argmax())  # most common K; ties: the larger
    counts = index_counts(indices, n_points)
    total = int(counts.sum())
    expected = total / n_points
    statistic = float(((counts - expected) ** 2 / expected).sum())  # Pearson's
    p_value = chi2_sf(statistic, n_points - 1)
    p_row = per_row / n_points
    variance = float((p_row * (1 - p_row)).sum())  # of one index's count
    design_factor = float((p_row * (n_points - per_row)).sum() / ((n_points - 1) * p_row.sum()))
    df = n_points - 1
    p_design = chi2_sf(statistic / design_factor, df) if design_factor > 0 else 1.0
    z = (counts - expected) / np.sqrt(variance) if variance > 0 else np.zeros(n_points)
    return Uniformity(
        n_rows=len(indices),
        n_points=n_points,
        k=k,
        rows_with_other_k=int((per_row != k).sum()),
        counts=counts,
        expected=expected,
        count_sd=float(np.sqrt(variance)),
        statistic=float(statistic),
        df=df,
        p_value=float(p_value),
        design_factor=design_factor,
        p_value_design=p_design,
        alpha=alpha,
        z=z,
        z_critical=-NormalDist().inv_cdf(alpha / (2 * n_points)),
        regions=_region_counts(counts, per_row, layout),
    )


def _region_counts(counts: np.ndarray, per_row: np.ndarray, layout: Layout) -> list[RegionCount]:
    """Region totals; a region of m points is hit hypergeometrically by each row."""
    n_points = layout.n_points
    total = counts.sum()
    out = []
    for region in layout.regions:
        share = len(region) / n_points
        variance = float((per_row * share * (1 - share) * (n_points - per_row)).sum())
        variance /= max(n_points - 1, 1)
        observed = int(counts[region.start : region.stop].sum())
        expected = float(total * share)
        z = (observed - expected) / np.sqrt(variance) if variance > 0 else 0.0
        out.append(RegionCount(region.name, len(region), observed, expected, float(z)))
    return out
