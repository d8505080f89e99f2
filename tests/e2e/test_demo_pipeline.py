"""`ens demo` end to end on a tiny dataset and config, and its rerun reusing what is done."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.cli.demo_pipeline import FIT_BLEND, SCORE_BLEND, closing_table

TINY_CONFIG = """
[defaults]
restarts = 0  # health and restarts are tested in tests/models/test_restarts.py
crop_size = 32
batch_size = 16
val_fraction = 0.25
device = "cpu"
augment = {flip = true, rotation = 5.0, scale = 0.05, shift = 0.02}

[[defaults.stages]]
epochs = 2
optimizer = "adamw"
lr = 0.003
weight_decay = 1e-4
scheduler = "onecycle"

[[run]]
name = "cnn_a"
arch = "small_cnn_basic"
in_channels = 1

[[run]]
name = "cnn_b"
arch = "small_cnn_residual"
in_channels = 1
seed = 1
"""


def test_demo_runs_every_stage_and_reuses_on_rerun(tmp_path: Path) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_CONFIG)
    out = tmp_path / "demo"
    args = ["demo", str(out), "--train", "60", "--test", "20", "--config", str(config)]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    for stage in ("1. make-demo", "3. train-all", "5. blend", "6. analyze", "7. results"):
        assert stage in first.output
    for path in ("baseline.csv", SCORE_BLEND, FIT_BLEND, "report/report.html"):
        assert (out / path).is_file(), path
    scores = pd.read_csv(out / "runs" / "scores.csv")
    assert list(scores["run"]) == ["cnn_a", "cnn_b"]
    assert scores[["val", "public", "private"]].notna().all().all()

    table = closing_table(out, out / "data", out / "runs")
    assert list(table["name"]) == [
        "mean-shape baseline",
        "cnn_a",
        "cnn_b",
        "blend: score-weighted",
        "blend: fitted",
    ]
    runs = table.set_index("name").loc[["cnn_a", "cnn_b"]]
    np.testing.assert_allclose(runs["public"], scores.set_index("run")["public"], rtol=1e-5)
    for run in ("cnn_a", "cnn_b"):
        summary = json.loads((out / "runs" / run / "summary.json").read_text())
        assert runs.loc[run, "health"] == summary["health"]["status"]

    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert "exists: reused" in second.output
    assert "finished already" in second.output
