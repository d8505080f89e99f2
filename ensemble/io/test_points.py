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
from ensemble.io.atomic import atomic_open
from ensemble.io.checks import (
    FILE_COLUMN,
    check_file_names,
    check_utf8,
    pandas_reader,
    parser_error,
    quoted,
    read_header,
)

if TYPE_CHECKING:
    import pandas as pd

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
    path: Path, lists: pd.Series, n_points: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse `[i, j, ...]` literals vectorised with pyarrow: (flat indices, count per row).

    The fast path never looks at a row twice; only when something fails does a per-row check
    find the first bad line for the error message.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = pc.utf8_trim_whitespace(pa.array(lists.to_numpy(dtype=object), type=pa.string()))
    framed = pc.and_(pc.starts_with(texts, "["), pc.ends_with(texts, "]"))
    parts = pc.split_pattern(pc.utf8_trim(texts, "[]"), ",")
    try:
        if not pc.all(framed).as_py():
            raise ValueError("unframed list")
        tokens = pc.utf8_trim_whitespace(pc.list_flatten(parts))
        flat = pc.cast(tokens, pa.int64()).to_numpy()
        if (flat < 0).any():
            raise ValueError("negative index")
    except (pa.ArrowInvalid, ValueError):
        for row, text in enumerate(lists.tolist()):
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
    return flat, pc.list_value_length(parts).to_numpy(zero_copy_only=False)


def read_test_points(
    path: str | Path, n_points: int | None = None, ragged: bool = False
) -> TestPoints:
    """Read `test_points.csv` (`file_name`, `point_index_list` like `[742, 385, ...]`).

    A plain file (printable-ASCII names, lists like `[1, 2, 3]`) is parsed by the C reader of
    `ensemble.io.native`; anything else by pandas, the list literals vectorised with pyarrow
    (no `eval`). Indices must be distinct within a row and, when `n_points` is given, lie in
    [0, n_points). Rows must all have the same number of indices unless `ragged`, in which
    case short rows are padded with -1.
    """
    path = Path(path)
    header = read_header(path, "\t")
    if header != [FILE_COLUMN, POINTS_COLUMN]:
        raise InputError(
            path, f"header must be '{FILE_COLUMN}<TAB>{POINTS_COLUMN}', found {header!r}", 1
        )
    plain = _read_test_points_native(path, n_points)
    if plain is not None:
        names, flat, counts, checked = plain
        indices = _rows_from_flat(path, flat, counts, ragged)
        if not checked:  # an index out of range or repeated: the message
            _check_index_rows(path, indices, n_points)
        return TestPoints(names, np.asarray(indices, dtype=np.int32))
    import pandas as pd

    try:
        frame = pandas_reader(path, "\t", None)
        frame = frame.astype({POINTS_COLUMN: str}) if len(frame) else frame
    except pd.errors.ParserError as error:
        raise parser_error(path, error) from None
    except UnicodeDecodeError as error:
        check_utf8(path)
        raise InputError(path, f"not UTF-8 text ({error})") from None
    if len(frame) == 0:
        raise InputError(path, "no data rows after the header", 2)
    check_file_names(path, frame[FILE_COLUMN], 2, {})
    absent = frame[POINTS_COLUMN].isna().to_numpy()
    if absent.any():
        row = int(np.flatnonzero(absent)[0])
        raise InputError(
            path, "missing point_index_list (expected 2 tab-separated columns)", row + 2
        )
    flat, counts = _parse_index_lists(path, frame[POINTS_COLUMN], n_points)
    indices = _rows_from_flat(path, flat, counts, ragged)
    _check_index_rows(path, indices, n_points)
    return TestPoints(frame[FILE_COLUMN].to_numpy(dtype=object), indices.astype(np.int32))


def _read_test_points_native(path: Path, n_points: int | None) -> tuple | None:
    """(names, flat indices, count per row, checked) of a plain test_points.csv, or None.

    Plain: printable-ASCII names, distinct; lists `[i, j, ...]` of 1-9 digit indices separated
    by `, ` or `,`; every line ended. Anything else is left to the pandas path, which names
    the problem. `checked`: every index is below `n_points` (when given) and distinct within
    its row.
    """
    from ensemble.io import native

    plain = native.plain_file(path)
    if plain is None:
        return None
    lib, buffer, start = plain
    rows = native.count_lines(lib, buffer, start)
    if rows == 0:
        return None
    flat = np.empty((len(buffer) - start) // 2 + 1, dtype=np.int32)  # an index takes 2+ bytes
    counts = np.empty(rows, dtype=np.int32)
    name_starts = np.empty(rows, dtype=np.int64)
    name_ends = np.empty(rows, dtype=np.int64)
    address = native.address
    parsed = lib.ens_parse_test_points(
        address(buffer),
        start,
        len(buffer),
        rows,
        address(flat),
        len(flat),
        address(counts),
        address(name_starts),
        address(name_ends),
    )
    if parsed != rows:
        return None
    names = native.gather_names(lib, buffer, name_starts, name_ends)
    if names.first_duplicate(lib) >= 0:
        return None
    flat = flat[: int(counts.sum(dtype=np.int64))]
    bound = int(flat.max()) + 1 if n_points is None else n_points
    stamp = np.full(bound, -1, dtype=np.int64)
    bad = lib.ens_first_bad_index_row(address(flat), address(counts), rows, bound, address(stamp))
    return names.to_numpy(), flat, counts, bad < 0


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
