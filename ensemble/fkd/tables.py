"""Landmark and submission tables with missing values written as empty cells (never 'nan')."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ensemble.io.atomic import atomic_open
from ensemble.io.checks import FILE_COLUMN, point_columns
from ensemble.io.submission import format_values


def _write(
    path: str | Path, sep: str, file_names: Sequence[str], values: np.ndarray, float_format: str
) -> None:
    values = np.asarray(values, dtype=np.float64)
    flat = values.reshape(len(values), -1)
    if len(flat) != len(file_names) or flat.shape[1] % 2:
        raise ValueError(f"values shape {values.shape} does not fit {len(file_names)} rows")
    if np.isinf(flat).any():
        raise ValueError("refusing to write infinite coordinates")
    frame = pd.DataFrame(flat, columns=point_columns(flat.shape[1] // 2))
    frame.insert(0, FILE_COLUMN, list(file_names))
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, sep=sep, index=False, na_rep="", float_format=float_format)


def write_landmarks_missing(
    path: str | Path, file_names: Sequence[str], points: np.ndarray
) -> None:
    """Write a landmarks TSV atomically; NaN becomes an empty cell.

    Read it back with `ensemble.io.landmarks.read_landmarks(path, allow_missing=True)`.
    """
    _write(path, "\t", file_names, points, "%.10g")


def write_submission_missing(
    path: str | Path, file_names: Sequence[str], values: np.ndarray, decimals: int = 4
) -> None:
    """Write a submission CSV atomically, rounded half-to-even; NaN becomes an empty cell.

    For ragged test_points (Kaggle Facial Keypoints); read it back with
    `ensemble.io.submission.read_submission(path, allow_missing=True)`.
    """
    _write(path, ",", file_names, format_values(values, decimals), f"%.{decimals}f")
