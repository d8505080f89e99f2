"""Round trips and bad-input messages of the competition formats."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ensemble.errors import InputError
from ensemble.io.checks import point_columns, row_index
from ensemble.io.landmarks import read_landmarks, write_landmarks
from ensemble.io.submission import gather_points, read_submission, write_submission
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


def _shortest(value: float, decimals: int) -> str:
    """The text of a rounded value: its fixed-point digits, trailing zeros dropped (by hand)."""
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{value:.0f}"


@pytest.mark.parametrize("decimals", range(7))
def test_submission_text_at_every_power_of_ten(tmp_path: Path, decimals: int) -> None:
    powers = 10.0 ** np.arange(0, 7)
    values = np.concatenate([powers, powers - 1, powers + 0.5, -powers, [0.0, 9.99995, 2.5e-5]])
    values = values[: len(values) // 2 * 2].reshape(-1, 2)
    names = [f"r{i}.jpg" for i in range(len(values))]
    write_submission(tmp_path / "s.csv", names, values, decimals=decimals)
    rows = [line.split(",") for line in (tmp_path / "s.csv").read_text().splitlines()[1:]]
    assert [row[0] for row in rows] == names
    rounded = np.round(values, decimals)  # half to even
    assert [row[1:] for row in rows] == [[_shortest(v, decimals) for v in r] for r in rounded]


def test_submission_writer_keeps_ragged_padding_empty(tmp_path: Path) -> None:
    values = np.array([[[1.25, 2.0], [np.nan, np.nan]], [[3.0, -0.5], [4.0, 5.0]]])
    write_submission(tmp_path / "s.csv", ["a", "b"], values)
    assert (tmp_path / "s.csv").read_text().splitlines()[1:] == ["a,1.25,2,,", "b,3,-0.5,4,5"]
    loaded = read_submission(tmp_path / "s.csv", allow_missing=True)
    np.testing.assert_array_equal(loaded.values, values)


@given(
    lists=st.lists(st.lists(st.integers(0, 20), min_size=1, max_size=5), min_size=1, max_size=6),
    separator=st.sampled_from([", ", ",", " , "]),
    ragged=st.booleans(),
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_test_points_reader_agrees_with_a_plain_parse(tmp_path, lists, separator, ragged) -> None:
    body = "".join(f"f{r}.jpg\t[{separator.join(map(str, row))}]\n" for r, row in enumerate(lists))
    path = tmp_path / "test_points.csv"
    path.write_text("file_name\tpoint_index_list\n" + body)
    widths = {len(row) for row in lists}
    repeated = any(len(set(row)) < len(row) for row in lists)
    if repeated or (len(widths) > 1 and not ragged):
        with pytest.raises(InputError):
            read_test_points(path, 21, ragged)
        return
    got = read_test_points(path, 21, ragged)
    width = max(widths)
    assert list(got.file_names) == [f"f{r}.jpg" for r in range(len(lists))]
    assert got.indices.tolist() == [row + [-1] * (width - len(row)) for row in lists]


_IMPORT_PROBE = """
import sys
from ensemble.cli import main
sys.argv = ["ens", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(sorted(m for m in ("pandas", "numba", "scipy", "torch") if m in sys.modules))
"""


def test_blend_and_score_start_without_pandas(tmp_path: Path) -> None:
    from tests.helpers import write_tiny_competition

    data = write_tiny_competition(tmp_path / "data", n_test=6, n_points=12, k=5)
    names, points, _ = data["test"]
    values = gather_points(points, data["indices"]) + 1.0  # every value 1 px off: MSE 1
    write_submission(tmp_path / "sub.csv", names, values)
    out = tmp_path / "out.csv"
    for args, check in (
        (["score", str(tmp_path / "sub.csv"), "--data", str(tmp_path / "data")], None),
        (["blend", str(tmp_path / "sub.csv"), str(tmp_path / "sub.csv"), "-o", str(out)], out),
    ):
        result = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE, *args], capture_output=True, text=True
        )
        lines = result.stdout.strip().splitlines()
        assert lines[-1] == "[]", result.stderr
        if check is None:
            assert lines[-2].split()[1:] == ["1.0000", "1.0000"]
        else:
            assert check.read_bytes() == (tmp_path / "sub.csv").read_bytes()


def test_a_landmarks_file_with_only_its_header_is_named(tmp_path: Path) -> None:
    path = tmp_path / "landmarks.csv"
    path.write_text(_landmarks_text([]).rstrip("\n"))
    with pytest.raises(InputError, match="no data rows after the header") as caught:
        read_landmarks(path)
    assert caught.value.line == 2


def test_header_only_test_points_and_submission_are_named(tmp_path: Path) -> None:
    points = tmp_path / "test_points.csv"
    points.write_text("file_name\tpoint_index_list")
    with pytest.raises(InputError, match="line 2: no data rows after the header"):
        read_test_points(points)
    submission = tmp_path / "s.csv"
    submission.write_text("file_name,Point_M0_X,Point_M0_Y")
    with pytest.raises(InputError, match="line 2: no data rows after the header"):
        read_submission(submission)
