"""The train landmarks TSV (`file_name`, `Point_M0_X`, `Point_M0_Y`, ...): reader and writer.

N, the number of points, comes from the header. pyarrow reads a good file in one streaming
pass; a file it rejects is read again line by line to name the line and the problem (the
checks and messages every reader shares are in `ensemble.io.checks`). The requested points of
a large truth file, for `ens score`, are in `ensemble.io.landmark_picks`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ensemble.errors import InputError
from ensemble.io.arrow_arrays import float_array, int_array, string_array, to_strings
from ensemble.io.atomic import atomic_open
from ensemble.io.checks import (
    FILE_COLUMN,
    MAX_COORDINATE,
    check_name,
    check_names,
    count_data_lines,
    data_rows,
    number_problem,
    point_columns,
    quoted,
    read_point_header,
)

if TYPE_CHECKING:
    import pyarrow as pa

_BLOCK_BYTES = 1 << 22  # text parsed at a time: 4 MiB, about 540 full-size rows
_WRITE_ROWS = 4096


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


@dataclass(frozen=True)
class LandmarkBlock:
    """Consecutive rows of a landmarks TSV: the first row's index (0-based, line `start + 2`),
    file names and float32 points of shape (k, N, 2)."""

    start: int
    file_names: np.ndarray
    points: np.ndarray

    def __len__(self) -> int:
        return len(self.file_names)


class _Rejected(Exception):
    """The fast pass met something the explaining pass must name."""


def read_landmarks_header(path: str | Path, prefix: str = "Point_M") -> int:
    """Check a landmarks TSV's header (as `read_landmarks` does) and return its N points."""
    return (len(read_point_header(path, "\t", prefix)) - 1) // 2


