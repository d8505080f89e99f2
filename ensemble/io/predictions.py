"""Prediction files of a run: file names + (n, N, 2) float32 points in original pixels.

With flip TTA a file also holds `tta_spread` (n,) float32: per image, the mean over its 2N values of
((a - b) / 2)^2, where a and b are the predictions on the image and on its mirror (px^2, the
variance of the two views around their mean): how unsure one model is of that image. With
`uncertainty = "gaussian" | "laplace"` it also holds `sigma` (n, N) float32: each point's isotropic
scale in original pixels, calibrated on validation (see ensemble/competition/uncertainty.py).
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.errors import InputError
from ensemble.io.atomic import atomic_path
from ensemble.io.file_kind import require_file


@dataclass(frozen=True)
class Predictions:
    """Landmark predictions for a set of images."""

    file_names: np.ndarray
    points: np.ndarray
    tta_spread: np.ndarray | None = None
    sigma: np.ndarray | None = None


def save_predictions(
    path: str | Path,
    file_names,
    points: np.ndarray,
    tta_spread: np.ndarray | None = None,
    sigma: np.ndarray | None = None,
) -> None:
    """Write an .npz with `file_names` (str), `points` (float32, n x N x 2), atomically."""
    points = np.asarray(points, dtype=np.float32)
    names = np.asarray([str(n) for n in file_names])
    if points.ndim != 3 or points.shape[2] != 2 or len(points) != len(names):
        raise ValueError(f"points shape {points.shape} does not fit {len(names)} file names")
    arrays = {"file_names": names, "points": points}
    if tta_spread is not None:
        arrays["tta_spread"] = np.asarray(tta_spread, dtype=np.float32).reshape(len(names))
    if sigma is not None:
        arrays["sigma"] = np.asarray(sigma, dtype=np.float32).reshape(points.shape[:2])
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_predictions(path: str | Path) -> Predictions:
    """Read a predictions .npz written by `save_predictions` (no pickle)."""
    path = Path(path)
    require_file(path)
    try:
        with _open_npz(path) as data:
            names, points = data["file_names"], data["points"]
            spread = data["tta_spread"] if "tta_spread" in data.files else None
            sigma = data["sigma"] if "sigma" in data.files else None
    except KeyError as error:
        raise InputError(path, f"not a predictions file: {error}") from None
    except (EOFError, ValueError, OSError, zipfile.BadZipFile, zlib.error) as error:
        raise InputError(path, f"not a valid .npz file ({error})") from None
    if points.ndim != 3 or points.shape[2] != 2 or len(points) != len(names):
        raise InputError(path, f"points of shape {points.shape} for {len(names)} file names")
    if not np.isfinite(points).all():
        raise InputError(path, "predictions contain NaN or infinite values")
    if spread is not None and (spread.shape != (len(names),) or not np.isfinite(spread).all()):
        raise InputError(path, f"tta_spread of shape {spread.shape} for {len(names)} file names")
    if sigma is not None and (
        sigma.shape != points.shape[:2] or not (np.isfinite(sigma) & (sigma > 0)).all()
    ):
        raise InputError(path, f"sigma must be positive, of shape {points.shape[:2]}")
    return Predictions(
        names.astype(object),
        points.astype(np.float32),
        None if spread is None else spread.astype(np.float32),
        None if sigma is None else sigma.astype(np.float32),
    )


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError("a single .npy array, not an .npz archive")
    return data
