"""The numba reader of plain submissions: the fallback where the C library cannot be built.

Same contract as the C reader of `ensemble.io.native` (see `ensemble.io.fast_parse`),
except that names may hold any byte but a comma, a quote or a line end (the caller checks
that they are UTF-8 and not blank). Imported only when needed: importing numba and loading
its cached code takes 0.3-0.6 s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

_MAX_DIGITS = 15  # m < 10^15 < 2^53: exact in a double
_POWERS_OF_TEN = np.array([10.0**k for k in range(23)])  # exact up to 10^22


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
    """Copy the names' bytes into one array, each followed by a line end, with their starts."""
    cursor = 0
    for row in range(len(name_starts)):
        offsets[row] = cursor
        for position in range(name_starts[row], name_ends[row]):
            out[cursor] = buffer[position]
            cursor += 1
        out[cursor] = 10
        cursor += 1
    offsets[len(name_starts)] = cursor


def parse_numba(path: Path, n_values: int, limit: float):
    """(name bytes, offsets, values) of a plain submission, or None (see the module docstring)."""
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
    name_bytes = np.empty(int((name_ends - name_starts).sum()) + capacity, dtype=np.uint8)
    offsets = np.empty(capacity + 1, dtype=np.int64)
    _gather_names(buffer, name_starts, name_ends, name_bytes, offsets)
    return name_bytes, offsets, values