def read_landmarks(
    path: str | Path, allow_missing: bool = False, prefix: str = "Point_M"
) -> Landmarks:
    """Read a landmarks TSV (`file_name`, `Point_M0_X`, ...); N comes from the header.

    The blocks of `landmark_blocks` are copied into one preallocated float32 array, so memory
    stays near the data size (4 bytes a value). With `allow_missing`, empty cells become NaN
    (Kaggle Facial Keypoints); otherwise they are errors.
    """
    path = Path(path)
    header = read_point_header(path, "\t", prefix)
    capacity = count_data_lines(path)
    if capacity == 0:
        raise InputError(path, "no data rows after the header", 2)
    points = np.empty((capacity, (len(header) - 1) // 2, 2), dtype=np.float32)
    names = []
    for block in landmark_blocks(path, allow_missing, prefix):
        if block.start + len(block) > capacity:
            raise InputError(path, "the file changed while it was read")
        points[block.start : block.start + len(block)] = block.points
        names.append(block.file_names)
    rows = sum(map(len, names))
    return Landmarks(np.concatenate(names), points[:rows])


def read_landmark_names(path: str | Path, allow_missing: bool = False) -> np.ndarray:
    """The file names of a landmarks TSV, in row order, the file checked as `read_landmarks`
    checks it (without holding its points)."""
    return np.concatenate([block.file_names for block in landmark_blocks(path, allow_missing)])


def landmark_blocks(
    path: str | Path,
    allow_missing: bool = False,
    prefix: str = "Point_M",
    block_bytes: int | None = None,
) -> Iterator[LandmarkBlock]:
    """Stream a landmarks TSV as consecutive blocks of rows with float32 points (k, N, 2).

    pyarrow parses about `block_bytes` (default 4 MiB) of text at a time, each value as a
    double, then cast. Every check of `read_landmarks` is made: a file whose last line has no
    line end (cut short) is refused first, a block with a problem is not yielded, and file
    names are checked unique after the last block, so a file is good only when the iteration
    ends without an error. A problem is named (line and column) by a line-by-line pass.
    """
    import pyarrow as pa

    path = Path(path)
    header = read_point_header(path, "\t", prefix)
    _check_last_line_end(path)
    names: list = []
    row = 0
    try:
        for batch in _batches(path, header, block_bytes or _BLOCK_BYTES):
            values = _values(batch)
            if not _values_ok(values, allow_missing):
                raise _Rejected
            names.append(batch.column(0))
            points = values.astype(np.float32).reshape(batch.num_rows, -1, 2)
            yield LandmarkBlock(row, to_strings(batch.column(0)), points)
            row += batch.num_rows
        if row == 0:
            raise InputError(path, "no data rows after the header", 2)
        check_names(path, pa.chunked_array(names, type=pa.string()))
    except (_Rejected, pa.ArrowInvalid) as error:
        _explain(path, header, allow_missing)
        raise InputError(path, f"cannot parse: {quoted(error)}") from None


def _values(table: pa.Table) -> np.ndarray:
    """The coordinate columns of a parsed block as one float64 (rows, 2N) array, null = NaN."""
    values = table.select(range(1, table.num_columns)).combine_chunks().to_batches()[0]
    return np.asarray(values.to_tensor(null_to_nan=True))


def _batches(path: Path, header: list[str], block_bytes: int) -> Iterator[pa.Table]:
    """The body parsed by pyarrow, about `block_bytes` of whole lines at a time: names as
    text, values as float64, empty = null. The file is cut into blocks here (pyarrow's own
    streaming reader reads ahead of its consumer without bound); each is parsed on one thread
    as one chunk, so its values need no concatenation."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {column: pa.float64() for column in header[1:]}
    types[FILE_COLUMN] = pa.string()
    parse = pacsv.ParseOptions(delimiter="\t", quote_char=False, ignore_empty_lines=False)
    convert = pacsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=False)

    def table(text: memoryview) -> pa.Table:
        read = pacsv.ReadOptions(column_names=header, block_size=len(text) + 1, use_threads=False)
        return pacsv.read_csv(pa.py_buffer(text), read, parse, convert)

    with open(path, "rb") as handle:
        handle.readline()  # the header
        rest = b""
        while data := handle.read(block_bytes):
            block = rest + data
            end = block.rfind(b"\n") + 1
            rest = block[end:]
            if end:
                yield table(memoryview(block)[:end])
        if rest:
            yield table(memoryview(rest))


def _check_last_line_end(path: Path) -> None:
    """Reject a file whose last line has no line end: it was cut short (a download that
    stopped), maybe inside a number, where every value still parses."""
    with open(path, "rb") as handle:
        handle.seek(-1, 2)
        if handle.read(1) == b"\n":
            return
    rows = count_data_lines(path)
    if rows == 0:
        raise InputError(path, "no data rows after the header", 2)
    raise InputError(path, "the last line has no line end: the file looks truncated", rows + 1)


def _values_ok(values: np.ndarray, allow_missing: bool) -> bool:
    """Every value within +-MAX_COORDINATE (NaN fails unless `allow_missing`)."""
    if values.size == 0:
        return True
    low, high = (np.fmin, np.fmax) if allow_missing else (np.minimum, np.maximum)
    return bool(low.reduce(values, axis=None) >= -MAX_COORDINATE) and bool(
        high.reduce(values, axis=None) <= MAX_COORDINATE
    )


def _explain(path: Path, header: list[str], allow_missing: bool) -> None:
    """Read the file line by line and raise `InputError` at its first problem, if any."""
    seen: dict[str, int] = {}
    width = len(header)
    for line, fields in data_rows(path, "\t"):
        check_name(path, fields[0] if fields else "", line, seen)
        if len(fields) > width or (allow_missing and len(fields) < width):
            raise InputError(path, f"expected {width} columns, found {len(fields)}", line)
        cells = fields[1:] + [""] * (width - len(fields))
        for column, field in zip(header[1:], cells, strict=True):
            if not field:
                if allow_missing:
                    continue
                raise InputError(
                    path,
                    f"missing value in column '{column}' (empty cell or too few columns)",
                    line,
                )
            problem = number_problem(field, column)
            if problem:
                raise InputError(path, problem, line)


class LandmarksWriter:
    """Stream landmark rows to a TSV; the file appears atomically when the writer closes.

    Values are written as pyarrow writes doubles (the shortest text that reads back the same
    number), or as integers (`integer`, like the real data). With `allow_missing`, NaN is
    written as an empty cell (Kaggle Facial Keypoints); otherwise it is refused.
    """

    def __init__(
        self, path: str | Path, n_points: int, integer: bool = False, allow_missing: bool = False
    ) -> None:
        self._context = atomic_open(path, "wb")
        self._handle = self._context.__enter__()
        self._integer = integer
        self._allow_missing = allow_missing
        self._header = [FILE_COLUMN, *point_columns(n_points)]
        try:
            self._handle.write(("\t".join(self._header) + "\n").encode("utf-8"))
        except BaseException as error:  # a full disk: the temp file goes, the error names `path`
            self.close(error)
            raise

    def write(self, file_names: Sequence[str], points: np.ndarray) -> None:
        """Append rows: `points` has shape (len(file_names), N, 2)."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        points = np.asarray(points, dtype=np.float64)
        n_points = (len(self._header) - 1) // 2
        if points.shape != (len(file_names), n_points, 2):
            raise ValueError(f"points shape {points.shape} does not fit {n_points} points")
        finite = np.isfinite(points) | (self._allow_missing & np.isnan(points))
        if not finite.all():
            raise ValueError("refusing to write non-finite landmark coordinates")
        flat = points.reshape(len(file_names), 2 * n_points)
        if self._integer:
            flat = np.rint(flat)
        make = int_array if self._integer else float_array  # NaN: null, an empty cell
        columns = [string_array(file_names)]
        columns += [make(flat[:, j]) for j in range(flat.shape[1])]
        options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
        pacsv.write_csv(pa.table(columns, names=self._header), self._handle, options)

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
    path: str | Path,
    file_names: Sequence[str],
    points: np.ndarray,
    integer: bool = False,
    allow_missing: bool = False,
) -> None:
    """Write a landmarks TSV atomically (integers like the real data when `integer`).

    With `allow_missing`, NaN points are written as empty cells; read such a file back with
    `read_landmarks(path, allow_missing=True)`.
    """
    points = np.asarray(points)
    with LandmarksWriter(path, points.shape[1], integer, allow_missing) as writer:
        for start in range(0, len(file_names), _WRITE_ROWS):
            stop = start + _WRITE_ROWS
            writer.write(list(file_names[start:stop]), points[start:stop])
