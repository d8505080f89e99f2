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


def simplex_least_squares(q: np.ndarray) -> np.ndarray:
    """Minimise w^T Q w over w >= 0, sum(w) = 1 (SLSQP), never worse than the best single run."""
    size = len(q)
    scale = float(np.mean(np.diag(q))) or 1.0
    scaled = q / scale
    ones = np.ones(size)
    from scipy.optimize import minimize  # imported here: only fits need it

    result = minimize(
        lambda w: w @ scaled @ w,
        np.full(size, 1.0 / size),
        jac=lambda w: 2.0 * scaled @ w,
        bounds=[(0.0, 1.0)] * size,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: ones}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    weights = np.clip(result.x, 0.0, None)
    weights /= weights.sum()
    best = int(np.argmin(np.diag(q)))
    if weights @ q @ weights > q[best, best]:
        weights = np.eye(size)[best]
    return weights


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


def blend_points(predictions: np.ndarray, point_weights: np.ndarray) -> np.ndarray:
    """Blend full predictions (runs, n, N, 2) with per-landmark weights (N, runs): (n, N, 2)."""
    total = np.zeros(predictions.shape[1:], dtype=np.float64)
    for run, points in enumerate(predictions):
        total += point_weights[None, :, run, None] * points
    return total
