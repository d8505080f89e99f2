"""Where the analysis finds its inputs: DATA/test/test_points.csv, N, RUNS/scores.csv, runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ensemble.competition.layout import DEFAULT_LAYOUT
from ensemble.errors import InputError
from ensemble.io.data_folder import DataFolder
from ensemble.io.landmarks import read_landmarks_header

if TYPE_CHECKING:
    from analysis.document import Section
    from ensemble.io.run_folder import RunFolder

DEFAULT_N_POINTS = DEFAULT_LAYOUT.n_points  # where no data says N: the competition's layout


@dataclass(frozen=True)
class Inputs:
    """Resolved input paths of an analysis (None where absent)."""

    test_points: Path | None
    n_points: int
    n_points_from: str
    scores: Path | None
    runs: Path | None
    data: Path | None


def resolve_inputs(
    data: Path | None,
    runs: Path | None,
    scores: Path | None,
    test_points: Path | None,
    n_points: int | None,
) -> Inputs:
    """Fill in defaults: DATA/test/test_points.csv, N from DATA/train, RUNS/scores.csv."""
    if data is None and runs is not None and runs.is_dir():
        from ensemble.io.run_folder import data_dir_of, find_runs

        try:
            data = data_dir_of(find_runs(runs))
        except InputError:
            data = None
    if test_points is None and data is not None:
        candidate = DataFolder.at(data).test_points
        test_points = candidate if candidate.exists() else None
    source = "--n-points"
    if n_points is None:
        labels = DataFolder.at(data).train_landmarks if data is not None else None
        if labels is not None and labels.exists():
            n_points, source = read_landmarks_header(labels), f"header of {labels}"
        else:
            n_points = DEFAULT_N_POINTS
            source = f"default (the competition's {DEFAULT_N_POINTS})"
    if scores is None and runs is not None and (runs / "scores.csv").exists():
        scores = runs / "scores.csv"
    return Inputs(test_points, n_points, source, scores, runs, data)


NO_RUNS = "no runs folder: give --runs RUNS (run folders with val_predictions.npz)"


def runs_and_data(
    section: Section, runs_dir: Path | None, data_dir: Path | None
) -> tuple[list[RunFolder], Path] | None:
    """The run folders under `runs_dir` and the data folder with their labels (`data_dir`, else
    the runs' config.toml); None, with `section.missing` saying what is absent, without them."""
    from ensemble.io.aligned_predictions import NO_DATA
    from ensemble.io.run_folder import data_dir_of, find_runs

    if runs_dir is None:
        section.missing = NO_RUNS
        return None
    try:
        runs = find_runs(runs_dir)
    except InputError as error:
        section.missing = str(error)
        return None
    data_dir = data_dir or data_dir_of(runs)
    if data_dir is None:
        section.missing = NO_DATA
        return None
    return runs, Path(data_dir)
