"""Honest scores of fitted blends: K folds over the validation images, each fold blended with
weights fitted on the other folds only.

A blend fitted on validation and scored on the same images looks better than it is. The
cross-validated score is the validation score of the out-of-fold blend: every image blended
with weights that never saw it. The folds are a fixed random partition of the images (seed 0),
so every method is compared on the same folds.
"""

from __future__ import annotations

import numpy as np

from ensemble.blend.fit import blend_points, fit_weights
from ensemble.blend.names import CV_FOLDS
from ensemble.competition.layout import Layout
from ensemble.competition.metric import validation_score


def image_folds(n_images: int, folds: int, seed: int = 0) -> np.ndarray:
    """The fold (0..folds-1) of each image: a fixed random permutation cut into near-equal parts."""
    fold_of = np.empty(n_images, dtype=np.int64)
    fold_of[np.random.default_rng(seed).permutation(n_images)] = np.arange(n_images) % folds
    return fold_of


def cross_validated_score(
    predictions: np.ndarray,
    truth: np.ndarray,
    file_names: np.ndarray,
    method: str = "lsq",
    per_region: bool = False,
    rounds: int = 50,
    layout: Layout | None = None,
    folds: int = CV_FOLDS,
) -> float | None:
    """The validation score of the out-of-fold blend, every image (n, N, 2) blended with
    weights fitted on the other folds' images (None with fewer images than 2 x folds)."""
    file_names = np.asarray(file_names)
    if len(file_names) < 2 * folds:
        return None
    fold_of = image_folds(len(file_names), folds)
    blended = np.empty(predictions.shape[1:], dtype=np.float64)
    for fold in range(folds):
        held = fold_of == fold
        fitted = fit_weights(
            predictions[:, ~held],
            truth[~held],
            file_names[~held],
            method,
            per_region,
            rounds,
            layout=layout,
        )
        blended[held] = blend_points(predictions[:, held], fitted.point_weights())
    return validation_score(file_names, blended, truth)
