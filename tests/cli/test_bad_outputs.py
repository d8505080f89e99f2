"""Bad outputs: no command writes over what it reads, and every bad -o is a clear error.

Each case checks the exit code (1, or 2 for a click usage error), that the message names the
file and the problem, that no traceback is printed and that the folder tree holds exactly the
bytes it held before.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import ensemble.io.temps
from ensemble.cli import cli
from ensemble.errors import InputError
from ensemble.io.atomic import atomic_open, atomic_path, check_output
from ensemble.io.landmarks import read_landmarks
from ensemble.io.predictions import save_predictions
from tests.helpers import fails_cleanly, write_demo_with_baseline

REFUSE = "refusing to write the output here"
TEST_POINTS = "demo/test/test_points.csv"
LANDMARKS = "demo/train/landmarks.csv"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """demo/ (a tiny competition), base.csv (its baseline) and runs/a, runs/b (val predictions)."""
    root = write_demo_with_baseline(tmp_path_factory.mktemp("outputs"))
    truth = read_landmarks(root / LANDMARKS)
    for number, name in enumerate("ab"):
        run = root / "runs" / name
        run.mkdir(parents=True)
        (run / "config.toml").write_text('data = "demo"\n')
        save_predictions(run / "val_predictions.npz", truth.file_names, truth.points + number)
    return root


def _is_input(output: str, name: str) -> str:
    return f"Error: {Path(output)}: {REFUSE}: it is an input of this command ({name})"


def _inside(output: str, folder: str) -> str:
    return f"Error: {Path(output)}: {REFUSE}: it lies inside {folder}, a folder this command reads"


def _first_image(root: Path) -> str:
    return f"demo/train/images/{sorted(os.listdir(root / 'demo/train/images'))[0]}"


# ---------------------------------------------------------------------------------------------
# an input, in any spelling


@pytest.mark.parametrize(
    ("output", "name"),
    [
        (TEST_POINTS, "test_points.csv"),
        (LANDMARKS, "landmarks.csv"),
        ("demo/test/../test/test_points.csv", "test_points.csv"),
        ("./demo//train/landmarks.csv", "landmarks.csv"),
    ],
)
def test_baseline_refuses_its_label_files(root: Path, output: str, name: str) -> None:
    fails_cleanly(root, ["baseline", "--data", "demo", "-o", output], _is_input(output, name))


def test_baseline_refuses_symlinks_and_hard_links_to_an_input(root: Path) -> None:
    os.symlink(root / TEST_POINTS, "points_link.csv")
    os.symlink(root / "demo", "demo_link")
    os.link(LANDMARKS, "hard.csv")
    args = ["baseline", "--data", "demo", "-o"]
    fails_cleanly(root, [*args, "points_link.csv"], _is_input("points_link.csv", "test_points.csv"))
    through = "demo_link/test/test_points.csv"
    fails_cleanly(root, [*args, through], _is_input(through, "test_points.csv"))
    fails_cleanly(root, [*args, "hard.csv"], _is_input("hard.csv", "landmarks.csv"))
    fails_cleanly(
        root,
        ["baseline", "--data", "demo_link", "-o", "demo/x.csv"],
        _inside("demo/x.csv", "demo_link"),
    )


def test_baseline_refuses_any_file_inside_the_data_folder(root: Path) -> None:
    fails_cleanly(
        root,
        ["baseline", "--data", "demo", "-o", "demo/base.csv"],
        _inside("demo/base.csv", "demo"),
    )


def test_show_refuses_an_image_it_draws(root: Path) -> None:
    image = _first_image(root)
    fails_cleanly(root, ["show", "demo", "--n", "2", "-o", image], _inside(image, "demo"))
    fails_cleanly(root, ["show", "demo", "-o", LANDMARKS], _is_input(LANDMARKS, "landmarks.csv"))


def test_blend_fit_refuses_the_run_folders_and_the_data(root: Path) -> None:
    npz = "runs/a/val_predictions.npz"
    fails_cleanly(root, ["blend", "--fit", "runs", "-o", npz], _inside(npz, "runs/a"))
    # nor RUNS itself: its scores.csv holds the public/private scores typed in by hand
    fails_cleanly(
        root,
        ["blend", "--fit", "runs", "-o", "runs/scores.csv"],
        _inside("runs/scores.csv", "runs"),
    )
    args = ["blend", "--fit", "runs", "--data", "demo", "-o", TEST_POINTS]
    fails_cleanly(root, args, _inside(TEST_POINTS, "demo"))
    # the data folder recorded in the runs' config.toml counts too
    fails_cleanly(root, ["blend", "--fit", "runs", "-o", TEST_POINTS], _inside(TEST_POINTS, "demo"))
    # OUT.weights.json is written too: it must not resolve to an input either
    os.symlink(root / npz, "x.weights.json")
    fails_cleanly(
        root, ["blend", "--fit", "runs", "-o", "x.csv"], _inside("x.weights.json", "runs/a")
    )


def test_blend_refuses_a_submission_and_scores_csv(root: Path) -> None:
    os.link("base.csv", "copy.csv")
    args = ["blend", "base.csv", "demo/../base.csv", "-o"]
    fails_cleanly(root, [*args, "copy.csv"], _is_input("copy.csv", "base.csv"))
    scores = root / "scores.csv"
    scores.write_text("submission,score\nbase.csv,1.0\n")
    fails_cleanly(
        root,
        ["blend", "--weights", "scores.csv", "-o", "scores.csv"],
        _is_input("scores.csv", "scores.csv"),
    )


def test_export_fkd_refuses_its_inputs_without_traceback(root: Path) -> None:
    Path("lookup.csv").write_text("RowId,ImageId,FeatureName,Location\n")
    args = ["export-fkd", "base.csv", "--lookup", "lookup.csv", "-o"]
    fails_cleanly(root, [*args, "base.csv"], _is_input("base.csv", "base.csv"))
    fails_cleanly(root, [*args, "./lookup.csv"], _is_input("./lookup.csv", "lookup.csv"))


def test_score_may_update_its_scores_but_not_a_submission(root: Path) -> None:
    args = ["score", "base.csv", "--data", "demo", "--scores"]
    fails_cleanly(root, [*args, "base.csv"], _is_input("base.csv", "base.csv"))
    fails_cleanly(root, [*args, "demo/scores.csv"], _inside("demo/scores.csv", "demo"))
    for _ in range(2):  # --scores is read and updated: that is what it is for
        result = CliRunner().invoke(cli, [*args, "scores.csv"])
        assert result.exit_code == 0, result.output
    assert len(pd.read_csv("scores.csv")) == 1


def test_analyze_refuses_a_report_inside_its_inputs(root: Path) -> None:
    args = ["analyze", "--data", "demo", "--runs", "runs", "--bootstrap", "20", "-o"]
    fails_cleanly(root, [*args, "demo"], _inside("demo", "demo"))
    fails_cleanly(root, [*args, "runs/report"], _inside("runs/report", "runs"))
    fails_cleanly(root, [*args, "base.csv"], "base.csv", "is a file", code=2)


def test_import_fkd_refuses_a_folder_holding_its_inputs(root: Path) -> None:
    kaggle = root / "kaggle"
    kaggle.mkdir()
    for name in ("training.csv", "test.csv", "IdLookupTable.csv"):
        (kaggle / name).write_text("x\n")
    args = ["import-fkd", "--training", "kaggle/training.csv", "--test", "kaggle/test.csv"]
    args += ["--lookup", "kaggle/IdLookupTable.csv", "-o", "kaggle"]
    fails_cleanly(root, args, f"Error: kaggle: {REFUSE}: it holds kaggle/training.csv, an input")


def test_prepare_refuses_a_cache_folder_that_would_replace_the_data(root: Path) -> None:
    os.rename("demo", "train_24")
    args = ["prepare", "--data", "train_24", "--size", "24", "--cache", ".", "--quiet"]
    fails_cleanly(root, args, f"Error: train_24: {REFUSE}: it holds train_24/train, an input")


def test_training_commands_refuse_runs_inside_the_data(root: Path) -> None:
    fails_cleanly(
        root,
        ["train-all", "--data", "demo", "--out", "demo/test/runs", "--quiet"],
        _inside("demo/test/runs", "demo"),
    )
    fails_cleanly(
        root,
        ["predict", "--run", "runs/a", "--data", "runs", "--quiet"],
        _inside("runs/a", "runs"),
    )


# ---------------------------------------------------------------------------------------------
# directories, empty names, unwritable folders


def test_a_directory_as_output(root: Path) -> None:
    fails_cleanly(root, ["blend", "base.csv", "-o", "runs"], "Error: runs: is a directory")
    fails_cleanly(
        root, ["baseline", "--data", "demo", "-o", "runs"], "runs", "is a directory", code=2
    )
    with pytest.raises(InputError, match="runs: is a directory"), atomic_open(root / "runs") as f:
        f.write("x")
    assert not [p for p in os.listdir(root) if p.startswith(".")]


@pytest.mark.parametrize(
    "args",
    [
        ["baseline", "--data", "demo", "-o", ""],
        ["blend", "base.csv", "-o", ""],
        ["show", "demo", "-o", ""],
        ["export-fkd", "base.csv", "--lookup", "base.csv", "-o", ""],
    ],
)
def test_an_empty_output_name(root: Path, args: list[str]) -> None:
    fails_cleanly(root, args, 'Error: "": output file name is empty')


def test_an_output_below_a_file(root: Path) -> None:
    fails_cleanly(
        root, ["blend", "base.csv", "-o", "base.csv/x.csv"], "base.csv/x.csv", "base.csv is a file"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any folder, read-only or not")
def test_a_read_only_folder(root: Path) -> None:
    locked = root / "locked"
    locked.mkdir(mode=0o500)
    try:
        fails_cleanly(
            root, ["blend", "base.csv", "-o", "locked/new/x.csv"], "folder locked is not writable"
        )
    finally:
        locked.chmod(0o700)


def _deny_writes_in(monkeypatch, folder: Path) -> None:
    """Make os.access say `folder` is not writable (tests run as root, where it always is)."""
    real = os.access
    monkeypatch.setattr(
        ensemble.io.atomic.os,
        "access",
        lambda path, mode, **kw: Path(path) != folder and real(path, mode, **kw),
    )


@pytest.mark.parametrize(
    "args",
    [
        ["baseline", "--data", "demo", "-o", "locked/new/x.csv"],
        ["blend", "base.csv", "-o", "locked/x.csv"],
        ["show", "demo", "-o", "locked/x.png"],
        ["score", "base.csv", "--data", "demo", "--scores", "locked/scores.csv"],
        ["make-demo", "locked/demo", "--train", "2", "--test", "2"],
        ["analyze", "--data", "demo", "-o", "locked/report"],
    ],
)
def test_an_unwritable_folder(root: Path, monkeypatch, args: list[str]) -> None:
    (root / "locked").mkdir()
    _deny_writes_in(monkeypatch, Path("locked"))
    fails_cleanly(root, args, "Error: locked/", ": folder locked is not writable")


def test_a_permission_error_while_writing_names_the_output(root: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ensemble.io.temps.tempfile, "mkstemp", refuse)
    fails_cleanly(
        root, ["blend", "base.csv", "-o", "x.csv"], "Error: x.csv: folder . is not writable"
    )
    monkeypatch.setattr(ensemble.io.temps.tempfile, "mkstemp", tempfile.mkstemp)
    below_a_file = root / "base.csv" / "x.csv"
    with (
        pytest.raises(InputError, match="x.csv: cannot write the output"),
        atomic_path(below_a_file),
    ):
        pass


# ---------------------------------------------------------------------------------------------
# check_output itself


def test_check_output_allows_ordinary_outputs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "test").mkdir(parents=True)
    (data / "test" / "test_points.csv").write_text("x\n")
    reads = [data / "test" / "test_points.csv"]
    check_output(tmp_path / "new" / "deeper" / "out.csv", reads, [data])
    check_output(tmp_path / "report", reads, [data], folder=True)
    check_output(tmp_path, [], [data], folder=True)  # a folder may hold a data folder
    with pytest.raises(InputError, match="it holds"):
        check_output(tmp_path, reads, folder=True)
    assert os.listdir(tmp_path) == ["data"]
