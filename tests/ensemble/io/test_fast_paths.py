"""The compiled submission reader and writer agree with pyarrow, or step aside for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ensemble.errors import InputError
from ensemble.io import native
from ensemble.io.checks import MAX_COORDINATE, point_columns
from ensemble.io.fast_format import format_plain
from ensemble.io.fast_parse import parse_plain
from ensemble.io.submission import format_values
from ensemble.io.submission_set import (
    SubmissionSet,
    _arrow_lines,
    _read_table,
    _values,
    check_values,
)
from tests.helpers import mutate

HEADER = ["file_name", *point_columns(2)]
_BACKENDS = [
    lambda patch: None,  # the C library (where it cannot be built, numba's again)
    lambda patch: patch.setattr(native, "_library", None),  # numba's
]
_SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_PLAIN_NUMBER = st.from_regex(r"\A-?[0-9]{1,7}(\.[0-9]{0,6})?\Z").filter(
    lambda text: any(c.isdigit() for c in text)
)


def _write(path: Path, rows: list[list[str]], line_end: str = "\n") -> Path:
    lines = [",".join(HEADER), *(",".join(row) for row in rows)]
    path.write_bytes((line_end.join(lines) + line_end).encode())
    return path


@given(numbers=st.lists(_PLAIN_NUMBER, min_size=4, max_size=40), crlf=st.booleans())
@_SETTINGS
def test_plain_decimals_parse_to_the_correctly_rounded_double(
    tmp_path, monkeypatch, numbers, crlf
) -> None:
    numbers = numbers[: len(numbers) // 4 * 4]
    rows = [[f"img{i}.jpg", *numbers[4 * i : 4 * i + 4]] for i in range(len(numbers) // 4)]
    path = _write(tmp_path / "sub.csv", rows, "\r\n" if crlf else "\n")
    expected = np.array([[float(text) for text in row[1:]] for row in rows]).T
    for backend in _BACKENDS:  # the C reader, and numba's where there is no C compiler
        with monkeypatch.context() as patch:
            backend(patch)
            parsed = parse_plain(path, 4, np.inf)  # any plain decimal
        assert parsed is not None
        np.testing.assert_array_equal(parsed.values, expected)  # bit for bit, signs of zero too
        assert np.array_equal(np.signbit(parsed.values), np.signbit(expected))
        assert parsed.names.to_list() == [row[0] for row in rows]


@pytest.mark.parametrize(
    "odd",
    [
        "1e3",  # exponent
        "1234567890.1234567",  # more than 15 significant digits
        "",  # empty cell (ragged padding)
        "+1.5",
        "nan",
        " 1.5",
        '"1.5"',
    ],
)
def test_anything_not_plain_is_left_to_pyarrow(tmp_path, odd) -> None:
    path = _write(
        tmp_path / "sub.csv", [["a.jpg", "1", "2", "3", "4"], ["b.jpg", "5", odd, "7", "8"]]
    )
    assert parse_plain(path, 4, MAX_COORDINATE) is None


def test_quoted_names_and_missing_final_line_end_are_left_to_pyarrow(tmp_path) -> None:
    quoted = _write(tmp_path / "q.csv", [['"a.jpg"', "1", "2", "3", "4"]])
    assert parse_plain(quoted, 4, MAX_COORDINATE) is None
    cut = tmp_path / "cut.csv"
    cut.write_bytes(
        _write(tmp_path / "full.csv", [["a.jpg", "1", "2", "3", "4"]]).read_bytes()[:-1]
    )
    assert parse_plain(cut, 4, MAX_COORDINATE) is None
    with pytest.raises(InputError, match="looks truncated"):
        list(SubmissionSet([cut]).iter_values())


@given(data=st.data())
@_SETTINGS
def test_whatever_the_fast_reader_accepts_pyarrow_reads_the_same(tmp_path, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    values = np.round(rng.uniform(-50, 1200, (6, 4)), 3)
    rows = [[f"f{i}.jpg", *(repr(float(v)) for v in values[i])] for i in range(6)]
    text = "\n".join([",".join(HEADER), *(",".join(row) for row in rows)]) + "\n"
    path = tmp_path / "sub.csv"
    path.write_text(mutate(text, data))
    parsed = parse_plain(path, 4, MAX_COORDINATE)
    if parsed is None:
        return
    table = _read_table(path, HEADER)  # raises if the fast reader was too lenient
    try:
        expected, empty = _values(path, table, None)
    except InputError as error:  # an implausible value: the fast path's check says the same
        with pytest.raises(InputError) as fast:
            check_values(path, HEADER, parsed.values)
        assert str(fast.value) == str(error)
        return
    assert empty is None
    np.testing.assert_array_equal(parsed.values, expected)
    assert parsed.names.to_list() == table.column(0).to_pylist()


@given(
    decimals=st.integers(0, 6),
    scale=st.sampled_from([1e-7, 1e-4, 1.0, 1e3, 1e8]),
    seed=st.integers(0, 2**32 - 1),
)
@_SETTINGS
def test_compiled_writer_writes_pyarrows_bytes(monkeypatch, decimals, scale, seed) -> None:
    rng = np.random.default_rng(seed)
    values = rng.uniform(-9.99, 9.99, (4, 30)) * scale
    values[:, :3] = [-0.0, 0.0, 5 * 10.0 ** -(decimals + 1)]  # zeros and a tie
    names = pa.array([f"img{i}.jpg" for i in range(30)])
    expected = _arrow_lines(HEADER, names, format_values(values, decimals), 0, 30)
    for backend in _BACKENDS:
        with monkeypatch.context() as patch:
            backend(patch)
            fast = format_plain(names, values, decimals, 0, 30)
        assert fast is not None
        assert fast.tobytes() == expected


@pytest.mark.parametrize(
    ("value", "name", "decimals"),
    [
        (1e9, "a.jpg", 4),
        (np.nan, "a.jpg", 4),
        (np.inf, "a.jpg", 4),
        (1.0, "a,b.jpg", 4),
        (1.0, "a.jpg", 7),
    ],
)
def test_compiled_writer_steps_aside(value, name, decimals) -> None:
    values = np.full((4, 1), value)
    assert format_plain(pa.array([name]), values, decimals, 0, 1) is None


def test_a_blend_mixes_plain_files_with_ones_pyarrow_reads(tmp_path) -> None:
    from ensemble.blend import blend_submissions

    plain = _write(
        tmp_path / "plain.csv", [["a.jpg", "1", "2", "3", "4"], ["b.jpg", "5", "6", "7", "8"]]
    )
    odd = _write(  # exponents, rows in the other order
        tmp_path / "odd.csv",
        [["b.jpg", "5e1", "6e1", "7e1", "8e1"], ["a.jpg", "1e1", "2e1", "3e1", "4e1"]],
    )
    assert (
        parse_plain(plain, 4, MAX_COORDINATE) is not None
        and parse_plain(odd, 4, MAX_COORDINATE) is None
    )
    for paths in ([plain, odd], [odd, plain]):
        result = blend_submissions(paths, [0.25, 0.75] if paths[0] == plain else [0.75, 0.25])
        by_name = dict(zip(result.file_names, result.columns.T, strict=True))
        np.testing.assert_allclose(
            by_name["a.jpg"], 0.25 * np.array([1, 2, 3, 4]) + 7.5 * np.array([1, 2, 3, 4])
        )
        np.testing.assert_allclose(
            by_name["b.jpg"], 0.25 * np.array([5, 6, 7, 8]) + 7.5 * np.array([5, 6, 7, 8])
        )


def test_a_value_beyond_the_plausible_range_goes_to_pyarrow_which_names_it(tmp_path) -> None:
    path = _write(
        tmp_path / "far.csv", [["a.jpg", "1", "2", "3", "4"], ["b.jpg", "5", "1000000.5", "7", "8"]]
    )
    assert parse_plain(path, 4, MAX_COORDINATE) is None
    assert parse_plain(path, 4, 2e6) is not None
    with pytest.raises(InputError, match=r"line 3: value 1e\+06 in column 'Point_M0_Y' is not a"):
        list(SubmissionSet([path]).iter_values())
