"""A compiled writer for the common case of a submission body: moderate values, few decimals.

`format_plain` turns file names and (values, rows) floats into CSV lines, byte for byte what
`pyarrow.csv.write_csv` writes for the values rounded half-to-even to `decimals` places (the
shortest text that reads back as the same double: `123`, `-0`, `12.5`, `0.0001`). It
applies when every value is finite with magnitude below 1e9 and `decimals` is at most 6, and
no name needs quoting; then the rounded value is k / 10^decimals for the integer
k = rint(x * 10^decimals), and the decimal digits of k, trailing zeros dropped, are its
shortest text (any shorter decimal is at least 10^-6 away, more than the spacing of doubles
below 1e9). Otherwise it returns None and the caller uses pyarrow.

The writer is the C library of `ensemble.io.native`, or numba's (`_numba_format`) where that
library cannot be built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ensemble.io import native
from ensemble.io.native import Names, names_from_strings

if TYPE_CHECKING:
    import pyarrow as pa

MAX_DECIMALS = 6
MAX_MAGNITUDE = 1e9
_VALUE_WIDTH = 1 + 1 + 10 + 1 + MAX_DECIMALS  # comma, sign, integer digits, point, decimals


def as_names(names: Names | pa.Array | Sequence[str]) -> Names | None:
    """Names in the compiled writer's layout; None when one is missing (null)."""
    if isinstance(names, Names):
        return names
    if hasattr(names, "null_count"):  # a pyarrow array
        if names.null_count:
            return None
        names = names.to_pylist()
    return Names(*names_from_strings([str(name) for name in names]))


def format_plain(
    names: Names | pa.Array | Sequence[str],
    values: np.ndarray,
    decimals: int,
    start: int,
    stop: int,
) -> np.ndarray | None:
    """CSV lines of rows start..stop as bytes (no header), or None when pyarrow must write them."""
    if not 0 <= decimals <= MAX_DECIMALS:
        return None
    names = as_names(names)
    if names is None:
        return None
    values = np.ascontiguousarray(values, dtype=np.float64)
    name_bytes = int(names.offsets[stop] - names.offsets[start])
    out = np.empty(name_bytes + (stop - start) * (1 + values.shape[0] * _VALUE_WIDTH), np.uint8)
    lib = native.library()
    if lib is None:
        from ensemble.io._numba_format import _format_rows

        written = _format_rows(
            names.data, names.offsets, values, start, stop, 10.0**decimals, decimals, out
        )
    else:
        address = native.address
        written = lib.ens_format_rows(
            address(names.data),
            address(names.offsets),
            1,
            address(values),
            values.shape[0],
            values.shape[1],
            start,
            stop,
            10.0**decimals,
            decimals,
            address(out),
        )
    return None if written < 0 else out[:written]
