"""Faults: a diverged step rolls back with a lower lr; broken images are reported and skipped."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from ensemble.cli import cli
from ensemble.io.landmarks import read_landmarks
from ensemble.io.predictions import load_predictions
from ensemble.io.submission import read_submission
from models.data import validation_mask
from models.guard import NAN_STEP_ENV, Verdict, judge_loss
from tests.helpers import bomb_png, write_faces

# 48 images, 7 for validation: 41 training images -> 5 steps of 8 an epoch (a last batch of
# one image is dropped); no schedule, so the lr column shows the rollback's reduction directly.
CONFIG = """
[defaults]
restarts = 0  # health and restarts are tested in tests/models/test_restarts.py
crop_size = 24
batch_size = 8
val_fraction = 0.15
device = "cpu"
max_rollbacks = {max_rollbacks}

[[run]]
name = "r"
arch = "small_cnn_basic"
stages = [{{epochs = 3, optimizer = "adam", lr = 0.004}}]
"""


def train_all(data: Path, root: Path, max_rollbacks: int = 2) -> object:
    """`ens train-all` of CONFIG in this process; the CLI result."""
    config = root / "runs.toml"
    config.write_text(CONFIG.format(max_rollbacks=max_rollbacks))
    args = ["train-all", "--data", str(data), "--config", str(config), "--out", str(root / "RUNS")]
    return CliRunner().invoke(cli, [*args, "--quiet"])


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """A tiny drawn-face dataset shared by the tests (each writes its own runs)."""
    return write_faces(tmp_path_factory.mktemp("faults") / "data", n_train=48, n_test=4)


def test_judge_loss_tells_a_spike_from_a_divergence() -> None:
    recent = [1.0, 2.0, 3.0]  # mean 2
    assert judge_loss(math.nan, recent, 0, 10, 3, 5).kind == "diverged"
    assert judge_loss(math.inf, [], 0, 0, 3, 5).reason == "non-finite loss (inf)"
    assert judge_loss(19.9, recent, 0, 10, 3, 5) == Verdict("ok", recent_mean=2.0)
    spike = judge_loss(20.5, recent, 0, 10, 3, 5)
    assert (spike.kind, spike.reason) == ("spike", "loss 20.5 > 10 x recent mean 2")
    assert judge_loss(20.5, recent, 3, 10, 3, 5).kind == "spike"  # 4 high steps in a row
    stays_high = judge_loss(20.5, recent, 4, 10, 3, 5)  # the 5th: divergence
    assert stays_high.kind == "diverged"
    assert stays_high.reason == "loss 20.5 > 10 x recent mean 2 for 5 steps in a row"
    assert judge_loss(20.5, recent, 0, 10, 3, 1).kind == "diverged"  # patience 1: old rule
    assert judge_loss(1e9, recent, 0, 10, 4, 5).kind == "ok"  # window not filled yet
    assert judge_loss(1e9, recent, 0, 0, 3, 5).kind == "ok"  # high-loss rule off


def test_planted_nan_rolls_back_once_with_a_lower_lr_and_the_run_finishes(
    faces: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(NAN_STEP_ENV, "7")  # the 8th step: 3rd step of epoch 2
    result = train_all(faces, tmp_path)
    assert result.exit_code == 0, result.output
    run = tmp_path / "RUNS" / "r"
    summary = json.loads((run / "summary.json").read_text())
    (rollback,) = summary["rollbacks"]
    assert rollback["reason"] == "non-finite loss (nan)"
    assert (rollback["step"], rollback["epoch"], rollback["restored_step"]) == (8, 2, 5)
    assert rollback["lr_scale"] == 0.5
    assert math.isfinite(summary["val_score"])
    metrics = pd.read_csv(run / "metrics.csv")
    assert len(metrics) == 3  # epoch 2 redone once, listed once
    assert metrics["lr"].tolist() == pytest.approx([0.004, 0.002, 0.002])
    events = metrics["events"].fillna("").tolist()
    assert events[0] == events[2] == ""
    assert events[1] == "rollback at step 8: non-finite loss (nan); lr x0.5"
    assert np.isfinite(metrics["train_loss"]).all()


def test_a_divergence_with_nothing_better_than_the_start_fails_the_run(
    faces: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(NAN_STEP_ENV, "2")  # in the first epoch: no best checkpoint yet
    result = train_all(faces, tmp_path, max_rollbacks=0)
    assert result.exit_code == 1
    reason = (
        "step 3 diverged (non-finite loss (nan)) after 0 rollback(s), and no epoch scored "
        "better than the mean-shape baseline"
    )
    assert f"r: FAILED: {reason}" in result.output
    assert "scores: none yet (no run finished)" in result.output  # no scores.csv to point at
    assert not (tmp_path / "RUNS" / "scores.csv").exists()
    assert not (tmp_path / "RUNS" / "r" / "summary.json").exists()
    assert reason in (tmp_path / "RUNS" / "r" / "error.txt").read_text()


def test_broken_images_are_reported_skipped_and_predicted_as_the_mean_shape(
    tmp_path: Path, no_hang
) -> None:
    data = write_faces(tmp_path / "data", n_train=48, n_test=4)
    images = data / "train" / "images"
    (images / "train00004.jpg").write_bytes(b"")  # zero-size
    truncated = (images / "train00009.jpg").read_bytes()
    (images / "train00009.jpg").write_bytes(truncated[: len(truncated) // 2])
    (images / "train00011.jpg").write_bytes(bomb_png(30000, 30000))  # a decompression bomb
    (images / "train00013.jpg").unlink()
    os.mkfifo(images / "train00013.jpg")  # opening it would wait for a writer forever
    test_image = data / "test" / "images" / "test00002.jpg"
    width, height = Image.open(test_image).size
    test_bytes = test_image.read_bytes()
    test_image.write_bytes(test_bytes[: len(test_bytes) // 3])  # header intact, data cut
    (data / "test" / "images" / "test00003.jpg").write_bytes(bomb_png(12000, 12000))
    with pytest.warns(UserWarning, match="test00002.jpg: image could not be decoded"):
        result = train_all(data, tmp_path)
    assert result.exit_code == 0, result.output
    run = tmp_path / "RUNS" / "r"
    summary = json.loads((run / "summary.json").read_text())
    bad = summary["bad_images"]
    broken = ["train00004.jpg", "train00009.jpg", "train00011.jpg", "train00013.jpg"]
    assert [b["file_name"] for b in bad["train"]] == broken
    assert all(b["reason"].startswith("cannot decode image") for b in bad["train"])
    assert "truncated" in bad["train"][1]["reason"]
    assert "decompression bomb" in bad["train"][2]["reason"]
    assert "FIFO" in bad["train"][3]["reason"]
    assert [b["file_name"] for b in bad["test"]] == ["test00002.jpg", "test00003.jpg"]
    assert "12,000 x 12,000" in bad["test"][1]["reason"]
    labels = read_landmarks(data / "train" / "landmarks.csv")
    is_val = validation_mask(48, 0.15, 0)
    good = ~np.isin(labels.file_names, broken)
    assert (
        summary["n_train"] == (~is_val & good).sum() and summary["n_val"] == (is_val & good).sum()
    )
    val_names = load_predictions(run / "val_predictions.npz").file_names
    assert set(val_names) == set(labels.file_names[is_val & good])
    # the mean shape, relative to the image size, of the training images, at the test image size
    train_rows = np.flatnonzero(~is_val & good)
    sizes = np.array([Image.open(images / n).size for n in labels.file_names[train_rows]])
    mean = (labels.points[train_rows] / sizes[:, None, :]).mean(axis=0) * [width, height]
    test = load_predictions(run / "test_predictions.npz")
    np.testing.assert_allclose(test.points[2], mean, rtol=1e-5)
    assert not np.allclose(test.points[1], mean, atol=0.5)
    # the bomb's size is not believed: the mean shape at the mean training image size
    relative = (labels.points[train_rows] / sizes[:, None, :]).mean(axis=0)
    np.testing.assert_allclose(test.points[3], relative * sizes.mean(axis=0), rtol=1e-5)
    assert len(read_submission(run / "submission.csv")) == 4
