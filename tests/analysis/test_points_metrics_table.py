"""`ens analyze points`: the runs against the mean-shape baseline, and their other metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.document import fmt
from analysis.sections.points import points_section
from ensemble.competition.subsets import validation_subsets
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
        per_image = distance.mean(axis=1) / iod
        assert got["auc_08"] == pytest.approx(np.mean(np.maximum(0, 1 - per_image / 0.08)))
        assert got["fr_10"] == pytest.approx(np.mean(per_image > 0.10))


def test_scores_table_shows_the_mean_shape_baseline_and_the_poor_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    names = np.array([f"{i:03d}.png" for i in range(24)], dtype=object)
    sizes = rng.integers(40, 120, (24, 2)).astype(float)  # (width, height)
    truth = rng.uniform(0.2, 0.8, (24, 9, 2)) * sizes[:, None, :]
    images = tmp_path / "data" / "train" / "images"
    images.mkdir(parents=True)
    for name, (width, height) in zip(names, sizes.astype(int), strict=True):
        Image.new("RGB", (width, height)).save(images / name)
    write_landmarks(tmp_path / "data" / "train" / "landmarks.csv", names, truth)
    truth = truth.astype(np.float32).astype(np.float64)
    good = (truth + rng.normal(0, 1, truth.shape)).astype(np.float32)
    for run, predicted in (("good", good), ("stuck", good + 30)):
        save_predictions(tmp_path / "runs" / run / "val_predictions.npz", names, predicted)
    (tmp_path / "runs" / "stuck" / "summary.json").write_text(
        json.dumps({"health": {"status": "poor", "reason": "no better than the mean"}})
    )
    (tmp_path / "runs" / "good" / "summary.json").write_text(
        json.dumps({"health": {"status": "ok", "reason": ""}})
    )
    section = points_section(tmp_path / "runs", tmp_path / "data", n_boot=20)
    # by hand: the mean relative shape, scaled to each image, on the fixed 30-point subsets
    mean_shape = (truth / sizes[:, None, :]).mean(axis=0)[None] * sizes[:, None, :]
    subsets = validation_subsets(names, 9)
    rows = np.arange(24)[:, None]
    expected = np.mean((mean_shape[rows, subsets] - truth[rows, subsets]) ** 2)
    assert section.summary["baseline_score"] == pytest.approx(expected, rel=1e-9)
    table = next(b for b in section.blocks if getattr(b, "title", "").startswith("Validation"))
    by_run = {row[0]: row for row in table.rows}
    assert by_run["mean-shape baseline"][1] == fmt(expected)
    assert by_run["stuck"][5] == "poor: no better than the mean" and by_run["good"][5] == "ok"
    score = section.summary["runs"]["good"]["score"]
    assert by_run["good"][4] == f"{expected / score:.1f}x"
    assert "poor: stuck" in section.headline
