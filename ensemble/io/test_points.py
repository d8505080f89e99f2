"""test_points.csv: which landmark indices each test image is scored on (`[742, 385, ...]`).

Columns `file_name` and `point_index_list`; the lists are parsed without `eval`. The checks every
reader shares are in `ensemble.io.checks`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ensemble.errors import InputError
from ensemble.io.arrow_arrays import to_numbers, to_strings
from ensemble.io.atomic import atomic_open
from ensemble.io.checks import (
    FILE_COLUMN,
    check_name,
    check_names,
    count_data_lines,
    data_rows,
    quoted,
    read_header,
)

if TYPE_CHECKING:
    import pyarrow as pa

POINTS_COLUMN = "point_index_list"


@dataclass(frozen=True)
class TestPoints:
    """Which landmark indices each test image is scored on: (n, K) int32, -1 pads ragged rows."""

    __test__ = False  # not a pytest class

    file_names: np.ndarray
    indices: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """True where `indices` holds a real index (False on ragged padding)."""
        return self.indices >= 0

    def __len__(self) -> int:
        return len(self.file_names)


_LIST_PATTERN = re.compile(r"\[\s*\d+(?:\s*,\s*\d+)*\s*\]")
_MAX_INDEX = np.iinfo(np.int64).max  # what the vectorised parser reads


def _parse_index_lists(
    path: Path, lists: pa.StringArray, n_points: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse `[i, j, ...]` literals vectorised with pyarrow: (flat indices, count per row).

    The fast path never looks at a row twice; only when something fails does a per-row check
    find the first bad line for the error message.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = pc.utf8_trim_whitespace(lists)
    framed = pc.and_(pc.starts_with(texts, "["), pc.ends_with(texts, "]"))
    parts = pc.split_pattern(pc.utf8_trim(texts, "[]"), ",")
    try:
        if not pc.all(framed).as_py():
            raise ValueError("unframed list")
        tokens = pc.utf8_trim_whitespace(pc.list_flatten(parts))
        flat = to_numbers(pc.cast(tokens, pa.int64()))
        if (flat < 0).any():
            raise ValueError("negative index")
    except (pa.ArrowInvalid, ValueError):
        for row, text in enumerate(lists.to_pylist()):
            if not _LIST_PATTERN.fullmatch(text.strip()):
                raise InputError(
                    path, f"point_index_list {quoted(text)} is not a list like [1, 2, 3]", row + 2
                ) from None
            huge = [token for token in re.findall(r"\d+", text) if int(token) > _MAX_INDEX]
            if huge:
                bound = f" [0, {n_points})" if n_points is not None else ""
                raise InputError(
                    path, f"point index {huge[0]} out of range{bound}", row + 2
                ) from None
        raise InputError(path, "point_index_list values are not lists like [1, 2, 3]") from None
    return flat, to_numbers(pc.list_value_length(parts))


def read_test_points(
    path: str | Path, n_points: int | None = None, ragged: bool = False
) -> TestPoints:
    """Read `test_points.csv` (`file_name`, `point_index_list` like `[742, 385, ...]`).

    pyarrow reads the two columns and parses the list literals vectorised (no `eval`); a file
    it rejects is read again line by line to name the problem. Indices must be distinct within
    a row and, when `n_points` is given, lie in [0, n_points). Rows must all have the same
    number of indices unless `ragged`, in which case short rows are padded with -1.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    header = read_header(path, "\t")
    if header != [FILE_COLUMN, POINTS_COLUMN]:
        raise InputError(
            path, f"header must be '{FILE_COLUMN}<TAB>{POINTS_COLUMN}', found {header!r}", 1
        )
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(
                delimiter="\t", quote_char=False, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as error:
        _explain(path)
        if count_data_lines(path) == 0:  # pyarrow cannot skip the header of a header-only file
            raise InputError(path, "no data rows after the header", 2) from None
        raise InputError(path, f"cannot parse: {quoted(error)}") from None
    if table.num_rows == 0:
        raise InputError(path, "no data rows after the header", 2)
    names = table.column(0)
    check_names(path, names)
    flat, counts = _parse_index_lists(path, table.column(1).combine_chunks(), n_points)
    indices = _rows_from_flat(path, flat, counts, ragged)
    _check_index_rows(path, indices, n_points)
    return TestPoints(to_strings(names), indices.astype(np.int32))


def _explain(path: Path) -> None:
    """Read the file line by line and raise `InputError` at its first malformed line, if any."""
    seen: dict[str, int] = {}
    for line, fields in data_rows(path, "\t"):
        check_name(path, fields[0] if fields else "", line, seen)
        if len(fields) < 2:
            raise InputError(
                path, "missing point_index_list (expected 2 tab-separated columns)", line
            )
        if len(fields) > 2:
            raise InputError(path, f"expected 2 columns, found {len(fields)}", line)


def _rows_from_flat(path: Path, flat: np.ndarray, counts: np.ndarray, ragged: bool) -> np.ndarray:
    width = int(counts.max())
    if (counts == width).all():
        return flat.reshape(len(counts), width)
    if not ragged:
        row = int(np.flatnonzero(counts != counts[0])[0])
        raise InputError(
            path, f"expected {counts[0]} indices (as on line 2), found {counts[row]}", row + 2
        )
    out = np.full((len(counts), width), -1, dtype=np.int64)
    mask = np.arange(width)[None, :] < counts[:, None]
    out[mask] = flat
    return out


def _check_index_rows(path: Path, indices: np.ndarray, n_points: int | None) -> None:
    valid = indices >= 0
    if n_points is not None:
        over = valid & (indices >= n_points)
        if over.any():
            row, col = np.argwhere(over)[0]
            raise InputError(
                path,
                f"point index {indices[row, col]} out of range [0, {n_points})",
                int(row) + 2,
            )
    ordered = np.sort(np.where(valid, indices, -1 - np.arange(indices.shape[1])), axis=1)
    repeated = (np.diff(ordered, axis=1) == 0).any(axis=1)
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        values, times = np.unique(indices[row][valid[row]], return_counts=True)
        raise InputError(path, f"point index {values[times > 1][0]} is repeated", row + 2)


def write_test_points(path: str | Path, file_names: Sequence[str], indices: np.ndarray) -> None:
    """Write `test_points.csv` atomically (negative indices are ragged padding, left out)."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(f"{FILE_COLUMN}\t{POINTS_COLUMN}\n")
        append_test_points(handle, file_names, indices)


def append_test_points(handle, file_names: Iterable[str], indices: np.ndarray) -> None:
    """Write test_points rows (no header) to an open handle; used to stream large files."""
    for name, row in zip(file_names, np.asarray(indices), strict=True):
        handle.write(f"{name}\t[{', '.join(str(int(i)) for i in row if i >= 0)}]\n")
