"""A compiled writer for the common case of a submission body: moderate values, few decimals.

`format_plain` turns file names and (values, rows) floats into CSV lines, byte for byte what
`pyarrow.csv.write_csv` writes for the values rounded half-to-even to `decimals` places (the
shortest text that reads back as the same double: `123`, `-0`, `12.5`, `0.0001`). It
applies when every value is finite with magnitude below 1e9 and `decimals` is at most 6, and
no name needs quoting; then the rounded value is k / 10^decimals for the integer
k = rint(x * 10^decimals), and the decimal digits of k, trailing zeros dropped, are its
shortest text (any shorter decimal is at least 10^-6 away, more than the spacing of doubles
below 1e9). Otherwise it returns None and the caller uses pyarrow.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

MAX_DECIMALS = 6
MAX_MAGNITUDE = 1e9
_VALUE_WIDTH = 1 + 1 + 10 + 1 + MAX_DECIMALS  # comma, sign, integer digits, point, decimals


@njit(nogil=True, cache=True)
def _format_rows(names, offsets, values, start, stop, scale, decimals, out):
    """Write rows start..stop into `out`; the bytes written, or -1 if one is not plain."""
    n_values = values.shape[0]
    cursor = 0
    digits = np.empty(24, dtype=np.uint8)
    for row in range(start, stop):
        for position in range(offsets[row], offsets[row + 1]):
            byte = names[position]
            if byte == 44 or byte == 34 or byte == 10 or byte == 13:  # needs quoting
                return -1
            out[cursor] = byte
            cursor += 1
        for column in range(n_values):
            value = values[column, row]
            if not abs(value) < MAX_MAGNITUDE:  # also NaN and inf
                return -1
            out[cursor] = 44
            cursor += 1
            scaled = np.rint(value * scale)
            if scaled < 0 or (scaled == 0 and np.signbit(scaled)):
                out[cursor] = 45  # -
                cursor += 1
            k = np.int64(abs(scaled))
            count = 0
            fraction = decimals
            while fraction > 0 and k % 10 == 0:  # trailing zeros of the decimals: dropped
                k //= 10
                fraction -= 1
            while fraction > 0:
                digits[count] = 48 + k % 10
                k //= 10
                count += 1
                fraction -= 1
            if count:
                digits[count] = 46  # .
                count += 1
            digits[count] = 48 + k % 10
            k //= 10
            count += 1
            while k > 0:
                digits[count] = 48 + k % 10
                k //= 10
                count += 1
            for index in range(count - 1, -1, -1):
                out[cursor] = digits[index]
                cursor += 1
        out[cursor] = 10
        cursor += 1
    return cursor


def format_plain(
    names: pa.Array, values: np.ndarray, decimals: int, start: int, stop: int
) -> np.ndarray | None:
    """CSV lines of rows start..stop as bytes (no header), or None when pyarrow must write them."""
    if not 0 <= decimals <= MAX_DECIMALS or names.null_count:
        return None
    names = names.cast(pa.large_string())
    offsets = np.frombuffer(names.buffers()[1], dtype=np.int64)[names.offset :]
    data = np.frombuffer(names.buffers()[2], dtype=np.uint8)
    name_bytes = int(offsets[stop] - offsets[start])
    out = np.empty(name_bytes + (stop - start) * (1 + values.shape[0] * _VALUE_WIDTH), np.uint8)
    values = np.ascontiguousarray(values, dtype=np.float64)
    written = _format_rows(data, offsets, values, start, stop, 10.0**decimals, decimals, out)
    return None if written < 0 else out[:written]
