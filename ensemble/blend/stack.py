"""A ridge stacker per landmark coordinate (`--method stack`).

For landmark l and coordinate c, the truth y is regressed on the runs' predictions x (one
feature per run) with an intercept, the coefficients penalised toward the global least-squares
weights w0 (not toward zero: the runs all predict the same point, so w0 is the natural prior):

    minimise  sum_i (y_i - b - x_i . w)^2 + alpha |w - w0|^2

alpha = `penalty` x n_lc x the runs' mean squared error at (l, c), so the penalty is in units of
the data; `penalty` = infinity keeps w0 and fits only the intercept (a per-landmark bias
correction). The penalty is chosen across folds (`ensemble.blend.point_blend`). Coefficients may
be negative and need not sum to one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ensemble.blend.fit import simplex_least_squares
from ensemble.blend.point_blend import PointBlend, fit_point_blend
from ensemble.blend.point_statistics import PointStatistics, Sums
from ensemble.competition.layout import Layout

PENALTIES = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, math.inf)  # x values x mean squared error


def ridge_coefficients(
    sums: Sums, penalty: float, prior: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (N, 2, R) and intercepts (N, 2) of the ridge fit toward `prior` (R,)."""
    count = sums.count
    safe = np.maximum(count, 1.0)
    mean_x = sums.x / safe[..., None]
    mean_y = sums.y / safe
    coefficients = np.broadcast_to(prior, sums.x.shape).copy()
    fitted = count >= 2
    if not math.isinf(penalty) and fitted.any():
        c = count[fitted][:, None, None]
        cov_xx = sums.xx[fitted] - c * mean_x[fitted][:, :, None] * mean_x[fitted][:, None, :]
        cov_xy = sums.xy[fitted] - c[..., 0] * mean_x[fitted] * mean_y[fitted][:, None]
        squared = np.einsum("brr->br", sums.xx[fitted]) - 2 * sums.xy[fitted]
        error = (squared + sums.yy[fitted][:, None]).mean(axis=1) / count[fitted]
        size = len(prior)
        diagonal = penalty * count[fitted] * error + 1e-12 * np.einsum("brr->b", cov_xx) / size
        system = cov_xx + diagonal[:, None, None] * np.eye(size)
        target = cov_xy - cov_xx @ prior
        coefficients[fitted] = prior + np.linalg.solve(system, target[..., None])[..., 0]
    intercepts = np.where(count > 0, mean_y - np.einsum("ncr,ncr->nc", mean_x, coefficients), 0.0)
    return coefficients, intercepts


def fit_stacked(statistics: PointStatistics, folds: Sequence[int], layout: Layout) -> PointBlend:
    """The ridge stacker fitted on `folds`, its penalty chosen across them."""

    def fit(sums: Sums, penalty: float) -> tuple[np.ndarray, np.ndarray]:
        gram, count = sums.residual_gram()
        prior = simplex_least_squares(gram.sum(axis=0) / max(float(count.sum()), 1.0))
        return ridge_coefficients(sums, penalty, prior)

    return fit_point_blend("stack", fit, PENALTIES, statistics, folds, layout)
