"""The ridge stacker per landmark coordinate: it recovers a known linear combination, matches a
numpy ridge fit toward the prior, and with an infinite penalty keeps the global lsq weights."""

from __future__ import annotations

import math

import numpy as np

from ensemble.blend.cross_validation import image_folds
from ensemble.blend.fit import simplex_least_squares
from ensemble.blend.point_statistics import point_statistics
from ensemble.blend.stack import fit_stacked, ridge_coefficients
from ensemble.competition.layout import generic_layout


def _runs(seed: int, n: int = 90, points: int = 7):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(20, 120, size=(n, points, 2))
    predictions = np.stack([truth + s * rng.normal(size=truth.shape) for s in (1.0, 2.0, 3.0)])
    return predictions, truth


def test_stacking_recovers_a_known_linear_combination_with_intercept():
    predictions, _ = _runs(0)
    coefficients = np.array([0.7, -0.2, 0.5])
    truth = np.einsum("rnpc,r->npc", predictions, coefficients) + 3.0
    statistics = point_statistics(predictions, truth, image_folds(len(truth), 5), 5)
    stacked = fit_stacked(statistics, range(5), generic_layout(7))
    assert stacked.strength == 0.0  # no penalty: nothing to shrink away from
    assert np.allclose(stacked.coefficients, coefficients, atol=1e-6)
    assert np.allclose(stacked.intercepts, 3.0, atol=1e-4)
    assert np.allclose(stacked.blend(predictions), truth, atol=1e-4)


def test_ridge_toward_the_prior_matches_numpy_least_squares():
    predictions, truth = _runs(1)
    truth[::7, 3] = np.nan  # missing labels are left out of that landmark's fit
    statistics = point_statistics(predictions, truth, image_folds(len(truth), 5), 5)
    sums = statistics.sums(range(5))
    prior = np.array([0.5, 0.3, 0.2])
    penalty = 0.3
    coefficients, intercepts = ridge_coefficients(sums, penalty, prior)
    for point, axis in ((3, 0), (5, 1)):
        y = truth[:, point, axis] - statistics.center[point, axis]
        x = (predictions[:, :, point, axis] - statistics.center[point, axis]).T
        labelled = np.isfinite(y)
        x, y = x[labelled], y[labelled]
        error = ((x - y[:, None]) ** 2).mean()  # the runs' mean squared error here
        alpha = penalty * len(y) * error
        xc, yc = x - x.mean(axis=0), y - y.mean()
        design = np.vstack([xc, math.sqrt(alpha) * np.eye(3)])
        target = np.concatenate([yc - xc @ prior, np.zeros(3)])
        delta = np.linalg.lstsq(design, target, rcond=None)[0]
        assert np.allclose(coefficients[point, axis], prior + delta, atol=1e-8)
        expected_intercept = y.mean() - x.mean(axis=0) @ (prior + delta)
        assert np.isclose(intercepts[point, axis], expected_intercept, atol=1e-8)


def test_an_infinite_penalty_keeps_the_global_lsq_weights_and_corrects_the_bias():
    predictions, truth = _runs(2)
    predictions[1] += 4.0  # a biased run
    statistics = point_statistics(predictions, truth, image_folds(len(truth), 5), 5)
    sums = statistics.sums(range(5))
    residuals = (predictions - truth[None]).reshape(3, -1).T
    prior = simplex_least_squares(residuals.T @ residuals / len(residuals))
    coefficients, intercepts = ridge_coefficients(sums, math.inf, prior)
    assert np.allclose(coefficients, prior)
    blend = np.einsum("rnpc,r->npc", predictions - statistics.center, prior)
    bias = (truth - statistics.center - blend).mean(axis=0)
    assert np.allclose(intercepts, bias)


def test_noise_chooses_a_penalty_and_the_stacker_stays_near_the_prior():
    predictions, truth = _runs(3, n=40)
    statistics = point_statistics(predictions, truth, image_folds(len(truth), 5), 5)
    stacked = fit_stacked(statistics, range(5), generic_layout(7))
    assert stacked.strength > 0.0  # independent noise: the free fit overfits 40 images
    assert np.abs(stacked.coefficients.sum(axis=-1) - 1).max() < 0.2


def test_label_errors_are_left_out_of_the_fit_and_counted():
    from ensemble.blend.methods import fit_learned
    from ensemble.blend.point_statistics import clean_images

    predictions, _ = _runs(4, n=60)
    coefficients = np.array([0.6, 0.3, 0.1])
    truth = np.einsum("rnpc,r->npc", predictions, coefficients) - 2.0
    truth[[5, 17]] += 80.0  # two mislabelled images: no run comes near them
    assert np.flatnonzero(~clean_images(predictions, truth)).tolist() == [5, 17]
    stacked = fit_learned("stack", predictions, truth, image_folds(60, 5), generic_layout(7))
    assert stacked.images_left_out == 2
    assert np.allclose(stacked.coefficients, coefficients, atol=1e-6)
    assert np.allclose(stacked.intercepts, -2.0, atol=1e-4)
    everything = point_statistics(predictions, truth, image_folds(60, 5), 5)
    steered = fit_stacked(everything, range(5), generic_layout(7))  # the errors kept in
    assert np.abs(steered.intercepts + 2.0).max() > 1.0
