"""`ens blend --weights` checks the blend on the runs' validation predictions and warns."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from ensemble.blend.validation_check import validation_check
from ensemble.cli import cli
from ensemble.competition.metric import validation_score
from ensemble.io.aligned_predictions import truth_for
from ensemble.io.predictions import load_predictions
from tests.helpers import make_runs


def _scores(runs, public: list[float]) -> None:
    lines = ["run,submission,val,public,private"]
    lines += [f"run{i},run{i}/submission.csv,,{p}," for i, p in enumerate(public)]
    (runs / "scores.csv").write_text("\n".join(lines) + "\n")


def _by_hand(runs, data, weights: list[float]) -> tuple[float, list[float]]:
    """Validation score of the weighted mean and of each run, computed here with numpy."""
    loaded = [load_predictions(runs / f"run{i}" / "val_predictions.npz") for i in range(2)]
    names = loaded[0].file_names
    truth = truth_for(data, names)
    w = np.array(weights) / np.sum(weights)
    blended = w[0] * loaded[0].points.astype(float) + w[1] * loaded[1].points.astype(float)
    singles = [validation_score(names, p.points, truth) for p in loaded]
    return validation_score(names, blended, truth), singles


@pytest.mark.parametrize(
    ("sigmas", "public", "worse"),
    [
        ([1.0, 6.0], [10.0, 9.0], True),  # the weak run's lucky leaderboard score
        ([1.0, 1.1], [10.0, 11.0], False),  # two similar runs: the blend helps
    ],
)
def test_the_warning_appears_exactly_when_the_blend_loses_on_validation(
    tmp_path, sigmas, public, worse
) -> None:
    runs, data, *_ = make_runs(tmp_path, sigmas)
    _scores(runs, public)
    output = tmp_path / "blend.csv"
    result = CliRunner().invoke(
        cli, ["blend", "--weights", str(runs / "scores.csv"), "-o", str(output)]
    )
    assert result.exit_code == 0, result.output
    inverse = [1 / p for p in public]
    blend, singles = _by_hand(runs, data, inverse)
    assert (blend > min(singles)) is worse
    check = validation_check(
        [runs / f"run{i}" / "submission.csv" for i in range(2)], np.array(inverse)
    )
    assert check.blend_score == pytest.approx(blend, rel=1e-9)
    assert (check.best_run, check.best_score) == ("run0", pytest.approx(singles[0], rel=1e-9))
    assert ("warning: on validation (120 images) this blend scores" in result.output) is worse
    if worse:
        assert f"ens blend --fit {runs} -o {tmp_path / 'fitted.csv'}" in result.output
    else:
        assert f"on validation (120 images): blend {blend:.6g}, best single run run0" in (
            result.output
        )


def test_submissions_outside_run_folders_are_not_checked(tmp_path) -> None:
    runs, *_ = make_runs(tmp_path, [1.0, 2.0])
    (runs / "run1" / "val_predictions.npz").unlink()
    _scores(runs, [1.0, 2.0])
    assert (
        validation_check([runs / "run0/submission.csv", runs / "run1/submission.csv"], np.ones(2))
        is None
    )
    result = CliRunner().invoke(
        cli, ["blend", "--weights", str(runs / "scores.csv"), "-o", str(tmp_path / "b.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "on validation" not in result.output
