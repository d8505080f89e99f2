"""`ens baseline` and `ens score` end to end on a tiny dataset the test writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.competition.metric import public_mask
from ensemble.io.submission import read_submission, write_submission
from tests.helpers import fails_cleanly


def test_baseline_then_score_matches_numpy(tiny_competition, tmp_path: Path) -> None:
    data, contents = tiny_competition
    runner = CliRunner()
    sub = tmp_path / "baseline.csv"
    result = runner.invoke(cli, ["baseline", "--data", str(data), "-o", str(sub)])
    assert result.exit_code == 0, result.output
    train_names, train_points, train_sizes = contents["train"]
    test_names, test_points, test_sizes = contents["test"]
    mean = (train_points / train_sizes[:, None, :]).mean(axis=0)
    expected = mean[None] * test_sizes[:, None, :]
    indices = contents["indices"]
    gathered = np.take_along_axis(expected, indices[:, :, None], axis=1)
    np.testing.assert_allclose(read_submission(sub).values, gathered, atol=5e-5)

    scores = tmp_path / "scores.csv"
    result = runner.invoke(cli, ["score", str(sub), "--data", str(data), "--scores", str(scores)])
    assert result.exit_code == 0, result.output
    truth = np.take_along_axis(test_points, indices[:, :, None], axis=1)
    per_row = ((np.round(gathered, 4) - truth) ** 2).reshape(len(truth), -1).mean(axis=1)
    mask = public_mask(np.array(test_names, dtype=object))
    assert f"{per_row[mask].mean():.4f}" in result.output
    assert f"{per_row[~mask].mean():.4f}" in result.output
    table = pd.read_csv(scores)
    assert table.loc[0, "submission"] == "baseline.csv"
    assert table.loc[0, "public"] == pytest.approx(per_row[mask].mean(), rel=1e-5)


def test_score_rejects_bad_submission_without_traceback(tiny_competition, tmp_path) -> None:
    data, contents = tiny_competition
    names = contents["test"][0]
    k = contents["indices"].shape[1]
    bad = tmp_path / "bad.csv"
    write_submission(bad, names[::-1], np.zeros((len(names), k, 2)))
    result = CliRunner().invoke(cli, ["score", str(bad), "--data", str(data)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "out of order" in result.output and "line 2" in result.output
    short = tmp_path / "short.csv"
    write_submission(short, names[:-1], np.zeros((len(names) - 1, k, 2)))
    result = CliRunner().invoke(cli, ["score", str(short), "--data", str(data)])
    assert result.exit_code == 1 and "rows, test_points.csv has" in result.output


def test_baseline_reports_missing_image(tiny_competition, tmp_path: Path) -> None:
    data, contents = tiny_competition
    (data / "test" / "images" / contents["test"][0][2]).unlink()
    result = CliRunner().invoke(cli, ["baseline", "--data", str(data), "-o", str(tmp_path / "b")])
    assert result.exit_code == 1
    assert "image not found" in result.output and contents["test"][0][2] in result.output
    assert not (tmp_path / "b").exists()


def test_baseline_refuses_labels_cut_short(tiny_competition, tmp_path: Path) -> None:
    data, _ = tiny_competition
    labels = data / "train" / "landmarks.csv"
    labels.write_bytes(labels.read_bytes()[:-3])  # a download that stopped inside a number
    fails_cleanly(
        tmp_path,
        ["baseline", "--data", str(data), "-o", str(tmp_path / "b.csv")],
        f"{labels}, line 9: the last line has no line end: the file looks truncated",
    )
