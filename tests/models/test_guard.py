"""Real-data trouble in training: spikes are skipped, divergence rolls back, a failure stays one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import models.train
from ensemble.cli import cli
from ensemble.io.landmarks import read_landmarks, write_landmarks
from ensemble.io.predictions import load_predictions
from ensemble.io.scores_table import read_scores
from models.data import epoch_order, validation_mask
from models.guard import SPIKE_STEPS_ENV
from tests.helpers import write_faces

# 64 images, 10 for validation: 54 training images -> 7 steps of 8 an epoch (the last batch of
# 6). A window of 4 arms the guard from the 5th step.
CONFIG = """
[defaults]
restarts = 0  # health and restarts are tested in tests/models/test_restarts.py
crop_size = 24
batch_size = 8
val_fraction = 0.15
device = "cpu"
divergence_window = 4
divergence_factor = {factor}
max_rollbacks = {max_rollbacks}

[[run]]
name = "r"
arch = "small_cnn_basic"
stages = [{{epochs = {epochs}, optimizer = "adam", lr = 0.004, warmup_epochs = 0}}]
"""
N_TRAIN = 64
STEPS_PER_EPOCH = 7


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """A tiny drawn-face dataset shared by the tests (each writes its own runs)."""
    return write_faces(tmp_path_factory.mktemp("guard") / "data", n_train=N_TRAIN, n_test=4)


def train_all(
    data: Path, root: Path, factor: float = 10, max_rollbacks: int = 2, epochs: int = 3
) -> object:
    """`ens train-all` of CONFIG in this process; the CLI result."""
    config = root / "runs.toml"
    config.write_text(CONFIG.format(factor=factor, max_rollbacks=max_rollbacks, epochs=epochs))
    args = ["train-all", "--data", str(data), "--config", str(config), "--out", str(root / "RUNS")]
    return CliRunner().invoke(cli, [*args, "--quiet"])


def summary_of(root: Path, run: str = "r") -> dict:
    """summary.json of a run."""
    return json.loads((root / "RUNS" / run / "summary.json").read_text())


def training_rows() -> np.ndarray:
    """The rows the runs train on (every image decodes)."""
    return np.flatnonzero(~validation_mask(N_TRAIN, 0.15, 0))


def batch_names(data: Path, step: int, reshuffles: tuple[int, ...] = ()) -> set[str]:
    """File names in the batch of a (1-based) step of the seed-0 run."""
    epoch, batch = divmod(step - 1, STEPS_PER_EPOCH)
    rows = epoch_order(training_rows(), 8, 0, epoch, reshuffles)[batch * 8 : batch * 8 + 8]
    return set(read_landmarks(data / "train" / "landmarks.csv").file_names[rows])


def test_a_planted_wrong_face_label_spikes_are_skipped_and_name_that_image(
    faces: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    subprocess.run(["cp", "-r", str(faces), str(data)], check=True)
    labels = read_landmarks(data / "train" / "landmarks.csv")
    points, row = labels.points.copy(), training_rows()[3]
    centre = points[row].mean(axis=0)  # the label moves onto a small face in the corner
    points[row] = (points[row] - centre) * 0.4 + [12.0, 12.0]
    write_landmarks(data / "train" / "landmarks.csv", labels.file_names, points)
    result = train_all(data, tmp_path, factor=3, epochs=6)
    assert result.exit_code == 0, result.output
    summary = summary_of(tmp_path)
    assert summary["spikes"] and not summary["rollbacks"] and not summary["warnings"]
    planted = str(labels.file_names[row])
    for spike in summary["spikes"]:
        assert spike["worst_image"] == planted
        assert planted in batch_names(data, spike["step"])
        assert spike["loss"] > 3 * spike["recent_mean"]
    events = pd.read_csv(tmp_path / "RUNS" / "r" / "metrics.csv")["events"].fillna("")
    assert events.str.count("spike at step").sum() == len(summary["spikes"])


def test_a_single_spike_is_logged_once_and_training_goes_on(
    faces: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(SPIKE_STEPS_ENV, "9")  # the 10th step: 3rd of epoch 2
    result = train_all(faces, tmp_path)
    assert result.exit_code == 0, result.output
    summary = summary_of(tmp_path)
    (spike,) = summary["spikes"]
    assert (spike["step"], spike["epoch"], spike["stage"]) == (10, 2, 1)
    assert spike["loss"] > 100 * spike["recent_mean"]  # the planted loss x 1000
    assert spike["worst_image"] in batch_names(faces, 10)
    assert summary["rollbacks"] == [] and summary["warnings"] == []
    events = pd.read_csv(tmp_path / "RUNS" / "r" / "metrics.csv")["events"].fillna("")
    assert events[0] == events[2] == ""
    assert events[1] == (
        f"spike at step 10: {spike['reason']}, worst image {spike['worst_image']}; skipped"
    )
    assert "r    trained  " in result.output  # the closing table


def test_the_spiked_step_makes_no_update(faces: Path, tmp_path: Path, monkeypatch) -> None:
    plain, spiked = tmp_path / "plain", tmp_path / "spiked"
    plain.mkdir(), spiked.mkdir()
    assert train_all(faces, plain, epochs=1).exit_code == 0
    monkeypatch.setenv(SPIKE_STEPS_ENV, str(STEPS_PER_EPOCH - 1))  # the epoch's last step
    assert train_all(faces, spiked, epochs=1).exit_code == 0
    a = torch.load(plain / "RUNS/r/checkpoints/last.pt", weights_only=True)
    b = torch.load(spiked / "RUNS/r/checkpoints/last.pt", weights_only=True)
    assert a["step"] == b["step"] == STEPS_PER_EPOCH  # both went through every batch
    adam_steps = [int(state["step"]) for state in b["optimizer"]["state"].values()]
    assert set(adam_steps) == {STEPS_PER_EPOCH - 1}  # the optimizer skipped one
    assert {int(state["step"]) for state in a["optimizer"]["state"].values()} == {STEPS_PER_EPOCH}
    assert any(not torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_a_loss_that_stays_high_rolls_back_and_the_replay_is_reshuffled(
    faces: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(SPIKE_STEPS_ENV, "8,9,10,11,12")  # 5 high steps in a row in epoch 2
    result = train_all(faces, tmp_path)
    assert result.exit_code == 0, result.output
    summary = summary_of(tmp_path)
    (rollback,) = summary["rollbacks"]
    assert rollback["reason"].endswith("for 5 steps in a row")
    assert (rollback["step"], rollback["restored_step"]) == (13, STEPS_PER_EPOCH)
    assert summary["spikes"] == []  # the spikes before the rollback were undone with it
    metrics = pd.read_csv(tmp_path / "RUNS" / "r" / "metrics.csv")
    assert len(metrics) == 3 and metrics["lr"].tolist() == pytest.approx([0.004, 0.002, 0.002])


def test_epoch_order_reshuffles_only_the_rest_of_the_epoch() -> None:
    rows = np.arange(100, 154)
    plain = epoch_order(rows, 8, 0, 1)
    np.testing.assert_array_equal(plain, epoch_order(rows, 8, 0, 1, ()))
    replay = epoch_order(rows, 8, 0, 1, (2,))
    np.testing.assert_array_equal(replay[:16], plain[:16])  # batches 0 and 1 were done
    assert sorted(replay[16:]) == sorted(plain[16:])
    assert not np.array_equal(replay[16:], plain[16:])
    again = epoch_order(rows, 8, 0, 1, (2, 4))
    np.testing.assert_array_equal(again[:32], replay[:32])
    assert not np.array_equal(again[32:], replay[32:])
    assert sorted(again) == sorted(rows)


def test_spent_rollbacks_end_the_run_on_its_best_checkpoint(
    faces: Path, tmp_path: Path, monkeypatch
) -> None:
    steps = range(2 * STEPS_PER_EPOCH + 1, 2 * STEPS_PER_EPOCH + 6)  # in epoch 3
    monkeypatch.setenv(SPIKE_STEPS_ENV, ",".join(map(str, steps)))
    result = train_all(faces, tmp_path, max_rollbacks=0)
    assert result.exit_code == 0, result.output
    summary = summary_of(tmp_path)
    (warning,) = summary["warnings"]
    assert warning.startswith(f"step {steps[-1] + 1} diverged (")
    assert "after 0 rollback(s): training stopped there; the run ends on its best checkpoint" in (
        warning
    )
    assert summary["epochs_run"] == 2 and summary["best_epoch"] in (1, 2)
    assert summary["val_score"] < summary["baseline_val_score"]
    run = tmp_path / "RUNS" / "r"
    assert len(load_predictions(run / "test_predictions.npz").file_names) == 4
    assert (run / "submission.csv").is_file()
    assert "r    trained (warning)" in result.output
    assert read_scores(tmp_path / "RUNS" / "scores.csv")["run"].tolist() == ["r"]


TWO_RUNS = """
[defaults]
restarts = 0  # health and restarts are tested in tests/models/test_restarts.py
crop_size = 24
batch_size = 8
device = "cpu"
stages = [{{epochs = 1, lr = 0.003}}]

