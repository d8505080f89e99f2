"""The train landmarks TSV (`file_name`, `Point_M0_X`, `Point_M0_Y`, ...): readers and writers.

N, the number of points, comes from the header. The checks and messages every reader shares
are in `ensemble.io.checks`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ensemble.errors import InputError
from ensemble.io.atomic import atomic_open
from ensemble.io.checks import (
    FILE_COLUMN,
    MAX_COORDINATE,
    check_file_names,
    check_utf8,
    count_data_lines,
    pandas_reader,
    parser_error,
    point_columns,
    quoted,
    read_point_header,
    value_problem,
)

if TYPE_CHECKING:
    import pandas as pd

_CHUNK_ROWS = 4096
_FAST_CHUNK_ROWS = 8192


@dataclass(frozen=True)
class Landmarks:
    """Landmarks of many images: file names and float32 points of shape (n, N, 2)."""

    file_names: np.ndarray
    points: np.ndarray

    @property
    def n_points(self) -> int:
        """Number of landmarks per image (N)."""
        return int(self.points.shape[1])

    def __len__(self) -> int:
        return len(self.file_names)


def _numeric_block(
    path: Path,
    frame: pd.DataFrame,
    columns: Sequence[str],
    first_line: int,
    allow_missing: bool,
) -> np.ndarray:
    """Convert the coordinate columns of a chunk to float64, with a precise error otherwise."""
    import pandas as pd

    block = frame[list(columns)]
    for column in columns:
        series = block[column]
        if series.dtype.kind not in "fiu":
            converted = pd.to_numeric(series, errors="coerce")
            bad = converted.isna() & series.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(
                    path,
                    f"non-numeric value {quoted(series.iloc[row])} in column '{column}'",
                    first_line + row,
                )
    values = block.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    missing = np.isnan(values)
    if missing.any() and not allow_missing:
        row, col = np.argwhere(missing)[0]
        raise InputError(
            path,
            f"missing value in column '{columns[col]}' (empty cell or too few columns)",
            first_line + int(row),
        )
    implausible = np.abs(values) > MAX_COORDINATE  # also inf; NaN (missing) is not
    if implausible.any():
        row, col = np.argwhere(implausible)[0]
        raise InputError(path, value_problem(values[row, col], columns[col]), first_line + int(row))
    return values


def read_landmarks(
    path: str | Path, allow_missing: bool = False, prefix: str = "Point_M"
) -> Landmarks:
    """Read a landmarks TSV (`file_name`, `Point_M0_X`, ...); N comes from the header.

    Streams record batches into one preallocated float32 array, so memory stays near the data
    size. With `allow_missing`, empty cells become NaN (Kaggle Facial Keypoints); otherwise they
    are errors. A fast pass parses straight to float32 and reads good files; any problem is
    located by a second, checking pass that names the line.
    """
    path = Path(path)
    header = read_point_header(path, "\t", prefix)
    n_points = (len(header) - 1) // 2
    plain = _read_landmarks_native(path, n_points)
    if plain is not None:
        return plain
    n_rows = count_data_lines(path)
    points = np.empty((n_rows, n_points, 2), dtype=np.float32)
    try:
        names = _fill_landmarks_fast(path, header, points, allow_missing)
    except _NeedsSlowPath:
        names = _fill_landmarks_checked(path, header, points, allow_missing)
    if len(names) == 0:
        raise InputError(path, "no data rows after the header", 2)
    return Landmarks(names, points[: len(names)])


def _read_landmarks_native(path: Path, n_points: int) -> Landmarks | None:
    """A plain landmarks file read by the C reader (two threads), or None for the other paths.

    Plain: printable-ASCII names, distinct; every value a plain decimal within
    MAX_COORDINATE (no empty cell); every line ended. The float32 values are the correctly
    rounded doubles cast to float32, as pandas' float32 columns give.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ensemble.io import native

    plain = native.plain_file(path)
    if plain is None:
        return None
    lib, buffer, start = plain
    cuts = native.split_rows(lib, buffer, start, 2 if len(buffer) - start > 1 << 23 else 1)
    counts = [native.count_lines(lib, buffer, a, b) for a, b in itertools.pairwise(cuts)]
    rows = sum(counts)
    if rows == 0:
        return None
    points = np.empty((rows, n_points, 2), dtype=np.float32)
    name_starts = np.empty(rows, dtype=np.int64)
    name_ends = np.empty(rows, dtype=np.int64)
    firsts = np.cumsum([0, *counts])
    address = native.address

    def parse(part: int) -> bool:
        count, first = counts[part], int(firsts[part])
        if count == 0:
            return True
        return cuts[part + 1] == lib.ens_parse_landmarks(
            address(buffer),
            cuts[part],
            cuts[part + 1],
            2 * n_points,
            count,
            address(points) + first * 2 * n_points * 4,
            address(name_starts) + first * 8,
            address(name_ends) + first * 8,
            MAX_COORDINATE,
        )

    with ThreadPoolExecutor(len(counts)) as pool:
        if not all(pool.map(parse, range(len(counts)))):
            return None
    names = native.gather_names(lib, buffer, name_starts, name_ends)
    if names.first_duplicate(lib) >= 0:
        return None  # the checking path names the line
    return Landmarks(names.to_numpy(), points)


