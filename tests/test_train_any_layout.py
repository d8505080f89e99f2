"""Training on a dataset of 7 landmarks with no layout file: NME and PCK by the face's box."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from test_models_faces import N_OVAL, draw_face, face_points

from ensemble.cli import cli
from ensemble.formats import read_landmarks, write_landmarks, write_test_points
from ensemble.predictions import load_predictions
from ensemble.subsets import draw_point_subsets

# Of the drawn face's landmarks: two eyes, the nose pair, the mouth corners and the chin.
SEVEN = [N_OVAL, N_OVAL + 1, N_OVAL + 2, N_OVAL + 3, N_OVAL + 4, N_OVAL + 5, 2]

CONFIG = """
[defaults]
crop_size = 32
batch_size = 16
val_fraction = 0.25
device = "cpu"

[[run]]
name = "cnn"
arch = "small_cnn_basic"
stages = [{epochs = 1, lr = 0.003}]
"""


def write_seven(root: Path, n_train: int = 48, n_test: int = 6) -> Path:
    """A data folder of drawn faces labelled with 7 of their landmarks."""
    rng = np.random.default_rng(0)
    for split, count in (("train", n_train), ("test", n_test)):
        (root / split / "images").mkdir(parents=True)
        names, shapes = [], []
        for i in range(count):
            width, height = (int(v) for v in rng.integers(48, 96, size=2))
            points = face_points(rng, width, height)
            names.append(f"{split}{i:03d}.jpg")
            draw_face(rng, width, height, points).save(root / split / "images" / names[-1])
            shapes.append(points[SEVEN])
        write_landmarks(root / split / "landmarks.csv", names, np.array(shapes))
    test_names = [f"test{i:03d}.jpg" for i in range(n_test)]
    write_test_points(
        root / "test" / "test_points.csv", test_names, draw_point_subsets(rng, n_test, 7, 3)
    )
    return root


def test_seven_points_get_bounding_box_nme_and_pck(tmp_path: Path) -> None:
    data = write_seven(tmp_path / "data")
    (tmp_path / "runs.toml").write_text(CONFIG)
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
