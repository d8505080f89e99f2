"""A run made elsewhere (`ens import-run`): its predictions matched to a data set, scored like a
trained run and written as a run folder that every command reads like one.

Everything is read and checked before anything is written; the folder is built beside
RUNS/NAME and renamed into place (`ensemble.io.atomic.atomic_folder`), then its row is added to
RUNS/scores.csv.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.competition.baseline import baseline_for_train_images
from ensemble.competition.health import judge
from ensemble.competition.metric import validation_score
from ensemble.errors import InputError
from ensemble.io.atomic import atomic_folder
from ensemble.io.data_folder import DataFolder
from ensemble.io.external_predictions import (
    ExternalPredictions,
    check_values,
    match_images,
    read_external,
)
from ensemble.io.landmarks import read_landmarks, read_landmarks_header
from ensemble.io.locks import hold
from ensemble.io.predictions import save_predictions
from ensemble.io.run_folder import SCORES, RunFolder
from ensemble.io.scores_table import read_scores
from ensemble.io.submission import gather_points, write_submission
from ensemble.io.test_points import TestPoints, read_test_points

SOURCE = "imported"


@dataclass(frozen=True)
class TestSide:
    """The imported test predictions, in test_points.csv order."""

    __test__ = False  # not a pytest class

    requests: TestPoints
    points: np.ndarray | None  # (n, N, 2) every landmark; None when a submission was given
    values: np.ndarray  # (n, K, 2) the requested points (NaN at ragged padding)


@dataclass(frozen=True)
class ValSide:
    """The imported validation predictions of the train images they cover, in data order."""

    names: np.ndarray
    points: np.ndarray  # (m, N, 2) float32, as saved
    truth: np.ndarray  # (m, N, 2) their train labels
    n_train: int  # images in train/landmarks.csv


def import_run(
    run_dir: str | Path,
    data_dir: str | Path,
    test_path: str | Path,
    val_path: str | Path | None = None,
    data_order: bool = False,
) -> dict:
    """Write RUNS/NAME (`run_dir`) from external test (and validation) predictions, add its row
    to RUNS/scores.csv and return its summary; InputError, and nothing written, on bad input."""
    run_dir, data = Path(run_dir), DataFolder.at(data_dir)
    n_points = read_landmarks_header(data.train_landmarks)
    test = _test_side(read_external(test_path), data, n_points, data_order)
    val = None if val_path is None else _val_side(read_external(val_path), data, data_order)
    scores = run_dir.parent / SCORES
    if scores.is_file():
        read_scores(scores)  # a scores.csv that cannot take the row fails before any write
    inputs = {"test": test_path, "val": val_path}
    siblings = _sibling_scores(run_dir)
    summary = _summary(run_dir.name, data.path, n_points, test, val, inputs, data_order, siblings)
    with hold(run_dir, "importing a run"):
        with atomic_folder(run_dir) as work:
            staged = RunFolder.at(work)
            if val is not None:
                save_predictions(staged.val_predictions_path, val.names, val.points)
            if test.points is not None:
                names = test.requests.file_names
                save_predictions(staged.test_predictions_path, names, test.points)
            write_submission(staged.submission_path, test.requests.file_names, test.values)
            staged.update_summary(summary)
        RunFolder.at(run_dir).record_score(summary.get("val_score", math.nan))
    return summary


def _width_check(external: ExternalPredictions, width: int, what: str) -> None:
    """InputError unless the file has `width` points per image."""
    found = external.points.shape[1]
    if found != width:
        raise InputError(external.path, f"{found} points per image, {what} {width}")


def _test_side(
    external: ExternalPredictions, data: DataFolder, n_points: int, data_order: bool
) -> TestSide:
    """Every test image of test_points.csv, once: its full points, or a submission's values."""
    requests = read_test_points(data.test_points, n_points=n_points, ragged=True)
    if external.requested_only:
        _width_check(external, requests.indices.shape[1], f"{data.test_points} requests")
    else:
        _width_check(external, n_points, "the data set's landmarks have")
    matched = match_images(external, requests.file_names, data.test_points, data_order=data_order)
    if external.requested_only:
        check_values(external, requests.file_names, matched.points, requests.mask)
        values = np.where(requests.mask[:, :, None], matched.points, np.nan)
        return TestSide(requests, None, values)
    check_values(external, requests.file_names, matched.points)
    points = matched.points.astype(np.float32)
    return TestSide(requests, points, gather_points(points, requests.indices))


