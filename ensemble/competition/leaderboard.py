"""The simulated leaderboard (`ens score`): submission files against the hidden test truth."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ensemble.competition.metric import LeaderboardScore, score_values
from ensemble.errors import InputError
from ensemble.io.checks import row_index
from ensemble.io.data_folder import DataFolder
from ensemble.io.landmark_picks import read_landmarks_at
from ensemble.io.landmarks import read_landmarks, read_landmarks_header
from ensemble.io.submission import gather_points, read_submission
from ensemble.io.test_points import read_test_points

# pandas (scores.csv) is imported by record_scores only: `ens score` without --scores starts
# without it.


def hidden_truth(data_dir: str | Path) -> tuple:
    """test_points and the hidden test landmarks aligned with its rows."""
    data = Path(data_dir)
    truth_path = DataFolder.at(data).test_landmarks
    if not truth_path.is_file():
        raise InputError(
            truth_path,
            "no hidden test truth here (only demo data has it; real scores come "
            "from the leaderboard)",
        )
    truth = read_landmarks(truth_path)
    test_points = read_test_points(DataFolder.at(data).test_points, n_points=truth.n_points)
    position = row_index(truth.file_names)
    missing = [name for name in test_points.file_names if name not in position]
    if missing:
        raise InputError(truth_path, f"no truth for test image '{missing[0]}'")
    return test_points, truth.points[[position[name] for name in test_points.file_names]]


def hidden_truth_values(data_dir: str | Path) -> tuple:
    """test_points and the hidden truth at its requested points (n, K, 2), rows aligned.

    Reads only what scoring needs when the truth file is plain and in test_points' order
    (`read_landmarks_at`); otherwise as `hidden_truth`, with the same checks and messages.
    """
    data = Path(data_dir)
    truth_path = DataFolder.at(data).test_landmarks
    if not truth_path.is_file():
        return _gathered(*hidden_truth(data))  # raises: no truth here
    header = read_landmarks_header(truth_path)
    try:
        test_points = read_test_points(DataFolder.at(data).test_points, n_points=header)
    except InputError:
        hidden_truth(data)  # a problem of the truth file is reported first, as always
        raise
    values = read_landmarks_at(truth_path, test_points.file_names, test_points.indices)
    if values is None:
        return _gathered(*hidden_truth(data))
    return test_points, values


def _gathered(test_points, truth: np.ndarray) -> tuple:
    return test_points, gather_points(truth, test_points.indices)


def score_files(paths: Sequence[str | Path], data_dir: str | Path) -> list[LeaderboardScore]:
    """Public/private scores of each submission file."""
    test_points, truth = hidden_truth_values(data_dir)
    return [score_values(read_submission(path), test_points, truth, str(path)) for path in paths]


def record_scores(
    scores_path: str | Path, paths: Sequence[str | Path], results: Sequence[LeaderboardScore]
) -> None:
    """Fill public/private of the rows of scores.csv whose submission is one of `paths`."""
    import pandas as pd

    from ensemble.io.scores_table import update_scores

    scores_path = Path(scores_path)

    def fill(frame: pd.DataFrame) -> pd.DataFrame:
        for path, result in zip(paths, results, strict=True):
            resolved = str(Path(path).resolve())
            hit = frame["submission_path"] == resolved
            if not hit.any():
                relative = os.path.relpath(resolved, scores_path.parent.resolve())
                row = {"run": Path(path).stem, "submission": relative, "submission_path": resolved}
                frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
                hit = frame["submission_path"] == resolved
            frame.loc[hit, "public"] = result.public
            frame.loc[hit, "private"] = result.private
        return frame.drop(columns=["submission_path"]).astype({"val": float})

    update_scores(scores_path, fill)
