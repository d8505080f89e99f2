"""`ens analyze points`: the RMSE / MAE / NME / PCK table of the runs and their blend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.sections.points import points_section
from ensemble.io.landmarks import write_landmarks
from ensemble.io.predictions import save_predictions


def test_metrics_table_matches_numpy_for_runs_and_blend(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = [f"{i:03d}.png" for i in range(20)]
    truth = rng.uniform(10, 86, (20, 15, 2))  # 15 points: eye centres 0 and 1 (Kaggle FKD)
    write_landmarks(tmp_path / "data" / "train" / "landmarks.csv", names, truth)
    truth = truth.astype(np.float32).astype(np.float64)  # as written and read back
    runs = {}
    for number, run in enumerate(["a", "b"]):
        runs[run] = (truth + rng.normal(0, 1 + 2 * number, truth.shape)).astype(np.float32)
        save_predictions(tmp_path / "runs" / run / "val_predictions.npz", names, runs[run])
    section = points_section(tmp_path / "runs", tmp_path / "data", n_boot=20)
    table = next(b for b in section.blocks if getattr(b, "title", "").startswith("Other metrics"))
    assert [row[0] for row in table.rows] == ["a", "b", "blend (equal weights)"]
    blend = (runs["a"].astype(np.float64) + runs["b"]) / 2
    for name, predicted in [*runs.items(), ("blend (equal weights)", blend)]:
        got = section.summary["metrics"][name]
        error = predicted.astype(np.float64) - truth
        assert got["rmse"] == pytest.approx(np.sqrt(np.mean(error**2)), rel=1e-6)
        assert got["mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-6)
        distance = np.linalg.norm(error, axis=2)
        iod = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=1)
        assert got["nme"] == pytest.approx(np.mean(distance.mean(axis=1) / iod), rel=1e-6)
        assert got["pck"] == pytest.approx(np.mean(distance <= 0.1 * iod[:, None]))
