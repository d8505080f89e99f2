"""Resume: a run SIGKILLed mid-epoch and resumed ends exactly like an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.io.predictions import load_predictions
from models.guard import KILL_STEP_ENV
from tests.helpers import write_faces

pytestmark = pytest.mark.slow  # a run killed mid-epoch and resumed: `pytest -m "not slow"` skips it

# 48 images, 7 of them validation: 41 training images = 6 batches of 8 (the last one 1 image,
# dropped) -> 5 steps an epoch. Dropout and augmentation (blur, noise and occlusion included)
# draw from the torch and pipeline RNGs; the cosine schedule steps every batch behind a warm-up
# of 8 steps that the kill at step 8 interrupts; the weights' EMA is checkpointed; the second
# stage switches to SGD.
CONFIG = """
[defaults]
crop_size = 24
batch_size = 8
val_fraction = 0.15
device = "cpu"
checkpoint_every = 3
ema_decay = 0.9
restarts = 0
augment = {occlusion = 0.5, blur = 1.0, noise = 0.05}

[[run]]
name = "r"
arch = "small_cnn_basic"
head_hidden = [16]
head_dropout = 0.2

[[run.stages]]
epochs = 2
optimizer = "adam"
lr = 0.003
scheduler = "cosine-warm-restarts"
warmup_epochs = 1.5

[[run.stages]]
epochs = 1
optimizer = "sgd"
lr = 0.001
scheduler = "step"
"""
TIMING = ["seconds", "images_per_s"]


def train_all(data: Path, config: Path, out: Path, *extra: str) -> None:
    """`ens train-all` in this process."""
    args = ["train-all", "--data", str(data), "--config", str(config), "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--quiet", *extra])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path, Path]:
    """Data, config, an uninterrupted run folder and a killed-then-resumed run folder."""
    root = tmp_path_factory.mktemp("resume")
    data = write_faces(root / "data", n_train=48, n_test=4)
    config = root / "runs.toml"
    config.write_text(CONFIG)
    train_all(data, config, root / "A")
    env = {**os.environ, KILL_STEP_ENV: "8"}
    command = [sys.executable, "-m", "ensemble", "train", "--config", str(config), "--run", "r"]
    command += ["--data", str(data), "--out", str(root / "B"), "--quiet"]
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return data, config, root / "A" / "r", root / "B" / "r"


def test_killed_run_left_a_mid_epoch_checkpoint(runs) -> None:
    _, _, _, killed = runs
    checkpoint = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)
    loop = checkpoint["loop"]
    # killed after step 8: the last save was the checkpoint_every save at step 6 (batch 1 of
    # epoch 2), not an epoch end
    assert (loop["step"], loop["global_epoch"], loop["batch"]) == (6, 1, 1)
    assert len(loop["metrics"]) == 1 and not (killed / "summary.json").exists()
    assert len(pd.read_csv(killed / "metrics.csv")) == 1


def test_resumed_run_matches_the_uninterrupted_run_bit_for_bit(runs) -> None:
    data, config, whole, killed = runs
    train_all(data, config, killed.parent, "--resume")
    assert json.loads((killed / "summary.json").read_text())["resumed"]
    for name in ("last.pt", "best.pt"):
        a = torch.load(whole / "checkpoints" / name, weights_only=True)
        b = torch.load(killed / "checkpoints" / name, weights_only=True)
        for weights in ("model", "ema"):
            assert a[weights].keys() == b[weights].keys()
            for key in a[weights]:
                assert torch.equal(a[weights][key], b[weights][key]), (name, weights, key)
        assert a["step"] == b["step"] == 15
        assert torch.equal(a["pipeline_rng"], b["pipeline_rng"])
        assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    metrics_a = pd.read_csv(whole / "metrics.csv")
    metrics_b = pd.read_csv(killed / "metrics.csv")
    assert len(metrics_b) == 3  # no row twice
    pd.testing.assert_frame_equal(metrics_a.drop(columns=TIMING), metrics_b.drop(columns=TIMING))
    predictions_a = load_predictions(whole / "val_predictions.npz").points
    np.testing.assert_array_equal(
        predictions_a, load_predictions(killed / "val_predictions.npz").points
    )


def test_train_resume_refuses_a_changed_config_and_a_missing_checkpoint(runs, tmp_path) -> None:
    data, config, whole, _ = runs
    changed = tmp_path / "changed.toml"
    changed.write_text(CONFIG.replace("lr = 0.003", "lr = 0.01"))
    copy = tmp_path / "runs"
    args = ["train", "--config", str(changed), "--run", "r", "--data", str(data)]
    result = CliRunner().invoke(cli, [*args, "--out", str(copy), "--quiet"])
    assert result.exit_code == 0, result.output  # a fresh run with the new config
    (copy / "r" / "summary.json").unlink()
    copy_config = (copy / "r" / "config.toml").read_text()
    (copy / "r" / "config.toml").write_text(copy_config.replace("lr = 0.01", "lr = 0.003"))
    result = CliRunner().invoke(cli, ["train", "--resume", str(copy / "r"), "--quiet"])
    assert result.exit_code == 1
    assert "last.pt: cannot resume: 'stages' was" in result.output
    (copy / "r" / "checkpoints" / "last.pt").unlink()
    result = CliRunner().invoke(cli, ["train", "--resume", str(copy / "r"), "--quiet"])
    assert result.exit_code == 1 and "last.pt: no checkpoint to resume from" in result.output
