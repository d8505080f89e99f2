"""Submissions (`file_name,Point_M0_X,...,Point_M{K-1}_Y`): the reader, the writer (values
rounded half to even, never truncated) and the requested points of landmarks (`gather_points`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.io.atomic import atomic_path
from ensemble.io.checks import FILE_COLUMN, point_columns


@dataclass(frozen=True)
class Submission:
    """A submission: file names and float64 values of shape (n, K, 2) (NaN = empty cell)."""

    file_names: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.file_names)


def read_submission(path: str | Path, allow_missing: bool = False) -> Submission:
    """Read a submission CSV (`file_name,Point_M0_X,...,Point_M{K-1}_Y`).

    The one submission reader, shared with `ens blend` (`ensemble.io.submission_set`): the same
    files are accepted, with the same messages, by every command. Empty cells are ragged padding
    (NaN), allowed only with `allow_missing`.
    """
    from ensemble.io.submission_set import SubmissionSet  # imported here: it imports this module

    submissions = SubmissionSet([path], allow_empty=allow_missing)
    (item,) = submissions.iter_values()
    names = submissions.file_names.astype(object)
    return Submission(names, item.values.T.reshape(len(names), -1, 2))


def format_values(values: np.ndarray, decimals: int = 4) -> np.ndarray:
    """Round half-to-even to `decimals` places (never truncates)."""
    return np.round(np.asarray(values, dtype=np.float64), decimals)


def write_submission(
    path: str | Path, file_names: Sequence[str], values: np.ndarray, decimals: int = 4
) -> None:
    """Write a submission CSV atomically; values are rounded half-to-even, never truncated.

    NaN values (ragged rows) are written as empty cells.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 3:
        values = values.reshape(len(values), -1)
    if values.shape[0] != len(file_names) or values.shape[1] % 2:
        raise ValueError(f"values shape {values.shape} does not fit {len(file_names)} rows")
    rounded = format_values(values, decimals)
    columns = [pa.array(list(file_names), type=pa.string())]
    columns += [pa.array(rounded[:, j], from_pandas=True) for j in range(rounded.shape[1])]
    table = pa.table(columns, names=[FILE_COLUMN, *point_columns(rounded.shape[1] // 2)])
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write((",".join(table.column_names) + "\n").encode("utf-8"))
        pacsv.write_csv(table, handle, write_options=options)


def gather_points(points: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Pick per-row landmarks: points (n, N, 2), indices (n, K) -> (n, K, 2) (-1 gives NaN)."""
    safe = np.where(indices >= 0, indices, 0)
    picked = np.take_along_axis(points, safe[:, :, None].astype(np.int64), axis=1)
    picked = picked.astype(np.float64)
    picked[indices < 0] = np.nan
    return picked
