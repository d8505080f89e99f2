"""Kaggle Facial Keypoints: every command on a folder written by `ens import-fkd`."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from analysis.per_point import analyze_points
from ensemble.cli import cli
from ensemble.cli.show_grid import sample_landmark_rows
from ensemble.competition.layout import generic_layout
from ensemble.fkd.importer import import_fkd
from ensemble.fkd.layout import FKD_LAYOUT, coordinate_columns
from ensemble.io.landmarks import read_landmarks, write_landmarks
from ensemble.io.submission import read_submission
from ensemble.io.test_points import read_test_points
from ensemble.synthetic.fkd import make_fkd_demo


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory) -> Path:
    """Synthetic Kaggle files: 24 training rows (most with 4 of 15 keypoints), 6 test images."""
    raw = tmp_path_factory.mktemp("fkd_e2e") / "kaggle"
    make_fkd_demo(raw, n_train=24, n_test=6, seed=2)
    return raw


@pytest.fixture(scope="module")
def imported(kaggle: Path) -> Path:
    """The data folder `ens import-fkd` writes from `kaggle`."""
    out = kaggle.parent / "fkd"
    import_fkd(kaggle / "training.csv", kaggle / "test.csv", kaggle / "IdLookupTable.csv", out)
    return out


def ens(*args: str | Path):
    """Run `ens ARGS` in-process; returns click's result."""
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def hand_masked_mean(training_csv: Path, images: Path, names: list[str]) -> np.ndarray:
    """Per point: mean of x/width and y/height over the rows where that point is labelled."""
    raw = pd.read_csv(training_csv)[coordinate_columns()].to_numpy(np.float64)
    sizes = np.array([Image.open(images / name).size for name in names], dtype=np.float64)
    mean = np.empty((15, 2))
    for point in range(15):
        for axis in (0, 1):
            values = raw[:, 2 * point + axis] / sizes[:, axis]
            mean[point, axis] = values[~np.isnan(values)].mean()
    return mean


def test_baseline_is_the_per_point_mean_over_labelled_rows(kaggle, imported, tmp_path) -> None:
    out = tmp_path / "baseline.csv"
    result = ens("baseline", "--data", imported, "-o", out)
    assert result.exit_code == 0, result.output
    names = read_landmarks(imported / "train" / "landmarks.csv", allow_missing=True).file_names
    mean = hand_masked_mean(kaggle / "training.csv", imported / "train" / "images", list(names))
    raw = pd.read_csv(kaggle / "training.csv")[coordinate_columns()].to_numpy().reshape(-1, 15, 2)
    complete = ~np.isnan(raw).any(axis=(1, 2))
    assert not np.allclose(mean, (raw[complete] / 96).mean(axis=0), atol=1e-3)  # not complete rows
    requests = read_test_points(imported / "test" / "test_points.csv", n_points=15, ragged=True)
    submission = read_submission(out, allow_missing=True)
    assert list(submission.file_names) == list(requests.file_names)
    padding = ~requests.mask
    assert padding.any() and np.isnan(submission.values[padding]).all()
    for row, name in enumerate(requests.file_names):
        size = np.array(Image.open(imported / "test" / "images" / name).size, dtype=np.float64)
        wanted = requests.indices[row][requests.mask[row]]
        expected = mean[wanted] * size
        np.testing.assert_allclose(submission.values[row, : len(wanted)], expected, atol=5e-5)

    kaggle_csv = tmp_path / "kaggle.csv"
    lookup = kaggle / "IdLookupTable.csv"
    result = ens("export-fkd", out, "--lookup", lookup, "-o", kaggle_csv)
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(kaggle_csv)) == len(pd.read_csv(lookup))


