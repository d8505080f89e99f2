"""Kaggle Facial Keypoints end to end: synthetic Kaggle files -> import -> train -> export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.fkd.importer import import_fkd
from ensemble.fkd.kaggle_files import read_lookup
from ensemble.io.landmarks import read_landmarks
from ensemble.io.predictions import load_predictions
from ensemble.io.submission import read_submission
from ensemble.io.test_points import read_test_points
from ensemble.synthetic.fkd import make_fkd_demo

CONFIG = """
[defaults]
restarts = 0  # health and restarts are tested in tests/models/test_restarts.py
crop_size = 96
in_channels = 1
batch_size = 16
val_fraction = 0.25
device = "cpu"
loss = "smooth_l1"
patience = 2
augment = {flip = true, rotation = 30.0, scale = 0.1, shift = 0.05, saturation = 0.0}
stages = [{epochs = 2, optimizer = "adamw", lr = 0.003, weight_decay = 1e-4}]

[[run]]
name = "cnn"
arch = "small_cnn_basic"
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Kaggle files, the imported data folder and the runs folder of one short train-all."""
    root = tmp_path_factory.mktemp("fkd_train")
    kaggle, data = root / "kaggle", root / "data"
    make_fkd_demo(kaggle, n_train=64, n_test=8, seed=0)
    import_fkd(kaggle / "training.csv", kaggle / "test.csv", kaggle / "IdLookupTable.csv", data)
    (root / "fkd.toml").write_text(CONFIG)
    torch.manual_seed(0)
    args = ["--data", str(data), "--config", str(root / "fkd.toml"), "--out", str(root / "RUNS")]
    result = CliRunner().invoke(cli, ["train-all", *args, "--quiet"])
    assert result.exit_code == 0, result.output
    return kaggle, data, root / "RUNS"


def truth_of(data: Path, names: np.ndarray) -> np.ndarray:
    """True training keypoints (NaN = missing) in the order of `names`."""
    labels = read_landmarks(data / "train" / "landmarks.csv", allow_missing=True)
    position = {name: row for row, name in enumerate(labels.file_names)}
    return labels.points[[position[name] for name in names]].astype(np.float64)


def test_training_on_partial_labels_gives_finite_masked_metrics(trained) -> None:
    _, data, runs = trained
    metrics = pd.read_csv(runs / "cnn" / "metrics.csv")
    assert len(metrics) == 2
    columns = ["train_loss", "val_score", "val_rmse", "val_mae", "val_nme", "val_pck"]
    assert np.isfinite(metrics[columns].to_numpy()).all()
    assert ((metrics["val_pck"] >= 0) & (metrics["val_pck"] <= 1)).all()
    state = torch.load(runs / "cnn" / "checkpoints" / "best.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    summary = json.loads((runs / "cnn" / "summary.json").read_text())
    predictions = load_predictions(runs / "cnn" / "val_predictions.npz")
    predicted = predictions.points.astype(np.float64)
    truth = truth_of(data, predictions.file_names)
    assert np.isnan(truth).any() and np.isfinite(predicted).all()
    present = ~np.isnan(truth)
    errors = predicted[present] - truth[present]
    assert summary["val_rmse"] == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-5)
    assert summary["val_mae"] == pytest.approx(np.mean(np.abs(errors)), rel=1e-5)
    per_image = []  # NME by hand: mean point distance / inter-ocular distance, per image
    for pred, true in zip(predicted, truth, strict=True):
        labelled = ~np.isnan(true).any(axis=1)
        if labelled[0] and labelled[1]:
            iod = np.linalg.norm(true[0] - true[1])
            per_image.append(np.linalg.norm(pred - true, axis=1)[labelled].mean() / iod)
    assert summary["val_nme"] == pytest.approx(np.mean(per_image), rel=1e-5)
    squared = np.where(present, (predicted - np.nan_to_num(truth)) ** 2, 0.0)
    per_row = squared.sum(axis=(1, 2)) / present.sum(axis=(1, 2))
    assert summary["val_score"] == pytest.approx(np.mean(per_row), rel=1e-5)  # k = all 15


def test_submission_leaves_the_ragged_padding_empty(trained) -> None:
    _, data, runs = trained
    requests = read_test_points(data / "test" / "test_points.csv", n_points=15, ragged=True)
    padding = requests.indices < 0
    assert padding.any()  # some images ask for fewer than 15 keypoints
    submission = read_submission(runs / "cnn" / "submission.csv", allow_missing=True)
    assert list(submission.file_names) == list(requests.file_names)
    np.testing.assert_array_equal(np.isnan(submission.values).any(axis=2), padding)
    predictions = load_predictions(runs / "cnn" / "test_predictions.npz")
    rows, cols = np.nonzero(~padding)
    expected = predictions.points[rows, requests.indices[rows, cols]].astype(np.float64)
    np.testing.assert_allclose(submission.values[rows, cols], expected, atol=5e-5)
    text = (runs / "cnn" / "submission.csv").read_text().splitlines()
    short = int(np.flatnonzero(padding.any(axis=1))[0])
    assert text[short + 1].endswith(",,") and "nan" not in text[short + 1].lower()


def test_export_gives_one_kaggle_row_per_lookup_row_inside_the_image(trained, tmp_path) -> None:
    kaggle, data, runs = trained
    out = tmp_path / "kaggle_submission.csv"
    args = ["--lookup", str(kaggle / "IdLookupTable.csv"), "-o", str(out)]
    result = CliRunner().invoke(cli, ["export-fkd", str(runs / "cnn" / "submission.csv"), *args])
    assert result.exit_code == 0, result.output
    exported = pd.read_csv(out)
    lookup = pd.read_csv(kaggle / "IdLookupTable.csv")
    assert list(exported.columns) == ["RowId", "Location"]
    assert exported["RowId"].tolist() == lookup["RowId"].tolist()
    assert exported["Location"].between(0, 96).all()
    table = read_lookup(kaggle / "IdLookupTable.csv")
    predictions = load_predictions(runs / "cnn" / "test_predictions.npz")
    row_of = {name: row for row, name in enumerate(predictions.file_names)}
    images = [row_of[f"{image_id}.png"] for image_id in table.image_ids.tolist()]
    expected = np.clip(predictions.points[images, table.points, table.axes].astype(float), 0, 96)
    np.testing.assert_allclose(exported["Location"], expected, atol=1e-4)
    solution = pd.read_csv(kaggle / "solution.csv")
    rmse = np.sqrt(np.mean((exported["Location"] - solution["Location"]) ** 2))
    assert np.isfinite(rmse) and rmse < 48
