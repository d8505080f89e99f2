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
from ensemble.io.landmarks import landmark_blocks
from ensemble.io.submission import gather_points, write_submission
from ensemble.io.test_points import read_test_points

_ROWS = 4096  # images a step of an in-memory mean: its float64 temporaries stay small


def unlabelled_points(points: np.ndarray) -> np.ndarray:
    """Indices of the points of (n, N, 2) that no image labels (NaN in every image)."""
    return np.flatnonzero(np.isnan(points).all(axis=0).any(axis=1))


class ShapeSum:
    """Running float64 sums of shapes (k, N, 2), missing (NaN) values left out: a mean shape
    taken block by block, without a float64 copy of every shape."""

    def __init__(self, n_points: int) -> None:
        self.total = np.zeros((n_points, 2))
        self.count = np.zeros((n_points, 2), dtype=np.int64)
        self.images = 0

    def add(self, shapes: np.ndarray) -> None:
        """Add shapes (k, N, 2)."""
        present = ~np.isnan(shapes)
        self.total += np.where(present, shapes, 0.0).sum(axis=0)
        self.count += present.sum(axis=0)
        self.images += len(shapes)

    def mean(self, path: str | Path | None = None) -> np.ndarray:
        """The mean shape (N, 2); InputError naming `path` when a point has no label at all."""
        unlabelled = np.flatnonzero((self.count == 0).any(axis=1))
        if len(unlabelled):
            raise InputError(
                path,
                f"Point_M{unlabelled[0]} has no label in any image ({len(unlabelled)} such "
                f"point(s) among {self.images} images); its mean shape is undefined",
            )
        return self.total / self.count


def mean_shape(points: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    """Mean over images of (n, N, 2) points, leaving missing (NaN) values out.

    Raises InputError naming `path` and the point when a point has no label in any image.
    """
    return mean_relative_shape(points, np.ones((len(points), 2)), path)


def mean_relative_shape(
    points: np.ndarray,
    sizes: np.ndarray,
    path: str | Path | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Mean over images (`rows` of them; default all) of `points` (n, N, 2) divided by their
    images' (width, height) `sizes` (n, 2), missing values left out; float64, computed a few
    thousand images at a time (no copy of the rows' labels)."""
    rows = np.arange(len(points)) if rows is None else np.asarray(rows)
    total = ShapeSum(points.shape[1])
    for start in range(0, len(rows), _ROWS):
        block = rows[start : start + _ROWS]
        block_sizes = np.asarray(sizes[block], np.float64)
        total.add(np.asarray(points[block], np.float64) / block_sizes[:, None, :])
    return total.mean(path)


def mean_shape_points(
    points: np.ndarray, sizes: np.ndarray, target_sizes: np.ndarray, path: str | Path | None = None
) -> np.ndarray:
    """The mean-shape prediction (n, N, 2 pixels) for images of `target_sizes` (n, 2).

    The mean of the training `points` (m, N, 2) divided by their images' (width, height)
    `sizes` (m, 2), scaled by each target image's size: the baseline of `ens baseline`, of
    the runs' baseline val score and of undecodable test images.
    """
    relative = mean_relative_shape(points, np.asarray(sizes, np.float64), path)
    return relative[None, :, :] * np.asarray(target_sizes)[:, None, :]


def _train_shape_sums(folder: DataFolder, file_names: np.ndarray) -> tuple[ShapeSum, ShapeSum]:
    """Sums of the relative training shapes, streamed from train/landmarks.csv: of the images
    not in `file_names`, and of every image."""
    others = every = None
    for block in landmark_blocks(folder.train_landmarks, allow_missing=True):
        if every is None:
            others, every = ShapeSum(block.points.shape[1]), ShapeSum(block.points.shape[1])
        sizes = image_sizes(folder.images("train"), block.file_names)
        relative = block.points.astype(np.float64) / sizes[:, None, :]
        every.add(relative)
        others.add(relative[~np.isin(block.file_names, file_names)])
    return others, every


def train_mean_shape(data_dir: str | Path) -> np.ndarray:
    """The mean training shape relative to image size (N, 2), streamed from
    train/landmarks.csv: the memory of a block of rows, not of the file."""
    folder = DataFolder.at(data_dir)
    return _train_shape_sums(folder, np.array([], dtype=object))[1].mean(folder.train_landmarks)


def baseline_for_train_images(data_dir: str | Path, file_names: np.ndarray) -> np.ndarray:
    """The mean-shape baseline's points (n, N, 2 pixels) for train images `file_names`, as the
    runs' `baseline_val_score` has them: the mean relative shape of the other train images
    (all of them when `file_names` holds every one, as out-of-fold validation does)."""
    folder = DataFolder.at(data_dir)
    others, every = _train_shape_sums(folder, np.asarray(file_names))
    relative = (others if others.images else every).mean(folder.train_landmarks)
    targets = image_sizes(folder.images("train"), np.asarray(file_names))
    return relative[None, :, :] * targets[:, None, :]


def baseline_submission(data_dir: str | Path, output: str | Path) -> None:
    """Write the mean-shape submission for DATA/test (only the requested points are made)."""
    folder = DataFolder.at(data_dir)
    relative = train_mean_shape(data_dir)
    test_points = read_test_points(folder.test_points, n_points=len(relative), ragged=True)
    test_sizes = image_sizes(folder.images("test"), test_points.file_names)
    every_image = np.broadcast_to(relative, (len(test_sizes), *relative.shape))
    picked = gather_points(every_image, test_points.indices) * test_sizes[:, None, :]
    write_submission(output, test_points.file_names, picked)
