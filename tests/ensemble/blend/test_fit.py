"""Fitted blend weights: closed-form optimum, never worse than the best run, run folders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ensemble.blend import blend_runs, fit_runs, fit_weights
from ensemble.blend.fit import greedy_selection, quadratic_form, residual_matrix
from ensemble.competition.layout import FACE_971
from ensemble.competition.metric import validation_score
from ensemble.competition.subsets import validation_subsets
from ensemble.errors import InputError
from ensemble.io.submission import gather_points
from tests.helpers import image_names, make_runs, random_truth

N = 971


def test_inverse_variance_optimum_and_blend_beats_best():
    rng = np.random.default_rng(1)
    sigmas = np.array([1.0, 2.0, 3.0])
    truth = random_truth(rng, 200)
    predictions = truth[None] + sigmas[:, None, None, None] * rng.normal(size=(3, *truth.shape))
    names = image_names(200)
    fitted = fit_weights(predictions, truth, names)
    optimum = sigmas**-2 / (sigmas**-2).sum()  # closed form for independent noise
    assert np.allclose(fitted.weights[0], optimum, atol=0.03)
    # exact constrained optimum on the sample's own Q (interior): Q^-1 1 / 1^T Q^-1 1
    indices = validation_subsets(names, N)
    q = quadratic_form(residual_matrix(predictions, truth, indices)[0])
    exact = np.linalg.solve(q, np.ones(3))
    assert np.allclose(fitted.weights[0], exact / exact.sum(), atol=1e-5)
    blended = np.einsum("r,rnpc->npc", fitted.weights[0], predictions)
    singles = np.array([validation_score(names, p, truth) for p in predictions])
    assert validation_score(names, blended, truth) < 0.8 * singles.min()
    inverse = (1 / singles) / (1 / singles).sum()  # the score-weighted blend it must match
    scored = np.einsum("r,rnpc->npc", inverse, predictions)
    assert validation_score(names, blended, truth) <= validation_score(names, scored, truth)
    # the blend's score is w^T Q w
    w = fitted.weights[0]
    assert np.isclose(validation_score(names, blended, truth), w @ q @ w, rtol=1e-9)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("method", ["lsq", "greedy"])
def test_fitted_blend_never_worse_than_best_single_run(seed, method):
    rng = np.random.default_rng(seed)
    rows, runs = 40, int(rng.integers(2, 6))
    truth = random_truth(rng, rows)
    shared = rng.normal(size=truth.shape)  # strongly correlated errors, biases, one near-copy
    predictions = np.stack(
        [
            truth
            + rng.uniform(0.5, 3) * (rng.uniform(0, 1) * shared + rng.normal(size=truth.shape))
            + rng.normal(0, 2, size=2)
            for _ in range(runs)
        ]
    )
    if seed % 2:
        predictions[-1] = predictions[0] + 1e-3 * rng.normal(size=truth.shape)
    names = image_names(rows)
    fitted = fit_weights(predictions, truth, names, method=method)
    weights = fitted.weights[0]
    assert (weights >= 0).all() and np.isclose(weights.sum(), 1.0)
    blended = np.einsum("r,rnpc->npc", weights, predictions)
    best = min(validation_score(names, p, truth) for p in predictions)
    assert validation_score(names, blended, truth) <= best * (1 + 1e-12)


def test_greedy_selection_on_a_known_quadratic_form():
    q = np.diag([1.0, 4.0])  # optimum 0.8 / 0.2; greedy with 5 copies reaches it exactly
    assert np.allclose(greedy_selection(q, rounds=5), [0.8, 0.2])
    q = np.array([[1.0, 1.0], [1.0, 2.0]])  # identical errors plus extra: run 0 alone
    assert np.allclose(greedy_selection(q, rounds=10), [1.0, 0.0])


def test_per_region_weights_follow_the_region_quality():
    rng = np.random.default_rng(3)
    truth = random_truth(rng, 150)
    names = image_names(150)
    oval = FACE_971.region("face oval, lower left")
    noise_a = np.full(N, 4.0)
    noise_a[oval.start : oval.stop] = 1.0  # run a: good on one region, bad elsewhere
    noise_b = np.full(N, 1.0)
    noise_b[oval.start : oval.stop] = 4.0
    predictions = np.stack(
        [truth + s[None, :, None] * rng.normal(size=truth.shape) for s in (noise_a, noise_b)]
    )
    glob = fit_weights(predictions, truth, names)
    regional = fit_weights(predictions, truth, names, per_region=True, min_region_values=100)
    number = FACE_971.regions.index(oval)
    assert regional.per_region and regional.weights.shape == (len(FACE_971.regions), 2)
    assert regional.weights[number, 0] > 0.85
    assert regional.weights[FACE_971.regions.index(FACE_971.region("left eye")), 1] > 0.85
    assert set(regional.fallback) == {"forehead centre", "left pupil centre", "right pupil centre"}
    glob_score = validation_score(
        names, np.einsum("r,rnpc->npc", glob.weights[0], predictions), truth
    )
    point_weights = regional.point_weights()
    regional_blend = np.einsum("pr,rnpc->npc", point_weights, predictions)
    assert validation_score(names, regional_blend, truth) < glob_score


# ----------------------------------------------------------------------------------------------
# run folders


def test_fit_runs_reports_scores_and_writes_blend_and_weights(tmp_path):
    runs, data, test_names, indices, test_truth = make_runs(tmp_path, [1.0, 2.0, 4.0])
    report = fit_runs(runs)
    assert report.data_dir == data and report.n_images == 120
    assert report.val_scores.argmin() == 0
    assert report.blend_score < report.val_scores.min()
    output = tmp_path / "blend.csv"
    blend_runs(report, output)
    frame = pd.read_csv(output)
    assert frame["file_name"].tolist() == list(test_names)
    saved = json.loads((tmp_path / "blend.weights.json").read_text())
    assert saved["method"] == "lsq" and not saved["per_region"]
    assert np.allclose(list(saved["weights"].values()), report.fitted.weights[0])
    assert saved["blend_val_score"] == pytest.approx(report.blend_score)
    # the test blend is the weighted mean of the runs' submissions
    subs = [pd.read_csv(runs / f"run{i}" / "submission.csv").iloc[:, 1:] for i in range(3)]
    expected = sum(w * s.to_numpy() for w, s in zip(report.fitted.weights[0], subs, strict=True))
    assert np.allclose(frame.iloc[:, 1:].to_numpy(), expected, atol=6e-5)


def test_per_region_blend_uses_test_points_and_test_predictions(tmp_path):
    runs, _, test_names, indices, test_truth = make_runs(tmp_path, [1.0, 3.0])
    report = fit_runs(runs, per_region=True)
    output = tmp_path / "blend.csv"
    blend_runs(report, output)
    frame = pd.read_csv(output)
    assert frame["file_name"].tolist() == list(test_names)
    point_weights = report.fitted.point_weights()
    loaded = [np.load(runs / f"run{i}" / "test_predictions.npz") for i in range(2)]
    expected = np.zeros((30, 6, 2))
    for run, item in enumerate(loaded):
        position = {name: row for row, name in enumerate(item["file_names"])}
        points = item["points"][[position[name] for name in test_names]].astype(np.float64)
        expected += point_weights[indices, run][:, :, None] * gather_points(points, indices)
    assert np.allclose(frame.iloc[:, 1:].to_numpy(), np.round(expected.reshape(30, -1), 4))
    saved = json.loads((tmp_path / "blend.weights.json").read_text())
    assert saved["per_region"] and len(saved["regions"]) == len(FACE_971.regions)


def test_fit_runs_without_data_folder_is_an_input_error(tmp_path):
    runs, _, _, _, _ = make_runs(tmp_path, [1.0, 2.0])
    for folder in runs.iterdir():
        (folder / "config.toml").unlink()
    with pytest.raises(InputError, match="no true landmarks: give --data DIR"):
        fit_runs(runs)
    report = fit_runs(runs, data_dir=tmp_path / "data")
    assert report.n_images == 120


def test_fit_leaves_missing_labels_out() -> None:
    from ensemble.blend.fit import fit_weights

    rng = np.random.default_rng(4)
    names = [f"m{i}.png" for i in range(300)]
    truth = rng.uniform(0, 96, (300, 15, 2))
    predictions = np.stack([truth + rng.normal(0, s, truth.shape) for s in (1.0, 2.0)])
    holey = truth.copy()
    holey[rng.random((300, 15)) < 0.5] = np.nan
    fitted = fit_weights(predictions, holey, names)
    assert np.isfinite(fitted.weights).all()
    np.testing.assert_allclose(fitted.weights[0], [0.8, 0.2], atol=0.06)
