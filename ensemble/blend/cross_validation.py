"""Honest scores of fitted blends: K folds over the validation images, each fold blended with
a blend fitted on the other folds only.

A blend fitted on validation and scored on the same images looks better than it is. The held-out
score of an image is its score under a blend that never saw it; their mean over the images is
the cross-validated score. The folds are a fixed random partition of the images (seed 0), so
every method is compared on the same folds. A learned blend (shrink, stack) also chooses its
strength on the other folds only (nested), as the uncertainty fusion chooses its gamma.
"""

from __future__ import annotations

import numpy as np

from ensemble.blend.fit import fit_weights
from ensemble.blend.fusion import fit_gamma, fuse, fused_weights, scored_values
from ensemble.blend.methods import fit_on_folds
from ensemble.blend.names import CV_FOLDS, FUSION_METHOD, LEARNED_METHODS
from ensemble.blend.point_statistics import clean_images, image_folds, point_statistics
from ensemble.competition.layout import Layout, layout_for
from ensemble.competition.metric import subset_mse
from ensemble.competition.subsets import validation_subsets
from ensemble.io.submission import gather_points


def mean_score(held_out: np.ndarray | None) -> float | None:
    """The cross-validated score: the mean held-out score of the labelled images (or None)."""
    return None if held_out is None else float(np.nanmean(held_out))


def held_out_scores(
    predictions: np.ndarray,
    truth: np.ndarray,
    file_names: np.ndarray,
    method: str = "lsq",
    per_region: bool = False,
    rounds: int = 50,
    layout: Layout | None = None,
    sigma: np.ndarray | None = None,
    folds: int = CV_FOLDS,
) -> np.ndarray | None:
    """Each image's validation score (n,) under `method` fitted on the other folds' images only
    (NaN for an image with no labelled scored point; None with fewer images than 2 x folds).

    `predictions` (runs, n, N, 2), `truth` (n, N, 2); the uncertainty fusion also needs every
    run's `sigma` (runs, n, N), NaN for a run without one.
    """
    file_names = np.asarray(file_names)
    if len(file_names) < 2 * folds:
        return None
    fold_of = image_folds(len(file_names), folds)
    layout = layout if layout is not None else layout_for(predictions.shape[2])
    if method == FUSION_METHOD:
        return _fused_held_out(predictions, sigma, truth, file_names, fold_of, per_region, layout)
    blended = np.empty(predictions.shape[1:], dtype=np.float64)
    if method in LEARNED_METHODS:
        keep = clean_images(predictions, truth)
        statistics = point_statistics(predictions, truth, fold_of, folds, keep)
    for fold in range(folds):
        held = fold_of == fold
        if method in LEARNED_METHODS:
            others = [f for f in range(folds) if f != fold]
            model = fit_on_folds(method, statistics, others, layout)
        else:
            model = fit_weights(
                predictions[:, ~held],
                truth[~held],
                file_names[~held],
                method,
                per_region,
                rounds,
                layout=layout,
            )
        blended[held] = model.blend(predictions[:, held])
    indices = validation_subsets(file_names, predictions.shape[2])
    return _per_image(gather_points(blended, indices), gather_points(truth, indices))


def _fused_held_out(
    predictions: np.ndarray,
    sigma: np.ndarray,
    truth: np.ndarray,
    file_names: np.ndarray,
    fold_of: np.ndarray,
    per_region: bool,
    layout: Layout,
) -> np.ndarray:
    """Held-out scores of the uncertainty fusion: lsq weights and gamma from the other folds."""
    scored = scored_values(predictions, sigma, truth, file_names)
    fused = np.empty(scored.truth.shape)
    for fold in range(int(fold_of.max()) + 1):
        held = fold_of == fold
        fitted = fit_weights(
            predictions[:, ~held], truth[~held], file_names[~held], "lsq", per_region, layout=layout
        )
        base = fitted.point_weights()[scored.indices]
        gamma = fit_gamma(
            scored.values[:, ~held], scored.sigma[:, ~held], scored.truth[~held], base[~held]
        ).gamma
        weights = fused_weights(base[held], scored.sigma[:, held], gamma)
        fused[held] = fuse(scored.values[:, held], weights)
    return _per_image(fused, scored.truth)


def _per_image(values: np.ndarray, truth_values: np.ndarray) -> np.ndarray:
    """Each image's score on its scored points (n,); NaN for an image with none labelled."""
    labelled = ~np.isnan(truth_values).all(axis=(1, 2))
    scores = np.full(len(values), np.nan)
    scores[labelled] = subset_mse(values[labelled], truth_values[labelled])
    return scores
