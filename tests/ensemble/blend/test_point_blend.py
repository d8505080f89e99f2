"""Learned blends on run folders: the held-out error formula, the test blend written from the
runs' test predictions with the saved model, and the JSON that records it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ensemble.blend import blend_runs, fit_runs
from ensemble.blend.cross_validation import image_folds
from ensemble.blend.point_blend import held_out_squared_error
from ensemble.blend.point_statistics import point_statistics
from ensemble.competition.metric import validation_score
from ensemble.errors import InputError
from ensemble.io.submission import gather_points
from tests.helpers import image_names, make_runs


def test_held_out_squared_error_equals_the_errors_summed_by_hand():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 50, size=(30, 5, 2))
    predictions = truth[None] + rng.normal(size=(2, 30, 5, 2))
    truth[3, 2] = np.nan  # a missing label: left out
    folds = image_folds(30, 5)
    statistics = point_statistics(predictions, truth, folds, 5)
    coefficients = rng.uniform(-0.5, 1.5, size=(5, 2, 2))
    intercepts = rng.normal(size=(5, 2))
    held = folds == 2
    x = predictions[:, held] - statistics.center
    y = truth[held] - statistics.center
    model = np.einsum("rnlc,lcr->nlc", x, coefficients) + intercepts
    expected = np.nansum((model - y) ** 2)
    got = held_out_squared_error(coefficients, intercepts, statistics.sums([2]))
    assert got == pytest.approx(expected)


def _test_predictions(runs, test_names):
    loaded = []
    for number in range(3):
        item = np.load(runs / f"run{number}" / "test_predictions.npz")
        position = {name: row for row, name in enumerate(item["file_names"])}
        loaded.append(item["points"][[position[name] for name in test_names]].astype(np.float64))
    return np.stack(loaded)


@pytest.mark.parametrize("method", ["shrink", "stack"])
def test_learned_fit_blends_the_test_predictions_with_the_saved_model(tmp_path, method):
    runs, _, test_names, indices, _ = make_runs(tmp_path, [1.0, 2.0, 4.0])
    report = fit_runs(runs, method=method)
    assert report.fitted.method == method and report.cv_score is not None
    output = tmp_path / "blend.csv"
    blend_runs(report, output)
    saved = json.loads((tmp_path / "blend.weights.json").read_text())
    assert saved["method"] == method
    assert saved["cross_validated_score"]["score"] == pytest.approx(report.cv_score)
    if method == "shrink":
        coefficients = np.repeat(np.array(saved["point_weights"])[:, None, :], 2, axis=1)
        intercepts = np.zeros(coefficients.shape[:2])
        assert np.allclose(coefficients.sum(axis=-1), 1) and coefficients.min() >= 0
    else:
        coefficients = np.array(saved["coefficients"])
        intercepts = np.array(saved["intercepts"])
    assert coefficients.shape == (971, 2, 3)
    test = _test_predictions(runs, test_names)
    expected = np.einsum("rnlc,lcr->nlc", test, coefficients) + intercepts
    frame = pd.read_csv(output)
    assert frame["file_name"].tolist() == list(test_names)
    wanted = gather_points(expected, indices).reshape(30, -1)
    assert np.allclose(frame.iloc[:, 1:].to_numpy(), wanted, atol=2e-4)
    # the in-sample score is the saved model's on the validation predictions
    validation = np.stack(
        [np.load(runs / f"run{i}" / "val_predictions.npz")["points"] for i in range(3)]
    ).astype(np.float64)
    names = np.load(runs / "run0" / "val_predictions.npz")["file_names"]
    blended = np.einsum("rnlc,lcr->nlc", validation, coefficients) + intercepts
    truth_order = np.argsort(names)  # the fit works on the sorted common names
    assert sorted(names) == list(image_names(120))
    assert report.blend_score == pytest.approx(
        validation_score(names[truth_order], blended[truth_order], _truth(tmp_path)), rel=1e-5
    )


def _truth(tmp_path):
    from ensemble.io.landmarks import read_landmarks

    return read_landmarks(tmp_path / "data" / "train" / "landmarks.csv").points.astype(np.float64)


def test_learned_fit_needs_two_images_per_fold(tmp_path):
    runs, *_ = make_runs(tmp_path, [1.0, 2.0])
    for number in range(2):
        path = runs / f"run{number}" / "val_predictions.npz"
        item = np.load(path)
        np.savez(path, file_names=item["file_names"][:8], points=item["points"][:8])
    with pytest.raises(InputError, match="needs at least 10 validation images"):
        fit_runs(runs, method="shrink")


@pytest.mark.parametrize("method", ["shrink", "stack"])
def test_learned_fits_leave_missing_labels_out(method) -> None:
    """Kaggle Facial Keypoints: 15 points, half the labels missing."""
    from ensemble.blend.cross_validation import held_out_scores, mean_score
    from ensemble.blend.methods import fit_learned
    from ensemble.competition.layout import layout_for

    rng = np.random.default_rng(4)
    names = np.array([f"m{i:03d}.png" for i in range(300)])
    truth = rng.uniform(0, 96, (300, 15, 2))
    predictions = np.stack([truth + rng.normal(0, s, truth.shape) for s in (1.0, 2.0)])
    holey = truth.copy()
    holey[rng.random((300, 15)) < 0.5] = np.nan
    model = fit_learned(method, predictions, holey, image_folds(300, 5), layout_for(15))
    assert np.isfinite(model.coefficients).all() and np.isfinite(model.intercepts).all()
    np.testing.assert_allclose(model.mean_weights(), [0.8, 0.2], atol=0.08)
    score = mean_score(held_out_scores(predictions, holey, names, method))
    single = validation_score(names, predictions[0], holey)
    assert np.isfinite(score) and score < single
