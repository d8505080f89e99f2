"""Inverse-variance fusion: per image and landmark, run weights w_r / sigma_r^(2 gamma).

The runs' fitted weights w_r (global or per region) say how good each run is on average; a run
with `uncertainty` also says, per image and landmark, how sure it is (sigma, original pixels).
Fusion gives each run w_r * sigma_r^(-2 gamma), normalised over the runs with sigma, which
share the weight mass the fit gave them; runs without sigma keep their fitted weight.
gamma = 1 is the inverse-variance (maximum-likelihood) combination, gamma = 0 the fitted blend
itself; gamma is chosen on validation among GAMMAS, so the fused blend is never worse than the
fitted one there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ensemble.competition.metric import leaderboard_mse
from ensemble.competition.subsets import validation_subsets
from ensemble.io.submission import gather_points

GAMMAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def fused_weights(base: np.ndarray, sigma: np.ndarray, gamma: float) -> np.ndarray:
    """Weights (n, K, runs) of each value from the fitted `base` weights (n, K, runs) and the
    runs' sigmas (runs, n, K), NaN for a run without sigma."""
    weights = np.array(base, dtype=np.float64)
    has_sigma = np.isfinite(sigma).all(axis=(1, 2))
    if gamma == 0 or not has_sigma.any():
        return weights
    with_sigma = weights[..., has_sigma]
    mass = with_sigma.sum(axis=-1, keepdims=True)
    precision = np.moveaxis(sigma[has_sigma], 0, -1) ** (-2.0 * gamma)
    raw = with_sigma * precision
    total = raw.sum(axis=-1, keepdims=True)
    weights[..., has_sigma] = np.divide(raw * mass, total, out=np.zeros_like(raw), where=total > 0)
    return weights


def fuse(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Blend the runs' values (runs, n, K, 2) with per-value weights (n, K, runs): (n, K, 2)."""
    return np.einsum("rnkc,nkr->nkc", values, weights)


@dataclass(frozen=True)
class FusionFit:
    """The gamma chosen on validation and the validation score of every gamma tried."""

    gamma: float
    scores: dict[float, float]

    @property
    def score(self) -> float:
        """Validation score of the chosen gamma."""
        return self.scores[self.gamma]


def fit_gamma(
    values: np.ndarray, sigma: np.ndarray, truth: np.ndarray, base: np.ndarray
) -> FusionFit:
    """Choose gamma on gathered validation values (runs, n, K, 2) against `truth` (n, K, 2);
    ties go to the smaller gamma (gamma = 0 is the fitted blend)."""
    labelled = ~np.isnan(truth).all(axis=(1, 2))
    scores = {
        gamma: leaderboard_mse(
            fuse(values, fused_weights(base, sigma, gamma))[labelled], truth[labelled]
        )
        for gamma in GAMMAS
    }
    best = min(scores, key=lambda gamma: (scores[gamma], gamma))
    return FusionFit(best, scores)


@dataclass(frozen=True)
class ScoredValues:
    """The validation points the score samples (K per image), gathered for the fusion."""

    indices: np.ndarray  # (n, K) landmark indices
    values: np.ndarray  # (runs, n, K, 2) predictions
    sigma: np.ndarray  # (runs, n, K), NaN for a run without sigma
    truth: np.ndarray  # (n, K, 2)


def scored_values(
    predictions: np.ndarray, sigma: np.ndarray, truth: np.ndarray, file_names
) -> ScoredValues:
    """Gather predictions (runs, n, N, 2), sigma (runs, n, N) and truth at the scored points."""
    indices = validation_subsets(file_names, predictions.shape[2])
    return ScoredValues(
        indices,
        np.stack([gather_points(p, indices) for p in predictions]),
        np.stack([np.take_along_axis(s, indices, axis=1) for s in sigma]),
        gather_points(truth, indices),
    )
