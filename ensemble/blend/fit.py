"""Blend weights fitted on validation predictions: constrained least squares and greedy selection.

The objective is the leaderboard-style validation score
(`ensemble.competition.metric.validation_score`): on the fixed K-subsets of every validation image,
the mean squared error of the blend. With E the (values, runs) matrix of gathered residuals
(prediction - truth), the score of weights w is |E w|^2 / values = w^T Q w with Q = E^T E / values,
a small runs x runs matrix, so every fit works on Q alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ensemble.blend.names import FIT_METHODS
from ensemble.competition.layout import Layout, generic_layout, layout_for
from ensemble.competition.subsets import validation_subsets
from ensemble.io.submission import gather_points

MIN_REGION_VALUES = 200  # regions with fewer gathered values fall back to the global weights
MAX_ITERATIONS = 20_000  # of the simplex least-squares solver (it stops when the weights settle)


@dataclass(frozen=True)
class FittedWeights:
    """Fitted blend weights: one row per region (a single row unless fitted per region)."""

    method: str
    weights: np.ndarray  # (regions, runs), rows >= 0 summing to one
    layout: Layout  # the regions; a single region when not fitted per region
    fallback: tuple[str, ...] = ()  # regions too thinly sampled that use the global weights

    @property
    def per_region(self) -> bool:
        """True when each region has its own weights."""
        return len(self.layout.regions) > 1

    def point_weights(self) -> np.ndarray:
        """Weights of every landmark: (N, runs)."""
        return self.weights[self.layout.region_ids()]

    def mean_weights(self) -> np.ndarray:
        """Each run's weight, averaged over the regions: (runs,)."""
        return self.weights.mean(axis=0)

    def blend(self, predictions: np.ndarray) -> np.ndarray:
        """Blend full predictions (runs, n, N, 2): (n, N, 2)."""
        point_weights = self.point_weights()
        total = np.zeros(predictions.shape[1:], dtype=np.float64)
        for run, points in enumerate(predictions):
            total += point_weights[None, :, run, None] * points
        return total


def residual_matrix(
    predictions: np.ndarray, truth: np.ndarray, indices: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gathered residuals (values, runs) and the landmark index of every value (values,).

    Missing labels (NaN truth, as in Kaggle Facial Keypoints) are left out, not zeroed.
    """
    truth_values = gather_points(truth, indices)
    present = np.isfinite(truth_values).reshape(-1)
    columns = [(gather_points(p, indices) - truth_values).reshape(-1) for p in predictions]
    point_of_value = np.repeat(indices.reshape(-1), 2)
    return np.stack(columns, axis=1)[present], point_of_value[present]


def quadratic_form(residuals: np.ndarray) -> np.ndarray:
    """Q = E^T E / values: the validation score of weights w is w @ Q @ w."""
    return residuals.T @ residuals / max(len(residuals), 1)


def project_to_simplex(points: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of `points` (..., R) onto {w >= 0, sum(w) = 1}."""
    ordered = -np.sort(-points, axis=-1)
    partial = np.cumsum(ordered, axis=-1) - 1.0
    ranks = np.arange(1, points.shape[-1] + 1)
    support = np.sum(ordered - partial / ranks > 0, axis=-1, keepdims=True)
    threshold = np.take_along_axis(partial, support - 1, axis=-1) / support
    return np.maximum(points - threshold, 0.0)


def simplex_least_squares(q: np.ndarray, tolerance: float = 1e-10) -> np.ndarray:
    """Minimise w^T Q w over w >= 0, sum(w) = 1, for one Q (R, R) or a batch (B, R, R).

    Accelerated projected gradient (FISTA with the gradient restart of O'Donoghue and Candes),
    every problem of the batch at once; the result is never worse than the best single run.
    """
    q = np.asarray(q, dtype=np.float64)
    single = q.ndim == 2
    batch = q[None] if single else q
    size = batch.shape[-1]
    scale = np.einsum("bii->b", batch) / size
    scaled = batch / np.where(scale > 0, scale, 1.0)[:, None, None]
    step = 1.0 / np.maximum(2.0 * np.linalg.eigvalsh(scaled)[:, -1], 1e-12)
    weights = np.full(batch.shape[:2], 1.0 / size)
    momentum = weights.copy()
    t = np.ones(len(batch))
    for _ in range(MAX_ITERATIONS):
        gradient = 2.0 * np.einsum("bij,bj->bi", scaled, momentum)
        updated = project_to_simplex(momentum - step[:, None] * gradient)
        change = updated - weights
        if np.abs(change).max() < tolerance:
            weights = updated
            break
        restart = np.einsum("bi,bi->b", gradient, change) > 0
        t = np.where(restart, 1.0, t)
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t**2)) / 2.0
        momentum = updated + ((t - 1.0) / t_next)[:, None] * change
        weights, t = updated, t_next
    objective = np.einsum("bi,bij,bj->b", weights, batch, weights)
    diagonal = np.einsum("bii->bi", batch)
    best = np.argmin(diagonal, axis=1)
    worse = objective > diagonal[np.arange(len(batch)), best]
    weights[worse] = np.eye(size)[best[worse]]
    return weights[0] if single else weights


