"""Honest scores of fitted blends: K folds over the validation images, each fold blended with
a blend fitted on the other folds only.

A blend fitted on validation and scored on the same images looks better than it is. The
cross-validated score is the validation score of the out-of-fold blend: every image blended
by a fit that never saw it. The folds are a fixed random partition of the images (seed 0),
so every method is compared on the same folds. A learned blend (shrink, stack) also chooses its
strength on the other folds only (nested), as the uncertainty fusion chooses its gamma.
"""

from __future__ import annotations

import numpy as np

from ensemble.blend.fit import fit_weights
from ensemble.blend.fusion import fit_gamma, fuse, fused_weights, scored_values
from ensemble.blend.learned import fit_on_folds
from ensemble.blend.names import CV_FOLDS, LEARNED_METHODS
from ensemble.blend.point_statistics import clean_images, point_statistics
from ensemble.competition.layout import Layout, layout_for
from ensemble.competition.metric import leaderboard_mse, validation_score


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
    """The validation score of the out-of-fold blend (None with fewer images than 2 x folds)."""
    file_names = np.asarray(file_names)
    if len(file_names) < 2 * folds:
        return None
    blended = out_of_fold_blend(
        predictions, truth, file_names, method, per_region, rounds, layout, folds
    )
    return validation_score(file_names, blended, truth)


def out_of_fold_blend(
    predictions: np.ndarray,
    truth: np.ndarray,
    file_names: np.ndarray,
    method: str = "lsq",
    per_region: bool = False,
    rounds: int = 50,
    layout: Layout | None = None,
    folds: int = CV_FOLDS,
) -> np.ndarray:
    """Every image (n, N, 2) blended by a fit on the other folds' images only."""
    file_names = np.asarray(file_names)
    fold_of = image_folds(len(file_names), folds)
    blended = np.empty(predictions.shape[1:], dtype=np.float64)
    if method in LEARNED_METHODS:
        layout = layout if layout is not None else layout_for(predictions.shape[2])
        keep = clean_images(predictions, truth)
        statistics = point_statistics(predictions, truth, fold_of, folds, keep)
        for fold in range(folds):
            others = [f for f in range(folds) if f != fold]
            model = fit_on_folds(method, statistics, others, layout)
            blended[fold_of == fold] = model.blend(predictions[:, fold_of == fold])
        return blended
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
        blended[held] = fitted.blend(predictions[:, held])
    return blended


def cross_validated_fusion_score(
    predictions: np.ndarray,
    sigma: np.ndarray,
    truth: np.ndarray,
    file_names: np.ndarray,
    per_region: bool = False,
    layout: Layout | None = None,
    folds: int = CV_FOLDS,
) -> float | None:
    """The out-of-fold score of the uncertainty fusion (None with fewer images than 2 x folds);
    `sigma` (runs, n, N) is NaN for a run without one."""
    file_names = np.asarray(file_names)
    if len(file_names) < 2 * folds:
        return None
    fused, truth_values = out_of_fold_fusion(
        predictions, sigma, truth, file_names, per_region, layout, folds
    )
    labelled = ~np.isnan(truth_values).all(axis=(1, 2))
    return leaderboard_mse(fused[labelled], truth_values[labelled])


def out_of_fold_fusion(
    predictions: np.ndarray,
    sigma: np.ndarray,
    truth: np.ndarray,
    file_names: np.ndarray,
    per_region: bool = False,
    layout: Layout | None = None,
    folds: int = CV_FOLDS,
) -> tuple[np.ndarray, np.ndarray]:
    """The fused values (n, K, 2) of every image's scored points, the lsq weights and gamma
    fitted on the other folds only, and the truth at those points."""
    file_names = np.asarray(file_names)
    fold_of = image_folds(len(file_names), folds)
    scored = scored_values(predictions, sigma, truth, file_names)
    values, value_sigma, truth_values = scored.values, scored.sigma, scored.truth
    fused = np.empty(truth_values.shape)
    for fold in range(folds):
        held = fold_of == fold
        fitted = fit_weights(
            predictions[:, ~held],
            truth[~held],
            file_names[~held],
            "lsq",
            per_region,
            layout=layout,
        )
        base = fitted.point_weights()[scored.indices]
        gamma = fit_gamma(
            values[:, ~held], value_sigma[:, ~held], truth_values[~held], base[~held]
        ).gamma
        weights = fused_weights(base[held], value_sigma[:, held], gamma)
        fused[held] = fuse(values[:, held], weights)
    return fused, truth_values
