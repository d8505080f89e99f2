"""Edge cases of real inputs: zero-spread robust z, a misplaced --n-points, keypoints off the
image, a broken run config.toml, a split that leaves one image to train on.

Each failing case checks the exit code, the message, that no traceback is printed and that
the folder holds exactly the files and folders it held before.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.errors import InputError
from ensemble.synthetic.demo import make_demo
from ensemble.synthetic.fkd import make_fkd_demo
from models.data import check_split, validation_mask
from tests.helpers import fails_cleanly, write_faces

FKD_INPUTS = ["--test", "fkd/test.csv", "--lookup", "fkd/IdLookupTable.csv", "-o", "out"]
TINY_RUNS = """
[defaults]
restarts = 0  # health and restarts are tested in tests/models/test_restarts.py
crop_size = 32
batch_size = 16
val_fraction = 0.5
device = "cpu"

[[run]]
name = "cnn"
arch = "resnet18"
stages = [{epochs = 1, lr = 0.004}]
"""


def _leaderboard(root: Path, rows: list[tuple[float, float]]) -> str:
    """`ens analyze leaderboard` on a scores.csv of (val, public) rows; its output."""
    lines = [f"r{i},{val},{public}" for i, (val, public) in enumerate(rows)]
    (root / "scores.csv").write_text("run,val,public\n" + "\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["analyze", "leaderboard", "--scores", "scores.csv"])
    assert result.exit_code == 0, result.output
    return result.output


def _z_cells(output: str) -> list[str]:
    """The 'robust z' cell of each row of the 'Runs on the line' table."""
    table = output.split("Runs on the line")[1].splitlines()
    return [line.split()[6] for line in table if re.match(r"r\d+ ", line)]


def test_three_runs_with_zero_spread_show_no_robust_z(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    output = _leaderboard(tmp_path, [(1.0, 1.0), (2.0, 2.0), (3.0, 3.5)])
    assert _z_cells(output) == ["n/a"] * 3
    assert "674500000" not in output and "n/a with fewer than 5 runs" in output


def test_zero_mad_falls_back_to_the_mean_absolute_deviation(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    x = np.arange(1.0, 6.0)
    y = np.array([1.0, 2.0, 3.0, 4.0, 9.0])  # four runs on y = x: the Theil-Sen line
    output = _leaderboard(tmp_path, list(zip(x.tolist(), y.tolist(), strict=True)))
    residuals = y - x
    centred = residuals - np.median(residuals)
    assert np.median(np.abs(centred)) == 0
    z = centred / (1.253314 * np.mean(np.abs(centred)))
    assert _z_cells(output) == [f"{value:+.2f}" for value in z]
    assert "mean absolute deviation) when the MAD is 0" in output
    assert "OUTLIER" in output and abs(z[-1]) > 3.5


@pytest.fixture
def demo(tmp_path: Path, monkeypatch) -> Path:
    """A working directory with a tiny demo competition (demo/) and a scores.csv."""
    monkeypatch.chdir(tmp_path)
    make_demo(tmp_path / "demo", n_train=12, n_test=4, progress=False, n_jobs=1)
    (tmp_path / "scores.csv").write_text("run,val,public\na,1,1\nb,2,2\nc,3,3\n")
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["analyze", "--n-points", "5", "leaderboard", "--scores", "scores.csv"],
        ["analyze", "--n-points", "5", "points", "--runs", "demo", "--data", "demo"],
    ],
)
def test_n_points_is_refused_where_it_has_no_effect(demo: Path, args: list[str]) -> None:
    output = fails_cleanly(
        demo, args, f"--n-points has no effect on `ens analyze {args[3]}`", code=2
    )
    assert "it applies to `ens analyze uniformity` and the full report" in output


def test_n_points_sets_n_of_the_uniformity_section(demo: Path) -> None:
    points = ["--test-points", "demo/test/test_points.csv"]
    result = CliRunner().invoke(cli, ["analyze", "--n-points", "971", "uniformity", *points])
    assert result.exit_code == 0, result.output
    assert "in [0, 971) (checked while reading; N from --n-points)" in result.output
    fails_cleanly(
        demo, ["analyze", "--n-points", "500", "uniformity", *points], "out of range [0, 500)"
    )


@pytest.fixture
def fkd(tmp_path: Path, monkeypatch) -> Path:
    """A working directory with tiny Kaggle files in fkd/."""
    monkeypatch.chdir(tmp_path)
    make_fkd_demo(tmp_path / "fkd", n_train=6, n_test=3)
    return tmp_path


def _training_with(root: Path, line: int, column: int, value: str) -> str:
    """fkd/bad.csv: training.csv with cell `column` (0-based) of `line` replaced by `value`."""
    lines = (root / "fkd" / "training.csv").read_text().split("\n")
    cells = lines[line - 1].split(",")
    cells[column] = value
    lines[line - 1] = ",".join(cells)
    (root / "fkd" / "bad.csv").write_text("\n".join(lines))
    return "fkd/bad.csv"


@pytest.mark.parametrize("value", ["1000000", "192", "-96.5"])
def test_keypoint_outside_the_image_is_refused(fkd: Path, value: str) -> None:
    training = _training_with(fkd, 5, 0, value)
    fails_cleanly(
        fkd,
        ["import-fkd", "--training", training, *FKD_INPUTS],
        f"fkd/bad.csv, line 5: keypoint left_eye_center_x = {value} (column 1) lies outside "
        "the 96x96 image: keypoints must be in [-96, 192)",
    )


@pytest.mark.parametrize("value", ["-96", "191.9"])
def test_keypoint_within_the_margin_is_kept(fkd: Path, value: str) -> None:
    training = _training_with(fkd, 5, 1, value)
    result = CliRunner().invoke(cli, ["import-fkd", "--training", training, *FKD_INPUTS])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda pixels: pixels.rsplit(" ", 1)[0], "Image has 9215 pixel values, expected 9216"),
        (lambda pixels: "x1 " + pixels.split(" ", 1)[1], "pixel 1 of Image is 'x1'"),
    ],
)
def test_bad_image_cell_names_file_and_line(fkd: Path, edit, message: str) -> None:
    lines = (fkd / "fkd" / "training.csv").read_text().split("\n")
    pixels = lines[3].rsplit(",", 1)[1]
    training = _training_with(fkd, 4, 30, edit(pixels))
    fails_cleanly(
        fkd, ["import-fkd", "--training", training, *FKD_INPUTS], f"bad.csv, line 4: {message}"
    )


def test_resume_with_invalid_config_toml(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = 'name = "r"\narch = [oops\n'
    config = tmp_path / "RUNS" / "r" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(text)
    with pytest.raises(tomllib.TOMLDecodeError) as error:
        tomllib.loads(text)
    expected = f"RUNS/r/config.toml: not valid TOML: {error.value}"
    fails_cleanly(tmp_path, ["train", "--resume", "RUNS/r"], expected)


@pytest.fixture
def three_images(tmp_path: Path, monkeypatch) -> Path:
    """A working directory with 3 training images (data/) and runs.toml (val_fraction 0.5)."""
    monkeypatch.chdir(tmp_path)
    write_faces(tmp_path / "data", n_train=3, n_test=2)
    (tmp_path / "runs.toml").write_text(TINY_RUNS)
    return tmp_path


SPLIT_MESSAGE = (
    "data/train/landmarks.csv: val_fraction 0.5 of 3 image(s) leaves 1 to train on and 2 to "
    "validate; training needs at least 2 (one batch-norm batch): lower val_fraction to at most "
    "0.33 or add training images"
)


def test_train_refuses_a_split_with_one_training_image(three_images: Path) -> None:
    args = ["train", "--config", "runs.toml", "--run", "cnn", "--data", "data", "--out", "RUNS"]
    fails_cleanly(three_images, [*args, "--quiet"], SPLIT_MESSAGE)


def test_train_all_refuses_a_split_with_one_training_image(three_images: Path) -> None:
    args = ["train-all", "--config", "runs.toml", "--data", "data", "--out", "RUNS", "--quiet"]
    output = fails_cleanly(three_images, args, SPLIT_MESSAGE)
    assert "cnn: FAILED" in output


def test_split_of_two_images_asks_for_more_images() -> None:
    mask = validation_mask(2, 0.1, 0)
    with pytest.raises(InputError, match="leaves 1 to train on and 1 to validate") as error:
        check_split(Path("train/landmarks.csv"), mask, "val_fraction 0.1")
    assert str(error.value).endswith(": add training images")
    check_split(Path("train/landmarks.csv"), validation_mask(3, 0.33, 0), "val_fraction 0.33")


def test_split_counts_only_decodable_training_images() -> None:
    mask = validation_mask(4, 0.25, 0)  # one image validates, three train
    usable = np.ones(4, dtype=bool)
    usable[np.flatnonzero(~mask)[0]] = False  # one training image is undecodable
    check_split(Path("train/landmarks.csv"), mask, "val_fraction 0.25", usable)
    usable[np.flatnonzero(~mask)[1]] = False
    with pytest.raises(InputError, match=r"leaves 1 to train on and 1 to validate \(2 undeco"):
        check_split(Path("train/landmarks.csv"), mask, "val_fraction 0.25", usable)
