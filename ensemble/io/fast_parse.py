"""A compiled reader for the common case of a submission: plain decimals, nothing unusual.

`parse_plain` reads a submission body in one pass (compiled, no GIL held) when every row is
`name,v1,...,vN` with a non-empty unquoted name and every value a plain decimal of at most 15
significant digits and magnitude at most `limit` (`-12.3456`: no exponent, no empty cell, no
spaces; a larger value goes to the general reader, which names it), each line ends with
`\\n` or `\\r\\n`, and the file ends with a line end. Such a decimal is m / 10^k with m < 2^53
and 10^k exact, so one division gives the correctly rounded double: the same number pyarrow,
pandas or `float()` give. Anything else (and every malformed file) makes it return None, and
the caller takes the general pyarrow path, which handles it or names the file and line of the
problem.

The reader is the C library of `ensemble.io.native` (printable-ASCII names only; loading it
takes about 1 ms); where that library cannot be built, numba's (`_numba_parse`; any UTF-8
name; importing numba and loading its cached code takes 0.3-0.6 s of every process).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.io import native
from ensemble.io.native import Names

_SPLIT_BYTES = 1 << 22  # files above 4 MiB are parsed by two threads, half the rows each


@dataclass(frozen=True)
class PlainSubmission:
    """A submission read by the compiled reader: its file names and (values, rows) float64.

    `ascii_names`: the names are known to be printable ASCII and not blank (the C reader
    checks it); otherwise (numba's reader) they may still be non-UTF-8 or blank.
    """

    names: Names
    values: np.ndarray
    ascii_names: bool = True


def parse_plain(path: Path, n_values: int, limit: float) -> PlainSubmission | None:
    """Read a plain submission (see the module docstring), or None to use the general reader."""
    lib = native.library()
    if lib is None:
        from ensemble.io._numba_parse import parse_numba

        parsed = parse_numba(path, n_values, limit)
        if parsed is None:
            return None
        data, offsets, values = parsed
        return PlainSubmission(Names(data, offsets), values, ascii_names=False)
    buffer = native.plain_bytes(path)
    if buffer is None:
        return None
    capacity = native.count_lines(lib, buffer, native.body_start(lib, buffer))
    if capacity == 0:
        return None
    values = np.empty((n_values, capacity), dtype=np.float64)
    name_starts = np.empty(capacity, dtype=np.int64)
    name_ends = np.empty(capacity, dtype=np.int64)
    if not parse_rows(lib, buffer, values, name_starts, name_ends, limit):
        return None
    return PlainSubmission(native.gather_names(lib, buffer, name_starts, name_ends), values)


def row_halves(rows: int, size: int) -> list[tuple[int, int]]:
    """Rows [first, stop) of the two threads that parse a file of `size` bytes (one if small)."""
    return [(0, rows // 2), (rows // 2, rows)] if rows > 1 and size > _SPLIT_BYTES else [(0, rows)]


def row_start(lib, buffer: np.ndarray, first_row: int) -> int:
    """The offset of body row `first_row` (0: the line after the header), or -1."""
    start = native.body_start(lib, buffer)
    if first_row:
        start = lib.ens_offset_after_lines(native.address(buffer), start, len(buffer), first_row)
    return int(start)


def parse_rows(
    lib,
    buffer: np.ndarray,
    values: np.ndarray,
    name_starts: np.ndarray,
    name_ends: np.ndarray,
    limit: float,
    pool: ThreadPoolExecutor | None = None,
    weight: float | None = None,
) -> bool:
    """Parse every body row of `buffer` into values (values, rows) and the name spans.

    Two threads take half the rows each (on `pool` if given). With `weight`, each thread
    multiplies its values by it. False when the file is not plain or has other rows.
    """
    n_values, rows = values.shape
    address = native.address

    def half(rows_range: tuple[int, int]) -> bool:
        first, stop = rows_range
        start = row_start(lib, buffer, first)
        if start < 0:
            return False
        end = lib.ens_parse_submission(
            address(buffer),
            start,
            len(buffer),
            n_values,
            stop - first,
            address(values) + 8 * first,
            rows,
            address(name_starts) + 8 * first,
            address(name_ends) + 8 * first,
            limit,
        )
        if weight is not None:
            part = values[:, first:stop]
            np.multiply(part, weight, out=part)
        return end >= 0 and (stop < rows or end == len(buffer))

    halves = row_halves(rows, len(buffer))
    if len(halves) == 1:
        return half(halves[0])
    if pool is not None:
        return all(pool.map(half, halves))
    with ThreadPoolExecutor(len(halves)) as own:
        return all(own.map(half, halves))
