"""Missing landmark labels (NaN, Kaggle Facial Keypoints): the checks that make them trainable.

A NaN in the training landmarks means "not labelled". Training rows and points without any label are
errors (they would silently turn into NaN means and scores); everything else leaves the missing
values out: the mean shape (`ensemble.competition.baseline.mean_shape`) is a nanmean, the loss and
the validation metrics (`models.val_metrics`) average over present values only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ensemble.competition.baseline import unlabelled_points
from ensemble.errors import InputError

_ROWS = 4096  # rows checked at a time for a missing label: no (n, N, 2) mask of a complete file


def check_labels(path: str | Path, points: np.ndarray, train_rows: np.ndarray) -> None:
    """Reject unusable missing labels: a row without any, half a point, an unlabelled point.

    `points` (n, N, 2) with NaN for missing; `train_rows` are the rows the model trains on
    (every point needs at least one label there, or its mean and its loss are undefined).
    """
    if not any(
        np.isnan(points[start : start + _ROWS]).any() for start in range(0, len(points), _ROWS)
    ):
        return
    missing = np.isnan(points)
    half = missing[..., 0] != missing[..., 1]
    if half.any():
        row, point = np.argwhere(half)[0]
        present = "XY"[int(missing[row, point, 0])]
        raise InputError(
            path, f"Point_M{point}_{present} is set but its other coordinate is empty", row + 2
        )
    empty_rows = missing.all(axis=(1, 2))
    if empty_rows.any():
        row = int(np.flatnonzero(empty_rows)[0])
        raise InputError(
            path,
            f"no landmark labelled in this row ({int(empty_rows.sum())} such row(s)); "
            "drop unlabelled images from train/",
            row + 2,
        )
    unlabelled = unlabelled_points(points[train_rows])
    if len(unlabelled):
        raise InputError(
            path,
            f"Point_M{unlabelled[0]} has no label among the {len(train_rows)} training images "
            f"({len(unlabelled)} such point(s)); its mean shape and loss are undefined",
        )
