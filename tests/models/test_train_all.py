"""`ens train-all`, `ens predict` and `ens prepare` end to end on a tiny drawn-face dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.io.landmarks import read_landmarks
from ensemble.io.predictions import load_predictions
from ensemble.io.run_folder import find_runs
from ensemble.io.scores_table import read_scores
from ensemble.io.submission import read_submission
from ensemble.io.test_points import read_test_points
from tests.helpers import direct_score, write_faces

pytestmark = pytest.mark.slow  # train-all runs end to end: `pytest -m "not slow"` skips it

CONFIG = """
[defaults]
restarts = 0  # health and restarts are tested in tests/models/test_restarts.py
crop_size = 32
batch_size = 16
val_fraction = 0.15
device = "cpu"

[[run]]
name = "cnn"
arch = "small_cnn_basic"
in_channels = 1
stages = [{epochs = 8, optimizer = "adamw", lr = 0.004, scheduler = "onecycle"}]

[[run]]
name = "staged"
arch = "small_cnn_basic"
patience = 1
grad_clip = 1.0
tta = false
stages = [{epochs = 2, lr = 0.003}, {epochs = 1, optimizer = "sgd", lr = 0.001}]
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, object]:
    """Data folder, runs folder and the CLI result of one train-all."""
    root = tmp_path_factory.mktemp("train")
    data = write_faces(root / "data", n_train=160, n_test=12)
    (root / "runs.toml").write_text(CONFIG)
    torch.manual_seed(0)
    result = CliRunner().invoke(
        cli,
        [
            "train-all",
            "--data",
            str(data),
            "--config",
            str(root / "runs.toml"),
            "--out",
            str(root / "RUNS"),
            "--quiet",
        ],
    )
    return data, root / "RUNS", result


def baseline_score(data: Path, val_names: np.ndarray) -> float:
    """The mean-shape baseline on the validation images, computed directly with numpy."""
    from PIL import Image

    labels = read_landmarks(data / "train" / "landmarks.csv")
    sizes = np.array([Image.open(data / "train" / "images" / n).size for n in labels.file_names])
    is_val = np.isin(labels.file_names, val_names)
    mean = (labels.points[~is_val] / sizes[~is_val, None]).mean(axis=0)
    position = {n: i for i, n in enumerate(labels.file_names)}
    rows = [position[n] for n in val_names]
    predicted = mean[None] * sizes[rows, None]
    return direct_score(val_names, predicted, labels.points[rows])


def test_train_all_writes_every_run_file(trained) -> None:
    data, runs, result = trained
    assert result.exit_code == 0, result.output
    assert [r.name for r in find_runs(runs)] == ["cnn", "staged"]
    run = runs / "cnn"
    for name in (
        "config.toml",
        "metrics.csv",
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "val_predictions.npz",
        "test_predictions.npz",
        "submission.csv",
        "summary.json",
    ):
        assert (run / name).is_file(), name
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.columns) == [
        "stage",
        "epoch",
        "lr",
        "train_loss",
        "val_mse_crop",
        "val_score",
        "val_rmse",
        "val_mae",
        "val_nme",
        "val_pck",
        "val_auc08",
        "val_fr08",
        "val_auc10",
        "val_fr10",
        "val_nme_norm",
        "seconds",
        "images_per_s",
        "events",
    ]
    assert len(metrics) == 8
    summary = json.loads((run / "summary.json").read_text())
    assert summary["arch"] == "small_cnn_basic" and summary["tta"] is True
    assert summary["best_epoch"] == int(metrics["val_score"].idxmin()) + 1
    assert find_runs(runs)[0].config()["data"] == str(data.resolve())


def test_short_run_beats_the_mean_shape_baseline_well(trained) -> None:
    data, runs, _ = trained
    predictions = load_predictions(runs / "cnn" / "val_predictions.npz")
    baseline = baseline_score(data, predictions.file_names)
    summary = json.loads((runs / "cnn" / "summary.json").read_text())
    assert summary["baseline_val_score"] == pytest.approx(baseline, rel=1e-9)
    assert summary["val_score"] < 0.4 * baseline


