"""Uncertainty heads: the NLL, calibration, coverage; runs whose sigma leaves locations alone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.competition.uncertainty import coverage, fit_temperature, interval_halfwidth, nll
from ensemble.io.landmarks import read_landmarks
from ensemble.io.predictions import load_predictions
from models.augment import BatchPipeline, unflip_points
from models.heads import split_outputs
from models.losses import ScaleNLL
from models.predict import PredictOptions, predict_views
from models.registry import build_model
from tests.helpers import write_faces


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_scale_nll_equals_a_hand_computation(kind: str) -> None:
    rng = np.random.default_rng(0)
    predicted, target = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 4, 2))
    target[1, 2, 0] = np.nan  # a missing label counts for nothing
    log_sigma = rng.normal(scale=0.3, size=(3, 4))
    value = ScaleNLL(kind)(
        torch.tensor(predicted, requires_grad=True), torch.tensor(target), torch.tensor(log_sigma)
    )
    error = np.abs(predicted - target)
    sigma = np.exp(log_sigma)[..., None]
    terms = (0.5 * (error / sigma) ** 2 if kind == "gaussian" else error / sigma) + np.log(sigma)
    assert float(value) == pytest.approx(np.nanmean(terms), rel=1e-10)


def test_scale_nll_trains_only_the_scale() -> None:
    predicted = torch.zeros(2, 3, 2, requires_grad=True)
    log_sigma = torch.zeros(2, 3, requires_grad=True)
    ScaleNLL("laplace")(predicted, torch.full((2, 3, 2), 2.0), log_sigma).backward()
    assert predicted.grad is None or not predicted.grad.any()
    assert log_sigma.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_calibration_recovers_a_known_scale(kind: str) -> None:
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.5, 4.0, size=(4000, 7))  # what a model says, 3x too confident
    draw = rng.normal if kind == "gaussian" else rng.laplace
    errors = draw(0.0, 3.0 * sigma[..., None], size=(4000, 7, 2))
    temperature = fit_temperature(errors, sigma, kind)
    assert temperature == pytest.approx(3.0, rel=0.02)
    # the fitted temperature minimises the NLL
    assert nll(errors, sigma * temperature, kind) < nll(errors, sigma * temperature * 1.05, kind)
    assert nll(errors, sigma * temperature, kind) < nll(errors, sigma * temperature * 0.95, kind)
    assert coverage(errors, sigma * temperature, kind, 0.68) == pytest.approx(0.68, abs=0.01)
    assert coverage(errors, sigma * temperature, kind, 0.95) == pytest.approx(0.95, abs=0.01)


def test_interval_halfwidths_are_the_closed_forms() -> None:
    assert interval_halfwidth(0.95, "gaussian") == pytest.approx(1.959964, rel=1e-6)
    assert interval_halfwidth(0.68, "gaussian") == pytest.approx(0.994458, rel=1e-5)
    assert interval_halfwidth(0.95, "laplace") == pytest.approx(math.log(20), rel=1e-12)


def test_flip_tta_combines_the_views_sigmas() -> None:
    torch.manual_seed(0)
    perm = torch.tensor([1, 0, 2])
    model = build_model("small_cnn_basic", 3, uncertainty="laplace").model.eval()
    for module in model.modules():  # give the scale branch something to say
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=0.1)
    images = np.random.default_rng(0).integers(0, 255, size=(4, 32, 32, 3), dtype=np.uint8)
    pipeline = BatchPipeline((0.5,) * 3, (0.25,) * 3, 3)
    rows, cpu = np.arange(4), torch.device("cpu")
    views = predict_views(model, pipeline, images, rows, 3, PredictOptions(4, cpu, perm))
    with torch.no_grad():
        x = pipeline(torch.from_numpy(images))
        points, log_sigma = split_outputs(model(x), 3)
        mirrored, mirrored_log_sigma = split_outputs(model(x.flip(-1)), 3)
    s1, s2 = np.exp(log_sigma.numpy()), np.exp(mirrored_log_sigma.numpy())[:, perm.numpy()]
    np.testing.assert_allclose(views.sigma, np.sqrt((s1**2 + s2**2) / 2), rtol=1e-5)
    mean = (points + unflip_points(mirrored, perm)) / 2
    np.testing.assert_allclose(views.points, mean.numpy(), atol=1e-6)


CONFIG = """
[defaults]
restarts = 0  # health and restarts are tested in tests/models/test_restarts.py
crop_size = 32
batch_size = 16
val_fraction = 0.2
device = "cpu"
stages = [{epochs = 2, lr = 0.003}]

[[run]]
name = "plain"
arch = "small_cnn_basic"

[[run]]
name = "laplace"
arch = "small_cnn_basic"
uncertainty = "laplace"
"""


def test_a_run_with_sigma_keeps_the_plain_runs_locations(tmp_path: Path) -> None:
    data = write_faces(tmp_path / "data", n_train=60, n_test=6)
    (tmp_path / "runs.toml").write_text(CONFIG)
    command = ["train-all", "--data", str(data), "--config", str(tmp_path / "runs.toml")]
    result = CliRunner().invoke(cli, [*command, "--out", str(tmp_path / "RUNS"), "--quiet"])
    assert result.exit_code == 0, result.output
    runs = tmp_path / "RUNS"
    for name in ("val_predictions.npz", "test_predictions.npz"):
        plain, with_sigma = (
            load_predictions(runs / "plain" / name),
            load_predictions(runs / "laplace" / name),
        )
        np.testing.assert_array_equal(plain.points, with_sigma.points)  # detached scale
        assert plain.sigma is None
        assert with_sigma.sigma.shape == with_sigma.points.shape[:2]
        assert with_sigma.sigma.dtype == np.float32 and (with_sigma.sigma > 0).all()
    summary = json.loads((runs / "laplace" / "summary.json").read_text())
    val = load_predictions(runs / "laplace" / "val_predictions.npz")
    labels = read_landmarks(data / "train" / "landmarks.csv")
    position = {name: row for row, name in enumerate(labels.file_names)}
    errors = val.points - labels.points[[position[n] for n in val.file_names]]
    # saved sigmas are calibrated: refitting finds temperature 1, and the coverage is by hand
    assert fit_temperature(errors, val.sigma, "laplace") == pytest.approx(1.0, rel=1e-4)
    inside = np.abs(errors) <= -math.log(1 - 0.95) * val.sigma[..., None]
    assert summary["val_sigma_coverage_95"] == pytest.approx(inside.mean(), abs=1e-3)
    assert summary["sigma_temperature"] > 0
