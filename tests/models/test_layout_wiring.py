"""Training on a dataset that ships DATA/train/layout.json: its twins and eyes are used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.io.landmarks import read_landmarks
from ensemble.io.predictions import load_predictions
from tests.helpers import SEVEN_CONFIG, write_seven

# write_seven's points: 0, 1 the eyes, 2, 3 the nose pair, 4, 5 the mouth corners, 6 the chin.
LAYOUT = {"twins": [[0, 1], [2, 3], [4, 5]], "eyes": [0, 1]}


def test_a_layout_file_gives_the_flip_and_inter_ocular_nme(tmp_path: Path) -> None:
    data = write_seven(tmp_path / "data")
    (data / "train" / "layout.json").write_text(json.dumps(LAYOUT))
    (tmp_path / "runs.toml").write_text(SEVEN_CONFIG)
    torch.manual_seed(0)
    args = ["--data", str(data), "--config", str(tmp_path / "runs.toml")]
    result = CliRunner().invoke(
        cli, ["train-all", *args, "--out", str(tmp_path / "RUNS"), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    run = tmp_path / "RUNS" / "cnn"
    checkpoint = torch.load(run / "checkpoints" / "best.pt", weights_only=False)
    np.testing.assert_array_equal(checkpoint["flip_perm"].numpy(), [1, 0, 3, 2, 5, 4, 6])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["val_nme_norm"] == "inter-ocular"
    predictions = load_predictions(run / "val_predictions.npz")
    labels = read_landmarks(data / "train" / "landmarks.csv")
    position = {name: row for row, name in enumerate(labels.file_names)}
    truth = labels.points[[position[n] for n in predictions.file_names]].astype(np.float64)
    iod = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=1)
    ratio = np.linalg.norm(predictions.points - truth, axis=2) / iod[:, None]
    assert summary["val_nme"] == pytest.approx(ratio.mean(), rel=1e-5)


def test_a_bad_layout_file_stops_training_naming_it(tmp_path: Path) -> None:
    data = write_seven(tmp_path / "data")
    (data / "train" / "layout.json").write_text(json.dumps({"eyes": [0, 9]}))
    (tmp_path / "runs.toml").write_text(SEVEN_CONFIG)
    args = ["--data", str(data), "--config", str(tmp_path / "runs.toml")]
    result = CliRunner().invoke(
        cli, ["train-all", *args, "--out", str(tmp_path / "RUNS"), "--quiet"]
    )
    assert result.exit_code != 0
    assert "layout.json: eyes: point 9 is out of range [0, 7)" in result.output
