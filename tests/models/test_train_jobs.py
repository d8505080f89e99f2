"""`ens train-all --jobs 2`: two runs at once in worker processes, the CPU cores split."""

from __future__ import annotations

import json
import os

import pytest
import torch
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.io.scores_table import read_scores
from models.config import RunConfig
from models.train_all import job_devices, run_device
from tests.helpers import write_faces

CONFIG = """
[defaults]
restarts = 0  # health and restarts are tested in tests/models/test_restarts.py
crop_size = 24
batch_size = 8
device = "cpu"
stages = [{epochs = 1, lr = 0.003}]

[[run]]
name = "a"
arch = "small_cnn_basic"

[[run]]
name = "b"
arch = "small_cnn_basic"
seed = 1

[[run]]
name = "c"
arch = "small_cnn_basic"
seed = 2
"""


def test_job_devices_split_the_cpu_cores(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    threads = max(1, (os.cpu_count() or 1) // 2)
    assert job_devices(2) == [("cpu", threads), ("cpu", threads)]


def test_job_devices_give_each_slot_a_gpu_and_cpu_runs_stay_on_the_cpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    threads = max(1, (os.cpu_count() or 1) // 3)
    slots = job_devices(3)
    assert slots == [("cuda:0", threads), ("cuda:1", threads), ("cuda:0", threads)]
    on_cpu, auto = RunConfig("a", "resnet18", device="cpu"), RunConfig("b", "resnet18")
    assert run_device(on_cpu, slots[1][0]) == "cpu"
    assert run_device(auto, slots[1][0]) == "cuda:1"


def test_jobs_train_every_run_in_parallel_and_fill_scores(tmp_path) -> None:
    data = write_faces(tmp_path / "data", n_train=24, n_test=3)
    (tmp_path / "runs.toml").write_text(CONFIG)
    args = ["train-all", "--data", str(data), "--config", str(tmp_path / "runs.toml")]
    result = CliRunner().invoke(
        cli, [*args, "--out", str(tmp_path / "RUNS"), "--jobs", "2", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    scores = read_scores(tmp_path / "RUNS" / "scores.csv").set_index("run")
    assert sorted(scores.index) == ["a", "b", "c"]
    for name in ("a", "b", "c"):
        summary = json.loads((tmp_path / "RUNS" / name / "summary.json").read_text())
        assert scores.loc[name, "val"] == pytest.approx(summary["val_score"], rel=1e-5)
        assert summary["device"] == f"cpu x{max(1, (os.cpu_count() or 1) // 2)}"
    a = json.loads((tmp_path / "RUNS" / "a" / "summary.json").read_text())["val_score"]
    b = json.loads((tmp_path / "RUNS" / "b" / "summary.json").read_text())["val_score"]
    assert a != b  # different seeds really trained separately
