"""The mean-shape baseline: the floor every model must beat."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ensemble.formats import gather_points, read_landmarks, read_test_points, write_submission
from ensemble.images import image_sizes


def mean_normalised_shape(points: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Mean landmark shape (N, 2) in coordinates divided by each image's (width, height)."""
    return (np.asarray(points, np.float64) / sizes[:, None, :]).mean(axis=0)


def shape_for_images(mean_shape: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Map a normalised mean shape to images of the given sizes: (n, N, 2) pixels."""
    return mean_shape[None, :, :] * sizes[:, None, :]


def baseline_submission(data_dir: str | Path, output: str | Path) -> np.ndarray:
    """Write the mean-shape submission for DATA/test; return the full (n, N, 2) predictions."""
    data = Path(data_dir)
    train = read_landmarks(data / "train" / "landmarks.csv")
    mean_shape = mean_normalised_shape(
        train.points, image_sizes(data / "train" / "images", train.file_names)
    )
    test_points = read_test_points(data / "test" / "test_points.csv", n_points=train.n_points)
    predicted = shape_for_images(
        mean_shape, image_sizes(data / "test" / "images", test_points.file_names)
    )
    write_submission(output, test_points.file_names, gather_points(predicted, test_points.indices))
    return predicted
