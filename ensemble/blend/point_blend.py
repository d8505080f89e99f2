"""Learned blends: one linear model per landmark coordinate, its strength chosen across folds.

A `PointBlend` predicts landmark l, coordinate c of an image as sum_r w[l, c, r] x_r + b[l, c]
from the runs' predictions x_r. The shrunk weights (`ensemble.blend.shrink`) are a special case
(weights on the simplex, the same for both coordinates, no intercept), the stacker
(`ensemble.blend.stack`) the general one. Both have one strength (shrinkage, ridge penalty),
chosen here among a grid by leave-one-fold-out error over the folds the fit may see, on every
labelled value of those images (`ensemble.blend.point_statistics`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ensemble.blend.point_statistics import PointStatistics, Sums
from ensemble.competition.layout import Layout

# what the strength of each method is, in OUT.weights.json
STRENGTH_KEYS = {
    "shrink": "strength_x_median_values_per_landmark",
    "stack": "ridge_penalty_x_values_x_mse",
}
# fit(sums, strength) -> coefficients (N, 2, R) and intercepts (N, 2), centred coordinates
PointFit = Callable[[Sums, float], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class PointBlend:
    """A fitted per-landmark linear blend and how its strength was chosen."""

    method: str  # "shrink" or "stack"
    coefficients: np.ndarray  # (N, 2, runs)
    intercepts: np.ndarray  # (N, 2), original pixels
    layout: Layout  # the regions, for the per-region summaries
    strength: float  # the chosen grid value (math.inf: the prior alone)
    held_out_errors: dict[float, float]  # mean squared error of every grid value, held out
    images_left_out: int = 0  # validation images left out of the fit (point_statistics)

    @property
    def per_region(self) -> bool:
        """False: no per-region weight rows (as `FittedWeights.per_region`)."""
        return False

    @property
    def weights(self) -> np.ndarray:
        """The coefficients of every landmark, averaged over the coordinates: (N, runs)."""
        return self.coefficients.mean(axis=1)

    def mean_weights(self) -> np.ndarray:
        """Each run's coefficient averaged over landmarks and coordinates: (runs,)."""
        return self.coefficients.mean(axis=(0, 1))

    def region_weights(self) -> np.ndarray:
        """Each region's mean coefficients: (regions, runs)."""
        ids = self.layout.region_ids()
        return np.stack(
            [self.weights[ids == n].mean(axis=0) for n in range(len(self.layout.regions))]
        )

    def to_json(self, names: Sequence[str]) -> dict:
        """The chosen strength, its held-out errors and the fitted model, JSON-ready."""

        def shown(value: float) -> float | str:
            return value if math.isfinite(value) else "inf"

        def by_run(row: np.ndarray) -> dict[str, float]:
            return dict(zip(names, map(float, row), strict=True))

        regions = [region.name for region in self.layout.regions]
        data: dict = {
            STRENGTH_KEYS[self.method]: shown(self.strength),
            "held_out_mse_by_strength": {
                str(shown(key)): value for key, value in self.held_out_errors.items()
            },
            "images_left_out_of_the_fit": self.images_left_out,
            "mean_weights": by_run(self.mean_weights()),
            "region_mean_weights": dict(
                zip(regions, map(by_run, self.region_weights()), strict=True)
            ),
        }
        if self.method == "shrink":
            data["point_weights"] = np.round(self.weights, 8).tolist()
        else:
            data["coefficients"] = np.round(self.coefficients, 8).tolist()
            data["intercepts"] = np.round(self.intercepts, 6).tolist()
        return data

    def blend(self, predictions: np.ndarray) -> np.ndarray:
        """Blend full predictions (runs, n, N, 2): (n, N, 2)."""
        return np.einsum("rnlc,lcr->nlc", predictions, self.coefficients) + self.intercepts

    def blend_values(self, values: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """Blend gathered values (runs, rows, K, 2) of the landmarks `indices` (rows, K)."""
        coefficients = self.coefficients[indices]  # (rows, K, 2, runs)
        return np.einsum("rnkc,nkcr->nkc", values, coefficients) + self.intercepts[indices]


def held_out_squared_error(coefficients: np.ndarray, intercepts: np.ndarray, sums: Sums) -> float:
    """Sum of squared errors of the model (centred coordinates) over the images of `sums`."""
    w, b = coefficients, intercepts
    quadratic = np.einsum("ncr,ncrs,ncs->nc", w, sums.xx, w)
    cross = np.einsum("ncr,ncr->nc", w, sums.xy)
    linear = np.einsum("ncr,ncr->nc", w, sums.x)
    total = sums.yy - 2 * cross + quadratic + 2 * b * (linear - sums.y) + sums.count * b**2
    return float(total.sum())


def fit_point_blend(
    method: str,
    fit: PointFit,
    grid: Sequence[float],
    statistics: PointStatistics,
    folds: Sequence[int],
    layout: Layout,
) -> PointBlend:
    """Choose the strength among `grid` by leave-one-fold-out over `folds`, then fit on all of
    them (ties go to the stronger: the simpler model)."""
    folds = list(folds)
    errors = {}
    for strength in grid:
        squared, count = 0.0, 0.0
        for held in folds:
            sums = statistics.sums([f for f in folds if f != held])
            held_sums = statistics.sums([held])
            squared += held_out_squared_error(*fit(sums, strength), held_sums)
            count += float(held_sums.count.sum())
        errors[strength] = squared / max(count, 1.0)
    chosen = min(errors, key=lambda s: (errors[s], -s))
    coefficients, intercepts = fit(statistics.sums(folds), chosen)
    shift = statistics.center * (1.0 - coefficients.sum(axis=-1))  # back to original pixels
    return PointBlend(method, coefficients, intercepts + shift, layout, chosen, errors)