def read_landmarks_header(path: str | Path, prefix: str = "Point_M") -> int:
    """Check a landmarks TSV's header (as `read_landmarks` does) and return its N points."""
    return (len(read_point_header(path, "\t", prefix)) - 1) // 2


def read_landmarks_at(
    path: str | Path, file_names: Sequence[str], indices: np.ndarray, prefix: str = "Point_M"
) -> np.ndarray | None:
    """The points `indices` (n, K) of the rows named `file_names` of a landmarks TSV.

    Returns (n, K, 2) float64 (NaN where an index is negative: ragged padding), like
    `gather_points(read_landmarks(path).points, indices)` on rows in `file_names` order, with
    every value of the file checked the same way, but without holding all the points (a
    full-size truth file is 734 MB of text and 775 MB of float32). The C reader takes it when
    the file is plain and its rows are exactly `file_names` in that order (two threads, half
    the rows each); otherwise this returns None, and `read_landmarks` reads the file (and
    names any problem).
    """
    from concurrent.futures import ThreadPoolExecutor

    from ensemble.io import native

    path = Path(path)
    n_points = read_landmarks_header(path, prefix)
    lib = native.library()
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    rows, k = indices.shape
    if lib is None or rows == 0 or rows != len(file_names):
        return None
    buffer = native.plain_bytes(path)
    if buffer is None:
        return None
    reference = native.Names(*native.names_from_strings(list(file_names)))
    out = np.empty((rows, k, 2), dtype=np.float64)
    halves = [(0, rows // 2), (rows // 2, rows)] if rows > 1 else [(0, rows)]
    address = native.address

    def parse(half: tuple[int, int]) -> bool:
        first, stop = half
        start = native.body_start(lib, buffer)
        if first:
            start = lib.ens_offset_after_lines(address(buffer), start, len(buffer), first)
            if start < 0:
                return False
        scratch = np.empty(2 * n_points, dtype=np.float32)
        end = lib.ens_parse_landmarks_at(
            address(buffer),
            start,
            len(buffer),
            2 * n_points,
            stop - first,
            address(indices) + 4 * first * k,
            k,
            address(out) + 8 * first * k * 2,
            address(scratch),
            address(reference.data),
            address(reference.offsets),
            first,
            MAX_COORDINATE,
        )
        return end >= 0 and (stop < rows or end == len(buffer))

    with ThreadPoolExecutor(len(halves)) as pool:
        if not all(pool.map(parse, halves)):
            return None
    return out


class _NeedsSlowPath(Exception):
    """The fast reader met something it cannot describe precisely."""


def _fill_landmarks_fast(
    path: Path, header: list[str], points: np.ndarray, allow_missing: bool
) -> np.ndarray:
    import pandas as pd

    types = {column: np.float32 for column in header[1:]}
    types[FILE_COLUMN] = str
    names, row = [], 0
    try:
        with np.errstate(over="ignore"):  # a value too big for float32: the slow path says so
            for chunk in pd.read_csv(
                path,
                sep="\t",
                dtype=types,
                chunksize=_FAST_CHUNK_ROWS,
                engine="c",
                keep_default_na=False,
                na_values=[""],
                skip_blank_lines=False,
                quoting=3,
            ):
                count = len(chunk)
                if row + count > len(points):
                    raise _NeedsSlowPath
                points[row : row + count] = chunk.iloc[:, 1:].to_numpy().reshape(count, -1, 2)
                names.append(chunk[FILE_COLUMN].to_numpy(dtype=object))
                row += count
    except (ValueError, TypeError, pd.errors.ParserError) as error:
        raise _NeedsSlowPath from error
    filled = points[:row]
    if row != len(points) or not _landmark_values_ok(filled, allow_missing):
        raise _NeedsSlowPath
    all_names = np.concatenate(names) if names else np.array([], dtype=object)
    blank = pd.isna(all_names) | (all_names == "")
    if blank.any() or len(set(all_names.tolist())) != len(all_names):
        raise _NeedsSlowPath
    return all_names


def _landmark_values_ok(values: np.ndarray, allow_missing: bool) -> bool:
    """Every value within +-MAX_COORDINATE (NaN fails unless `allow_missing`); no temporaries."""
    if values.size == 0:
        return True
    low, high = (np.fmin, np.fmax) if allow_missing else (np.minimum, np.maximum)
    return bool(low.reduce(values, axis=None) >= -MAX_COORDINATE) and bool(
        high.reduce(values, axis=None) <= MAX_COORDINATE
    )


def _fill_landmarks_checked(
    path: Path, header: list[str], points: np.ndarray, allow_missing: bool
) -> np.ndarray:
    import pandas as pd

    names: list[str] = []
    seen: dict[str, int] = {}
    row = 0
    n_points = points.shape[1]
    try:
        for chunk in pandas_reader(path, "\t", _CHUNK_ROWS):
            first_line = row + 2
            check_file_names(path, chunk[FILE_COLUMN], first_line, seen)
            values = _numeric_block(path, chunk, header[1:], first_line, allow_missing)
            points[row : row + len(chunk)] = values.reshape(len(chunk), n_points, 2)
            names.extend(chunk[FILE_COLUMN].tolist())
            row += len(chunk)
    except pd.errors.ParserError as error:
        raise parser_error(path, error) from None
    except UnicodeDecodeError as error:
        check_utf8(path)
        raise InputError(path, f"not UTF-8 text ({error})") from None
    return np.asarray(names, dtype=object)


class LandmarksWriter:
    """Stream landmark rows to a TSV; the file appears atomically when the writer closes."""

    def __init__(self, path: str | Path, n_points: int, integer: bool = False) -> None:
        self._context = atomic_open(path, "w", encoding="utf-8", newline="")
        self._handle = self._context.__enter__()
        self._integer = integer
        self._n_points = n_points
        self._handle.write("\t".join([FILE_COLUMN, *point_columns(n_points)]) + "\n")

    def write(self, file_names: Sequence[str], points: np.ndarray) -> None:
        """Append rows: `points` has shape (len(file_names), N, 2)."""
        import pandas as pd

        points = np.asarray(points, dtype=np.float64)
        if points.shape != (len(file_names), self._n_points, 2):
            raise ValueError(f"points shape {points.shape} does not fit {self._n_points} points")
        if not np.isfinite(points).all():
            raise ValueError("refusing to write non-finite landmark coordinates")
        flat = points.reshape(len(file_names), -1)
        if self._integer:
            flat = np.rint(flat).astype(np.int64)
        frame = pd.DataFrame(flat)
        frame.insert(0, FILE_COLUMN, list(file_names))
        frame.to_csv(self._handle, sep="\t", header=False, index=False)

    def close(self, error: BaseException | None = None) -> None:
        """Finish the file (or discard it when `error` is given)."""
        if error is None:
            self._context.__exit__(None, None, None)
        else:
            self._context.__exit__(type(error), error, error.__traceback__)

    def __enter__(self) -> LandmarksWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)


def write_landmarks(
    path: str | Path, file_names: Sequence[str], points: np.ndarray, integer: bool = False
) -> None:
    """Write a landmarks TSV atomically (integers like the real data when `integer`)."""
    points = np.asarray(points)
    with LandmarksWriter(path, points.shape[1], integer=integer) as writer:
        for start in range(0, len(file_names), _CHUNK_ROWS):
            stop = start + _CHUNK_ROWS
            writer.write(list(file_names[start:stop]), points[start:stop])