def test_baseline_names_a_point_without_any_label(imported, tmp_path) -> None:
    data = tmp_path / "fkd"
    shutil.copytree(imported, data)
    labels_path = data / "train" / "landmarks.csv"
    labels = read_landmarks(labels_path, allow_missing=True)
    points = labels.points.copy()
    points[:, 7] = np.nan
    write_landmarks(labels_path, labels.file_names, points, allow_missing=True)
    out = tmp_path / "baseline.csv"
    result = ens("baseline", "--data", data, "-o", out)
    assert result.exit_code == 1
    assert f"{labels_path}: Point_M7 has no label in any image" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_show_draws_partly_labelled_rows(imported, tmp_path) -> None:
    labels_path = imported / "train" / "landmarks.csv"
    names, points = sample_landmark_rows(labels_path, n=100)
    labels = read_landmarks(labels_path, allow_missing=True)
    assert names == list(labels.file_names)
    np.testing.assert_array_equal(np.isnan(points), np.isnan(labels.points))
    assert np.isnan(points).any()
    out = tmp_path / "grid.png"
    result = ens("show", imported, "--n", "4", "-o", out)
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.format == "PNG"


def test_show_still_rejects_a_non_numeric_cell(imported, tmp_path) -> None:
    data = tmp_path / "fkd"
    shutil.copytree(imported, data)
    labels_path = data / "train" / "landmarks.csv"
    lines = labels_path.read_text().split("\n")
    fields = lines[2].split("\t")
    fields[1] = "abc"
    lines[2] = "\t".join(fields)
    labels_path.write_text("\n".join(lines))
    result = ens("show", data, "--n", "100", "-o", tmp_path / "grid.png")
    assert result.exit_code == 1
    assert f"{labels_path}, line 3: non-numeric landmark value" in result.output


def test_score_says_why_an_imported_folder_has_no_truth(imported, tmp_path) -> None:
    out = tmp_path / "baseline.csv"
    assert ens("baseline", "--data", imported, "-o", out).exit_code == 0
    result = ens("score", out, "--data", imported)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "written by `ens import-fkd`" in result.output and "ens export-fkd" in result.output


def test_uniformity_describes_ragged_requests(imported) -> None:
    result = ens("analyze", "uniformity", "--data", imported)
    assert result.exit_code == 0, result.output
    requests = read_test_points(imported / "test" / "test_points.csv", n_points=15, ragged=True)
    counts = requests.mask.sum(axis=1)
    frequency = np.bincount(counts)
    k = int(np.flatnonzero(frequency == frequency.max())[-1])  # the most common count
    other = int((counts != k).sum())
    assert other > 0
    assert f"{k} indices in most rows ({other} rows differ)" in result.output
    expected = counts.sum() / 15
    assert f"expected {expected:.4g} times (all indices of all rows / N)" in result.output


def test_points_section_says_what_each_image_is_scored_on() -> None:
    rng = np.random.default_rng(0)
    names = np.array([f"{i}.png" for i in range(8)])
    for layout, expected in ((FKD_LAYOUT, "all 15 landmarks"), (generic_layout(40), "30-index")):
        truth = rng.uniform(0, 96, (8, layout.n_points, 2))
        predictions = truth[None] + rng.normal(0, 1, (2, *truth.shape))
        result = analyze_points(["a", "b"], predictions, truth, names, layout, n_boot=10)
        assert result.scored_on.startswith(expected)


def test_show_test_split_says_import_fkd_writes_no_truth(imported, tmp_path) -> None:
    result = ens("show", imported, "--split", "test", "-o", tmp_path / "grid.png")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "(`ens import-fkd` writes none)" in result.output
    assert not (tmp_path / "grid.png").exists()


def test_leaderboard_fit_without_public_scores_says_how_to_get_them(tmp_path) -> None:
    scores = tmp_path / "scores.csv"
    scores.write_text("run,submission,val,public,private\na,a.csv,50.1,,\nb,b.csv,61.2,,\n")
    result = ens("analyze", "leaderboard", "--scores", scores)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "only 0 row(s) have both 'val' and 'public'" in result.output
    assert "by hand from the real leaderboard (Kaggle)" in result.output