def greedy_selection(q: np.ndarray, rounds: int = 50) -> np.ndarray:
    """Caruana ensemble selection with replacement: add the run that helps most, keep the best.

    Each round adds one copy of the run whose addition gives the lowest score of the equally
    weighted bag; the weights are the copy counts of the best bag seen, normalised.
    """
    size = len(q)
    counts = np.zeros(size)
    best_counts, best_score = None, np.inf
    for bag in range(1, rounds + 1):
        candidates = counts[None, :] + np.eye(size)
        scores = np.einsum("ij,jk,ik->i", candidates, q, candidates) / bag**2
        choice = int(np.argmin(scores))
        counts = candidates[choice]
        if scores[choice] < best_score:
            best_counts, best_score = counts.copy(), scores[choice]
    assert best_counts is not None
    return best_counts / best_counts.sum()


def _solve(q: np.ndarray, method: str, rounds: int) -> np.ndarray:
    if method == "lsq":
        return simplex_least_squares(q)
    if method == "greedy":
        return greedy_selection(q, rounds)
    raise ValueError(f"unknown fit method '{method}'; choose from {FIT_METHODS}")


def fit_weights(
    predictions: np.ndarray,
    truth: np.ndarray,
    file_names,
    method: str = "lsq",
    per_region: bool = False,
    rounds: int = 50,
    k: int = 30,
    seed: int = 0,
    min_region_values: int = MIN_REGION_VALUES,
    layout: Layout | None = None,
) -> FittedWeights:
    """Fit blend weights on validation predictions (runs, n, N, 2) against truth (n, N, 2).

    Minimises the leaderboard-style validation score over non-negative weights summing to one
    (`method='lsq'`) or picks them by Caruana greedy selection (`method='greedy'`). With
    `per_region`, each region of `layout` (default: the built-in or generic layout for N) gets
    its own weights, fitted on the gathered values that fall in it; a region with fewer than
    `min_region_values` values keeps the global weights.
    """
    predictions = np.asarray(predictions)
    n_points = predictions.shape[2]
    indices = validation_subsets(file_names, n_points, k=k, seed=seed)
    residuals, point_of_value = residual_matrix(predictions, truth, indices)
    global_weights = _solve(quadratic_form(residuals), method, rounds)
    if not per_region:
        return FittedWeights(method, global_weights[None, :], generic_layout(n_points))
    layout = layout if layout is not None else layout_for(n_points)
    region_of_value = layout.region_ids()[point_of_value]
    rows, fallback = [], []
    for number, region in enumerate(layout.regions):
        inside = residuals[region_of_value == number]
        if len(inside) < min_region_values:
            rows.append(global_weights)
            fallback.append(region.name)
        else:
            rows.append(_solve(quadratic_form(inside), method, rounds))
    return FittedWeights(method, np.stack(rows), layout, tuple(fallback))
