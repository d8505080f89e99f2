"""analysis: uniformity test, val-to-leaderboard lines and per-point MSE, against scipy/numpy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.leaderboard_fit import fit_target, ols, robust_z, shake_up, theil_sen
from analysis.per_point import analyze_points, bootstrap_ci, region_errors
from analysis.uniformity import index_counts, uniformity
from ensemble.competition.layout import FACE_971, Layout, Region, generic_layout
from ensemble.competition.metric import validation_score
from ensemble.competition.subsets import draw_point_subsets, validation_subsets

# ----------------------------------------------------------------------------------------------
# uniformity


def test_chi_square_equals_scipy_on_the_same_counts() -> None:
    rng = np.random.default_rng(0)
    indices = draw_point_subsets(rng, 500, 971, 30)
    result = uniformity(indices, FACE_971)
    counts = np.bincount(indices.ravel(), minlength=971)
    scipy_result = stats.chisquare(counts)
    assert np.array_equal(result.counts, counts)
    assert result.expected == pytest.approx(500 * 30 / 971)
    assert result.statistic == pytest.approx(scipy_result.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(scipy_result.pvalue, rel=1e-12)
    assert result.df == 970
    by_hand = ((counts - counts.mean()) ** 2 / counts.mean()).sum()
    assert result.statistic == pytest.approx(by_hand, rel=1e-12)
    assert sum(region.observed for region in result.regions) == 500 * 30


def test_uniform_sample_passes_and_biased_sample_fails_at_level_001() -> None:
    rng = np.random.default_rng(1)
    layout = generic_layout(50)
    uniform = uniformity(draw_point_subsets(rng, 2000, 50, 5), layout, alpha=0.01)
    assert uniform.uniform and uniform.p_value_design > 0.01

    weights = np.ones(50)
    weights[:5] = 1.6  # five indices 60% more likely
    weights /= weights.sum()
    biased_rows = np.stack([rng.choice(50, 5, replace=False, p=weights) for _ in range(2000)])
    biased = uniformity(biased_rows, layout, alpha=0.01)
    assert not biased.uniform and biased.p_value_design < 0.01
    assert set(biased.largest_deviations(5).tolist()) == set(range(5))


def test_design_factor_matches_sampling_without_replacement() -> None:
    """Under uniform K-of-N rows the mean statistic is N - K (not N - 1): the correction."""
    rng = np.random.default_rng(2)
    layout = generic_layout(20)
    results = [uniformity(draw_point_subsets(rng, 100, 20, 5), layout) for _ in range(400)]
    mean = np.mean([r.statistic for r in results])
    assert results[0].design_factor == pytest.approx((20 - 5) / (20 - 1))
    assert abs(mean - 15) < 1.0  # N - K; the multinomial would give N - 1 = 19
    rejected = np.mean([r.p_value_design < 0.05 for r in results])
    assert rejected < 0.1


def test_ragged_padding_is_ignored_in_counts() -> None:
    indices = np.array([[0, 1, 2], [3, 4, -1]])
    assert index_counts(indices, 6).tolist() == [1, 1, 1, 1, 1, 0]
    result = uniformity(indices, generic_layout(6))
    assert result.k == 3 and result.rows_with_other_k == 1


def test_region_counts_and_z_for_a_two_region_layout() -> None:
    layout = Layout("two", (Region("a", 0, 4), Region("b", 4, 10)))
    indices = np.array([[0, 5], [1, 6], [2, 7], [3, 8]])
    result = uniformity(indices, layout)
    a, b = result.regions
    assert (a.observed, b.observed) == (4, 4)
    assert a.expected == pytest.approx(8 * 4 / 10) and b.expected == pytest.approx(8 * 6 / 10)
    # hypergeometric variance of hits in region a per row: K p (1 - p) (N - K) / (N - 1)
    sd = np.sqrt(4 * 2 * 0.4 * 0.6 * 8 / 9)
    assert a.z == pytest.approx((4 - 3.2) / sd)


# ----------------------------------------------------------------------------------------------
# validation to leaderboard


def test_ols_matches_scipy_and_closed_form_intervals() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(5, 15, 12)
    y = 1.1 * x + 0.7 + rng.normal(0, 0.2, 12)
    line = ols(x, y)
    reference = stats.linregress(x, y)
    assert line.slope == pytest.approx(reference.slope, rel=1e-12)
    assert line.intercept == pytest.approx(reference.intercept, rel=1e-12)
    assert line.r_squared == pytest.approx(reference.rvalue**2, rel=1e-12)
    # standard errors and intervals from the matrix formula
    design = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    sigma2 = ((y - design @ coef) ** 2).sum() / (len(x) - 2)
    covariance = sigma2 * np.linalg.inv(design.T @ design)
    t = stats.t.ppf(0.975, len(x) - 2)
    assert line.intercept_se == pytest.approx(np.sqrt(covariance[0, 0]), rel=1e-9)
    assert line.slope_se == pytest.approx(np.sqrt(covariance[1, 1]), rel=1e-9)
    assert line.slope_ci == pytest.approx(
        (coef[1] - t * line.slope_se, coef[1] + t * line.slope_se)
    )
    x0 = np.array([1.0, 20.0])
    half = t * np.sqrt(sigma2 * (1 + x0 @ np.linalg.inv(design.T @ design) @ x0))
    assert line.prediction_halfwidth(20.0) == pytest.approx(half, rel=1e-9)
    half_mean = t * np.sqrt(sigma2 * (x0 @ np.linalg.inv(design.T @ design) @ x0))
    assert line.confidence_halfwidth(20.0) == pytest.approx(half_mean, rel=1e-9)


def test_theil_sen_matches_scipy_and_pairwise_median() -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 10, 9)
    y = 2.0 * x - 1.0 + rng.normal(0, 0.3, 9)
    robust = theil_sen(x, y)
    reference = stats.theilslopes(y, x, alpha=0.95)
    assert robust.slope == pytest.approx(reference.slope)
    assert robust.intercept == pytest.approx(reference.intercept)
    assert robust.slope_ci == pytest.approx((reference.low_slope, reference.high_slope))
    i, j = np.triu_indices(9, 1)
    assert robust.slope == pytest.approx(np.median((y[j] - y[i]) / (x[j] - x[i])))


def test_both_lines_recover_a_planted_line_and_flag_a_truncated_submission() -> None:
    rng = np.random.default_rng(5)
    val = np.linspace(8, 14, 10)
    public = 1.02 * val + 0.3 + rng.normal(0, 0.03, 10)
    public[3] += 0.4  # coordinates truncated: worse on the leaderboard than val predicts
    fit = fit_target("public", val, public)
    assert fit.theil.slope == pytest.approx(1.02, abs=0.03)
    assert fit.theil.intercept == pytest.approx(0.3, abs=0.3)
    assert fit.outlier.tolist() == [i == 3 for i in range(10)]
    assert fit.clean.slope == pytest.approx(1.02, abs=0.02)
    assert fit.clean.n == 9
    assert fit.z[3] > 3.5


def test_prediction_for_val_only_rows_and_three_point_minimum() -> None:
    val = np.array([1.0, 2.0, 3.0, 4.0, 2.5])
    public = np.array([2.1, 3.9, 6.1, 8.0, np.nan])
    fit = fit_target("public", val, public)
    assert fit.predict_rows.tolist() == [4]
    assert fit.predicted[0] == pytest.approx(fit.ols.intercept + fit.ols.slope * 2.5)
    assert fit.prediction_halfwidth[0] > fit.ols.confidence_halfwidth(2.5)
    with pytest.raises(ValueError, match="only 2 row"):
        fit_target("public", np.array([1.0, 2.0, 3.0]), np.array([1.0, np.nan, 3.0]))


def test_robust_z_and_shake_up() -> None:
    z = robust_z(np.array([0.0, 0.1, -0.1, 0.05, 5.0]))
    assert np.argmax(np.abs(z)) == 4 and abs(z[4]) > 3.5 and (np.abs(z[:4]) < 3.5).all()
    residuals = np.array([0.0, 0.0, 0.0, 0.0, 2.0])  # MAD 0: the mean absolute deviation
    mean_ad = np.mean(np.abs(residuals - 0.0))
    np.testing.assert_allclose(robust_z(residuals), residuals / (1.253314 * mean_ad))
    np.testing.assert_array_equal(robust_z(np.full(4, 3.0)), np.zeros(4))
    shake = shake_up(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 1.2, 3.3, 4.1]))
    assert shake.spearman == pytest.approx(stats.spearmanr([1, 2, 3, 4], [1.5, 1.2, 3.3, 4.1])[0])
    assert shake.private_rank.tolist() == [2, 1, 3, 4]


# ----------------------------------------------------------------------------------------------
# per-point MSE


def _planted_runs(n: int = 40, n_points: int = 12, runs: int = 3, seed: int = 6):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 100, (n, n_points, 2)).astype(np.float32)
    scale = np.linspace(0.5, 3.0, n_points)[None, :, None]
    predictions = np.stack(
        [truth + rng.normal(0, 1, truth.shape) * scale * (1 + 0.3 * r) for r in range(runs)]
    ).astype(np.float32)
    names = np.array([f"img{i:03d}.jpg" for i in range(n)], dtype=object)
    return names, predictions, truth


def test_per_point_mse_equals_a_direct_numpy_computation() -> None:
    names, predictions, truth = _planted_runs()
    layout = Layout("two", (Region("a", 0, 5), Region("b", 5, 12)))
    result = analyze_points(["r0", "r1", "r2"], predictions, truth, names, layout, k=4, n_boot=50)
    subsets = validation_subsets(names, 12, k=4)
    for r, run in enumerate(result.runs):
        squared = ((predictions[r].astype(np.float64) - truth) ** 2).mean(axis=2)  # (n, N)
        direct = np.full(12, np.nan)
        for j in range(12):
            rows = [i for i in range(len(names)) if j in subsets[i]]
            if rows:
                direct[j] = squared[rows, j].mean()
        np.testing.assert_allclose(run.point_mse, direct, rtol=1e-10, equal_nan=True)
        np.testing.assert_allclose(run.point_mse_dense, squared.mean(axis=0), rtol=1e-10)
        expected_score = validation_score(names, predictions[r], truth, k=4)
        assert run.score == pytest.approx(expected_score, rel=1e-12)
        regions = region_errors(run, layout)
        in_a = np.isin(subsets, np.arange(5))
        picked = np.take_along_axis(squared, subsets.astype(np.int64), axis=1)
        assert regions[0].mse_subset == pytest.approx(picked[in_a].mean())
        assert regions[0].mse_dense == pytest.approx(squared[:, :5].mean())
        assert sum(region.share for region in regions) == pytest.approx(1.0)
    blend = predictions.mean(axis=0)
    assert result.blend.score == pytest.approx(validation_score(names, blend, truth, k=4))
    assert result.best.name == "r0"


def test_per_point_with_missing_labels_leaves_them_out() -> None:
    names, predictions, truth = _planted_runs(n=40, n_points=12, runs=2)
    rng = np.random.default_rng(3)
    truth[rng.random(truth.shape[:2]) < 0.3] = np.nan  # whole points unlabelled
    truth[0] = np.nan  # an image with no label at all: no score
    truth[3, 2, 0] = np.nan  # half a pair: its y still counts
    layout = Layout("two", (Region("a", 0, 5), Region("b", 5, 12)))
    result = analyze_points(["r0", "r1"], predictions, truth, names, layout, k=4, n_boot=50)
    subsets = validation_subsets(names, 12, k=4)
    residual_rows = []
    for r, run in enumerate(result.runs):
        error = predictions[r].astype(np.float64) - truth  # (n, N, 2), NaN where unlabelled
        image_scores, residuals = [], []
        for i in range(len(names)):
            values = error[i, subsets[i]].ravel()
            present = values[np.isfinite(values)]
            residuals.extend(present)
            if len(present):
                image_scores.append(np.mean(present**2))
        assert run.score == pytest.approx(np.mean(image_scores), rel=1e-12)
        assert np.isnan(run.image_scores[0])
        assert np.isfinite(run.image_scores).sum() == len(image_scores)
        residual_rows.append(residuals)
        for j in range(12):
            dense = [
                np.mean(error[i, j][np.isfinite(error[i, j])] ** 2)
                for i in range(len(names))
                if np.isfinite(error[i, j]).any()
            ]
            scored = [
                np.mean(error[i, j][np.isfinite(error[i, j])] ** 2)
                for i in range(len(names))
                if j in subsets[i] and np.isfinite(error[i, j]).any()
            ]
            assert run.point_mse_dense[j] == pytest.approx(np.mean(dense), rel=1e-12)
            assert run.point_hits[j] == len(scored)
            assert run.point_sq_sum[j] == pytest.approx(np.sum(scored), rel=1e-12)
        regions = region_errors(run, layout)
        assert regions[0].mse_dense == pytest.approx(np.mean(run.point_mse_dense[:5]))
        in_a = [
            np.mean(error[i, j][np.isfinite(error[i, j])] ** 2)
            for i in range(len(names))
            for j in subsets[i]
            if j < 5 and np.isfinite(error[i, j]).any()
        ]
        assert regions[0].mse_subset == pytest.approx(np.mean(in_a), rel=1e-12)
        assert sum(region.share for region in regions) == pytest.approx(1.0)
    assert np.isfinite(result.ci).all()
    assert result.correlation[0, 1] == pytest.approx(np.corrcoef(residual_rows)[0, 1])
    assert np.isfinite(result.pick.score_in_sample) and np.isfinite(result.pick.score_cross_fit)
    assert np.isfinite(result.mean_shape).all()


def test_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    scores = np.random.default_rng(7).gamma(2.0, 3.0, size=(2, 300))
    first = bootstrap_ci(scores, n_boot=400, seed=1)
    assert np.array_equal(first, bootstrap_ci(scores, n_boot=400, seed=1))
    means = scores.mean(axis=1)
    assert ((first[:, 0] < means) & (means < first[:, 1])).all()
    # width close to the normal approximation 2 * 1.96 * sd / sqrt(n)
    normal = 2 * 1.96 * scores.std(axis=1, ddof=1) / np.sqrt(300)
    np.testing.assert_allclose(first[:, 1] - first[:, 0], normal, rtol=0.2)


def test_region_pick_takes_each_region_from_the_run_best_there() -> None:
    names, _, truth = _planted_runs(n=30, n_points=10, runs=1)
    layout = Layout("two", (Region("a", 0, 4), Region("b", 4, 10)))
    good_a = truth.copy()
    good_a[:, 4:] += 3.0  # perfect on region a only
    good_b = truth.copy()
    good_b[:, :4] += 3.0  # perfect on region b only
    result = analyze_points(["A", "B"], np.stack([good_a, good_b]), truth, names, layout, k=5)
    assert result.pick.best_run == [0, 1]
    assert result.pick.score_in_sample == pytest.approx(0.0)
    assert result.pick.score_cross_fit == pytest.approx(0.0)
    assert result.correlation.shape == (2, 2)
    assert result.blend.score == pytest.approx(1.5**2)


def test_no_outliers_flagged_with_too_few_points() -> None:
    from analysis.leaderboard_fit import MIN_POINTS_FOR_OUTLIERS, flag_outliers, theil_sen

    x = np.array([30.0, 49.0, 140.0])
    y = np.array([35.0, 51.0, 125.0])
    z, flagged = flag_outliers(x, y, theil_sen(x, y))
    assert len(x) < MIN_POINTS_FOR_OUTLIERS and not flagged.any()
    assert np.isnan(z).all()  # the spread is not estimable: shown as n/a, never 674500000
