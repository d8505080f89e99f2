"""Cross-validated scores of fitted blends: the folds, a hand loop over them, the comparison."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble.blend import compare_fits, fit_runs
from ensemble.blend.comparison import Comparison, MethodScore
from ensemble.blend.cross_validation import held_out_scores, image_folds, mean_score
from ensemble.blend.fit import fit_weights, quadratic_form, residual_matrix, simplex_least_squares
from ensemble.blend.fusion import fit_gamma, fused_weights
from ensemble.blend.methods import fit_on_folds
from ensemble.blend.point_statistics import point_statistics
from ensemble.competition.layout import layout_for
from ensemble.competition.metric import validation_score
from ensemble.competition.subsets import validation_subsets
from ensemble.io.submission import gather_points
from tests.helpers import image_names, make_runs, random_truth


def test_folds_partition_the_images_evenly_and_fixed():
    folds = image_folds(103, 5)
    counts = np.bincount(folds, minlength=5)
    assert counts.sum() == 103 and counts.max() - counts.min() <= 1
    assert np.array_equal(folds, image_folds(103, 5))


def test_cross_validated_score_equals_a_hand_loop_over_folds():
    rng = np.random.default_rng(4)
    truth = random_truth(rng, 60)
    sigmas = np.array([1.0, 2.0, 3.0])
    shared = rng.normal(size=truth.shape)  # correlated errors make the weights matter
    predictions = np.stack(
        [truth + s * (0.5 * shared + rng.normal(size=truth.shape)) for s in sigmas]
    )
    names = image_names(60)
    folds = image_folds(60, 5)
    squared, count = 0.0, 0
    for fold in range(5):
        held = folds == fold
        fit_names = names[~held]
        indices = validation_subsets(fit_names, truth.shape[1])
        residuals = residual_matrix(predictions[:, ~held], truth[~held], indices)[0]
        weights = simplex_least_squares(quadratic_form(residuals))
        blend = np.einsum("r,rnpc->npc", weights, predictions[:, held])
        held_indices = validation_subsets(names[held], truth.shape[1])
        errors = residual_matrix(blend[None], truth[held], held_indices)[0]
        squared += float((errors**2).sum())
        count += errors.size
    held_out = held_out_scores(predictions, truth, names)
    assert mean_score(held_out) == pytest.approx(squared / count)
    in_sample_weights = simplex_least_squares(
        quadratic_form(
            residual_matrix(predictions, truth, validation_subsets(names, truth.shape[1]))[0]
        )
    )
    in_sample = validation_score(
        names, np.einsum("r,rnpc->npc", in_sample_weights, predictions), truth
    )
    assert squared / count != pytest.approx(in_sample)  # a different, held-out number


def test_too_few_images_for_the_folds_gives_none():
    rng = np.random.default_rng(5)
    truth = random_truth(rng, 9)
    predictions = np.stack([truth + rng.normal(size=truth.shape) for _ in range(2)])
    assert held_out_scores(predictions, truth, image_names(9)) is None
    assert mean_score(None) is None


def test_compare_scores_every_method_and_matches_the_plain_fit(tmp_path):
    runs, *_ = make_runs(tmp_path, [1.0, 2.0, 4.0])
    comparison = compare_fits(runs)
    labels = [m.method for m in comparison.methods]
    assert labels == ["lsq", "greedy", "lsq --per-region", "greedy --per-region", "shrink", "stack"]
    report = fit_runs(runs)
    lsq = comparison.methods[0]
    assert lsq.in_sample == pytest.approx(report.blend_score)
    assert lsq.cross_validated == pytest.approx(report.cv_score)
    assert comparison.singles == pytest.approx(
        dict(zip([r.name for r in report.runs], report.val_scores, strict=True))
    )
    lowest = comparison.lowest()
    assert lowest.cross_validated == min(m.cross_validated for m in comparison.methods)
    chosen = comparison.chosen()
    for method in comparison.methods:  # the gap and its standard error, paired by hand
        difference = method.held_out - lowest.held_out
        error = difference.std(ddof=1) / np.sqrt(len(difference))
        assert comparison.gap(method) == pytest.approx((difference.mean(), error))
        if method is chosen:
            break
        assert difference.mean() > error  # every simpler method is more than 1 s.e. worse
    assert chosen is lowest or difference.mean() <= error


def test_the_one_standard_error_rule_prefers_the_simpler_method():
    simple = MethodScore("simple", 1.0, np.array([2.0, 2.0, 2.0, 2.0]))
    noisy = MethodScore("noisy", 0.5, np.array([1.0, 1.0, 4.6, 1.0]))  # mean 1.9
    comparison = Comparison([simple, noisy], {}, 4)
    assert comparison.lowest() is noisy
    gap, error = comparison.gap(simple)  # 0.1 +- 0.9: inside the noise
    assert gap == pytest.approx(0.1) and gap < error
    assert comparison.chosen() is simple
    steady = MethodScore("steady", 0.5, np.array([1.5, 1.6, 1.5, 1.6]))  # 0.45 +- 0.03
    assert Comparison([simple, steady], {}, 4).chosen() is steady


@pytest.mark.parametrize("method", ["shrink", "stack"])
def test_learned_cross_validated_score_never_sees_the_held_out_fold(method):
    rng = np.random.default_rng(8)
    truth = random_truth(rng, 60)
    predictions = np.stack([truth + s * rng.normal(size=truth.shape) for s in (1.0, 1.5, 2.5)])
    names = image_names(60)
    layout = layout_for(truth.shape[1])
    folds = image_folds(60, 5)
    blended = np.empty(truth.shape)
    for fold in range(5):
        held = folds == fold
        # statistics of the other images only: their strength and fit cannot use the held fold
        inner = np.searchsorted(sorted(set(range(5)) - {fold}), folds[~held])
        statistics = point_statistics(predictions[:, ~held], truth[~held], inner, 4)
        model = fit_on_folds(method, statistics, range(4), layout)
        blended[held] = model.blend(predictions[:, held])
    expected = validation_score(names, blended, truth)
    held_out = held_out_scores(predictions, truth, names, method)
    assert mean_score(held_out) == pytest.approx(expected)


def test_fusion_cross_validated_score_equals_a_hand_loop():
    rng = np.random.default_rng(9)
    truth = random_truth(rng, 50)
    sigma = rng.uniform(0.5, 3.0, size=(3, *truth.shape[:2]))
    sigma[2] = np.nan  # a run without sigma keeps its fitted weight
    noise = np.nan_to_num(sigma, nan=2.0)[..., None] * rng.normal(size=(3, *truth.shape))
    predictions = truth[None] + noise
    names = image_names(50)
    folds = image_folds(50, 5)
    indices = validation_subsets(names, truth.shape[1])
    values = np.stack([gather_points(p, indices) for p in predictions])
    value_sigma = np.stack([np.take_along_axis(s, indices, axis=1) for s in sigma])
    fused = np.empty((50, indices.shape[1], 2))
    for fold in range(5):
        held = folds == fold
        fitted = fit_weights(predictions[:, ~held], truth[~held], names[~held])
        base = fitted.point_weights()[indices]
        gamma = fit_gamma(
            values[:, ~held],
            value_sigma[:, ~held],
            gather_points(truth[~held], indices[~held]),
            base[~held],
        ).gamma
        weights = fused_weights(base[held], value_sigma[:, held], gamma)
        fused[held] = np.einsum("rnkc,nkr->nkc", values[:, held], weights)
    squared = ((fused - gather_points(truth, indices)) ** 2).mean(axis=(1, 2))
    held_out = held_out_scores(predictions, truth, names, "uncertainty", sigma=sigma)
    assert held_out == pytest.approx(squared)  # image by image
    score = mean_score(held_out)
    assert score == pytest.approx(squared.mean())
    plain = mean_score(held_out_scores(predictions, truth, names))
    assert score < plain  # sigma carries the per-value noise: fusion must win held out
