"""Masked metrics against hand computations on small arrays with missing labels."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble.competition.landmark_metrics import (
    FAILURE_THRESHOLDS,
    ced,
    ced_auc,
    failure_rate,
    masked_mse,
    masked_nme,
    masked_pck,
    metric_report,
    per_image_nme,
)
from ensemble.competition.metric import leaderboard_mse

NAN = np.nan
# Row 0: eyes at (0,0) and (4,0) (inter-ocular 4), third point unlabelled.
# Row 1: nothing labelled. Row 2: the second eye has only y, so no NME/PCK for it.
# Row 3: eyes at (0,0) and (0,3) (inter-ocular 3).
TRUTH = np.array(
    [
        [[0, 0], [4, 0], [NAN, NAN]],
        [[NAN, NAN], [NAN, NAN], [NAN, NAN]],
        [[1, 1], [NAN, 2], [3, 3]],
        [[0, 0], [0, 3], [1, 1]],
    ]
)
PRED = np.array(
    [
        [[1, 0], [4, 2], [9, 9]],
        [[5, 5], [5, 5], [5, 5]],
        [[1, 1], [7, 4], [3, 0]],
        [[0, 1], [0, 3], [1, 1]],
    ],
    dtype=np.float64,
)
# Present errors: row 0: 1, 0, 0, 2; row 2: 0, 0, 2 (y only), 0, -3; row 3: 0, 1, 0, 0, 0, 0.
ERRORS = np.array([1, 0, 0, 2, 0, 0, 2, 0, -3, 0, 1, 0, 0, 0, 0])


def test_mse_by_hand() -> None:
    assert masked_mse(PRED, TRUTH) == pytest.approx(19 / 15)
    assert masked_mse(PRED, TRUTH) == pytest.approx(np.mean(ERRORS**2))


def test_nme_and_pck_by_hand() -> None:
    # row 0: distances 1 and 2 over inter-ocular 4 -> 0.375; row 3: 1, 0, 0 over 3 -> 1/9
    assert masked_nme(PRED, TRUTH, (0, 1)) == pytest.approx((0.375 + 1 / 9) / 2)
    # normalised distances: 0.25, 0.5, 1/3, 0, 0
    assert masked_pck(PRED, TRUTH, (0, 1), alpha=0.3) == pytest.approx(3 / 5)
    assert masked_pck(PRED, TRUTH, (0, 1), alpha=0.5) == pytest.approx(1.0)
    assert masked_pck(PRED, TRUTH, (0, 1), alpha=0.2) == pytest.approx(2 / 5)


def test_report_counts_what_was_left_out() -> None:
    report = metric_report(PRED, TRUTH, eyes=(0, 1), alpha=0.3)
    assert report.mse == pytest.approx(19 / 15)
    assert report.rmse == pytest.approx(np.sqrt(19 / 15))
    assert report.nme == pytest.approx((0.375 + 1 / 9) / 2)
    assert report.pck == pytest.approx(3 / 5)
    assert (report.n_values, report.rows_scored, report.rows_empty) == (15, 3, 1)
    assert (report.rows_normalised, report.rows_without_eyes) == (2, 1)
    assert report.as_dict()["pck_alpha"] == 0.3


def test_without_missing_values_mse_is_the_leaderboard_metric() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 96, (7, 5, 2))
    pred = truth + rng.normal(0, 2, truth.shape)
    assert masked_mse(pred, truth) == pytest.approx(leaderboard_mse(pred, truth))
    iod = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=1)
    per_row = (np.linalg.norm(pred - truth, axis=2) / iod[:, None]).mean(axis=1)
    assert masked_nme(pred, truth, (0, 1)) == pytest.approx(per_row.mean())


def test_missing_everything_or_missing_predictions_raise() -> None:
    with pytest.raises(ValueError, match="no labelled value"):
        masked_mse(PRED, np.full_like(TRUTH, np.nan))
    bad = PRED.copy()
    bad[2, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"row 2, point 0, y"):
        masked_mse(bad, TRUTH)
    with pytest.raises(ValueError, match="must both be"):
        masked_mse(PRED[:, :2], TRUTH)
    unlabelled_eyes = TRUTH.copy()
    unlabelled_eyes[:, 1] = np.nan
    with pytest.raises(ValueError, match="no row has both eye centres"):
        masked_nme(PRED, unlabelled_eyes, (0, 1))
    report = metric_report(PRED, unlabelled_eyes, eyes=(0, 1))
    assert report.nme is None and report.pck is None and report.rows_without_eyes == 3


def test_predictions_may_be_missing_where_truth_is_missing() -> None:
    pred = PRED.copy()
    pred[0, 2] = np.nan  # the truth has no label there
    assert masked_mse(pred, TRUTH) == pytest.approx(19 / 15)


def test_without_known_eyes_nme_normalises_by_the_box() -> None:
    report = metric_report(PRED, TRUTH)  # 3 points: no known eyes, so the bounding box
    # row 2: box 2 x 2, distances 0 and 3; row 3: box 1 x 3, distances 1, 0, 0; row 0 is flat
    assert report.nme_norm == "bbox" and report.rows_normalised == 2
    assert report.nme == pytest.approx((1.5 / 2 + (1 / 3) / np.sqrt(3)) / 2)
    assert metric_report(PRED, TRUTH, eyes=(0, 1)).nme_norm == "inter-ocular"


def test_ced_auc_and_failure_rate_against_numpy_integration() -> None:
    rng = np.random.default_rng(3)
    truth = rng.uniform(0, 100, size=(300, 6, 2))
    predicted = truth + rng.normal(0, 4, size=truth.shape) * rng.uniform(0.2, 3, (300, 1, 1))
    truth[7, 0] = np.nan  # a missing eye point: image 7 has no inter-ocular NME
    eyes = (0, 1)
    nme = per_image_nme(predicted, truth, eyes)
    # by hand: per image, mean point distance over labelled points / eye distance
    for row in (0, 150, 299):
        distance = np.linalg.norm(predicted[row] - truth[row], axis=1)
        size = np.linalg.norm(truth[row, 0] - truth[row, 1])
        assert nme[row] == pytest.approx(distance.mean() / size, rel=1e-12)
    assert np.isnan(nme[7])
    errors = nme[~np.isnan(nme)]
    grid = np.linspace(0, 0.1, 200_001)
    curve = ced(nme, grid)
    np.testing.assert_array_equal(curve[::5000], [(errors <= x).mean() for x in grid[::5000]])
    for threshold in FAILURE_THRESHOLDS:
        inside = grid <= threshold
        numeric = np.trapezoid(curve[inside], grid[inside]) / threshold
        assert ced_auc(nme, threshold) == pytest.approx(numeric, abs=2e-5)
        assert failure_rate(nme, threshold) == pytest.approx((errors > threshold).mean())
    report = metric_report(predicted, truth, eyes)
    assert report.auc_08 == pytest.approx(ced_auc(nme, 0.08))
    assert report.fr_10 == pytest.approx((errors > 0.10).mean())
    assert 0 < report.fr_10 < report.fr_08 < 1 and 0 < report.auc_08 < report.auc_10 < 1


def test_auc_is_one_for_a_perfect_prediction_and_zero_beyond_the_threshold() -> None:
    truth = np.random.default_rng(0).uniform(0, 50, size=(4, 5, 2))
    assert ced_auc(per_image_nme(truth, truth, None), 0.08) == 1.0
    far = per_image_nme(truth + 1000.0, truth, None)
    assert ced_auc(far, 0.08) == 0.0 and failure_rate(far, 0.08) == 1.0
