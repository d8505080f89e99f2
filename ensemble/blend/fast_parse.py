"""A compiled reader for the common case of a submission: plain decimals, nothing unusual.

`parse_plain` reads a submission body in one pass (numba, no GIL held) when every row is
`name,v1,...,vN` with a non-empty unquoted name and every value a plain decimal of at most 15
significant digits and magnitude at most `limit` (`-12.3456`: no exponent, no empty cell, no
spaces; a larger value goes to the general reader, which names it), each line ends with
`\\n` or `\\r\\n`, and the file ends with a line end. Such a decimal is m / 10^k with m < 2^53
and 10^k exact, so one division gives the correctly rounded double: the same number pyarrow,
pandas or `float()` give. Anything else (and every malformed file) makes it return None, and
the caller takes the general pyarrow path, which handles it or names the file and line of the
problem. The compiled code is cached on disk by numba after the first call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from numba import njit

_MAX_DIGITS = 15  # m < 10^15 < 2^53: exact in a double
_POWERS_OF_TEN = np.array([10.0**k for k in range(23)])  # exact up to 10^22


@dataclass(frozen=True)
class PlainNames:
    """File names as the UTF-8 bytes of all names and each name's start (plus the end)."""

    data: np.ndarray
    offsets: np.ndarray

    def to_arrow(self) -> pa.Array | None:
        """The names as an arrow string array; None when they are not valid UTF-8."""
        array = pa.LargeStringArray.from_buffers(
            len(self.offsets) - 1, pa.py_buffer(self.offsets), pa.py_buffer(self.data)
        )
        try:
            array.validate(full=True)
        except pa.ArrowInvalid:
            return None
        return array.cast(pa.string())


@dataclass(frozen=True)
class PlainSubmission:
    """A submission read by the compiled reader: its file names and (values, rows) float64."""

    names: PlainNames
    values: np.ndarray


@njit(nogil=True, cache=True)
def _count_lines(buffer, start):
    """Line ends from `start` on."""
    lines = 0
    for position in range(start, len(buffer)):
        if buffer[position] == 10:
            lines += 1
    return lines


@njit(inline="always")
def _digit_run(buffer, position, mantissa):
    """Append the ASCII digits from `position` to `mantissa`; (mantissa, first non-digit)."""
    digit = np.uint64(buffer[position]) - np.uint64(48)
    while digit < 10:
        mantissa = mantissa * np.uint64(10) + digit
        position += 1
        digit = np.uint64(buffer[position]) - np.uint64(48)
    return mantissa, position


@njit(nogil=True, cache=True)
def _parse(buffer, start, values, name_starts, name_ends, powers, max_digits, limit):
    """Rows parsed into values (values, rows) and name spans; -1 at anything not plain.

    The buffer ends with a line end, so no scan inside a row can run past it.
    """
    n_values, capacity = values.shape
    end = len(buffer)
    position = start
    row = 0
    while position < end:
        if row == capacity:
            return -1
        name_starts[row] = position
        byte = buffer[position]
        while byte != 44:  # ,
            if byte == 10 or byte == 13 or byte == 34:  # line end or quote
                return -1
            position += 1
            byte = buffer[position]
        if position == name_starts[row]:
            return -1
        name_ends[row] = position
        position += 1
        for column in range(n_values):
            negative = buffer[position] == 45  # -
            if negative:
                position += 1
            mantissa, end_of_digits = _digit_run(buffer, position, np.uint64(0))
            digits = end_of_digits - position
            position = end_of_digits
            decimals = 0
            if buffer[position] == 46:  # .
                mantissa, end_of_digits = _digit_run(buffer, position + 1, mantissa)
                decimals = end_of_digits - position - 1
                digits += decimals
                position = end_of_digits
            if digits == 0 or digits > max_digits:
                return -1
            number = np.float64(mantissa) / powers[decimals]
            if number > limit:
                return -1
            values[column, row] = -number if negative else number
            byte = buffer[position]
            if column < n_values - 1:
                if byte != 44:
                    return -1
            elif byte == 13:
                position += 1
                if buffer[position] != 10:
                    return -1
            elif byte != 10:
                return -1
            position += 1
        row += 1
    return row


@njit(nogil=True, cache=True)
def _gather_names(buffer, name_starts, name_ends, out, offsets):
    """Copy the names' bytes into one array, with each name's start offset (and the end)."""
    cursor = 0
    for row in range(len(name_starts)):
        offsets[row] = cursor
        for position in range(name_starts[row], name_ends[row]):
            out[cursor] = buffer[position]
            cursor += 1
    offsets[len(name_starts)] = cursor


def parse_plain(path: Path, n_values: int, limit: float) -> PlainSubmission | None:
    """Read a plain submission (see the module docstring), or None to use the general reader."""
    buffer = np.fromfile(path, dtype=np.uint8)
    line_end = np.flatnonzero(buffer[: 1 << 20] == 10)
    if len(line_end) == 0 or len(buffer) == 0 or buffer[-1] != 10:
        return None
    start = int(line_end[0]) + 1
    capacity = _count_lines(buffer, start)
    if capacity == 0:
        return None
    values = np.empty((n_values, capacity), dtype=np.float64)
    name_starts = np.empty(capacity, dtype=np.int64)
    name_ends = np.empty(capacity, dtype=np.int64)
    parsed = _parse(
        buffer, start, values, name_starts, name_ends, _POWERS_OF_TEN, _MAX_DIGITS, limit
    )
    if parsed != capacity:
        return None
    name_bytes = np.empty(int((name_ends - name_starts).sum()), dtype=np.uint8)
    offsets = np.empty(capacity + 1, dtype=np.int64)
    _gather_names(buffer, name_starts, name_ends, name_bytes, offsets)
    return PlainSubmission(PlainNames(name_bytes, offsets), values)
