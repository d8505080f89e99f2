"""The numba writer of plain submission lines: the fallback where the C library is missing.

Same bytes as `ensemble.io.native`'s writer (see `ensemble.io.fast_format`). Imported
only when needed (numba's import and cache load take 0.3-0.6 s).
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_MAGNITUDE = 1e9


@njit(nogil=True, cache=True)
def _format_rows(names, offsets, values, start, stop, scale, decimals, out):
    """Write rows start..stop into `out`; the bytes written, or -1 if one is not plain.

    Name r is names[offsets[r] : offsets[r + 1] - 1] (each name is followed by a line end).
    """
    n_values = values.shape[0]
    cursor = 0
    digits = np.empty(24, dtype=np.uint8)
    for row in range(start, stop):
        for position in range(offsets[row], offsets[row + 1] - 1):  # each name ends in \n
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
