"""`read_landmarks_at` (the score path) gives `read_landmarks` + `gather_points`, or steps aside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ensemble.errors import InputError
from ensemble.io.checks import point_columns
from ensemble.io.landmark_picks import read_landmarks_at
from ensemble.io.landmarks import read_landmarks
from ensemble.io.submission import gather_points

_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_PLAIN = st.one_of(
    st.integers(0, 999_999).map(str),
    st.integers(-500, 500).map(str),
    st.integers(0, 99).map(lambda v: f"{v:06d}"),  # leading zeros
    st.floats(-2000, 2000, allow_nan=False).map(lambda v: f"{v:.3f}"),
    st.just("1000000"),
)
_ODD = st.sampled_from(["1000001", "1234567", "", "1e3", " 7", "7 ", "+1", "0x1", "-", "inf"])


def _landmarks_file(path: Path, rows: list[list[str]], n_points: int, crlf: bool = False) -> Path:
    header = "\t".join(["file_name", *point_columns(n_points)])
    end = "\r\n" if crlf else "\n"
    path.write_bytes((end.join([header, *("\t".join(row) for row in rows)]) + end).encode())
    return path


@given(
    data=st.data(),
    n_points=st.integers(1, 12),
    n_rows=st.integers(1, 6),
    crlf=st.booleans(),
    odd=st.booleans(),
)
@_SETTINGS
def test_the_picks_are_the_full_readers_values_bit_for_bit(
    tmp_path, data, n_points, n_rows, crlf, odd
) -> None:
    values = st.one_of(_PLAIN, _ODD) if odd else _PLAIN
    rows = [
        [f"img{r}.jpg", *(data.draw(values) for _ in range(2 * n_points))] for r in range(n_rows)
    ]
    path = _landmarks_file(tmp_path / "landmarks.csv", rows, n_points, crlf)
    indices = np.array([[data.draw(st.integers(-1, n_points - 1)) for _ in range(3)] for _ in rows])
    names = [row[0] for row in rows]
    picked = read_landmarks_at(path, names, indices)
    if not odd:  # every value a plain decimal: the fast path takes the file
        assert picked is not None
    try:
        full = read_landmarks(path)
    except InputError:
        assert picked is None  # the full reader says why
        return
    expected = np.array([[float(v) for v in row[1:]] for row in rows], dtype=np.float32)
    np.testing.assert_array_equal(full.points, expected.reshape(n_rows, n_points, 2))
    if picked is not None:
        np.testing.assert_array_equal(picked, gather_points(full.points, indices))


def test_a_full_size_row_width_splits_between_threads_and_agrees(tmp_path) -> None:
    rng = np.random.default_rng(3)
    points = rng.integers(0, 1_000_000, size=(9000, 20, 2))
    rows = [[f"{r}.png", *map(str, points[r].ravel())] for r in range(len(points))]
    path = _landmarks_file(tmp_path / "l.csv", rows, 20)
    indices = rng.integers(0, 20, size=(len(points), 5))
    indices[3, 2] = -1  # ragged padding
    picked = read_landmarks_at(path, [row[0] for row in rows], indices)
    np.testing.assert_array_equal(picked, gather_points(points.astype(np.float32), indices))


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.replace("\t5\t", "\t\t", 1),  # an empty value
        lambda t: t.replace("\t5\t", "\t1000001\t", 1),  # beyond the plausible range
        lambda t: t.replace("\t5\t", "\t12345678\t", 1),
        lambda t: t.replace("\t5\t", "\t5\t\t", 1),  # one value too many
        lambda t: t.replace("\t5\t", "\t5x\t", 1),
    ],
)
def test_a_bad_row_is_left_to_the_checking_reader(tmp_path, change) -> None:
    values = ["5" if j == 40 else str(j % 400) for j in range(400)]
    rows = [[f"{r}.jpg", *values] for r in range(3)]
    path = _landmarks_file(tmp_path / "l.csv", rows, 200)
    path.write_text(change(path.read_text()))
    indices = np.zeros((3, 2), dtype=np.int32)
    assert read_landmarks_at(path, ["0.jpg", "1.jpg", "2.jpg"], indices) is None
    with pytest.raises(InputError, match=r"line 2"):
        read_landmarks(path)


def test_the_same_names_in_the_same_order_are_needed(tmp_path) -> None:
    rows = [[f"{r}.jpg", "1", "2"] for r in range(4)]
    path = _landmarks_file(tmp_path / "l.csv", rows, 1)
    indices = np.zeros((4, 1), dtype=np.int32)
    names = [row[0] for row in rows]
    assert read_landmarks_at(path, names, indices) is not None
    assert read_landmarks_at(path, names[::-1], indices) is None
    assert read_landmarks_at(path, names[:3], indices[:3]) is None
