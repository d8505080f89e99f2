"""Training on a dataset of 7 landmarks with no layout file: NME and PCK by the face's box."""

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
from tests.helpers import SEVEN_CONFIG, write_seven


def test_seven_points_get_bounding_box_nme_and_pck(tmp_path: Path) -> None:
    data = write_seven(tmp_path / "data")
    (tmp_path / "runs.toml").write_text(SEVEN_CONFIG)
    torch.manual_seed(0)
    args = ["--data", str(data), "--config", str(tmp_path / "runs.toml")]
    result = CliRunner().invoke(
        cli, ["train-all", *args, "--out", str(tmp_path / "RUNS"), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    run = tmp_path / "RUNS" / "cnn"
    metrics = pd.read_csv(run / "metrics.csv")
    assert np.isfinite(metrics[["val_nme", "val_pck"]].to_numpy()).all()
    assert list(metrics["val_nme_norm"]) == ["bbox"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["val_nme_norm"] == "bbox"
    predictions = load_predictions(run / "val_predictions.npz")
    labels = read_landmarks(data / "train" / "landmarks.csv")
    position = {name: row for row, name in enumerate(labels.file_names)}
    truth = labels.points[[position[n] for n in predictions.file_names]].astype(np.float64)
    predicted = predictions.points.astype(np.float64)
    box = truth.max(axis=1) - truth.min(axis=1)  # (n, 2): w and h of the true landmarks
    ratio = np.linalg.norm(predicted - truth, axis=2) / np.sqrt(box[:, :1] * box[:, 1:])
    assert summary["val_nme"] == pytest.approx(ratio.mean(axis=1).mean(), rel=1e-5)
    assert summary["val_pck"] == pytest.approx(np.mean(ratio <= 0.1), abs=1e-9)
