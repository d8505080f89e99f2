"""Score-based weighting schemes of `ens blend`, checked against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble.blend.weights import scheme_weights, top_k, weights_from_scores
from ensemble.errors import InputError

SCORES = np.array([2.0, 1.0, 4.0])


def test_equal():
    assert np.allclose(scheme_weights(SCORES, "equal"), [1 / 3, 1 / 3, 1 / 3])


def test_inverse_power_one_and_two():
    # 1/2 : 1/1 : 1/4 = 2 : 4 : 1
    assert np.allclose(scheme_weights(SCORES, "inverse"), [2 / 7, 4 / 7, 1 / 7])
    # 1/4 : 1 : 1/16 = 4 : 16 : 1
    assert np.allclose(scheme_weights(SCORES, "inverse", power=2), [4 / 21, 16 / 21, 1 / 21])


def test_inverse_higher_is_better_uses_the_score_itself():
    assert np.allclose(
        scheme_weights(SCORES, "inverse", higher_is_better=True), [2 / 7, 1 / 7, 4 / 7]
    )


def test_softmax_with_temperature():
    raw = np.exp(-SCORES / 0.5)
    assert np.allclose(scheme_weights(SCORES, "softmax", temperature=0.5), raw / raw.sum())
    raw = np.exp(SCORES / 2.0)
    got = scheme_weights(SCORES, "softmax", temperature=2.0, higher_is_better=True)
    assert np.allclose(got, raw / raw.sum())


def test_softmax_default_temperature_is_the_std():
    spread = np.sqrt(np.mean((SCORES - SCORES.mean()) ** 2))
    raw = np.exp(-SCORES / spread)
    assert np.allclose(scheme_weights(SCORES, "softmax"), raw / raw.sum())


def test_rank_best_gets_most_ties_share():
    # best (1.0) rank 3, middle (2.0) rank 2, worst (4.0) rank 1
    assert np.allclose(scheme_weights(SCORES, "rank"), [2 / 6, 3 / 6, 1 / 6])
    tied = np.array([1.0, 1.0, 3.0])  # ranks 2.5, 2.5, 1
    assert np.allclose(scheme_weights(tied, "rank"), [2.5 / 6, 2.5 / 6, 1 / 6])


def test_manual_is_normalised_and_validated():
    got = scheme_weights(np.full(3, np.nan), "manual", manual=np.array([1.0, 3.0, 0.0]))
    assert np.allclose(got, [0.25, 0.75, 0.0])
    with pytest.raises(ValueError, match="non-negative"):
        scheme_weights(SCORES, "manual", manual=np.array([1.0, -1.0, 1.0]))


def test_inverse_rejects_non_positive_scores():
    with pytest.raises(ValueError, match="positive"):
        scheme_weights(np.array([1.0, 0.0]), "inverse")


def test_top_k_keeps_the_best_ties_by_order():
    assert top_k(SCORES, 2).tolist() == [True, True, False]
    assert top_k(SCORES, 1, higher_is_better=True).tolist() == [False, False, True]
    assert top_k(np.array([1.0, 1.0, 1.0]), 2).tolist() == [True, True, False]


def _scores_csv(tmp_path, text: str):
    path = tmp_path / "scores.csv"
    path.write_text(text)
    return path


def test_scores_table_top_k_then_scheme(tmp_path):
    path = _scores_csv(
        tmp_path,
        "run,submission,val,public,private,score\na,a.csv,3,,,2\nb,b.csv,1,,,1\nc,c.csv,2,,,4\n",
    )
    table = weights_from_scores(path, scheme="inverse", top=2)
    assert table.score_column == "score"
    assert np.allclose(table.weights, [1 / 3, 2 / 3, 0.0])  # 1/2 : 1/1 among a and b
    assert table.paths[0] == (tmp_path / "a.csv").resolve()


def test_default_column_falls_back_to_public_then_val(tmp_path):
    path = _scores_csv(tmp_path, "run,submission,val,public,private\na,a.csv,1,4,\nb,b.csv,2,1,\n")
    assert weights_from_scores(path).score_column == "public"
    path = _scores_csv(tmp_path, "run,submission,val,public,private\na,a.csv,1,4,\nb,b.csv,3,,\n")
    table = weights_from_scores(path)
    assert table.score_column == "val"
    assert np.allclose(table.weights, [0.75, 0.25])


def test_by_and_subset_of_submissions(tmp_path):
    path = _scores_csv(tmp_path, "submission,score,weight\na.csv,1,5\nb.csv,2,1\nc.csv,4,2\n")
    table = weights_from_scores(path, [tmp_path / "c.csv", tmp_path / "a.csv"], "manual")
    assert table.names == ["c", "a"]
    assert np.allclose(table.weights, [2 / 7, 5 / 7])
    table = weights_from_scores(path, by="weight", higher_is_better=True, scheme="rank")
    assert np.allclose(table.weights, [3 / 6, 1 / 6, 2 / 6])


def test_missing_scores_and_unknown_submission_are_input_errors(tmp_path):
    path = _scores_csv(tmp_path, "submission,score\na.csv,1\nb.csv,\n")
    with pytest.raises(InputError, match="no score column"):
        weights_from_scores(path)
    with pytest.raises(InputError, match="line 3: empty 'score'"):
        weights_from_scores(path, by="score")
    with pytest.raises(InputError, match="not listed"):
        weights_from_scores(path, [tmp_path / "zzz.csv"], "equal")
    assert np.allclose(weights_from_scores(path, scheme="equal").weights, [0.5, 0.5])