[[run]]
name = "broken"
arch = "small_cnn_basic"
{broken}

[[run]]
name = "good"
arch = "small_cnn_basic"
"""


def train_two(data: Path, root: Path, broken: str, *extra: str) -> object:
    """`ens train-all` of TWO_RUNS (the first run's extra keys `broken`) in this process."""
    config = root / "runs.toml"
    config.write_text(TWO_RUNS.format(broken=broken))
    args = ["train-all", "--data", str(data), "--config", str(config), "--out", str(root / "RUNS")]
    return CliRunner().invoke(cli, [*args, "--quiet", *extra])


def test_a_broken_run_is_named_the_next_one_trains_and_a_rerun_retries_only_it(
    faces: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.pt"
    result = train_two(faces, tmp_path, f'weights_path = "{missing}"')
    assert result.exit_code == 1
    reason = f"{missing}: weights_path: no such file"
    assert f"broken: FAILED: {reason}" in result.output
    table = result.output[result.output.index("run     status") :].splitlines()
    assert table[1].split() == ["broken", "failed", *reason.split()]
    assert table[2].split()[:2] == ["good", "trained"]
    assert "1 of 2 run(s) failed (broken)" in result.output
    assert (tmp_path / "RUNS" / "good" / "summary.json").is_file()
    assert not (tmp_path / "RUNS" / "broken" / "summary.json").exists()
    assert read_scores(tmp_path / "RUNS" / "scores.csv")["run"].tolist() == ["good"]
    good_summary = (tmp_path / "RUNS" / "good" / "summary.json").read_bytes()

    fixed = train_two(faces, tmp_path, "")  # the cause fixed: only the failed run trains
    assert fixed.exit_code == 0, fixed.output
    assert "good: finished already" in fixed.output
    assert (tmp_path / "RUNS" / "good" / "summary.json").read_bytes() == good_summary
    assert not (tmp_path / "RUNS" / "broken" / "error.txt").exists()
    assert sorted(read_scores(tmp_path / "RUNS" / "scores.csv")["run"]) == ["broken", "good"]
    assert "finished before" in fixed.output and "broken  trained" in fixed.output


def test_out_of_memory_in_one_run_is_reported_and_the_next_run_goes_on(
    faces: Path, tmp_path: Path, monkeypatch
) -> None:
    build = models.train.build_for_run

    def out_of_memory_for_broken(config, *args, **kwargs):
        if config.name == "broken":
            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB\nmore"
            )
        return build(config, *args, **kwargs)

    monkeypatch.setattr(models.train, "build_for_run", out_of_memory_for_broken)
    result = train_two(faces, tmp_path, "")
    assert result.exit_code == 1
    reason = "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert f"broken: FAILED: {reason} (details in" in result.output
    trace = (tmp_path / "RUNS" / "broken" / "error.txt").read_text()
    assert trace.startswith("Traceback") and "out_of_memory_for_broken" in trace
    assert (tmp_path / "RUNS" / "good" / "summary.json").is_file()


@pytest.mark.slow  # whole runs in parallel processes
def test_under_jobs_a_broken_run_fails_alone(faces: Path, tmp_path: Path) -> None:
    result = train_two(faces, tmp_path, 'weights_path = "nowhere.pt"', "--jobs", "2")
    assert result.exit_code == 1
    table = result.output.splitlines()  # the workers' own lines go to their stdout
    assert table[1].split() == [
        "broken",
        "failed",
        "nowhere.pt:",
        "weights_path:",
        "no",
        "such",
        "file",
    ]
    assert table[2].split()[:2] == ["good", "trained"]
    assert (tmp_path / "RUNS" / "good" / "summary.json").is_file()
    assert read_scores(tmp_path / "RUNS" / "scores.csv")["run"].tolist() == ["good"]


@pytest.mark.slow  # whole runs in parallel processes
def test_under_torchrun_every_rank_agrees_and_the_next_run_trains(
    faces: Path, tmp_path: Path
) -> None:
    (tmp_path / "runs.toml").write_text(TWO_RUNS.format(broken='weights_path = "nowhere.pt"'))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", "-m", "ensemble", "train-all"]
    command += ["--config", str(tmp_path / "runs.toml"), "--data", str(faces)]
    command += ["--out", str(tmp_path / "RUNS"), "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0, done.stdout + done.stderr
    assert done.stdout.count("broken: FAILED: nowhere.pt: weights_path: no such file") == 1
    assert done.stdout.count("good: val score") == 1
    summary = json.loads((tmp_path / "RUNS" / "good" / "summary.json").read_text())
    assert summary["world_size"] == 2


def test_ens_train_reports_a_run_that_cannot_finish_without_a_traceback(
    faces: Path, tmp_path: Path, monkeypatch
) -> None:
    from models.guard import TrainingDiverged

    def diverges(config, *args, **kwargs):
        raise TrainingDiverged(config.name, "step 6 diverged (loss nan): nothing to end on")

    monkeypatch.setattr(models.train, "train_run", diverges)
    config = tmp_path / "runs.toml"
    config.write_text(CONFIG.format(factor=10, max_rollbacks=0, epochs=1))
    args = ["train", "--config", str(config), "--run", "r", "--data", str(faces)]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "RUNS"), "--quiet"])
    assert result.exit_code == 1
    assert "Error: r: step 6 diverged (loss nan): nothing to end on" in result.output
    assert "Traceback" not in result.output
