"""A full disk is an error like any other: `Error: PATH: no space left on device`, exit 1, no
traceback, and the folder holds exactly what it held before (no temp file, no partial report).

The disk fills through `tests.helpers.fill_disk_on`: writes to the chosen file fail with ENOSPC
(or EDQUOT, EROFS) after a few bytes, leaving a partial temp file for the writer to remove.
"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.io.landmarks import read_landmarks
from ensemble.io.predictions import save_predictions
from tests.helpers import fails_cleanly, fill_disk_on, invoke_ens, write_demo_with_baseline

NO_SPACE = "no space left on device"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """demo/ (a tiny competition), base.csv (its baseline), runs/a and runs/b (val predictions)."""
    root = write_demo_with_baseline(tmp_path_factory.mktemp("disk_full"))
    truth = read_landmarks(root / "demo/train/landmarks.csv")
    rng = np.random.default_rng(0)
    for number, name in enumerate("ab"):
        points = truth.points + rng.normal(0, 1 + number, truth.points.shape)
        save_predictions(root / "runs" / name / "val_predictions.npz", truth.file_names, points)
    return root


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        (errno.ENOSPC, NO_SPACE),
        (errno.EDQUOT, "disk quota exceeded"),
        (errno.EROFS, "read-only file system"),
    ],
)
def test_blend_on_a_full_disk_names_its_output(root: Path, monkeypatch, code, problem) -> None:
    fill_disk_on(monkeypatch, "out.csv", code=code)
    fails_cleanly(
        root, ["blend", "base.csv", "base.csv", "-o", "out.csv"], f"Error: out.csv: {problem}\n"
    )


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["baseline", "--data", "demo", "-o", "b.csv"], "b.csv"),
        (["score", "base.csv", "--data", "demo", "--scores", "scores.csv"], "scores.csv"),
        (["show", "demo", "-o", "grid.png"], "grid.png"),
        (["make-demo", "more", "--train", "3", "--test", "2"], "landmarks.csv"),
    ],
)
def test_every_writer_on_a_full_disk_is_a_clean_error(
    root: Path, monkeypatch, args: list[str], name: str
) -> None:
    fill_disk_on(monkeypatch, name)
    output = fails_cleanly(root, args, f"{name}: {NO_SPACE}")
    assert output.strip().splitlines()[-1].startswith("Error: "), output


def test_analyze_writes_its_report_whole_or_not_at_all(root: Path, monkeypatch) -> None:
    args = ["analyze", "--data", "demo", "--runs", "runs", "-o", "report", "--bootstrap", "20"]
    fill_disk_on(monkeypatch, "points_regions.png")  # a plot in the middle of the report
    fails_cleanly(root, args, f"Error: {Path('report/points_regions.png')}: {NO_SPACE}")
    assert not (root / "report").exists()


def test_analyze_into_an_existing_folder_adds_nothing_on_a_full_disk(
    root: Path, monkeypatch
) -> None:
    (root / "report").mkdir()
    (root / "report" / "notes.txt").write_text("mine\n")
    args = ["analyze", "--data", "demo", "--runs", "runs", "-o", "report", "--bootstrap", "20"]
    with monkeypatch.context() as patch:
        fill_disk_on(patch, "report.html")  # the last file of the report
        fails_cleanly(root, args, f"{Path('report/report.html')}: {NO_SPACE}")
    result = invoke_ens(args)
    assert result.exit_code == 0, result.output
    names = {path.name for path in (root / "report").iterdir()}
    assert {"notes.txt", "report.html", "summary.json", "suspect_labels.csv"} <= names
    assert not [name for name in names if name.startswith(".")]


def test_a_full_disk_met_outside_the_writers_is_still_a_clean_error(
    root: Path, monkeypatch
) -> None:
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "somewhere.bin")

    monkeypatch.setattr("ensemble.competition.baseline.baseline_submission", full)
    output = fails_cleanly(root, ["baseline", "--data", "demo", "-o", "b.csv"])
    assert f"Error: somewhere.bin: {NO_SPACE}" in output


def test_other_os_errors_are_not_called_a_full_disk(root: Path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("ensemble.competition.baseline.baseline_submission", broken)
    result = CliRunner().invoke(cli, ["baseline", "--data", "demo", "-o", "b.csv"])
    assert isinstance(result.exception, OSError) and result.exception.errno == errno.EIO
