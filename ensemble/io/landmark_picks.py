"""The requested points of a landmarks TSV (`ens score`'s truth), without parsing the rest.

A full-size hidden truth is 734 MB of text (99,819 rows x 1,942 values) of which scoring needs
60 values a row. pyarrow reads the file as lines; one RE2 match per line checks that every
value of the row is a plain decimal within MAX_COORDINATE; numpy finds the tabs; pyarrow parses
only the requested fields. The result is what `read_landmarks` then `gather_points` give, bit
for bit (each value parsed as a double and cast to float32). Anything else - another row order,
a value that is not a plain decimal, a wrong column count - returns None, and the caller reads
the file with `read_landmarks`, which accepts it or names the line and the problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ensemble.io.arrow_arrays import string_array, to_numbers
from ensemble.io.checks import read_point_header
from ensemble.io.parallel import map_ordered

if TYPE_CHECKING:
    import pyarrow as pa

_BLOCK_BYTES = 1 << 22  # 4 MiB: the arrays made from a block stay below malloc's mmap threshold
# a name, then tab-separated plain decimals of magnitude at most MAX_COORDINATE (1e6)
_PLAIN_ROW = r"^[^\t]+(?:\t-?(?:\d{1,6}(?:\.\d+)?|1000000(?:\.0+)?))+$"


def read_landmarks_at(
    path: str | Path, file_names: Sequence[str], indices: np.ndarray, prefix: str = "Point_M"
) -> np.ndarray | None:
    """The points `indices` (n, K) of the rows named `file_names` of a landmarks TSV, or None.

    Returns (n, K, 2) float64 (NaN where an index is negative: ragged padding), equal to
    `gather_points(read_landmarks(path).points, indices)` when the file's rows are exactly
    `file_names` in that order and every value is a plain decimal; otherwise None (the caller
    then reads the whole file, which names any problem).
    """
    import pyarrow as pa

    path = Path(path)
    n_values = len(read_point_header(path, "\t", prefix)) - 1
    indices = np.asarray(indices, dtype=np.int64)
    rows, k = indices.shape
    if rows == 0 or rows != len(file_names):
        return None
    padded = indices < 0
    safe = np.where(padded, 0, indices)
    fields = np.stack([2 * safe, 2 * safe + 1], axis=2).reshape(rows, 2 * k)  # value columns
    expected = string_array(file_names)
    out = np.empty((rows, 2 * k), dtype=np.float64)

    def parts() -> Iterator[tuple]:
        first = 0
        for batch in _lines(path):
            lines = batch.column(0)
            stop = first + len(lines)
            if stop > rows:
                raise _NotPlain
            yield lines, expected.slice(first, len(lines)), fields[first:stop], first
            first = stop
        if first != rows:
            raise _NotPlain

    def pick(part: tuple) -> None:
        lines, names, wanted, start = part
        out[start : start + len(lines)] = _pick(lines, names, wanted, n_values)

    try:
        for _ in map_ordered(pick, parts()):
            pass
    except (_NotPlain, pa.ArrowInvalid):  # ArrowInvalid: a line with \x1f, not UTF-8, ...
        return None
    out[np.repeat(padded, 2, axis=1)] = np.nan
    return out.reshape(rows, k, 2)


def _lines(path: Path) -> Iterator[pa.RecordBatch]:
    """pyarrow's streaming reader of the body as whole lines (one text column `line`)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=["line"], skip_rows=1, block_size=_BLOCK_BYTES, use_threads=True
        ),
        parse_options=pacsv.ParseOptions(delimiter="\x1f", quote_char=False),
        convert_options=pacsv.ConvertOptions(
            column_types={"line": pa.string()}, strings_can_be_null=False
        ),
    )


class _NotPlain(Exception):
    """The file is not as the fast path reads it: the caller reads it in full."""


def _pick(
    lines: pa.StringArray, names: pa.StringArray, wanted: np.ndarray, n_values: int
) -> np.ndarray:
    """The `wanted` value columns (rows, W) of a batch of lines; `_NotPlain` if not plain."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pc.all(pc.match_substring_regex(lines, _PLAIN_ROW)).as_py():
        raise _NotPlain
    count = len(lines)
    offsets = np.frombuffer(
        lines.buffers()[1], dtype=np.int32, count=count + 1, offset=4 * lines.offset
    )
    data = np.frombuffer(lines.buffers()[2], dtype=np.uint8)
    begin, end = int(offsets[0]), int(offsets[-1])
    tabs = np.flatnonzero(data[begin:end] == ord("\t")) + begin
    if len(tabs) != count * n_values:
        raise _NotPlain
    tabs = tabs.reshape(count, n_values)
    if (tabs[:, 0] < offsets[:-1]).any() or (tabs[:, -1] >= offsets[1:]).any():
        raise _NotPlain  # some row has more tabs, another fewer
    if not _cut(data, offsets[:-1], tabs[:, 0]).equals(names):
        raise _NotPlain
    ends = np.concatenate([tabs[:, 1:], offsets[1:, None]], axis=1)
    starts = np.take_along_axis(tabs, wanted, axis=1) + 1
    stops = np.take_along_axis(ends, wanted, axis=1)
    text = _cut(data, starts.ravel(), stops.ravel())
    values = to_numbers(pc.cast(text, pa.float64())).astype(np.float32)
    return values.reshape(wanted.shape).astype(np.float64)


def _cut(data: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> pa.StringArray:
    """The strings data[starts[i]:stops[i]] as one arrow array (their bytes copied together)."""
    import pyarrow as pa

    lengths = (stops - starts).astype(np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    positions = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
    return pa.LargeStringArray.from_buffers(
        len(lengths), pa.py_buffer(offsets), pa.py_buffer(data[positions])
    ).cast(pa.string())
