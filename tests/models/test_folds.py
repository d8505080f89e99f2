"""K-fold runs (`folds = K`) and `exclude`: out-of-fold predictions, fold-mean test predictions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.errors import InputError
from ensemble.io.landmarks import read_landmarks
from ensemble.io.predictions import load_predictions
from ensemble.io.submission import read_submission
from ensemble.io.test_points import read_test_points
from models.config import parse_config
from tests.helpers import direct_score, write_faces

CONFIG = """
[defaults]
restarts = 0  # health and restarts are tested in tests/models/test_restarts.py
crop_size = 32
batch_size = 16
folds = 3
device = "cpu"
{extra}

[[run]]
name = "cnn"
arch = "small_cnn_basic"
uncertainty = "laplace"
stages = [{{epochs = 1, lr = 0.003}}]
"""


def train_all(data: Path, root: Path, extra: str = "", *args: str):
    """Run `ens train-all` with the K-fold config; the CLI result."""
    (root / "runs.toml").write_text(CONFIG.format(extra=extra))
    command = ["train-all", "--data", str(data), "--config", str(root / "runs.toml")]
    return CliRunner().invoke(cli, [*command, "--out", str(root / "RUNS"), "--quiet", *args])


@pytest.fixture(scope="module")
def folded(tmp_path_factory) -> tuple[Path, Path]:
    """A data folder and the runs folder of one 3-fold train-all."""
    root = tmp_path_factory.mktemp("folds")
    data = write_faces(root / "data", n_train=45, n_test=6)
    result = train_all(data, root)
    assert result.exit_code == 0, result.output
    return data, root / "RUNS"


def test_out_of_fold_predictions_cover_every_train_image_once(folded) -> None:
    data, runs = folded
    labels = read_landmarks(data / "train" / "landmarks.csv")
    oof = load_predictions(runs / "cnn" / "val_predictions.npz")
    assert list(oof.file_names) == list(labels.file_names)  # every image, in train order
    held_out = [
        load_predictions(runs / "cnn" / f"fold_{k}" / "val_predictions.npz") for k in range(3)
    ]
    names = [set(fold.file_names) for fold in held_out]
    assert sum(len(n) for n in names) == len(labels)
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    position = {name: row for row, name in enumerate(oof.file_names)}
    for fold in held_out:  # each row is the prediction of the model that held the image out
        rows = [position[name] for name in fold.file_names]
        np.testing.assert_array_equal(oof.points[rows], fold.points)
        np.testing.assert_array_equal(oof.tta_spread[rows], fold.tta_spread)
    assert oof.tta_spread.shape == (len(labels),) and (oof.tta_spread > 0).all()
    for fold in held_out:  # each fold's sigmas, calibrated on its own held-out images
        rows = [position[name] for name in fold.file_names]
        np.testing.assert_array_equal(oof.sigma[rows], fold.sigma)


def test_each_fold_trained_without_its_held_out_images(folded) -> None:
    data, runs = folded
    for k in range(3):
        summary = json.loads((runs / "cnn" / f"fold_{k}" / "summary.json").read_text())
        held_out = load_predictions(runs / "cnn" / f"fold_{k}" / "val_predictions.npz")
        assert summary["n_val"] == len(held_out.file_names) == 15
        assert summary["n_train"] == 45 - 15


def test_test_predictions_are_the_mean_of_the_fold_models(folded) -> None:
    data, runs = folded
    folds = [
        load_predictions(runs / "cnn" / f"fold_{k}" / "test_predictions.npz") for k in range(3)
    ]
    mean = load_predictions(runs / "cnn" / "test_predictions.npz")
    expected = (folds[0].points.astype(np.float64) + folds[1].points + folds[2].points) / 3
    np.testing.assert_allclose(mean.points, expected, atol=1e-4)
    assert not np.allclose(folds[0].points, folds[1].points)  # three different models
    requests = read_test_points(data / "test" / "test_points.csv")
    submission = read_submission(runs / "cnn" / "submission.csv")
    rows = np.arange(len(requests.indices))[:, None]
    np.testing.assert_allclose(
        submission.values.reshape(len(rows), -1, 2), mean.points[rows, requests.indices], atol=1e-3
    )


def test_summary_holds_fold_scores_and_the_out_of_fold_score(folded) -> None:
    data, runs = folded
    summary = json.loads((runs / "cnn" / "summary.json").read_text())
    labels = read_landmarks(data / "train" / "landmarks.csv")
    oof = load_predictions(runs / "cnn" / "val_predictions.npz")
    assert summary["folds"] == 3 and len(summary["fold_val_scores"]) == 3
    expected = direct_score(oof.file_names, oof.points.astype(np.float64), labels.points)
    assert summary["val_score"] == pytest.approx(expected, rel=1e-6)
    fold_scores = [
        json.loads((runs / "cnn" / f"fold_{k}" / "summary.json").read_text())["val_score"]
        for k in range(3)
    ]
    assert summary["fold_val_scores"] == fold_scores
    assert summary["val_score"] == pytest.approx(np.mean(fold_scores), rel=1e-6)  # equal folds
    assert summary["excluded"] == {"count": 0, "file": None}
    assert len(summary["fold_sigma_temperatures"]) == 3
    inside = np.abs(oof.points - labels.points) <= np.log(20) * oof.sigma[..., None]
    assert summary["val_sigma_coverage_95"] == pytest.approx(inside.mean(), abs=1e-3)


def test_a_rerun_trains_only_the_unfinished_folds(folded, tmp_path) -> None:
    data, runs = folded
    import shutil

    copy = tmp_path / "RUNS"
    shutil.copytree(runs, copy)
    (copy / "cnn" / "summary.json").unlink()
    shutil.rmtree(copy / "cnn" / "fold_2")
    kept = (copy / "cnn" / "fold_0" / "metrics.csv").stat().st_mtime_ns
    result = train_all(data, tmp_path)
    assert result.exit_code == 0, result.output
    assert (copy / "cnn" / "fold_0" / "metrics.csv").stat().st_mtime_ns == kept
    assert (copy / "cnn" / "fold_2" / "summary.json").is_file()
    again = load_predictions(copy / "cnn" / "val_predictions.npz")
    assert len(again.file_names) == 45


def test_blend_fit_uses_every_out_of_fold_row(folded, tmp_path) -> None:
    data, runs = folded
    result = CliRunner().invoke(
        cli, ["blend", "--fit", str(runs), "-o", str(tmp_path / "blend.csv")]
    )
    assert result.exit_code == 0, result.output
    weights = json.loads((tmp_path / "blend.weights.json").read_text())
    assert weights["validation_images"] == 45


def test_exclude_removes_exactly_the_listed_images(tmp_path) -> None:
    data = write_faces(tmp_path / "data", n_train=30, n_test=4)
    names = read_landmarks(data / "train" / "landmarks.csv").file_names
    (tmp_path / "suspects.csv").write_text(
        "file_name,label_error,spread,score,suspect\n"
        f"{names[4]},900,2,9,1\n{names[7]},800,3,8,1\n{names[1]},20,9,1,0\n"
    )
    result = train_all(data, tmp_path, 'exclude = "suspects.csv"')
    assert result.exit_code == 0, result.output
    run = tmp_path / "RUNS" / "cnn"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["excluded"] == {"count": 2, "file": str((tmp_path / "suspects.csv").resolve())}
    oof = load_predictions(run / "val_predictions.npz")
    assert set(oof.file_names) == set(names) - {names[4], names[7]}
    for k in range(3):
        fold = json.loads((run / f"fold_{k}" / "summary.json").read_text())
        assert fold["excluded"]["count"] == 2
    assert (
        sum(
            json.loads((run / f"fold_{k}" / "summary.json").read_text())["n_train"]
            for k in range(3)
        )
        == 2 * 28
    )  # each kept image trains in two of the three folds


def test_exclude_with_an_unknown_name_names_the_file_and_line(tmp_path) -> None:
    data = write_faces(tmp_path / "data", n_train=12, n_test=2)
    (tmp_path / "ex.csv").write_text("file_name\ntrain00001.jpg\nnot_there.jpg\n")
    result = train_all(data, tmp_path, 'exclude = "ex.csv"')
    assert result.exit_code == 1
    assert "ex.csv, line 3: 'not_there.jpg' is not an image of train/landmarks.csv" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "RUNS" / "cnn" / "summary.json").exists()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[defaults]\nfolds = 1", "0 (one validation split) or an integer K >= 2"),
        ("[defaults]\nfolds = 3\nval_fraction = 0.2", "'folds' replaces 'val_fraction'"),
        ('[defaults]\n[[run]]\nname = "a"\narch = "x"\nfolds = 3', "must be set in [defaults]"),
    ],
)
def test_bad_folds_configs_are_refused(table: str, message: str) -> None:
    if "[[run]]" not in table:
        table += '\n[[run]]\nname = "a"\narch = "x"'
    with pytest.raises(InputError, match=re.escape(message)) as error:
        parse_config(table, "runs.toml")
    assert "runs.toml" in str(error.value)


def test_more_folds_than_images_is_refused(tmp_path) -> None:
    data = write_faces(tmp_path / "data", n_train=4, n_test=2)
    (tmp_path / "runs.toml").write_text(CONFIG.format(extra="").replace("folds = 3", "folds = 5"))
    command = ["train-all", "--data", str(data), "--config", str(tmp_path / "runs.toml")]
    result = CliRunner().invoke(cli, [*command, "--out", str(tmp_path / "R2"), "--quiet"])
    assert result.exit_code == 1
    assert "folds = 5 needs at least 5 images, found 4" in result.output
    assert not (tmp_path / "R2").exists()


def test_predict_redoes_every_fold_and_the_root(folded, tmp_path) -> None:
    data, runs = folded
    import shutil

    copy = tmp_path / "RUNS"
    shutil.copytree(runs, copy)
    before = load_predictions(copy / "cnn" / "val_predictions.npz")
    result = CliRunner().invoke(cli, ["predict", "--run", str(copy / "cnn"), "--no-tta", "--quiet"])
    assert result.exit_code == 0, result.output
    plain = load_predictions(copy / "cnn" / "val_predictions.npz")
    assert plain.tta_spread is None and not np.allclose(plain.points, before.points)
    assert json.loads((copy / "cnn" / "fold_1" / "summary.json").read_text())["tta"] is False
    result = CliRunner().invoke(cli, ["predict", "--run", str(copy / "cnn"), "--quiet"])
    assert result.exit_code == 0, result.output
    again = load_predictions(copy / "cnn" / "val_predictions.npz")
    np.testing.assert_allclose(again.points, before.points, atol=1e-4)
    summary = json.loads((copy / "cnn" / "summary.json").read_text())
    assert summary["tta"] is True and summary["folds"] == 3


def test_resume_continues_the_unfinished_fold_only(folded, tmp_path) -> None:
    data, runs = folded
    import shutil

    copy = tmp_path / "RUNS"
    shutil.copytree(runs, copy)
    before = load_predictions(copy / "cnn" / "val_predictions.npz")
    (copy / "cnn" / "summary.json").unlink()
    (copy / "cnn" / "fold_1" / "summary.json").unlink()  # fold 1 "crashed" after its last.pt
    kept = (copy / "cnn" / "fold_0" / "metrics.csv").stat().st_mtime_ns
    result = CliRunner().invoke(cli, ["train", "--resume", str(copy / "cnn"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (copy / "cnn" / "fold_0" / "metrics.csv").stat().st_mtime_ns == kept
    assert json.loads((copy / "cnn" / "fold_1" / "summary.json").read_text())["resumed"] is True
    after = load_predictions(copy / "cnn" / "val_predictions.npz")
    np.testing.assert_array_equal(after.points, before.points)
