"""The mean-shape baseline: the floor every model must beat.

Missing labels (NaN, Kaggle Facial Keypoints) are left out: each point's mean is taken over the
images where it is labelled. With every label present this is the plain mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ensemble.errors import InputError
from ensemble.formats import gather_points, read_landmarks, read_test_points, write_submission
from ensemble.images import image_sizes


def mean_shape(points: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    """Mean over images of (n, N, 2) points, leaving missing (NaN) values out.

    Raises InputError naming `path` and the point when a point has no label in any image.
    """
    points = np.asarray(points, dtype=np.float64)
    unlabelled = np.isnan(points).all(axis=0).any(axis=1)
    if unlabelled.any():
        point = int(np.flatnonzero(unlabelled)[0])
        raise InputError(
            path,
            f"Point_M{point} has no label in any image ({int(unlabelled.sum())} such point(s) "
            f"among {len(points)} images); its mean shape is undefined",
        )
    return np.nanmean(points, axis=0)


def mean_relative_shape(
    points: np.ndarray, sizes: np.ndarray, path: str | Path | None = None
) -> np.ndarray:
    """Mean landmark shape (N, 2) in coordinates divided by each image's (width, height)."""
    return mean_shape(np.asarray(points, np.float64) / sizes[:, None, :], path)


def shape_for_images(relative: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Map a relative mean shape (N, 2) to images of the given sizes: (n, N, 2) pixels."""
    return relative[None, :, :] * sizes[:, None, :]


def baseline_submission(data_dir: str | Path, output: str | Path) -> np.ndarray:
    """Write the mean-shape submission for DATA/test; return the full (n, N, 2) predictions."""
    data = Path(data_dir)
    labels_path = data / "train" / "landmarks.csv"
    train = read_landmarks(labels_path, allow_missing=True)
    relative = mean_relative_shape(
        train.points, image_sizes(data / "train" / "images", train.file_names), labels_path
    )
    test_points = read_test_points(
        data / "test" / "test_points.csv", n_points=train.n_points, ragged=True
    )
    predicted = shape_for_images(
        relative, image_sizes(data / "test" / "images", test_points.file_names)
    )
    write_submission(output, test_points.file_names, gather_points(predicted, test_points.indices))
    return predicted