def _val_side(external: ExternalPredictions, data: DataFolder, data_order: bool) -> ValSide:
    """The train images the validation predictions cover (some or all), with their labels."""
    if external.requested_only:
        raise InputError(
            external.path,
            "a submission holds only the points test_points.csv requests of test images; "
            "--val needs every landmark of train images (see `ens import-run --help`)",
        )
    train = read_landmarks(data.train_landmarks, allow_missing=True)
    _width_check(external, train.n_points, f"{data.train_landmarks} has")
    matched = match_images(
        external, train.file_names, data.train_landmarks, data_order=data_order, partial=True
    )
    names = train.file_names[matched.positions]
    check_values(external, names, matched.points)
    points = matched.points.astype(np.float32)
    return ValSide(names, points, train.points[matched.positions], len(train))


def _sibling_scores(run_dir: Path) -> list[float]:
    """The val scores of the other runs in RUNS (the health rule compares with their median)."""
    if not run_dir.parent.is_dir():
        return []
    others = [p for p in run_dir.parent.iterdir() if p.is_dir() and p.name != run_dir.name]
    scores = [RunFolder.at(path).summary().get("val_score") for path in sorted(others)]
    return [float(score) for score in scores if isinstance(score, (int, float))]


def _val_scores(val: ValSide, data_dir: Path, siblings: list[float]) -> dict:
    """val_score as training computes it, and the mean-shape baseline's on the same images."""
    try:
        score = validation_score(val.names, val.points, val.truth)
    except ValueError:  # no covered image has a label among its scored points
        raise InputError(
            DataFolder.at(data_dir).train_landmarks,
            "no validation image has a labelled point among its scored indices",
        ) from None
    out = {"val_score": score}
    try:
        baseline = validation_score(
            val.names, baseline_for_train_images(data_dir, val.names), val.truth
        )
    except InputError as error:  # the train images cannot be sized: no baseline, as analyze
        out["baseline_problem"] = str(error)
        baseline = None
    else:
        out["baseline_val_score"] = baseline
    out["health"] = judge(score, baseline, siblings).as_dict()
    return out


def _summary(
    name: str,
    data_dir: Path,
    n_points: int,
    test: TestSide,
    val: ValSide | None,
    inputs: dict[str, str | Path | None],
    data_order: bool,
    siblings: list[float],
) -> dict:
    """summary.json of the imported run: where it came from, what it covers, its val score."""
    summary = {
        "run": name,
        "source": SOURCE,
        "inputs": {k: None if v is None else str(Path(v).resolve()) for k, v in inputs.items()},
        "order": "data" if data_order else "names",
        "data": str(data_dir.resolve()),
        "n_points": n_points,
        "n_test": len(test.requests),
        "full_test_points": test.points is not None,
        "missing": [],
        "command": " ".join(sys.argv),
    }
    if test.points is None:
        summary["missing"].append(
            "test_predictions.npz: the test input is a submission, only the points "
            "test_points.csv requests (blends use submission.csv)"
        )
    if val is None:
        summary["missing"].append(
            "val_predictions.npz: no validation predictions given (no val score; fitted blends "
            "and the analyses of runs leave this run out)"
        )
    else:
        summary.update(n_val=len(val.names), n_train_images=val.n_train)
        summary.update(_val_scores(val, data_dir, siblings))
    return summary
