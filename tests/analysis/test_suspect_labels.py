"""Suspect labels: planted wrong labels are flagged exactly, hard images are not, one run works."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from analysis.suspect_labels import CSV_COLUMNS, find_suspects, write_suspect_csv
from tests.helpers import suspect_case


def _robust_z(values: np.ndarray) -> np.ndarray:
    """0.6745 (v - median) / MAD, written out independently of the package."""
    centred = values - np.median(values)
    return 0.6745 * centred / np.median(np.abs(centred))


def _benjamini_hochberg(z: np.ndarray, fdr: float = 0.05) -> np.ndarray:
    """High z at false discovery rate `fdr`: one-sided normal p, step-up rule, by hand."""
    p = np.array([0.5 * math.erfc(value / math.sqrt(2)) for value in z])
    order = np.argsort(p)
    passing = np.flatnonzero(p[order] <= fdr * np.arange(1, len(p) + 1) / len(p))
    flags = np.zeros(len(p), dtype=bool)
    if len(passing):
        flags[order[: passing[-1] + 1]] = True
    return flags


def _flagged(result) -> set[int]:
    return set(np.flatnonzero(result.suspect).tolist())


def test_planted_labels_are_flagged_exactly_and_hard_images_are_not() -> None:
    case = suspect_case()
    result = find_suspects(case["names"], case["predictions"], case["labels"])
    assert _flagged(result) == case["planted"]
    assert result.spread_source == "runs" and result.n_runs == 3
    # the hard images are far from their label too, but the runs disagree as much: not flagged
    hard = sorted(case["hard"])
    centre = np.median(case["predictions"], axis=0)
    size = ((centre - centre.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean(axis=1)
    z_label = _robust_z(np.log(result.label_error / size))  # the rule without a spread
    assert (z_label[hard] > 3.5).all()
    assert not result.suspect[hard].any()
    # the ranking puts every planted label first
    assert set(result.order[: len(case["planted"])].tolist()) == case["planted"]


def test_numbers_match_an_independent_numpy_computation() -> None:
    case = suspect_case(n=120, planted=(7, 70), hard=(30,))
    labels = case["labels"]
    labels[5, 3] = np.nan  # a missing label is left out, not zeroed
    predictions = case["predictions"]
    result = find_suspects(case["names"], predictions, labels)
    centre = np.median(predictions, axis=0)
    error = np.nanmean(((labels - centre) ** 2).reshape(len(labels), -1), axis=1)
    spread = ((predictions - centre) ** 2).mean(axis=(0, 2, 3))
    np.testing.assert_allclose(result.label_error, error, rtol=1e-12)
    np.testing.assert_allclose(result.spread, spread, rtol=1e-12)
    size = ((centre - centre.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean(axis=1)
    x, y = np.log(spread / size), np.log(error / size)
    pairs = np.triu_indices(len(x), 1)
    slope = np.median((y[pairs[1]] - y[pairs[0]]) / (x[pairs[1]] - x[pairs[0]]))
    assert result.slope == pytest.approx(slope, rel=1e-9) and 0.3 < slope < 1.5
    score = _robust_z(y - slope * x)
    np.testing.assert_allclose(result.score, score, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(result.suspect, _benjamini_hochberg(score) & (error > spread))
    assert _flagged(result) == {7, 70}


def test_two_runs_spread_is_the_tta_quantity() -> None:
    """With two runs the consensus is their mean and spread = mean(((a - b) / 2)²)."""
    case = suspect_case(n_runs=2)
    a, b = case["predictions"]
    result = find_suspects(case["names"], case["predictions"], case["labels"])
    np.testing.assert_allclose(result.spread, (((a - b) / 2) ** 2).mean(axis=(1, 2)))
    assert _flagged(result) == case["planted"]


def test_one_run_uses_its_tta_spread() -> None:
    case = suspect_case(n_runs=1)
    result = find_suspects(case["names"], case["predictions"], case["labels"], case["tta"])
    assert result.spread_source == "tta"
    np.testing.assert_allclose(result.spread, case["tta"])
    assert _flagged(result) == case["planted"]
    assert "flip-TTA" in result.rule_text()


def test_one_run_without_tta_uses_label_error_alone() -> None:
    case = suspect_case(n_runs=1, hard=())
    result = find_suspects(case["names"], case["predictions"], case["labels"])
    assert result.spread_source == "none" and result.slope is None
    assert (result.spread == 0).all()
    centre = case["predictions"][0]
    size = ((centre - centre.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean(axis=1)
    np.testing.assert_allclose(result.score, _robust_z(np.log(result.label_error / size)))
    assert _flagged(result) == case["planted"]
    assert "label_error alone" in result.rule_text()


@pytest.mark.parametrize("n", [1, 4])
def test_too_few_images_flag_nothing(n: int) -> None:
    case = suspect_case(n=n, planted=(0,), hard=())
    result = find_suspects(case["names"], case["predictions"], case["labels"])
    assert result.count == 0 and np.isnan(result.score).all()


def test_threshold_does_not_depend_on_how_many_images() -> None:
    """The same planted labels are found among 200 images and among 2,000."""
    small = suspect_case(n=200)
    big = suspect_case(n=2000, planted=(3, 50, 97, 140, 188, 900, 1500), hard=(10, 60, 1200))
    for case in (small, big):
        result = find_suspects(case["names"], case["predictions"], case["labels"])
        assert _flagged(result) == case["planted"]


def test_csv_has_the_columns_ranked_by_score(tmp_path: Path) -> None:
    case = suspect_case()
    result = find_suspects(case["names"], case["predictions"], case["labels"])
    path = write_suspect_csv(tmp_path / "suspect_labels.csv", result)
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert (
        tuple(rows[0])
        == CSV_COLUMNS
        == (
            "file_name",
            "label_error",
            "spread",
            "score",
            "suspect",
        )
    )
    body = rows[1:]
    assert len(body) == len(case["names"])
    scores = [float(row[3]) for row in body]
    assert scores == sorted(scores, reverse=True)
    flagged = {row[0] for row in body if row[4] == "1"}
    assert flagged == {case["names"][i] for i in case["planted"]}
    by_name = {row[0]: row for row in body}
    for row_index in (0, 3, 10):
        row = by_name[case["names"][row_index]]
        assert float(row[1]) == pytest.approx(result.label_error[row_index], rel=1e-7)
        assert float(row[2]) == pytest.approx(result.spread[row_index], rel=1e-7)


def test_false_discovery_rate_adapts_to_the_number_of_images_and_of_errors() -> None:
    from analysis.image_errors import significant

    rng = np.random.default_rng(0)
    for n in (300, 100_000):  # nothing wrong: nothing flagged, however many images
        assert not significant(rng.normal(0, 1, n)).any()
    one = np.concatenate([rng.normal(0, 1, 999).clip(-3, 2.5), [3.2]])
    many = np.concatenate([rng.normal(0, 1, 950).clip(-3, 2.5), np.full(50, 3.2)])
    assert not significant(one).any()  # one image at z = 3.2 among 1,000 could be chance
    assert significant(many).sum() == 50  # fifty of them cannot
