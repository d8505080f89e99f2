"""Round trips and bad-input messages of the competition formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ensemble.errors import InputError
from ensemble.io.checks import point_columns, row_index
from ensemble.io.landmarks import read_landmarks, write_landmarks
from ensemble.io.submission import read_submission, write_submission
from ensemble.io.test_points import read_test_points, write_test_points


def _landmarks_text(rows: list[str], n_points: int = 2) -> str:
    header = "\t".join(["file_name", *point_columns(n_points)])
    return "\n".join([header, *rows]) + "\n"


def test_landmarks_round_trip_float_and_integer(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 500, size=(7, 5, 2)).astype(np.float32)
    names = [f"{i}.jpg" for i in range(7)]
    write_landmarks(tmp_path / "a.csv", names, points)
    loaded = read_landmarks(tmp_path / "a.csv")
    assert list(loaded.file_names) == names
    assert loaded.n_points == 5
    np.testing.assert_allclose(loaded.points, points, rtol=1e-6)
    write_landmarks(tmp_path / "b.csv", names, points, integer=True)
    text = (tmp_path / "b.csv").read_text().splitlines()[1].split("\t")[1:]
    assert all(value.lstrip("-").isdigit() for value in text)
    np.testing.assert_array_equal(read_landmarks(tmp_path / "b.csv").points, np.rint(points))


def test_landmarks_n_from_header_and_chunks(tmp_path: Path) -> None:
    points = np.arange(5000 * 3 * 2, dtype=np.float32).reshape(5000, 3, 2)
    names = [f"img{i}.jpg" for i in range(5000)]
    write_landmarks(tmp_path / "big.csv", names, points)
    loaded = read_landmarks(tmp_path / "big.csv")
    assert loaded.points.shape == (5000, 3, 2)
    np.testing.assert_array_equal(loaded.points, points)


@pytest.mark.parametrize(
    ("rows", "header", "line", "message"),
    [
        (
            ["a.jpg\t1\t2\t3\t4"],
            "file_name\tPoint_M0_X\tPoint_M0_Y\tPoint_M1_Y\tPoint_M1_X",
            1,
            "header column 4",
        ),
        (["a.jpg\t1\t2\t3\t4", "b.jpg\t1\t2\t3\t4\t5"], None, 3, "expected 5 columns, found 6"),
        (["a.jpg\t1\t2\t3\t4", "b.jpg\t1\tx\t3\t4"], None, 3, "non-numeric value 'x'"),
        (["a.jpg\t1\t2\t3\t4", "b.jpg\t1\t2\tinf\t4"], None, 3, "non-finite"),
        (["a.jpg\t1\t2\t3\t4", "b.jpg\t1\t2\t3"], None, 3, "missing value"),
        (["a.jpg\t1\t2\t3\t4", "a.jpg\t1\t2\t3\t4"], None, 3, "duplicate file name 'a.jpg'"),
        (["a.jpg\t1\t2\t3\t4", "", "c.jpg\t1\t2\t3\t4"], None, 3, "empty file name"),
    ],
)
def test_landmarks_bad_input(tmp_path: Path, rows, header, line, message) -> None:
    text = _landmarks_text(rows)
    if header:
        text = "\n".join([header, *rows]) + "\n"
    path = tmp_path / "landmarks.csv"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_landmarks(path)
    assert caught.value.line == line
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_landmarks_missing_file_and_allow_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_landmarks(tmp_path / "nope.csv")
    path = tmp_path / "l.csv"
    path.write_text(_landmarks_text(["a.jpg\t1\t\t3\t4"]))
    loaded = read_landmarks(path, allow_missing=True)
    assert np.isnan(loaded.points[0, 0, 1]) and loaded.points[0, 1, 1] == 4


def test_test_points_round_trip_and_ragged(tmp_path: Path) -> None:
    indices = np.array([[5, 0, 970], [1, 2, 3]])
    write_test_points(tmp_path / "tp.csv", ["a.jpg", "b.jpg"], indices)
    assert (tmp_path / "tp.csv").read_text().splitlines()[1] == "a.jpg\t[5, 0, 970]"
    loaded = read_test_points(tmp_path / "tp.csv", n_points=971)
    np.testing.assert_array_equal(loaded.indices, indices)
    (tmp_path / "r.csv").write_text("file_name\tpoint_index_list\na\t[1, 2]\nb\t[3]\n")
    ragged = read_test_points(tmp_path / "r.csv", ragged=True)
    np.testing.assert_array_equal(ragged.indices, [[1, 2], [3, -1]])
    np.testing.assert_array_equal(ragged.mask, [[True, True], [True, False]])


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("a\t[1, 2, 3]\nb\t[1, 2]\n", 3, "expected 3 indices"),
        ("a\t[1, 2, 3]\nb\t[1, 2, 971]\n", 3, "out of range"),
        ("a\t[1, 2, 3]\nb\t[4, 2, 4]\n", 3, "point index 4 is repeated"),
        ("a\t[1, 2, 3]\nb\t1, 2, 3\n", 3, "is not a list"),
        ("a\t[1, 2, 3]\nb\t[1, __import__('os'), 3]\n", 3, "is not a list"),
        ("a\t[1, 2, 3]\na\t[1, 2, 4]\n", 3, "duplicate file name"),
        ("a\t[1, 2, 3]\nb\t[-1, 2, 4]\n", 3, "is not a list"),
        ("a\t[1, 2, 3]\nb\t[1, 99999999999999999999, 3]\n", 3, "index 99999999999999999999 out"),
    ],
)
def test_test_points_bad_input(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = tmp_path / "test_points.csv"
    path.write_text("file_name\tpoint_index_list\n" + body)
    with pytest.raises(InputError) as caught:
        read_test_points(path, n_points=971)
    assert caught.value.line == line
    assert message in str(caught.value)


def test_test_points_lists_with_surrounding_spaces_read(tmp_path: Path) -> None:
    path = tmp_path / "test_points.csv"
    path.write_text("file_name\tpoint_index_list\na\t[0, 1] \nb\t [2, 3]\n")
    np.testing.assert_array_equal(read_test_points(path, n_points=5).indices, [[0, 1], [2, 3]])


def test_test_points_wrong_header(tmp_path: Path) -> None:
    path = tmp_path / "tp.csv"
    path.write_text("file_name,point_index_list\na,[1]\n")
    with pytest.raises(InputError, match="header must be") as caught:
        read_test_points(path)
    assert caught.value.line == 1


def test_submission_round_trip_rounds_half_even_never_truncates(tmp_path: Path) -> None:
    values = np.array([[[1.99996, 2.5], [0.00005, 3.00015]]])
    write_submission(tmp_path / "s.csv", ["a.jpg"], values)
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "file_name,Point_M0_X,Point_M0_Y,Point_M1_X,Point_M1_Y"
    loaded = read_submission(tmp_path / "s.csv")
    np.testing.assert_allclose(loaded.values, np.round(values, 4))
    assert loaded.values[0, 0, 0] == 2.0  # 1.99996 rounds up, a truncation would give 1.9999


def test_submission_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("file_name,Point_M0_X,Point_M0_Y\na,1,2\nb,1,nan\n")
    with pytest.raises(InputError, match="non-finite value in column 'Point_M0_Y'") as caught:
        read_submission(path)
    assert caught.value.line == 3
    path.write_text("file_name,Point_M0_X,Point_M0_Y\na,1,2\nb,1,2,3\n")
    with pytest.raises(InputError, match="expected 3 columns, found 4"):
        read_submission(path)
    path.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_submission(path)


def test_writers_are_atomic(tmp_path: Path) -> None:
    target = tmp_path / "s.csv"
    target.write_text("old contents\n")
    with pytest.raises(ValueError):
        write_landmarks(target, ["a", "b"], np.full((2, 1, 2), np.nan))
    assert target.read_text() == "old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]


def test_row_index_maps_each_name_to_its_row() -> None:
    assert row_index(["b.jpg", "a.jpg"]) == {"b.jpg": 0, "a.jpg": 1}