def test_val_score_is_the_leaderboard_metric_on_original_pixels(trained) -> None:
    data, runs, _ = trained
    scores = read_scores(runs / "scores.csv").set_index("run")
    labels = read_landmarks(data / "train" / "landmarks.csv")
    position = {n: i for i, n in enumerate(labels.file_names)}
    for name in ("cnn", "staged"):
        predictions = load_predictions(runs / name / "val_predictions.npz")
        truth = labels.points[[position[n] for n in predictions.file_names]]
        expected = direct_score(predictions.file_names, predictions.points.astype(float), truth)
        assert scores.loc[name, "val"] == pytest.approx(expected, rel=1e-5)
        assert scores.loc[name, "submission"] == f"{name}/submission.csv"
    cnn = set(load_predictions(runs / "cnn" / "val_predictions.npz").file_names)
    assert cnn == set(load_predictions(runs / "staged" / "val_predictions.npz").file_names)


def test_submission_holds_the_requested_points_of_the_test_predictions(trained) -> None:
    data, runs, _ = trained
    requests = read_test_points(data / "test" / "test_points.csv")
    submission = read_submission(runs / "cnn" / "submission.csv")
    predictions = load_predictions(runs / "cnn" / "test_predictions.npz")
    assert list(submission.file_names) == list(requests.file_names)
    rows = np.arange(len(requests))[:, None]
    expected = predictions.points.astype(float)[rows, requests.indices]
    np.testing.assert_allclose(submission.values, expected, atol=5e-5)


def test_staged_run_switches_optimizer_and_checkpoint_loads_weights_only(trained) -> None:
    _, runs, _ = trained
    metrics = pd.read_csv(runs / "staged" / "metrics.csv")
    assert metrics["stage"].iloc[0] == 1 and metrics["stage"].iloc[-1] == 2
    checkpoint = torch.load(runs / "staged" / "checkpoints" / "last.pt", weights_only=True)
    for key in (
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "stage",
        "epoch",
        "step",
        "rng",
        "best_score",
        "flip_perm",
        "config",
    ):
        assert key in checkpoint, key
    assert checkpoint["optimizer"]["param_groups"][0]["nesterov"] is True  # the SGD stage


def test_rerun_skips_finished_runs_and_predict_redoes_a_run(trained) -> None:
    data, runs, _ = trained
    stamp = (runs / "cnn" / "summary.json").stat().st_mtime_ns
    result = CliRunner().invoke(
        cli,
        [
            "train-all",
            "--data",
            str(data),
            "--config",
            str(runs.parent / "runs.toml"),
            "--out",
            str(runs),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (runs / "cnn" / "summary.json").stat().st_mtime_ns == stamp
    before = load_predictions(runs / "cnn" / "val_predictions.npz").points
    result = CliRunner().invoke(cli, ["predict", "--run", str(runs / "cnn"), "--quiet"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(
        load_predictions(runs / "cnn" / "val_predictions.npz").points, before, atol=1e-3
    )
    result = CliRunner().invoke(cli, ["predict", "--run", str(runs / "cnn"), "--no-tta", "--quiet"])
    assert result.exit_code == 0 and "(tta False)" in result.output
    summary = json.loads((runs / "cnn" / "summary.json").read_text())
    assert summary["tta"] is False
    assert read_scores(runs / "scores.csv").set_index("run").loc["cnn", "val"] == pytest.approx(
        summary["val_score"], rel=1e-5
    )


def test_prepare_and_bad_config_messages_through_the_cli(trained, tmp_path: Path) -> None:
    data, _, _ = trained
    result = CliRunner().invoke(cli, ["prepare", "--data", str(data), "--size", "24", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "train 24px: 160 images" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[[run]]\nname = "x"\narch = "resnet18"\nlr = 0.1\n')
    result = CliRunner().invoke(cli, ["train-all", "--data", str(data), "--config", str(bad)])
    assert result.exit_code == 1
    assert "bad.toml: [[run]] 'x': unknown key 'lr'; allowed:" in result.output
    assert "Traceback" not in result.output
