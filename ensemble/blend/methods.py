"""The fit methods by name: the weights (lsq, greedy; the uncertainty fusion starts from lsq)
and the learned per-landmark blends (shrink, stack)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ensemble.blend.fit import FittedWeights, fit_weights
from ensemble.blend.names import CV_FOLDS, FUSION_METHOD, LEARNED_METHODS
from ensemble.blend.point_blend import PointBlend
from ensemble.blend.point_statistics import (
    PointStatistics,
    clean_images,
    image_folds,
    point_statistics,
)
from ensemble.blend.shrink import fit_shrunk
from ensemble.blend.stack import fit_stacked
from ensemble.competition.layout import Layout


def fit_on_folds(
    method: str, statistics: PointStatistics, folds: Sequence[int], layout: Layout
) -> PointBlend:
    """Fit `method` on the images of `folds`, its strength chosen across them."""
    if method == "shrink":
        return fit_shrunk(statistics, folds, layout)
    if method == "stack":
        return fit_stacked(statistics, folds, layout)
    raise ValueError(f"unknown learned method '{method}'; choose from {LEARNED_METHODS}")


def fit_learned(
    method: str,
    predictions: np.ndarray,
    truth: np.ndarray,
    fold_of: np.ndarray,
    layout: Layout,
    folds: int = CV_FOLDS,
) -> PointBlend:
    """Fit `method` on the validation images (runs, n, N, 2) whose labels some run comes near
    (`clean_images`), the strength chosen across the `folds` of `fold_of`."""
    keep = clean_images(predictions, truth)
    statistics = point_statistics(predictions, truth, fold_of, folds, keep)
    model = fit_on_folds(method, statistics, range(folds), layout)
    return replace(model, images_left_out=int((~keep).sum()))


def fit_method(
    method: str,
    predictions: np.ndarray,
    truth: np.ndarray,
    file_names: np.ndarray,
    per_region: bool,
    rounds: int,
    layout: Layout,
) -> FittedWeights | PointBlend:
    """Fit `method` (as `ens blend --method`) on validation predictions (runs, n, N, 2): the
    weights for lsq and greedy (and the lsq weights the uncertainty fusion starts from), the
    per-landmark model for shrink and stack."""
    if method in LEARNED_METHODS:
        fold_of = image_folds(len(file_names), CV_FOLDS)
        return fit_learned(method, predictions, truth, fold_of, layout)
    how = "lsq" if method == FUSION_METHOD else method
    return fit_weights(predictions, truth, file_names, how, per_region, rounds, layout=layout)
