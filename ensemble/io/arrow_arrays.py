"""numpy and Python values as pyarrow arrays, without pyarrow's pandas probe.

`pyarrow.array()` imports pandas on its first call (0.2-0.3 s of start-up), which `ens blend`
and `ens score` do not otherwise need; these build the same arrays from buffers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa


def float_array(values: np.ndarray) -> pa.Array:
    """A float64 arrow array of a 1-D array; NaN becomes null (an empty cell when written)."""
    import pyarrow as pa

    values = np.ascontiguousarray(values, dtype=np.float64)
    missing = np.isnan(values)
    validity = None
    if missing.any():
        validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(
        pa.float64(), len(values), [validity, pa.py_buffer(values)], int(missing.sum())
    )


def int_array(values: np.ndarray) -> pa.Array:
    """An int64 arrow array of a 1-D array of whole numbers; NaN becomes null."""
    import pyarrow as pa

    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    whole = np.ascontiguousarray(np.where(missing, 0, values).astype(np.int64))
    validity = None
    if missing.any():
        validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(
        pa.int64(), len(whole), [validity, pa.py_buffer(whole)], int(missing.sum())
    )


def string_array(texts: Sequence[str] | pa.Array) -> pa.Array:
    """A string arrow array of `texts` (returned as is when it already is one)."""
    import pyarrow as pa

    if isinstance(texts, pa.Array):
        return texts
    if isinstance(texts, pa.ChunkedArray):
        return texts.combine_chunks()
    encoded = [str(text).encode("utf-8") for text in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(text) for text in encoded], out=offsets[1:])
    data = pa.py_buffer(b"".join(encoded))
    large = pa.Array.from_buffers(
        pa.large_string(), len(encoded), [None, pa.py_buffer(offsets), data]
    )
    return large.cast(pa.string())


def to_numbers(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric or boolean arrow array as numpy (null: NaN for floats, False for booleans)."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    count, start = len(values), values.offset
    validity, data = values.buffers()[:2]
    if pa.types.is_boolean(values.type):
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        out = bits[start : start + count].astype(bool)
    else:
        dtype = np.dtype(values.type.to_pandas_dtype())
        out = np.frombuffer(data, dtype=dtype, count=count, offset=start * dtype.itemsize).copy()
    if values.null_count:
        bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
        missing = ~bits[start : start + count].astype(bool)
        out = out.astype(np.float64) if out.dtype.kind in "iu" else out
        out[missing] = np.nan if out.dtype.kind == "f" else False
    return out


def fill_floats(out: np.ndarray, values: pa.ChunkedArray) -> np.ndarray | None:
    """Copy a float64 arrow column into the 1-D `out` (NaN where null): one copy, no temporary.

    Returns the mask of the null cells, or None when there is none.
    """
    start, missing = 0, None
    for chunk in values.chunks:
        count, offset = len(chunk), chunk.offset
        validity, data = chunk.buffers()[:2]
        part = out[start : start + count]
        part[:] = np.frombuffer(data, dtype=np.float64, count=count, offset=8 * offset)
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
            null = ~bits[offset : offset + count].astype(bool)
            part[null] = np.nan
            if missing is None:
                missing = np.zeros(len(out), dtype=bool)
            missing[start : start + count] = null
        start += count
    return missing


def to_strings(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A string arrow array as a numpy object array of str."""
    return np.array(values.to_pylist(), dtype=object)


def first_true(mask: pa.Array | pa.ChunkedArray) -> int | None:
    """The position of the first true value of a boolean arrow array, or None."""
    rows = np.flatnonzero(to_numbers(mask))
    return int(rows[0]) if len(rows) else None
