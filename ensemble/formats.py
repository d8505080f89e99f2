"""Competition file formats: train landmarks (TSV), test_points.csv (TSV) and submissions (CSV).

Every reader validates its input and raises `InputError` naming the file, the line (1-based,
the header is line 1) and the problem. Files are UTF-8 text; a UTF-8 byte-order mark (as Excel
writes) is skipped. Coordinates must be finite with magnitude at most `MAX_COORDINATE`. Every
writer is atomic.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ensemble.atomic import atomic_open, atomic_path
from ensemble.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported by the functions that use it: the compiled readers of the plain files
# (ensemble.blend.native) do not need it, and importing it takes 0.2 s.

FILE_COLUMN = "file_name"
POINTS_COLUMN = "point_index_list"
_CHUNK_ROWS = 4096
_FAST_CHUNK_ROWS = 8192
MAX_COORDINATE = 1e6  # pixels: a larger magnitude is no plausible landmark coordinate
_BOM = "\ufeff"
_QUOTE_LIMIT = 60


def point_columns(n_points: int, prefix: str = "Point_M") -> list[str]:
    """Header columns for `n_points` (x, y) pairs: Point_M0_X, Point_M0_Y, ..."""
    return [f"{prefix}{i}_{axis}" for i in range(n_points) for axis in ("X", "Y")]


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


@dataclass(frozen=True)
class Submission:
    """A submission: file names and float64 values of shape (n, K, 2) (NaN = empty cell)."""

    file_names: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.file_names)


def row_index(file_names: Iterable[str]) -> dict[str, int]:
    """{file name: row} of names in row order: where each image is (a repeat: its last row)."""
    return {name: row for row, name in enumerate(file_names)}


# ----------------------------------------------------------------------------------------------
# shared checks


def quoted(value: object) -> str:
    """`value` in quotes for a message; a long one is cut, with `...` and its length."""
    text = str(value)
    if len(text) <= _QUOTE_LIMIT:
        return f"'{text}'"
    return f"'{text[:_QUOTE_LIMIT]}...' ({len(text):,} characters)"


def value_problem(value: float, column: str) -> str:
    """Why a coordinate is rejected: it is not finite, or too large for a pixel coordinate."""
    if not np.isfinite(value):
        return f"non-finite value in column '{column}' ({value})"
    return (
        f"value {value:g} in column '{column}' is not a plausible pixel coordinate "
        f"(magnitude above {MAX_COORDINATE:g})"
    )


def _not_utf8(raw: bytes, error: UnicodeDecodeError) -> str:
    return (
        f"not UTF-8 text (byte 0x{raw[error.start]:02x} at byte {error.start + 1} of the "
        "line); save the file as UTF-8"
    )


def check_utf8(path: Path) -> None:
    """Raise `InputError` at the first line of `path` that is not UTF-8 text, if any."""
    with open(path, "rb") as handle:
        for line, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(path, _not_utf8(raw, error), line) from None


def read_first_line(path: Path) -> str:
    """The header line of a text file, without line end or UTF-8 byte-order mark."""
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        with open(path, "rb") as handle:
            first = handle.readline()
    except OSError as error:
        raise InputError(path, f"cannot read the file ({error.strerror or error})") from None
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(path, _not_utf8(first, error), 1) from None
    return text.removeprefix(_BOM).rstrip("\r\n")


def _read_header(path: Path, sep: str) -> list[str]:
    first = read_first_line(path)
    if not first.strip():
        raise InputError(path, "file is empty (expected a header line)", line=1)
    return first.split(sep)


def read_point_header(path: str | Path, sep: str = "\t", prefix: str = "Point_M") -> list[str]:
    """The checked header of a landmarks file (`sep` tab) or a submission (`sep` comma).

    The one header parser: `file_name`, then `<prefix>0_X`, `<prefix>0_Y`, ... for N points
    (N = (len(header) - 1) // 2). A comma-separated file is CSV: a field in double quotes is
    read without them. Raises `InputError` on line 1 naming the first wrong column.
    """
    path = Path(path)
    header = _read_header(path, sep)
    if sep == ",":
        header = [_unquote(field.strip()) for field in header]
    if header[0] != FILE_COLUMN:
        raise InputError(
            path, f"first column must be '{FILE_COLUMN}', found {quoted(header[0])}", 1
        )
    n_values = len(header) - 1
    if n_values == 0 or n_values % 2:
        raise InputError(
            path, f"header has {n_values} coordinate columns; expected an even, non-zero count", 1
        )
    expected = point_columns(n_values // 2, prefix)
    for position, (got, want) in enumerate(zip(header[1:], expected, strict=True), start=2):
        if got != want:
            raise InputError(
                path, f"header column {position} is {quoted(got)}, expected '{want}'", 1
            )
    return header


def _unquote(field: str) -> str:
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1]
    return field


def _check_file_names(path: Path, names: pd.Series, first_line: int, seen: dict) -> None:
    """Reject empty and duplicate file names; `seen` maps name -> line across chunks."""
    blank = names.isna() | (names.astype(str).str.strip() == "")
    if blank.any():
        row = int(np.flatnonzero(blank.to_numpy())[0])
        raise InputError(path, "empty file name", first_line + row)
    for offset, name in enumerate(names.tolist()):
        previous = seen.get(name)
        if previous is not None:
            raise InputError(
                path,
                f"duplicate file name {quoted(name)} (first seen on line {previous})",
                first_line + offset,
            )
        seen[name] = first_line + offset


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


def _reader(path: Path, sep: str, chunksize: int | None):
    """A pandas reader that keeps every line (blank lines are errors, not skipped)."""
    import pandas as pd

    return pd.read_csv(
        path,
        sep=sep,
        header=0,
        dtype={FILE_COLUMN: str},
        skip_blank_lines=False,
        keep_default_na=False,
        na_values=[""],
        chunksize=chunksize,
        engine="c",
        on_bad_lines="error",
        quoting=3,  # csv.QUOTE_NONE: the formats never quote
    )


def parser_error(
    path: Path, error: Exception, sep: str = "\t", csv_quotes: bool = False
) -> InputError:
    """The InputError for a file that pandas' parser rejected, located in the file itself.

    pandas' C parser stops at the first row with more fields than the header. This reads the
    rows (CSV records when `csv_quotes`, else plain `sep`-separated lines) and names the first
    such row with both counts; a file without one (an unclosed quote, say) gets the parser's
    own message. Nothing depends on the wording of that message.
    """
    import csv

    quoting = csv.QUOTE_MINIMAL if csv_quotes else csv.QUOTE_NONE
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            rows = csv.reader(handle, delimiter=sep, quoting=quoting)
            expected = len(next(rows, []))
            for fields in rows:
                if len(fields) > expected:
                    return InputError(
                        path, f"expected {expected} columns, found {len(fields)}", rows.line_num
                    )
    except (OSError, csv.Error):
        pass
    return InputError(path, f"cannot parse: {quoted(error)}")


def count_data_lines(path: Path) -> int:
    """Number of lines after the header (a missing final newline is fine)."""
    count = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            count += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        count += 1
    return max(count - 1, 0)


# ----------------------------------------------------------------------------------------------
# train landmarks


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

    from ensemble.blend import native

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

    from ensemble.blend import native

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
        for chunk in _reader(path, "\t", _CHUNK_ROWS):
            first_line = row + 2
            _check_file_names(path, chunk[FILE_COLUMN], first_line, seen)
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


# ----------------------------------------------------------------------------------------------
# test_points.csv

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
    `ensemble.blend.native`; anything else by pandas, the list literals vectorised with pyarrow
    (no `eval`). Indices must be distinct within a row and, when `n_points` is given, lie in
    [0, n_points). Rows must all have the same number of indices unless `ragged`, in which
    case short rows are padded with -1.
    """
    path = Path(path)
    header = _read_header(path, "\t")
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
        frame = _reader(path, "\t", None)
        frame = frame.astype({POINTS_COLUMN: str}) if len(frame) else frame
    except pd.errors.ParserError as error:
        raise parser_error(path, error) from None
    except UnicodeDecodeError as error:
        check_utf8(path)
        raise InputError(path, f"not UTF-8 text ({error})") from None
    if len(frame) == 0:
        raise InputError(path, "no data rows after the header", 2)
    _check_file_names(path, frame[FILE_COLUMN], 2, {})
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
    from ensemble.blend import native

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


# ----------------------------------------------------------------------------------------------
# submissions


def read_submission(path: str | Path, allow_missing: bool = False) -> Submission:
    """Read a submission CSV (`file_name,Point_M0_X,...,Point_M{K-1}_Y`).

    The one submission reader, shared with `ens blend` (`ensemble.blend.io`): the same files
    are accepted, with the same messages, by every command. Empty cells are ragged padding
    (NaN), allowed only with `allow_missing`.
    """
    from ensemble.blend.io import SubmissionSet  # imported here: it imports this module

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
