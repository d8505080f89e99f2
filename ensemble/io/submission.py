"""Submissions (`file_name,Point_M0_X,...,Point_M{K-1}_Y`): the reader, the writer (values
rounded half to even, never truncated) and the requested points of landmarks (`gather_points`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ensemble.io.arrow_arrays import float_array, string_array
from ensemble.io.atomic import atomic_path
from ensemble.io.checks import FILE_COLUMN, point_columns
from ensemble.io.parallel import map_ordered, row_parts

if TYPE_CHECKING:
    import pyarrow as pa


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
    path: str | Path,
    file_names: Sequence[str] | pa.Array,
    values: np.ndarray,
    decimals: int = 4,
) -> None:
    """Write a submission CSV atomically: the one writer of the format.

    `values` is (n, K, 2) or (n, 2K), rows in `file_names` order (a transposed view of
    column-major values is fine). Values are rounded half-to-even to `decimals` places, never
    truncated, and written as pyarrow writes doubles: the shortest text that reads back the
    same number (`12.5`, `3`, `-0.0001`). NaN (ragged padding) is written as an empty cell.
    The rows are formatted on the threads of `ensemble.io.parallel`, a part of the rows each.
    """

    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 3:
        values = values.reshape(len(values), -1)
    if values.ndim != 2 or values.shape[0] != len(file_names) or values.shape[1] % 2:
        raise ValueError(f"values shape {values.shape} does not fit {len(file_names)} rows")
    names = string_array(file_names)
    header = [FILE_COLUMN, *point_columns(values.shape[1] // 2)]
    rounded = format_values(values, decimals)

    def lines(rows: tuple[int, int]) -> bytes:
        return _csv_lines(header, names, rounded, *rows)

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write((",".join(header) + "\n").encode("utf-8"))
        for part in map_ordered(lines, row_parts(len(rounded))):
            handle.write(part)


def _csv_lines(
    header: list[str], names: pa.Array, rounded: np.ndarray, start: int, stop: int
) -> bytes:
    """CSV lines of rows start..stop by pyarrow (no header); NaN becomes an empty cell."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    block = rounded[start:stop]
    columns = [names.slice(start, stop - start)]
    columns += [float_array(block[:, j]) for j in range(block.shape[1])]
    buffer = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    pacsv.write_csv(pa.table(columns, names=header), buffer, write_options=options)
    return buffer.getvalue()


def gather_points(points: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Pick per-row landmarks: points (n, N, 2), indices (n, K) -> (n, K, 2) (-1 gives NaN)."""
    safe = np.where(indices >= 0, indices, 0)
    picked = np.take_along_axis(points, safe[:, :, None].astype(np.int64), axis=1)
    picked = picked.astype(np.float64)
    picked[indices < 0] = np.nan
    return picked
