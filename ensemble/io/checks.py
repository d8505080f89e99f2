"""What every competition-table reader shares: column names, the header, UTF-8 and value checks.

Every reader of the competition formats (`ensemble.io.landmarks`, `ensemble.io.test_points`,
`ensemble.io.submission`) validates its input and raises `InputError` naming the file, the
line (1-based, the header is line 1) and the problem: pyarrow reads a good file in one pass,
and a file it rejects is read again line by line (`data_rows`) to say where and why. Files are
UTF-8 text; a UTF-8 byte-order mark (as Excel writes) is skipped. Coordinates must be finite
with magnitude at most `MAX_COORDINATE`. Every writer is atomic.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ensemble.errors import InputError
from ensemble.io.file_kind import require_file

if TYPE_CHECKING:
    import pyarrow as pa

FILE_COLUMN = "file_name"
MAX_COORDINATE = 1e6  # pixels: a larger magnitude is no plausible landmark coordinate
_BOM = "\ufeff"
_QUOTE_LIMIT = 60


def point_columns(n_points: int, prefix: str = "Point_M") -> list[str]:
    """Header columns for `n_points` (x, y) pairs: Point_M0_X, Point_M0_Y, ..."""
    return [f"{prefix}{i}_{axis}" for i in range(n_points) for axis in ("X", "Y")]


def row_index(file_names: Iterable[str]) -> dict[str, int]:
    """{file name: row} of names in row order: where each image is (a repeat: its last row)."""
    return {name: row for row, name in enumerate(file_names)}


def quoted(value: object) -> str:
    """`value` in quotes for a message; a long one is cut, with `...` and its length."""
    text = str(value)
    if len(text) <= _QUOTE_LIMIT:
        return f"'{text}'"
    return f"'{text[:_QUOTE_LIMIT]}...' ({len(text):,} characters)"


def literal(value: object) -> str:
    """`value` for a message as a config file writes it (a string in quotes, else its repr); a
    long one is cut as `quoted` cuts it."""
    return quoted(value) if isinstance(value, str) else shortened(repr(value))


def shortened(text: str) -> str:
    """`text` for a message, cut as `quoted` cuts it (without the quotes)."""
    if len(text) <= _QUOTE_LIMIT:
        return text
    return f"{text[:_QUOTE_LIMIT]}... ({len(text):,} characters)"


def value_problem(value: float, column: str) -> str:
    """Why a coordinate is rejected: it is not finite, or too large for a pixel coordinate."""
    if not np.isfinite(value):
        return f"non-finite value in column '{column}' ({value})"
    return (
        f"value {value:g} in column '{column}' is not a plausible pixel coordinate "
        f"(magnitude above {MAX_COORDINATE:g})"
    )


def _not_utf8(raw: bytes, error: UnicodeDecodeError, line_start: int = 0) -> str:
    return (
        f"not UTF-8 text (byte 0x{raw[error.start]:02x} at byte {error.start - line_start + 1} "
        "of the line); save the file as UTF-8"
    )


def decode_utf8(path: Path, raw: bytes) -> str:
    """`raw`, the bytes of the file `path`, as text; InputError naming the line and byte of the
    first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = raw.rfind(b"\n", 0, error.start) + 1
        line = raw.count(b"\n", 0, error.start) + 1
        raise InputError(path, _not_utf8(raw, error, line_start), line) from None


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
    require_file(path)
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


def read_header(path: Path, sep: str) -> list[str]:
    """The header's fields split on `sep`; InputError on an empty file."""
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
    header = read_header(path, sep)
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


def check_name(path: Path, name: str, line: int, seen: dict[str, int]) -> None:
    """Reject an empty or repeated file name; `seen` maps each name to its line so far."""
    if not name.strip():
        raise InputError(path, "empty file name", line)
    previous = seen.get(name)
    if previous is not None:
        raise InputError(
            path, f"duplicate file name {quoted(name)} (first seen on line {previous})", line
        )
    seen[name] = line


def check_names(path: Path, names: pa.Array | pa.ChunkedArray, first_line: int = 2) -> None:
    """Reject empty and duplicate file names of a whole column (the line of the first bad one)."""
    import pyarrow.compute as pc

    from ensemble.io.arrow_arrays import to_numbers

    blank = np.flatnonzero(to_numbers(pc.utf8_length(pc.utf8_trim_whitespace(names))) == 0)
    if len(blank):
        raise InputError(path, "empty file name", int(blank[0]) + first_line)
    if pc.count_distinct(names).as_py() < len(names):
        seen: dict[str, int] = {}
        for line, name in enumerate(names.to_pylist(), start=first_line):
            check_name(path, name, line, seen)


_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.I)


def number_problem(field: str, column: str) -> str | None:
    """Why a text cell is no coordinate (as pyarrow parses numbers), or None when it is one."""
    if not _NUMBER.fullmatch(field):
        return f"non-numeric value {quoted(field)} in column '{column}'"
    value = float(field)
    return None if abs(value) <= MAX_COORDINATE else value_problem(value, column)


def data_rows(path: Path, sep: str, csv_quotes: bool = False) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of every line after the header: the reader of the explaining passes.

    The file is checked to be UTF-8 first. `csv_quotes`: fields in double quotes are read
    without them (CSV), else a quote is an ordinary character. A blank line gives [].
    """
    check_utf8(path)
    quoting = csv.QUOTE_MINIMAL if csv_quotes else csv.QUOTE_NONE
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = csv.reader(handle, delimiter=sep, quoting=quoting, strict=csv_quotes)
        next(rows, None)
        line = rows.line_num + 1
        try:
            for fields in rows:
                yield line, fields
                line = rows.line_num + 1
        except csv.Error as error:
            raise InputError(path, f"malformed quoting ({error})", line) from None


def parser_error(
    path: Path, error: Exception, sep: str = "\t", csv_quotes: bool = False
) -> InputError:
    """The InputError for a file that a parser rejected, located in the file itself.

    Names the first row with more fields than the header (CSV records when `csv_quotes`, else
    plain `sep`-separated lines) with both counts; a file without one gets the parser's own
    message. Nothing depends on the wording of that message.
    """
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
