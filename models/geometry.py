"""Letterbox crop geometry: original pixels <-> crop pixels <-> normalised targets.

Every image is scaled so that its longer side equals the crop size S (each axis rounded to whole
pixels, so the two axes may differ by a fraction of a pixel: `scale_x`, `scale_y`), then centred
on an S x S canvas padded with the ImageNet mean colour. Nothing is cut off, so no landmark is
ever lost, whatever the aspect ratio or where the face sits in the image.

Per image the geometry row is (scale_x, scale_y, offset_x, offset_y) and maps a point p in
original pixels (continuous coordinates, 0 = left/top edge of the image) to the crop by

    crop = p * scale + offset            and back    p = (crop - offset) / scale.

Networks regress targets normalised to the crop, t = crop / S - 0.5, in [-0.5, 0.5] for points
inside the image.
"""

from __future__ import annotations

import numpy as np

GEOMETRY_COLUMNS = ("scale_x", "scale_y", "offset_x", "offset_y")


def letterbox_geometry(width: int, height: int, size: int) -> tuple[int, int, np.ndarray]:
    """Resized (width, height) and the geometry row placing a width x height image in the crop."""
    scale = size / max(width, height)
    new_w = min(size, max(1, round(width * scale)))
    new_h = min(size, max(1, round(height * scale)))
    left, top = (size - new_w) // 2, (size - new_h) // 2
    return new_w, new_h, np.array([new_w / width, new_h / height, left, top], dtype=np.float64)


def to_crop(points: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """Original pixels (n, N, 2) -> crop pixels, with geometry rows (n, 4)."""
    geometry = np.asarray(geometry, dtype=np.float64)
    return np.asarray(points, np.float64) * geometry[:, None, :2] + geometry[:, None, 2:]


def from_crop(points: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """Crop pixels (n, N, 2) -> original pixels, with geometry rows (n, 4)."""
    geometry = np.asarray(geometry, dtype=np.float64)
    return (np.asarray(points, np.float64) - geometry[:, None, 2:]) / geometry[:, None, :2]


def normalise(crop_points: np.ndarray, size: int) -> np.ndarray:
    """Crop pixels -> network targets in [-0.5, 0.5]."""
    return np.asarray(crop_points, np.float64) / size - 0.5


def denormalise(targets: np.ndarray, size: int) -> np.ndarray:
    """Network targets -> crop pixels."""
    return (np.asarray(targets, np.float64) + 0.5) * size
