"""Per-landmark blend weights shrunk toward their region's and the global fit (`--method shrink`).

Each landmark l has its own simplex weights, fitted on its own residual Gram matrix S_l (the
n_l labelled values of l over the validation images) pulled toward its region's, which is in
turn pulled toward the global one, by pseudo-counts lambda:

    Q_global = sum_l S_l / sum_l n_l
    Q_region = (S_region + lambda Q_global) / (n_region + lambda)
    Q_l      = (S_l + lambda Q_region(l)) / (n_l + lambda)

and w_l minimises w^T Q_l w over the simplex. lambda = 0 is a free least-squares fit per
landmark, lambda = infinity the global least-squares fit for every landmark. lambda is
`strength` times the median n_l, the strength chosen across folds (`ensemble.blend.point_blend`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ensemble.blend.fit import simplex_least_squares
from ensemble.blend.point_blend import PointBlend, fit_point_blend
from ensemble.blend.point_statistics import PointStatistics, Sums
from ensemble.competition.layout import Layout

STRENGTHS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, math.inf)  # x median values per landmark


def _pull(gram: np.ndarray, count: np.ndarray, prior: np.ndarray, pseudo: float) -> np.ndarray:
    """(gram + pseudo * prior) / (count + pseudo): the prior alone where nothing is counted."""
    if math.isinf(pseudo):
        return np.broadcast_to(prior, gram.shape).copy()
    total = count + pseudo
    safe = np.where(total > 0, total, 1.0)[:, None, None]
    return np.where(total[:, None, None] > 0, (gram + pseudo * prior) / safe, prior)


def shrunk_forms(
    gram: np.ndarray, count: np.ndarray, region_ids: np.ndarray, pseudo: float
) -> np.ndarray:
    """Q_l of every landmark (N, R, R) from the Gram matrices (N, R, R) and counts (N,)."""
    n_regions = int(region_ids.max()) + 1
    global_form = gram.sum(axis=0) / max(float(count.sum()), 1.0)
    region_gram = np.zeros((n_regions, *gram.shape[1:]))
    np.add.at(region_gram, region_ids, gram)
    region_count = np.bincount(region_ids, weights=count, minlength=n_regions)
    region_form = _pull(region_gram, region_count, global_form, pseudo)
    return _pull(gram, count, region_form[region_ids], pseudo)


def shrunk_weights(sums: Sums, strength: float, region_ids: np.ndarray) -> np.ndarray:
    """The simplex weights of every landmark (N, R) at `strength` x the median values/landmark."""
    gram, count = sums.residual_gram()
    pseudo = strength * float(np.median(count)) if strength > 0 else 0.0
    return simplex_least_squares(shrunk_forms(gram, count, region_ids, pseudo))


def fit_shrunk(statistics: PointStatistics, folds: Sequence[int], layout: Layout) -> PointBlend:
    """The shrunk per-landmark weights fitted on `folds`, the strength chosen across them."""
    region_ids = layout.region_ids()

    def fit(sums: Sums, strength: float) -> tuple[np.ndarray, np.ndarray]:
        weights = shrunk_weights(sums, strength, region_ids)
        coefficients = np.repeat(weights[:, None, :], 2, axis=1)
        return coefficients, np.zeros(coefficients.shape[:2])

    return fit_point_blend("shrink", fit, STRENGTHS, statistics, folds, layout)
