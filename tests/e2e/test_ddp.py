"""One run over 2 processes: torchrun, gloo, DistributedDataParallel, rank 0 alone writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data.distributed import DistributedSampler

from models.distributed import parameter_digest, shard
from models.registry import build_model
from tests.helpers import write_faces

CONFIG = """
[defaults]
restarts = 0  # health and restarts are tested in tests/models/test_restarts.py
crop_size = 24
batch_size = 4
val_fraction = 0.2
device = "cpu"
checkpoint_every = 3

[[run]]
name = "r"
arch = "small_cnn_basic"
stages = [{epochs = 2, optimizer = "adam", lr = 0.003}]
"""
RUN_FILES = {
    "config.toml",
    "metrics.csv",
    "val_predictions.npz",
    "test_predictions.npz",
    "submission.csv",
    "summary.json",
    "checkpoints/last.pt",
    "checkpoints/best.pt",
}


@pytest.mark.parametrize(("n", "parts"), [(10, 2), (11, 2), (7, 3), (2, 4)])
def test_shards_are_distributed_samplers(n: int, parts: int) -> None:
    rows = np.arange(100, 100 + n)
    for part in range(parts):
        sampler = DistributedSampler(range(n), num_replicas=parts, rank=part, shuffle=False)
        np.testing.assert_array_equal(shard(rows, part, parts), rows[list(sampler)])


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`ens train` launched by torchrun with 2 CPU processes (gloo)."""
    root = tmp_path_factory.mktemp("ddp")
    data = write_faces(root / "data", n_train=40, n_test=4)
    (root / "runs.toml").write_text(CONFIG)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", "-m", "ensemble", "train"]
    command += ["--config", str(root / "runs.toml"), "--name", "r", "--data", str(data)]
    command += ["--out", str(root / "RUNS"), "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "RUNS" / "r", done


def test_only_rank_zero_writes_and_prints(ddp_run) -> None:
    run, done = ddp_run
    files = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()}
    assert files == RUN_FILES  # nothing twice, no leftover temporary file
    assert done.stdout.count("r: val score") == 1
    assert len(pd.read_csv(run / "metrics.csv")) == 2


def test_replicas_end_with_the_weights_rank_zero_saved(ddp_run) -> None:
    run, _ = ddp_run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2
    rank0, rank1 = summary["replica_digests"]
    # each rank hashed its own parameters after the last step; rank 0 saved last.pt then
    checkpoint = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    model = build_model("small_cnn_basic", checkpoint["n_points"]).model
    model.load_state_dict(checkpoint["model"])
    assert rank0 == rank1 == parameter_digest(model)
    # 32 training images over 2 ranks in batches of 4: 4 steps an epoch
    assert checkpoint["step"] == 8 and len(checkpoint["rng_ranks"]) == 2
    assert not torch.equal(
        checkpoint["rng_ranks"][0]["pipeline"], checkpoint["rng_ranks"][1]["pipeline"]
    )
