"""Fast, validating, row-aligned reading of many submissions, and a fast submission writer.

Submissions are parsed into column-major float64 arrays (values, rows): plain files (the usual
case) by the compiled reader of `fast_parse` (two threads, half the rows each, for a large
file), anything else by pyarrow, two files at a time. A mean blend of plain files in one row
order is summed in one compiled pass over each file (`SubmissionSet.weighted_sum`). pyarrow
and pandas are imported only when a file needs them. Every file is checked: it is UTF-8 text
(a leading byte-order mark is skipped); the header is a submission header and equals the
first file's; the file names are non-empty, unique, free of commas, quotes and line ends once
unquoted (CSV quotes are read), and the same set as the first file's (rows are reordered to
the first file's order when they differ); every value is an empty cell or a plausible pixel
coordinate (finite, magnitude at most `MAX_COORDINATE`); every row has the header's column
count. Problems raise `InputError` naming the file and the line (header = line 1).

Empty cells (NaN) are the padding of ragged submissions (Kaggle Facial Keypoints: an image
asks for fewer points than the widest row): in every row they must be a run of whole (X, Y)
pairs at the end, and every file must have the same empty cells as the first one, after
aligning the rows. Blends keep them empty.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ensemble.errors import InputError
from ensemble.io import native
from ensemble.io.atomic import atomic_path
from ensemble.io.checks import (
    FILE_COLUMN,
    MAX_COORDINATE,
    check_utf8,
    quoted,
    read_point_header,
    value_problem,
)
from ensemble.io.fast_format import MAX_DECIMALS, as_names, format_plain
from ensemble.io.fast_parse import (
    PlainSubmission,
    parse_plain,
    parse_rows,
    row_halves,
    row_start,
)
from ensemble.io.native import Names
from ensemble.io.submission import format_values

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow and pandas are imported only by the general path (files the compiled reader leaves
# to them, rows in another order, errors): 0.25 s of start-up a plain blend does not pay.

_BLOCK_SIZE = 1 << 20  # pyarrow parses 1 MiB blocks fastest here (cache-sized)
_WORKERS = 2
_WRITE_ROWS = 2048  # rows a block of the compiled writer (about 1 MB of text)


@dataclass(frozen=True)
class SubmissionValues:
    """One submission's values as (values, rows) float64, rows in the reference order.

    `empty` is None when the file has no empty cell, else the (values, rows) mask of its
    empty cells (NaN in `values`).
    """

    path: Path
    values: np.ndarray
    empty: np.ndarray | None = None


def _read_table(path: Path, header: list[str]) -> pa.Table:
    """Parse the body with pyarrow; any parse problem is located precisely by `diagnose`."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read_options = pacsv.ReadOptions(
        column_names=header, skip_rows=1, use_threads=False, block_size=_BLOCK_SIZE
    )
    parse_options = pacsv.ParseOptions(quote_char='"', double_quote=True, ignore_empty_lines=False)
    types = {name: pa.float64() for name in header[1:]}
    types[FILE_COLUMN] = pa.string()
    convert_options = pacsv.ConvertOptions(
        column_types=types, null_values=[""], strings_can_be_null=False
    )
    try:
        table = pacsv.read_csv(
            path,
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        diagnose(path, header)
        raise InputError(path, f"cannot parse: {quoted(error)}") from None
    if table.num_rows == 0:
        raise InputError(path, "no data rows after the header", 2)
    if any(table.column(j).null_count for j in range(1, table.num_columns)):
        _reject_blank_lines(path, table)
    _reject_unwritable_names(path, table.column(0))
    with open(path, "rb") as handle:
        handle.seek(-1, 2)
        if handle.read(1) != b"\n":
            raise InputError(
                path,
                "the last line has no line end: the file looks truncated",
                table.num_rows + 1,
            )
    return table


def _reject_blank_lines(path: Path, table: pa.Table) -> None:
    """A blank line parses as an empty name with empty values: reject it as a blank line."""
    import pyarrow.compute as pc

    blank = pc.equal(table.column(0), "")
    for j in range(1, table.num_columns):
        blank = pc.and_(blank, table.column(j).is_null())
    rows = np.flatnonzero(blank.to_numpy(zero_copy_only=False))
    if len(rows):
        raise InputError(path, "blank line", int(rows[0]) + 2)


def _reject_unwritable_names(path: Path, names: pa.ChunkedArray) -> None:
    """A name with a comma, a quote or a line end (read from quotes) cannot be written back."""
    import pyarrow.compute as pc

    bad = pc.match_substring_regex(names, '[,"\r\n]')
    if pc.any(bad).as_py():
        row = pc.index(bad, True).as_py()
        raise InputError(
            path,
            f"file name {quoted(names[row].as_py())} holds a comma, a quote or a line end",
            row + 2,
        )


def _fields(path: Path, line: str, line_number: int) -> list[str]:
    """The CSV fields of one line (quotes read); [""] for a blank line."""
    import csv

    try:
        return next(csv.reader([line.rstrip("\r\n")], strict=True), [""]) or [""]
    except csv.Error as error:
        raise InputError(path, f"malformed quoting ({error})", line_number) from None


def diagnose(path: str | Path, header: list[str]) -> None:
    """Scan a submission line by line and raise `InputError` at the first malformed line.

    The slow, exact path behind the fast reader: it runs only when pyarrow rejected the file.
    """
    path = Path(path)
    check_utf8(path)
    with open(path, encoding="utf-8", newline="") as handle:
        handle.readline()
        for line_number, line in enumerate(handle, start=2):
            fields = _fields(path, line, line_number)
            if fields == [""]:
                raise InputError(path, "blank line", line_number)
            if len(fields) != len(header):
                raise InputError(
                    path,
                    f"expected {len(header)} columns, found {len(fields)} (truncated or "
                    "malformed row)",
                    line_number,
                )
            for column, field in zip(header[1:], fields[1:], strict=True):
                if field:  # empty cells (ragged padding) are checked after parsing
                    _check_number(path, field, column, line_number)


def _check_number(path: Path, field: str, column: str, line_number: int) -> None:
    if not field.strip():
        raise InputError(path, f"empty value in column '{column}'", line_number)
    try:
        number = float(field)
    except ValueError:
        raise InputError(
            path, f"non-numeric value {quoted(field)} in column '{column}'", line_number
        ) from None
    if not abs(number) <= MAX_COORDINATE:
        raise InputError(path, value_problem(number, column), line_number)


def read_aligned(path: str | Path, reference: np.ndarray, reference_label: str) -> np.ndarray:
    """One submission's values (values, rows) with rows in the order of `reference` names.

    Empty cells (ragged padding, see `check_ragged`) come back as NaN.
    """
    path = Path(path)
    header = read_point_header(path, ",")
    table = _read_table(path, header)
    names = table.column(0).to_numpy()
    order = align_order(path, names, reference, reference_label)
    values, empty = _values(path, table, order)
    if empty is not None:
        check_ragged(path, header, empty, order)
    return values


def _values(
    path: Path, table: pa.Table, order: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The value columns as (values, rows) float64 in `order` if given, and the empty cells.

    Every non-empty value must be finite; the mask of empty cells (NaN in the values) is None
    when there is none.
    """
    n_rows = table.num_rows if order is None else len(order)
    out = np.empty((table.num_columns - 1, n_rows), dtype=np.float64)
    empty = None
    for j in range(1, table.num_columns):
        column = table.column(j)
        numbers = column.to_numpy()
        out[j - 1] = numbers if order is None else numbers[order]
        if column.null_count:
            if empty is None:
                empty = np.zeros(out.shape, dtype=bool)
            nulls = column.is_null().to_numpy(zero_copy_only=False)
            empty[j - 1] = nulls if order is None else nulls[order]
    check_values(path, table.column_names, out, empty, order)
    return out, empty


def _first_cell(mask: np.ndarray) -> tuple[int, int]:
    """(value, row) of the first True cell of a (values, rows) mask: on the first such row."""
    row, value = np.argwhere(mask.T)[0]
    return int(value), int(row)


def _line(row: int, order: np.ndarray | None) -> int:
    """The file's line of row `row` of values taken in `order` of its rows (None: as read)."""
    return int(order[row] if order is not None else row) + 2


def check_values(
    path: Path,
    header: Sequence[str],
    values: np.ndarray,
    empty: np.ndarray | None = None,
    order: np.ndarray | None = None,
) -> None:
    """Every value (values, rows) but the empty cells is finite, magnitude <= MAX_COORDINATE.

    Rows are in `order` of the file's rows when given; the message names the file's line.
    """
    if values.min() >= -MAX_COORDINATE and values.max() <= MAX_COORDINATE:  # False on NaN
        return
    bad = ~((values >= -MAX_COORDINATE) & (values <= MAX_COORDINATE))
    if empty is not None:
        bad &= ~empty
    if bad.any():
        value, row = _first_cell(bad)
        raise InputError(
            path, value_problem(values[value, row], header[value + 1]), _line(row, order)
        )


def check_ragged(
    path: Path, header: list[str], empty: np.ndarray, order: np.ndarray | None = None
) -> None:
    """Empty cells (values, rows) must be whole (X, Y) pairs at the end of their rows."""
    x_empty, y_empty = empty[0::2], empty[1::2]
    split = x_empty != y_empty
    gap = x_empty[:-1] & ~x_empty[1:]  # an empty pair followed by a filled one
    for bad, problem in (
        (split, "only one of the pair is empty"),
        (gap, "a later pair of the row is filled"),
    ):
        if bad.any():
            pair, row = _first_cell(bad)
            column = 2 * pair + (0 if x_empty[pair, row] else 1)
            raise InputError(
                path,
                f"empty value in column '{header[column + 1]}' is not ragged padding "
                f"({problem}): only whole (X, Y) pairs at the end of a row may be empty",
                _line(row, order),
            )


def check_same_empty(
    path: Path,
    header: list[str],
    empty: np.ndarray | None,
    reference: np.ndarray | None,
    reference_path: Path,
    order: np.ndarray | None,
) -> None:
    """Every submission must have the same empty cells as the first one (rows aligned)."""
    if empty is None and reference is None:
        return
    if empty is None:
        differ = reference
    elif reference is None:
        differ = empty
    else:
        differ = empty != reference
        if not differ.any():
            return
    value, row = _first_cell(differ)
    here_empty = empty is not None and bool(empty[value, row])
    what = "empty value" if here_empty else "value"
    there = "a value" if here_empty else "an empty cell"
    raise InputError(
        path,
        f"{what} in column '{header[value + 1]}' where {reference_path} (line {row + 2}) has "
        f"{there}: all submissions must have the same empty cells (ragged rows)",
        _line(row, order),
    )


def _check_names(path: Path, names: pa.Array | np.ndarray) -> None:
    """Reject empty and duplicate file names."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow_names = names if isinstance(names, pa.Array) else pa.array(names, type=pa.string())
    blank = pc.equal(pc.utf8_trim_whitespace(arrow_names), "")
    if pc.any(blank).as_py():
        raise InputError(path, "empty file name", pc.index(blank, True).as_py() + 2)
    if pc.count_distinct(arrow_names).as_py() < len(arrow_names):
        index = pd.Index(arrow_names.to_numpy(zero_copy_only=False))
        repeated = int(np.flatnonzero(index.duplicated())[0])
        first = int(np.flatnonzero(index == index[repeated])[0])
        raise InputError(
            path,
            f"duplicate file name {quoted(index[repeated])} (first seen on line {first + 2})",
            repeated + 2,
        )


def align_order(
    path: Path, names: np.ndarray, reference: np.ndarray, reference_label: str
) -> np.ndarray:
    """Row indices that put `names` (of `path`) in `reference` order; the sets must match."""
    import pandas as pd

    _check_names(path, names)
    position = pd.Index(names).get_indexer(reference)
    missing = np.flatnonzero(position < 0)
    if len(missing):
        row = int(missing[0])
        raise InputError(
            path,
            f"file name {quoted(reference[row])} (line {row + 2} of {reference_label}) is missing; "
            f"{len(missing)} missing in all",
        )
    if len(names) > len(reference):
        extra = np.flatnonzero(pd.Index(reference).get_indexer(names) < 0)
        raise InputError(
            path,
            f"file name {quoted(names[extra[0]])} is not in {reference_label}",
            int(extra[0]) + 2,
        )
    return position


class SubmissionSet:
    """Many submissions sharing one header and one set of file names (first file's order).

    Empty cells (ragged padding) are allowed unless `allow_empty` is False.
    """

    def __init__(self, paths: Sequence[str | Path], allow_empty: bool = True) -> None:
        if not paths:
            raise ValueError("no submission to read")
        self.allow_empty = allow_empty
        self.paths = [Path(p) for p in paths]
        self.header = read_point_header(self.paths[0], ",")
        for path in self.paths[1:]:
            header = read_point_header(path, ",")
            if header != self.header:
                raise InputError(
                    path,
                    f"header has {len(header) - 1} value columns, {self.paths[0]} has "
                    f"{len(self.header) - 1}: all submissions must share one header",
                    1,
                )
        self._names: Names | None = None  # the first file's names, when it was read plain
        self._arrow: pa.Array | None = None  # ... as an arrow array (read by pyarrow, or made)
        self._file_names: np.ndarray | None = None
        self.empty: np.ndarray | None = None  # the first file's empty cells, once read

    @property
    def file_names(self) -> np.ndarray | None:
        """The first file's names (object array of str), once its values were yielded."""
        if self._file_names is None:
            if self._names is not None:
                self._file_names = self._names.to_numpy()
            elif self._arrow is not None:
                self._file_names = self._arrow.to_numpy(zero_copy_only=False)
        return self._file_names

    @property
    def file_names_arrow(self) -> pa.Array | None:
        """The first file's names as an arrow string array."""
        if self._arrow is None and self._names is not None:
            import pyarrow as pa

            self._arrow = pa.array(self._names.to_list(), type=pa.string())
        return self._arrow

    @property
    def names_for_writing(self) -> Names | pa.Array | None:
        """The first file's names in the form `write_values` writes fastest."""
        return self._names if self._names is not None else self._arrow

    def weighted_sum(self, weights: np.ndarray) -> np.ndarray | None:
        """Sum of weights[i] * file i's values, (values, rows), in one compiled pass per file.

        The common case of a mean blend: every file plain (see `fast_parse`) with its rows in
        the first file's order. Two threads take half the rows each, every file in input
        order, so each value is summed in the same order, to the same bits, as
        `weighted_mean` over `iter_values` (each product rounded, then added). None, with
        nothing set, when the C library is missing or a file is not plain or in another
        order: then `iter_values` reads what is not plain, aligns rows and names problems.
        """
        lib = native.library()
        if lib is None or len(weights) != len(self.paths):
            return None
        try:
            buffers = [native.plain_bytes(path) for path in self.paths]
        except OSError:
            return None
        if any(buffer is None for buffer in buffers):
            return None
        n_values = len(self.header) - 1
        rows = native.count_lines(lib, buffers[0], native.body_start(lib, buffers[0]))
        if rows == 0:
            return None
        total = np.empty((n_values, rows), dtype=np.float64)
        name_starts = np.empty(rows, dtype=np.int64)
        name_ends = np.empty(rows, dtype=np.int64)
        address = native.address

        def other_files(half: tuple[int, int], names: Names) -> bool:
            first_row, stop_row = half
            scratch = np.empty(native.ACCUMULATE_BLOCK * n_values, dtype=np.float64)
            for buffer, weight in zip(buffers[1:], weights[1:], strict=True):
                start = row_start(lib, buffer, first_row)
                if start < 0:
                    return False
                end = lib.ens_accumulate_submission(
                    address(buffer),
                    start,
                    len(buffer),
                    n_values,
                    stop_row - first_row,
                    address(total) + 8 * first_row,
                    rows,
                    float(weight),
                    address(names.data),
                    address(names.offsets),
                    first_row,
                    MAX_COORDINATE,
                    address(scratch),
                )
                if end < 0 or (stop_row == rows and end != len(buffer)):
                    return False
            return True

        halves = row_halves(rows, len(buffers[0]))
        with ThreadPoolExecutor(len(halves)) as pool:
            first = buffers[0]
            ok = parse_rows(
                lib, first, total, name_starts, name_ends, MAX_COORDINATE, pool, weights[0]
            )
            if not ok:
                return None
            names = native.gather_names(lib, first, name_starts, name_ends)
            if names.first_duplicate(lib) >= 0:
                return None
            if not all(pool.map(lambda half: other_files(half, names), halves)):
                return None
        self._names = names
        return total

    def _load(self, path: Path) -> PlainSubmission | pa.Table:
        """The compiled reader's result for a plain file, else pyarrow's table."""
        plain = parse_plain(path, len(self.header) - 1, MAX_COORDINATE)
        return plain if plain is not None else _read_table(path, self.header)

    def _align_loaded(self, path: Path, loaded: PlainSubmission | pa.Table) -> SubmissionValues:
        if isinstance(loaded, PlainSubmission):
            if loaded.ascii_names or loaded.names.is_utf8():
                return self._align_plain(path, loaded)
            loaded = _read_table(path, self.header)  # names not UTF-8: pyarrow says where
        table = loaded
        return self._align(
            path, table.column(0).combine_chunks(), lambda order: _values(path, table, order)
        )

    def _align_plain(self, path: Path, loaded: PlainSubmission) -> SubmissionValues:
        """A plain file's values in the first file's row order (no empty cells in it).

        Plain values are finite and within MAX_COORDINATE (the compiled reader checked).
        """
        names, values = loaded.names, loaded.values
        if self._names is None and self._arrow is None:  # the first file
            lib = native.library()
            if not loaded.ascii_names or lib is None or names.first_duplicate(lib) >= 0:
                _check_names(path, names.to_numpy())  # blank or repeated: the message
            self._names = names
            return SubmissionValues(path, values)
        order = None
        if self._names is None or not names.equals(self._names):
            order = align_order(path, names.to_numpy(), self.file_names, str(self.paths[0]))
            values = values[:, order]
        check_same_empty(path, self.header, None, self.empty, self.paths[0], order)
        return SubmissionValues(path, values)

    def _align(
        self,
        path: Path,
        names: pa.Array,
        values_in: Callable[[np.ndarray | None], tuple[np.ndarray, np.ndarray | None]],
    ) -> SubmissionValues:
        """Check the names and take the values (and empty cells) in the first file's row order.

        `values_in(order)` gives (values, empty) with rows taken in `order` (None: as read).
        """
        if self._names is None and self._arrow is None:  # the first file
            _check_names(path, names)
            self._arrow = names
            values, empty = values_in(None)
            if empty is not None:
                self._check_empty(path, empty)
            self.empty = empty
            return SubmissionValues(path, values, empty)
        order = None
        if not names.equals(self.file_names_arrow):
            numpy_names = names.to_numpy(zero_copy_only=False)
            order = align_order(path, numpy_names, self.file_names, str(self.paths[0]))
        values, empty = values_in(order)
        check_same_empty(path, self.header, empty, self.empty, self.paths[0], order)
        return SubmissionValues(path, values, empty)

    def _check_empty(self, path: Path, empty: np.ndarray) -> None:
        """The first file's empty cells must be ragged padding, and allowed at all."""
        if not self.allow_empty:
            value, row = _first_cell(empty)
            raise InputError(
                path, f"empty value in column '{self.header[value + 1]}'", _line(row, None)
            )
        check_ragged(path, self.header, empty)

    def iter_values(self) -> Iterator[SubmissionValues]:
        """Yield each submission's aligned values in order, parsing ahead on worker threads.

        `file_names` (the first file's order) is set once the first item is yielded.
        """
        with ThreadPoolExecutor(_WORKERS) as pool:
            pending = [pool.submit(self._load, path) for path in self.paths]
            try:
                for number, path in enumerate(self.paths):
                    loaded = pending[number].result()
                    pending[number] = None
                    item = self._align_loaded(path, loaded)
                    del loaded
                    yield item
            finally:
                for future in pending:
                    if future is not None:
                        future.cancel()


def write_values(
    path: str | Path,
    header: list[str],
    file_names: Names | pa.Array | Sequence[str],
    values: np.ndarray,
    decimals: int = 4,
) -> None:
    """Write a submission from (values, rows) floats, atomically; rounding is half-to-even.

    The compiled writer of `fast_format` formats blocks of rows on two threads while the
    blocks before them are written (small buffers, reused: no output-sized allocation);
    what it does not cover pyarrow writes, two halves on two threads, with the same bytes.
    The header is written unquoted. NaN values (ragged padding) are written as empty cells.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    n_rows = values.shape[1]
    if len(file_names) != n_rows or len(header) != values.shape[0] + 1:
        raise ValueError(f"values {values.shape} do not fit {len(file_names)} rows and the header")
    plain = as_names(file_names) if 0 <= decimals <= MAX_DECIMALS else None
    head = (",".join(header) + "\n").encode("utf-8")
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(head)
        if plain is not None and _write_plain(handle, plain, values, decimals):
            return
        handle.seek(len(head))
        handle.truncate()
        half = (n_rows + 1) // 2
        ranges = [(0, half), (half, n_rows)] if n_rows > 1 else [(0, n_rows)]
        names = _arrow_names(file_names)
        rounded = format_values(values, decimals)
        with ThreadPoolExecutor(_WORKERS) as pool:
            for part in pool.map(lambda rows: _arrow_lines(header, names, rounded, *rows), ranges):
                handle.write(part)


def _write_plain(handle, names: Names, values: np.ndarray, decimals: int) -> bool:
    """Write the rows by the compiled writer, blocks of rows formatted ahead on two threads.

    False (part of the rows written) as soon as one block is not plain.
    """
    n_rows = values.shape[1]
    blocks = [(start, min(start + _WRITE_ROWS, n_rows)) for start in range(0, n_rows, _WRITE_ROWS)]
    with ThreadPoolExecutor(_WORKERS) as pool:
        pending: deque = deque()
        for rows in blocks:
            pending.append(pool.submit(format_plain, names, values, decimals, *rows))
            if len(pending) > _WORKERS:
                part = pending.popleft().result()
                if part is None:
                    return False
                handle.write(part)
        while pending:
            part = pending.popleft().result()
            if part is None:
                return False
            handle.write(part)
    return True


def _arrow_names(file_names: Names | pa.Array | Sequence[str]) -> pa.Array:
    import pyarrow as pa

    if isinstance(file_names, pa.Array):
        return file_names
    if isinstance(file_names, Names):
        return pa.array(file_names.to_list(), type=pa.string())
    return pa.array(list(file_names))


def _arrow_lines(
    header: list[str], names: pa.Array, rounded: np.ndarray, start: int, stop: int
) -> bytes:
    """CSV lines of rows start..stop by pyarrow (no header); NaN becomes an empty cell."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    has_empty = bool(np.isnan(rounded[:, start:stop]).any())
    columns = [names.slice(start, stop - start)]
    columns += [
        pa.array(rounded[j, start:stop], from_pandas=has_empty) for j in range(rounded.shape[0])
    ]
    buffer = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    pacsv.write_csv(pa.table(columns, names=header), buffer, write_options=options)
    return buffer.getvalue()
