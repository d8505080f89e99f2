"""The mean-shape baseline: the floor every model must beat.

Missing labels (NaN, Kaggle Facial Keypoints) are left out: each point's mean is taken over the
images where it is labelled. With every label present this is the plain mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ensemble.errors import InputError
from ensemble.io.data_folder import DataFolder
from ensemble.io.images import image_sizes
from ensemble.io.landmarks import read_landmarks
from ensemble.io.submission import gather_points, write_submission
from ensemble.io.test_points import read_test_points


def unlabelled_points(points: np.ndarray) -> np.ndarray:
    """Indices of the points of (n, N, 2) that no image labels (NaN in every image)."""
    return np.flatnonzero(np.isnan(points).all(axis=0).any(axis=1))


def mean_shape(points: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    """Mean over images of (n, N, 2) points, leaving missing (NaN) values out.

    Raises InputError naming `path` and the point when a point has no label in any image.
    """
    points = np.asarray(points, dtype=np.float64)
    unlabelled = unlabelled_points(points)
    if len(unlabelled):
        raise InputError(
            path,
            f"Point_M{unlabelled[0]} has no label in any image ({len(unlabelled)} such point(s) "
            f"among {len(points)} images); its mean shape is undefined",
        )
    return np.nanmean(points, axis=0)


def mean_shape_points(
    points: np.ndarray, sizes: np.ndarray, target_sizes: np.ndarray, path: str | Path | None = None
) -> np.ndarray:
    """The mean-shape prediction (n, N, 2 pixels) for images of `target_sizes` (n, 2).

    The mean of the training `points` (m, N, 2) divided by their images' (width, height)
    `sizes` (m, 2), scaled by each target image's size: the baseline of `ens baseline`, of
    the runs' baseline val score and of undecodable test images.
    """
    relative = mean_shape(np.asarray(points, np.float64) / sizes[:, None, :], path)
    return relative[None, :, :] * np.asarray(target_sizes)[:, None, :]


def baseline_for_train_images(data_dir: str | Path, file_names: np.ndarray) -> np.ndarray:
    """The mean-shape baseline's points (n, N, 2 pixels) for train images `file_names`, as the
    runs' `baseline_val_score` has them: the mean relative shape of the other train images
    (all of them when `file_names` holds every one, as out-of-fold validation does)."""
    folder = DataFolder.at(data_dir)
    train = read_landmarks(folder.train_landmarks, allow_missing=True)
    others = ~np.isin(train.file_names, file_names)
    if not others.any():
        others[:] = True
    sizes = image_sizes(folder.images("train"), train.file_names[others])
    targets = image_sizes(folder.images("train"), np.asarray(file_names))
    return mean_shape_points(train.points[others], sizes, targets, folder.train_landmarks)


def baseline_submission(data_dir: str | Path, output: str | Path) -> np.ndarray:
    """Write the mean-shape submission for DATA/test; return the full (n, N, 2) predictions."""
    data = Path(data_dir)
    labels_path = DataFolder.at(data).train_landmarks
    train = read_landmarks(labels_path, allow_missing=True)
    train_sizes = image_sizes(DataFolder.at(data).images("train"), train.file_names)
    test_points = read_test_points(
        DataFolder.at(data).test_points, n_points=train.n_points, ragged=True
    )
    test_sizes = image_sizes(DataFolder.at(data).images("test"), test_points.file_names)
    predicted = mean_shape_points(train.points, train_sizes, test_sizes, labels_path)
    write_submission(output, test_points.file_names, gather_points(predicted, test_points.indices))
    return predicted
