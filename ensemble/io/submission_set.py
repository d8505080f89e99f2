"""Validating, row-aligned reading of many submissions (`ens blend`, `ens score`).

Each submission is parsed by pyarrow into column-major float64 arrays (values, rows), files
read ahead on the threads of `ensemble.io.parallel`; a file pyarrow rejects is read again line
by line (`diagnose`) to name the line and the problem. Every file is checked: it is UTF-8 text
(a leading byte-order mark is skipped); the header is a submission header and equals the
first file's; the file names are non-empty, unique, free of commas, quotes and line ends once
unquoted (CSV quotes are read), and the same set as the first file's (rows are reordered to
the first file's order when they differ); every value is an empty cell or a plausible pixel
coordinate (finite, magnitude at most `MAX_COORDINATE`); every row has the header's column
count; the last line ends with a line end. Problems raise `InputError` naming the file and
the line (header = line 1).

Empty cells (NaN) are the padding of ragged submissions (Kaggle Facial Keypoints: an image
asks for fewer points than the widest row): in every row they must be a run of whole (X, Y)
pairs at the end, and every file must have the same empty cells as the first one, after
aligning the rows. Blends keep them empty.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ensemble.errors import InputError
from ensemble.io.arrow_arrays import (
    fill_floats,
    first_true,
    string_array,
    to_numbers,
    to_strings,
)
from ensemble.io.checks import (
    FILE_COLUMN,
    MAX_COORDINATE,
    check_names,
    count_data_lines,
    data_rows,
    number_problem,
    quoted,
    read_point_header,
    value_problem,
)
from ensemble.io.parallel import map_ordered

if TYPE_CHECKING:
    import pyarrow as pa

_BLOCK_SIZE = 1 << 20  # pyarrow parses 1 MiB blocks fastest here (cache-sized)


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
        if count_data_lines(path) == 0:  # pyarrow cannot skip the header of a header-only file
            raise InputError(path, "no data rows after the header", 2) from None
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

    blank = to_numbers(pc.utf8_length(table.column(0))) == 0
    for j in range(1, table.num_columns):
        blank &= to_numbers(table.column(j).is_null())
    rows = np.flatnonzero(blank)
    if len(rows):
        raise InputError(path, "blank line", int(rows[0]) + 2)


def _reject_unwritable_names(path: Path, names: pa.ChunkedArray) -> None:
    """A name with a comma, a quote or a line end (read from quotes) cannot be written back."""
    import pyarrow.compute as pc

    bad = pc.match_substring_regex(names, '[,"\r\n]')
    row = first_true(bad)
    if row is not None:
        raise InputError(
            path,
            f"file name {quoted(names[row].as_py())} holds a comma, a quote or a line end",
            row + 2,
        )


def diagnose(path: str | Path, header: list[str]) -> None:
    """Scan a submission line by line and raise `InputError` at the first malformed line.

    The slow, exact pass behind the fast reader: it runs only when pyarrow rejected the file.
    """
    path = Path(path)
    for line, fields in data_rows(path, ",", csv_quotes=True):
        if not fields:
            raise InputError(path, "blank line", line)
        if len(fields) != len(header):
            raise InputError(
                path,
                f"expected {len(header)} columns, found {len(fields)} (truncated or malformed row)",
                line,
            )
        for column, field in zip(header[1:], fields[1:], strict=True):
            if not field:  # empty cells (ragged padding) are checked after parsing
                continue
            problem = number_problem(field, column)
            if problem:
                raise InputError(path, problem, line)


def read_aligned(path: str | Path, reference: np.ndarray, reference_label: str) -> np.ndarray:
    """One submission's values (values, rows) with rows in the order of `reference` names.

    Empty cells (ragged padding, see `check_ragged`) come back as NaN.
    """
    path = Path(path)
    header = read_point_header(path, ",")
    parsed = _parse(path, header)
    order = align_order(path, parsed.names, reference, reference_label)
    if parsed.empty is not None:
        check_ragged(path, header, parsed.empty[:, order], order)
    return parsed.values[:, order]


@dataclass(frozen=True)
class _Parsed:
    """A submission as read: names, values (values, rows) in file order, empty cells or None."""

    names: pa.Array
    values: np.ndarray
    empty: np.ndarray | None


def _parse(path: Path, header: list[str]) -> _Parsed:
    """Read and check one submission (any thread): names, values and empty cells, file order.

    Every non-empty value must be finite and plausible (`check_values`).
    """
    table = _read_table(path, header)
    values = np.empty((table.num_columns - 1, table.num_rows), dtype=np.float64)
    empty = None
    for j in range(1, table.num_columns):
        nulls = fill_floats(values[j - 1], table.column(j))
        if nulls is not None:
            if empty is None:
                empty = np.zeros(values.shape, dtype=bool)
            empty[j - 1] = nulls
    check_values(path, table.column_names, values, empty)
    return _Parsed(table.column(0).combine_chunks(), values, empty)


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


def align_order(
    path: Path, names: pa.Array | np.ndarray, reference: np.ndarray, reference_label: str
) -> np.ndarray:
    """Row indices that put `names` (of `path`) in `reference` order; the sets must match."""
    import pyarrow.compute as pc

    names = string_array(names)
    check_names(path, names)
    wanted = string_array(reference)
    position = pc.index_in(wanted, value_set=names)
    if position.null_count:
        missing = np.flatnonzero(to_numbers(position.is_null()))
        row = int(missing[0])
        raise InputError(
            path,
            f"file name {quoted(reference[row])} (line {row + 2} of {reference_label}) is missing; "
            f"{len(missing)} missing in all",
        )
    if len(names) > len(wanted):
        extra = first_true(pc.invert(pc.is_in(names, value_set=wanted)))
        raise InputError(
            path, f"file name {quoted(names[extra].as_py())} is not in {reference_label}", extra + 2
        )
    return to_numbers(position)


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
        self.file_names_arrow: pa.Array | None = None  # the first file's names, once read
        self.empty: np.ndarray | None = None  # the first file's empty cells, once read

    @property
    def file_names(self) -> np.ndarray | None:
        """The first file's names (object array of str), once its values were yielded."""
        if self.file_names_arrow is None:
            return None
        return to_strings(self.file_names_arrow)

    def _align(self, path: Path, parsed: _Parsed) -> SubmissionValues:
        """Check the names and take the values (and empty cells) in the first file's row order."""
        values, empty = parsed.values, parsed.empty
        if self.file_names_arrow is None:  # the first file
            check_names(path, parsed.names)
            self.file_names_arrow = parsed.names
            if empty is not None:
                self._check_empty(path, empty)
            self.empty = empty
            return SubmissionValues(path, values, empty)
        order = None
        if not parsed.names.equals(self.file_names_arrow):
            order = align_order(path, parsed.names, self.file_names, str(self.paths[0]))
            values = values[:, order]
            empty = None if empty is None else empty[:, order]
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
        parsed = map_ordered(lambda path: _parse(path, self.header), self.paths)
        for path, item in zip(self.paths, parsed, strict=True):
            yield self._align(path, item)
