"""Why a fit gave a run no weight: dominance against the closed form, the baseline, run folders."""

from __future__ import annotations

import json

import numpy as np

from ensemble.blend import blend_runs, fit_runs
from ensemble.blend.fit import quadratic_form, simplex_least_squares
from ensemble.blend.no_weight import NO_WEIGHT, why_no_weight
from ensemble.io.landmarks import read_landmarks
from ensemble.io.predictions import load_predictions, save_predictions
from tests.helpers import make_runs


def _fit(residuals: np.ndarray) -> np.ndarray:
    return simplex_least_squares(quadratic_form(residuals))


def _scores(residuals: np.ndarray) -> np.ndarray:
    """Val scores as the pooled mean squared errors (every point labelled)."""
    return np.diag(quadratic_form(residuals))


def test_a_larger_copy_of_a_runs_errors_is_dominated_as_the_closed_form_says():
    rng = np.random.default_rng(0)
    best = rng.normal(size=4000)
    worse = 1.5 * best + 0.5 * rng.normal(size=4000)
    residuals = np.stack([best, worse], axis=1)
    weights = _fit(residuals)
    # the two-run optimum by hand: t = (Q_jj - Q_ij) / (Q_ii + Q_jj - 2 Q_ij) on the worse run
    q = residuals.T @ residuals / len(residuals)
    t = (q[0, 0] - q[0, 1]) / (q[1, 1] + q[0, 0] - 2 * q[0, 1])
    assert t <= 0 and weights[1] <= NO_WEIGHT
    reasons = why_no_weight(
        ["best", "worse"], weights, _scores(residuals), residuals, baseline=None
    )
    assert list(reasons) == ["worse"]
    correlation = q[0, 1] / np.sqrt(q[0, 0] * q[1, 1])
    ratio = np.sqrt(q[0, 0] / q[1, 1])
    assert correlation >= ratio
    assert reasons["worse"].startswith("dominated by best")
    assert (
        f"correlate {correlation:.2f}" in reasons["worse"] and f"= {ratio:.2f}" in reasons["worse"]
    )


def test_an_independent_worse_run_keeps_weight_and_needs_no_reason():
    rng = np.random.default_rng(1)
    residuals = np.stack([rng.normal(size=4000), 1.5 * rng.normal(size=4000)], axis=1)
    weights = _fit(residuals)
    assert weights.min() > NO_WEIGHT
    assert why_no_weight(["a", "b"], weights, _scores(residuals), residuals, baseline=None) == {}


def test_a_run_covered_by_two_others_together_is_not_blamed_on_one():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=4000), rng.normal(size=4000)
    between = (a + b) / 2 + 0.3 * rng.normal(size=4000)  # no better than their even mix
    residuals = np.stack([a, b, between], axis=1)
    weights = _fit(residuals)
    assert weights[2] <= NO_WEIGHT and weights[:2].min() > NO_WEIGHT
    reason = why_no_weight(
        ["a", "b", "between"], weights, _scores(residuals), residuals, baseline=None
    )["between"]
    assert reason.startswith("the other runs together") and "dominated" not in reason


def test_a_run_no_better_than_the_mean_shape_says_so():
    rng = np.random.default_rng(3)
    good = rng.normal(size=4000)
    residuals = np.stack([good, 10 * good + rng.normal(size=4000)], axis=1)
    weights = _fit(residuals)
    assert weights[1] <= NO_WEIGHT
    score = float(residuals[:, 1] @ residuals[:, 1] / len(residuals))
    scores = _scores(residuals)
    reasons = why_no_weight(["good", "flat"], weights, scores, residuals, baseline=score * 0.9)
    assert reasons["flat"].startswith("no better than the mean-shape baseline")
    # judged on the val scores given (per image first, with missing labels), not the pooled
    # errors of the fit: a val score under the baseline is not "no better than" it
    below = np.array([scores[0], score * 0.8])
    reasons = why_no_weight(["good", "flat"], weights, below, residuals, baseline=score * 0.9)
    assert reasons["flat"].startswith("dominated by good")


def test_fit_runs_names_the_dominating_run_and_saves_the_reason(tmp_path):
    runs, data, *_ = make_runs(tmp_path, [1.0, 2.0])
    # run2: run0's validation errors, 1.5x larger: dominated by run0 exactly
    (runs / "run2").mkdir()
    (runs / "run2" / "config.toml").write_text(f'data = "{data}"\n')
    run0 = load_predictions(runs / "run0" / "val_predictions.npz")
    labels = read_landmarks(data / "train" / "landmarks.csv")
    order = {name: i for i, name in enumerate(labels.file_names)}
    truth = labels.points[[order[n] for n in run0.file_names]].astype(np.float64)
    scaled = truth + 1.5 * (run0.points.astype(np.float64) - truth)
    save_predictions(runs / "run2" / "val_predictions.npz", run0.file_names, scaled)
    for name in ("test_predictions.npz", "submission.csv"):
        (runs / "run2" / name).write_bytes((runs / "run0" / name).read_bytes())
    report = fit_runs(runs)
    assert report.fitted.weights[0][2] <= NO_WEIGHT
    assert report.no_weight["run2"].startswith("dominated by run0")
    blend_runs(report, tmp_path / "blend.csv")
    saved = json.loads((tmp_path / "blend.weights.json").read_text())
    assert saved["no_weight"] == report.no_weight
