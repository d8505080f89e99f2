"""Property tests: randomly malformed files never crash the readers or the scorer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ensemble.cli import cli
from ensemble.errors import InputError
from ensemble.io.landmarks import read_landmarks, write_landmarks
from ensemble.io.submission import read_submission, write_submission
from ensemble.io.test_points import read_test_points, write_test_points
from tests.helpers import mutate

_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _assert_reads_or_input_error(reader, path: Path) -> None:
    try:
        reader(path)
    except InputError as error:
        assert str(path) in str(error)


@given(data=st.data())
@_SETTINGS
def test_landmarks_reader_never_crashes(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "landmarks.csv"
    points = np.arange(4 * 3 * 2, dtype=float).reshape(4, 3, 2)
    write_landmarks(path, [f"{i}.jpg" for i in range(4)], points, integer=True)
    path.write_text(mutate(path.read_text(), data))
    _assert_reads_or_input_error(read_landmarks, path)


@given(data=st.data())
@_SETTINGS
def test_test_points_reader_never_crashes(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "test_points.csv"
    write_test_points(path, [f"{i}.jpg" for i in range(4)], np.array([[0, 1], [2, 3]] * 2))
    path.write_text(mutate(path.read_text(), data))
    _assert_reads_or_input_error(lambda p: read_test_points(p, n_points=5), path)


@given(data=st.data())
@_SETTINGS
def test_submission_reader_never_crashes(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "sub.csv"
    write_submission(path, [f"{i}.jpg" for i in range(4)], np.linspace(0, 9, 16).reshape(4, 2, 2))
    path.write_text(mutate(path.read_text(), data))
    _assert_reads_or_input_error(read_submission, path)


@given(data=st.data())
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_score_cli_never_tracebacks(tiny_competition, tmp_path: Path, data) -> None:
    data_dir, contents = tiny_competition
    names, k = contents["test"][0], contents["indices"].shape[1]
    sub = tmp_path / "sub.csv"
    write_submission(sub, names, np.zeros((len(names), k, 2)))
    sub.write_text(mutate(sub.read_text(), data))
    scores = tmp_path / "scores.csv"
    scores.unlink(missing_ok=True)
    result = CliRunner().invoke(
        cli, ["score", str(sub), "--data", str(data_dir), "--scores", str(scores)]
    )
    assert result.exit_code in (0, 1), result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    if result.exit_code == 1:
        assert not scores.exists()
        assert "Error" in result.output


@given(data=st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_blend_cli_never_tracebacks_or_half_writes(tmp_path: Path, data) -> None:
    names = [f"{i}.jpg" for i in range(5)]
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_submission(first, names, np.linspace(0, 9, 20).reshape(5, 2, 2))
    write_submission(second, names, np.linspace(1, 10, 20).reshape(5, 2, 2))
    second.write_text(mutate(second.read_text(), data))
    out = tmp_path / "blend.csv"
    out.unlink(missing_ok=True)
    result = CliRunner().invoke(cli, ["blend", str(first), str(second), "-o", str(out)])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 1:
        assert not out.exists()
        assert "b.csv" in result.output
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []
