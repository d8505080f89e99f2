"""Cross-validated scores of fitted blends: the folds, a hand loop over them, the comparison."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble.blend import compare_fits, fit_runs
from ensemble.blend.cross_validation import cross_validated_score, image_folds
from ensemble.blend.fit import quadratic_form, residual_matrix, simplex_least_squares
from ensemble.competition.metric import validation_score
from ensemble.competition.subsets import validation_subsets
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
    assert cross_validated_score(predictions, truth, names) == pytest.approx(squared / count)
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
    assert cross_validated_score(predictions, truth, image_names(9)) is None


def test_compare_scores_every_method_and_matches_the_plain_fit(tmp_path):
    runs, *_ = make_runs(tmp_path, [1.0, 2.0, 4.0])
    comparison = compare_fits(runs)
    labels = [m.method for m in comparison.methods]
    assert labels == ["lsq", "greedy", "lsq --per-region", "greedy --per-region"]
    report = fit_runs(runs)
    lsq = comparison.methods[0]
    assert lsq.in_sample == pytest.approx(report.blend_score)
    assert lsq.cross_validated == pytest.approx(report.cv_score)
    assert comparison.singles == pytest.approx(
        dict(zip([r.name for r in report.runs], report.val_scores, strict=True))
    )
    lowest = min(m.cross_validated for m in comparison.methods)
    assert comparison.chosen().cross_validated <= lowest * 1.001
