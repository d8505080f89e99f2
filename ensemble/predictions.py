"""Prediction files of a run: file names + (n, N, 2) float32 points in original pixels."""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.atomic import atomic_path
from ensemble.errors import InputError


@dataclass(frozen=True)
class Predictions:
    """Landmark predictions for a set of images."""

    file_names: np.ndarray
    points: np.ndarray


def save_predictions(path: str | Path, file_names, points: np.ndarray) -> None:
    """Write an .npz with `file_names` (str) and `points` (float32, n x N x 2), atomically."""
    points = np.asarray(points, dtype=np.float32)
    names = np.asarray([str(n) for n in file_names])
    if points.ndim != 3 or points.shape[2] != 2 or len(points) != len(names):
        raise ValueError(f"points shape {points.shape} does not fit {len(names)} file names")
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, file_names=names, points=points)


def load_predictions(path: str | Path) -> Predictions:
    """Read a predictions .npz written by `save_predictions` (no pickle)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        with _open_npz(path) as data:
            names, points = data["file_names"], data["points"]
    except KeyError as error:
        raise InputError(path, f"not a predictions file: {error}") from None
    except (EOFError, ValueError, OSError, zipfile.BadZipFile, zlib.error) as error:
        raise InputError(path, f"not a valid .npz file ({error})") from None
    if points.ndim != 3 or points.shape[2] != 2 or len(points) != len(names):
        raise InputError(path, f"points of shape {points.shape} for {len(names)} file names")
    if not np.isfinite(points).all():
        raise InputError(path, "predictions contain NaN or infinite values")
    return Predictions(names.astype(object), points.astype(np.float32))


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError("a single .npy array, not an .npz archive")
    return data
