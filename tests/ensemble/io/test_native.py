"""The C readers and writer (ensemble.io.native) agree with the general paths, or step aside.

Every compiled path is checked against the path it short-cuts (pandas / pyarrow / numba) on
the same bytes: the same numbers bit for bit, or None so that the general path reads the file
(and names any problem). The build itself: cached, refused when asked, remembered when the
compiler fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ensemble.blend.combine import weighted_mean
from ensemble.errors import InputError
from ensemble.io import native
from ensemble.io.checks import point_columns
from ensemble.io.landmarks import read_landmarks, read_landmarks_at
from ensemble.io.submission import gather_points
from ensemble.io.submission_set import SubmissionSet, write_values
from ensemble.io.test_points import read_test_points

pytestmark = pytest.mark.skipif(native.library() is None, reason="no C compiler here")
_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def no_native(monkeypatch):
    """Run the general paths: as on a machine without a C compiler."""
    monkeypatch.setattr(native, "_library", None)


def _without_native(monkeypatch, function, *args):
    with monkeypatch.context() as patch:
        patch.setattr(native, "_library", None)
        return function(*args)


# ----------------------------------------------------------------------------------------------
# the build


def test_the_library_is_built_once_and_then_loaded(tmp_path) -> None:
    built = native._build(tmp_path)
    assert isinstance(built, Path) and built.is_file() and built.parent == tmp_path
    assert native._load(built) is not None
    assert [p.name for p in tmp_path.iterdir()] == [built.name]  # no temp files left


def test_a_failing_compiler_is_remembered_and_not_retried(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CC", "false")
    assert native._build(tmp_path) == "failed"
    assert (tmp_path / f"{native._NAME}.failed").is_file()


def test_ens_native_0_turns_the_library_off() -> None:
    code = "from ensemble.io import native; print(native.library() is None)"
    env = {**os.environ, "ENS_NATIVE": "0"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "True", result.stderr


# ----------------------------------------------------------------------------------------------
# submissions: the fused weighted sum


def _submissions(folder: Path, count: int, rows: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    names = [f"{i:05d}.jpg" for i in rng.permutation(rows)]
    header = ["file_name", *point_columns(3)]
    paths = []
    for number in range(count):
        path = folder / f"s{number}.csv"
        write_values(path, header, names, rng.uniform(-50, 1300, (6, rows)))
        paths.append(path)
    return paths


@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 5), rows=st.integers(1, 40))
@_SETTINGS
def test_weighted_sum_is_the_weighted_mean_bit_for_bit(tmp_path, seed, count, rows) -> None:
    paths = _submissions(tmp_path, count, rows, seed)
    weights = np.random.default_rng(seed).dirichlet(np.ones(count))
    fused = SubmissionSet(paths).weighted_sum(weights)
    streamed = SubmissionSet(paths)
    expected = weighted_mean((item.values for item in streamed.iter_values()), weights)
    assert fused is not None
    np.testing.assert_array_equal(fused, expected)


def test_weighted_sum_of_large_files_splits_rows_between_threads(tmp_path, monkeypatch) -> None:
    from ensemble.io import fast_parse

    monkeypatch.setattr(fast_parse, "_SPLIT_BYTES", 0)  # as for files above 4 MiB
    assert len(fast_parse.row_halves(101, 1)) == 2
    paths = _submissions(tmp_path, 3, 101, 1)
    weights = np.array([0.2, 0.5, 0.3])
    submissions = SubmissionSet(paths)
    fused = submissions.weighted_sum(weights)
    expected = weighted_mean((i.values for i in SubmissionSet(paths).iter_values()), weights)
    np.testing.assert_array_equal(fused, expected)
    lines = paths[0].read_text().splitlines()[1:]
    assert list(submissions.file_names) == [line.split(",")[0] for line in lines]


def test_weighted_sum_steps_aside_for_other_orders_and_odd_files(tmp_path) -> None:
    paths = _submissions(tmp_path, 2, 6, 2)
    lines = paths[1].read_text().splitlines()
    reordered = tmp_path / "reordered.csv"
    reordered.write_text("\n".join([lines[0], *lines[:0:-1]]) + "\n")
    odd = tmp_path / "odd.csv"
    name, _, rest = lines[1].partition(",")
    odd.write_text("\n".join([lines[0], f"{name},5e1,{rest.partition(',')[2]}", *lines[2:]]) + "\n")
    for other in (reordered, odd):
        submissions = SubmissionSet([paths[0], other])
        assert submissions.weighted_sum(np.array([0.5, 0.5])) is None
        assert submissions.file_names is None  # nothing set: iter_values starts afresh


# ----------------------------------------------------------------------------------------------
# landmarks


def _landmarks_file(path: Path, rows: list[list[str]], n_points: int, crlf: bool = False) -> Path:
    header = "\t".join(["file_name", *point_columns(n_points)])
    end = "\r\n" if crlf else "\n"
    path.write_bytes((end.join([header, *("\t".join(row) for row in rows)]) + end).encode())
    return path


_VALUE = st.one_of(
    st.integers(0, 999_999).map(str),
    st.integers(0, 99).map(lambda v: f"{v:06d}"),  # leading zeros
    st.integers(-500, 500).map(str),
    st.floats(-2000, 2000, allow_nan=False).map(lambda v: f"{v:.3f}"),
    st.sampled_from(["1000000", "1000001", "1234567", "", "1e3", " 7", "7 ", "+1", "0x1", "-"]),
)


@given(
    data=st.data(),
    n_points=st.integers(1, 12),
    n_rows=st.integers(1, 6),
    crlf=st.booleans(),
)
@_SETTINGS
def test_landmark_readers_agree_with_pandas(
    tmp_path, monkeypatch, data, n_points, n_rows, crlf
) -> None:
    rows = [
        [f"img{r}.jpg", *(data.draw(_VALUE) for _ in range(2 * n_points))] for r in range(n_rows)
    ]
    path = _landmarks_file(tmp_path / "landmarks.csv", rows, n_points, crlf)
    indices = np.array([[data.draw(st.integers(-1, n_points - 1)) for _ in range(3)] for _ in rows])
    names = [row[0] for row in rows]
    try:
        expected = _without_native(monkeypatch, read_landmarks, path)
    except InputError:
        assert read_landmarks_at(path, names, indices) is None  # the full path says why
        with pytest.raises(InputError):
            read_landmarks(path)
        return
    loaded = read_landmarks(path)
    assert list(loaded.file_names) == list(expected.file_names)
    np.testing.assert_array_equal(loaded.points, expected.points)
    at = read_landmarks_at(path, names, indices)
    if at is not None:  # None only where the C reader leaves the file to pandas
        np.testing.assert_array_equal(at, gather_points(expected.points, indices))


def test_landmarks_at_long_integer_rows_take_the_word_path_and_agree(tmp_path) -> None:
    rng = np.random.default_rng(3)
    n_points = 200  # rows of 1.6-2.8 KB: checked 16 bytes at a time
    points = rng.integers(0, 1_000_000, size=(50, n_points, 2))
    points[::7] = rng.integers(0, 10, size=points[::7].shape)  # short values, long rows
    rows = [[f"{r}.png", *map(str, points[r].ravel())] for r in range(50)]
    path = _landmarks_file(tmp_path / "l.csv", rows, n_points)
    indices = rng.integers(0, n_points, size=(50, 30)).astype(np.int32)
    indices[3, 5] = -1  # ragged padding
    at = read_landmarks_at(path, [row[0] for row in rows], indices)
    np.testing.assert_array_equal(at, gather_points(points.astype(np.float32), indices))


def test_landmarks_at_word_path_without_sse2_agrees(tmp_path, monkeypatch) -> None:
    built = native._build(tmp_path, [*native._FLAGS, "-DENS_NO_SSE2"])  # 8-byte words
    assert isinstance(built, Path)
    rng = np.random.default_rng(4)
    points = rng.integers(0, 1_000_000, size=(20, 100, 2))
    rows = [[f"{r}.png", *map(str, points[r].ravel())] for r in range(20)]
    path = _landmarks_file(tmp_path / "l.csv", rows, 100)
    indices = rng.integers(-1, 100, size=(20, 30)).astype(np.int32)
    names = [row[0] for row in rows]
    monkeypatch.setattr(native, "_library", native._load(built))
    np.testing.assert_array_equal(
        read_landmarks_at(path, names, indices), gather_points(points.astype(np.float32), indices)
    )


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
def test_landmarks_at_leaves_bad_rows_to_the_checking_reader(tmp_path, change) -> None:
    values = ["5" if j == 40 else str(j % 400) for j in range(400)]
    rows = [[f"{r}.jpg", *values] for r in range(3)]
    path = _landmarks_file(tmp_path / "l.csv", rows, 200)
    path.write_text(change(path.read_text()))
    indices = np.zeros((3, 2), dtype=np.int32)
    assert read_landmarks_at(path, ["0.jpg", "1.jpg", "2.jpg"], indices) is None
    with pytest.raises(InputError, match=r"line 2"):
        read_landmarks(path)


def test_landmarks_at_needs_the_same_names_in_the_same_order(tmp_path) -> None:
    rows = [[f"{r}.jpg", "1", "2"] for r in range(4)]
    path = _landmarks_file(tmp_path / "l.csv", rows, 1)
    indices = np.zeros((4, 1), dtype=np.int32)
    names = [row[0] for row in rows]
    assert read_landmarks_at(path, names, indices) is not None
    assert read_landmarks_at(path, names[::-1], indices) is None
    assert read_landmarks_at(path, names[:3], indices[:3]) is None


# ----------------------------------------------------------------------------------------------
# test_points.csv


@given(data=st.data(), ragged=st.booleans())
@_SETTINGS
def test_test_points_reader_agrees_with_pandas(tmp_path, monkeypatch, data, ragged) -> None:
    lists = data.draw(
        st.lists(st.lists(st.integers(0, 20), min_size=1, max_size=5), min_size=1, max_size=6)
    )
    separator = data.draw(st.sampled_from([", ", ",", " , "]))
    body = "".join(f"f{r}.jpg\t[{separator.join(map(str, row))}]\n" for r, row in enumerate(lists))
    path = tmp_path / "test_points.csv"
    path.write_text("file_name\tpoint_index_list\n" + body)
    try:
        expected = _without_native(monkeypatch, read_test_points, path, 21, ragged)
    except InputError as error:
        with pytest.raises(InputError) as fast:
            read_test_points(path, 21, ragged)
        assert str(fast.value) == str(error)
        return
    got = read_test_points(path, 21, ragged)
    assert list(got.file_names) == list(expected.file_names)
    np.testing.assert_array_equal(got.indices, expected.indices)
    assert got.indices.dtype == expected.indices.dtype


def test_submission_and_score_commands_import_no_pandas(tmp_path) -> None:
    paths = _submissions(tmp_path, 2, 5, 4)
    probe = (
        "import sys\n"
        "from ensemble.cli import main\n"
        f"sys.argv = ['ens', 'blend', {str(paths[0])!r}, {str(paths[1])!r}, '-o', "
        f"{str(tmp_path / 'out.csv')!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'numba', 'scipy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr
    assert (tmp_path / "out.csv").is_file()


def test_writer_digit_counts_at_every_power_of_ten() -> None:
    import pyarrow as pa

    from ensemble.io.fast_format import format_plain
    from ensemble.io.submission import format_values
    from ensemble.io.submission_set import _arrow_lines

    powers = 10.0 ** np.arange(0, 9)
    values = np.concatenate([powers, powers - 1, powers + 0.5, -powers, [0.0, -0.0, 9.99995]])
    values = values[: len(values) // 2 * 2].reshape(2, -1)
    names = pa.array([f"r{i}" for i in range(values.shape[1])])
    header = ["file_name", *point_columns(1)]
    for decimals in range(7):
        expected = _arrow_lines(header, names, format_values(values, decimals), 0, len(names))
        assert format_plain(names, values, decimals, 0, len(names)).tobytes() == expected


def test_score_imports_no_pandas_on_plain_files(tmp_path) -> None:
    from ensemble.io.submission import write_submission
    from tests.helpers import write_tiny_competition

    data = write_tiny_competition(tmp_path / "data", n_test=6, n_points=12, k=5)
    names, points, _ = data["test"]
    values = gather_points(points, data["indices"]) + 1.0  # every value 1 px off: MSE 1
    write_submission(tmp_path / "sub.csv", names, values)
    probe = (
        "import sys\n"
        "from ensemble.cli import main\n"
        f"sys.argv = ['ens', 'score', {str(tmp_path / 'sub.csv')!r}, '--data', "
        f"{str(tmp_path / 'data')!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'numba', 'scipy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "[]", result.stderr
    assert lines[-2].split()[1:] == ["1.0000", "1.0000"]
