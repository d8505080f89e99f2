"""Per-image errors: MSE, MSE and NME percentiles, the worst-k% shares, outliers.

A per-image MSE is the mean squared error (px²) over all 2N values of the image whose truth is
present (NaN truth, a missing label, is left out; an image with no label at all gets NaN and is left
out of every number). The score of a set of images is the mean of their per-image MSEs: the
expectation of the leaderboard score (which averages the same per-image MSE over 30 random points).
Per-image NME is ensemble.competition.landmark_metrics.per_image_nme: mean point distance /
inter-ocular distance of the layout's eye centres when the layout names its eyes, else / sqrt(w*h)
of the labelled true points' bounding box.

The worst p% of n images are the ceil(p·n / 100) images (at least one) with the largest MSE;
their share is their summed MSE over the summed MSE of all images.

Outliers (here and in `analysis.suspect_labels`) are decided on robust z-scores (0.6745 (v -
median) / MAD, `analysis.leaderboard_fit.robust_z`) of a log error: an image is an outlier when
its z is significantly high at false discovery rate `FDR` (one-sided normal p-values,
Benjamini-Hochberg). A fixed z cut would flag a fixed share of good images, so more of them the
more images there are; Benjamini-Hochberg keeps the expected share of false flags among the
flagged at `FDR` whatever the number of images: the z it needs is 3.6 among 300 images with
nothing wrong, 5.2 among 400,000, and lower when many images stand out together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from analysis.leaderboard_fit import robust_z

FDR = 0.05  # false discovery rate of the outlier flags (Benjamini-Hochberg)
MIN_IMAGES = 5  # below this many images a median / MAD scale is not estimable: no outliers
PERCENTILES = (50, 90, 99)
WORST_PERCENT = (1, 5)
LOG_FLOOR = 1e-12  # px²: an error of exactly 0 has no logarithm
_CHUNK = 2048


def image_mse(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-image MSE (px²) of predictions (n, N, 2) against truth over its present values, (n,)."""
    out = np.empty(len(truth))
    for start in range(0, len(truth), _CHUNK):
        stop = start + _CHUNK
        true = np.asarray(truth[start:stop], dtype=np.float64)
        squared = (np.asarray(predicted[start:stop], dtype=np.float64) - true) ** 2
        present = ~np.isnan(true)
        count = present.reshape(len(true), -1).sum(axis=1)
        total = np.where(present, squared, 0.0).reshape(len(true), -1).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:stop] = np.where(count > 0, total / count, np.nan)
    return out


def worst_count(n: int, percent: int) -> int:
    """How many images are the worst `percent`% of n: ceil(percent·n / 100), at least one."""
    return max(1, -(-n * percent // 100))


def significant(z: np.ndarray, fdr: float = FDR) -> np.ndarray:
    """True where z is significantly high at false discovery rate `fdr` (NaN: never).

    One-sided p-values 1 - Phi(z) of the finite z's, Benjamini-Hochberg adjusted.
    """
    z = np.asarray(z, dtype=np.float64)
    flags = np.zeros(len(z), dtype=bool)
    finite = np.isfinite(z)
    if finite.any():
        adjusted = stats.false_discovery_control(stats.norm.sf(z[finite]), method="bh")
        flags[finite] = adjusted <= fdr
    return flags


def z_needed(z: np.ndarray, flags: np.ndarray, fdr: float = FDR) -> float:
    """The smallest flagged z, or without a flag the z one image alone would need."""
    z = np.asarray(z, dtype=np.float64)
    if flags.any():
        return float(z[flags].min())
    count = int(np.isfinite(z).sum())
    return float(stats.norm.isf(fdr / count)) if count else float("nan")


def outlier_mask(errors: np.ndarray, fdr: float = FDR) -> np.ndarray:
    """True for the outliers of positive errors: robust z of log(error), significant at `fdr`."""
    errors = np.asarray(errors, dtype=np.float64)
    if len(errors) < MIN_IMAGES:
        return np.zeros(len(errors), dtype=bool)
    return significant(robust_z(np.log(np.maximum(errors, LOG_FLOOR))), fdr)


@dataclass(frozen=True)
class Tail:
    """The tail of one prediction set's per-image errors on one split."""

    name: str
    n_images: int  # images with a score (at least one label)
    score: float  # mean per-image MSE, px²
    mse_percentiles: tuple[float, ...]  # at PERCENTILES
    nme_percentiles: tuple[float, ...] | None  # at PERCENTILES; None without eyes or NME
    worst_count: dict[int, int]  # percent -> images
    worst_share: dict[int, float]  # percent -> share of the summed MSE
    score_without_worst: float  # mean per-image MSE without the worst 1% (NaN if none left)
    outliers: np.ndarray = field(repr=False)  # row indices of the outlier images, worst first
    outlier_share: float = 0.0  # their share of the summed MSE
    score_without_outliers: float = float("nan")

    def as_dict(self) -> dict:
        """Every number, JSON-ready (outliers as a count)."""
        return {
            "n_images": self.n_images,
            "score": self.score,
            "mse_percentiles": dict(zip(map(str, PERCENTILES), self.mse_percentiles, strict=True)),
            "nme_percentiles": None
            if self.nme_percentiles is None
            else dict(zip(map(str, PERCENTILES), self.nme_percentiles, strict=True)),
            "worst": {
                f"{p}%": {"images": self.worst_count[p], "share": self.worst_share[p]}
                for p in WORST_PERCENT
            },
            "score_without_worst_1%": self.score_without_worst,
            "outliers": {
                "images": len(self.outliers),
                "share": self.outlier_share,
                "score_without": self.score_without_outliers,
                "rule": f"robust z of log(per-image MSE), significant at false discovery rate "
                f"{FDR:g} (Benjamini-Hochberg)",
            },
        }


def tail(name: str, mse: np.ndarray, nme: np.ndarray | None = None) -> Tail:
    """Tail numbers of per-image MSEs `mse` (n,) and optional NMEs (n,); NaN rows left out."""
    mse = np.asarray(mse, dtype=np.float64)
    rows = np.flatnonzero(np.isfinite(mse))
    if len(rows) == 0:
        raise ValueError(f"{name}: no image has a labelled value")
    values = mse[rows]
    n = len(values)
    total = float(values.sum())
    order = np.argsort(-values, kind="stable")
    counts = {p: worst_count(n, p) for p in WORST_PERCENT}
    shares = {p: _share(values[order[: counts[p]]].sum(), total) for p in WORST_PERCENT}
    rest = values[order[counts[1] :]]
    flagged = outlier_mask(values)
    outliers = rows[order[flagged[order]]]
    nme_percentiles = None
    if nme is not None:
        finite = np.asarray(nme, dtype=np.float64)[rows]
        finite = finite[np.isfinite(finite)]
        if len(finite):
            nme_percentiles = tuple(float(v) for v in np.percentile(finite, PERCENTILES))
    return Tail(
        name=name,
        n_images=n,
        score=float(values.mean()),
        mse_percentiles=tuple(float(v) for v in np.percentile(values, PERCENTILES)),
        nme_percentiles=nme_percentiles,
        worst_count=counts,
        worst_share=shares,
        score_without_worst=float(rest.mean()) if len(rest) else float("nan"),
        outliers=outliers,
        outlier_share=_share(values[flagged].sum(), total),
        score_without_outliers=float(values[~flagged].mean()) if (~flagged).any() else np.nan,
    )


def _share(part: float, total: float) -> float:
    return float(part / total) if total > 0 else float("nan")
