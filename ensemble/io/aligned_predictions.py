"""The runs' predictions aligned on their common images, with those images' labels.

`load_validation` reads the validation predictions of run folders and their train labels (what
fitted blends and the analysis of runs start from); `align` and `labels_for` do the same for any
predictions and labels file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.errors import InputError
from ensemble.io.checks import row_index
from ensemble.io.data_folder import DataFolder
from ensemble.io.landmarks import landmark_blocks
from ensemble.io.predictions import Predictions, load_predictions
from ensemble.io.run_folder import RunFolder, data_dir_of


def truth_for(data_dir: str | Path, file_names: np.ndarray) -> np.ndarray:
    """True train landmarks (n, N, 2) for `file_names`, in that order, from DATA/train."""
    return labels_for(DataFolder.at(data_dir).train_landmarks, file_names)


def labels_for(
    path: str | Path, file_names: np.ndarray, source: str | Path | None = None
) -> np.ndarray:
    """The landmarks (n, N, 2) of the file at `path` for `file_names` (predicted in `source`,
    when given, for the message of a name not in the file), in that order. The file is
    streamed: only the rows asked for are kept."""
    wanted = row_index(file_names)
    points = None
    found = np.zeros(len(file_names), dtype=bool)
    for block in landmark_blocks(path, allow_missing=True):
        if points is None:
            points = np.empty((len(file_names), *block.points.shape[1:]), dtype=np.float32)
        for row, name in enumerate(block.file_names):
            target = wanted.get(name)
            if target is not None:
                points[target] = block.points[row]
                found[target] = True
    missing = [name for name in file_names if not found[wanted[name]]]
    if missing:
        of = "" if source is None else f" of {source}"
        raise InputError(
            path, f"{len(missing)} predicted file(s){of} not in the labels, e.g. {missing[0]}"
        )
    return points[np.array([wanted[name] for name in file_names], dtype=np.int64)]


def _aligned(runs: list[RunFolder]) -> tuple[np.ndarray, list[Predictions], dict[str, int]]:
    """Each run's validation predictions on the runs' common images, sorted by name, and how
    many validation images each run has of its own."""
    paths = [run.val_predictions_path for run in runs]
    loaded = [load_predictions(path) for path in paths]
    names, aligned = align(loaded, paths)
    if not len(names):
        raise InputError(runs[0].path, "the runs share no validation image")
    return (
        names,
        aligned,
        {run.name: len(p.file_names) for run, p in zip(runs, loaded, strict=True)},
    )


def align(loaded: list[Predictions], paths: list[Path]) -> tuple[np.ndarray, list[Predictions]]:
    """Predictions (read from `paths`) on their common images, sorted by name (maybe none)."""
    common = set(loaded[0].file_names)
    for item in loaded[1:]:
        common &= set(item.file_names)
    names = np.array(sorted(common), dtype=object)
    aligned = []
    for path, item in zip(paths, loaded, strict=True):
        if item.points.shape[1] != loaded[0].points.shape[1]:
            raise InputError(path, "point count differs from the other runs")
        position = row_index(item.file_names)
        rows = [position[name] for name in names]
        aligned.append(
            Predictions(
                names,
                item.points[rows],
                None if item.tta_spread is None else item.tta_spread[rows],
                None if item.sigma is None else item.sigma[rows],
            )
        )
    return names, aligned


NO_DATA = (
    "no true landmarks: give --data DIR (with train/landmarks.csv) or record `data` in the "
    "runs' config.toml"
)


@dataclass(frozen=True)
class Validation:
    """The runs' validation predictions on their common images, and those images' labels."""

    runs: list[RunFolder]
    names: np.ndarray  # (n,) sorted
    predictions: np.ndarray  # (runs, n, N, 2)
    truth: np.ndarray  # (n, N, 2), NaN where not labelled
    data_dir: Path
    aligned: list[Predictions]  # each run's predictions on `names` (tta_spread, sigma)
    covered: dict[str, int]  # run -> the validation images it has (`names` are those all have)

    @property
    def n_points(self) -> int:
        """N."""
        return int(self.truth.shape[1])

    def sigma(self) -> np.ndarray:
        """Every run's sigma (runs, n, N), NaN for a run without one."""
        missing = np.full(self.truth.shape[:2], np.nan)
        return np.stack([missing if a.sigma is None else a.sigma for a in self.aligned])

    def shared_note(self) -> str:
        """Empty when every run has the same validation images; else which runs have fewer."""
        most = max(self.covered.values())
        fewer = [f"{name} has {count}" for name, count in self.covered.items() if count < most]
        if not fewer:
            return ""
        return f" (the images all runs share: the others have {most}, {', '.join(fewer)})"


def load_validation(runs: list[RunFolder], data_dir: str | Path | None = None) -> Validation:
    """Load the runs' validation predictions and their labels from `data_dir` (default: the
    `data` of the runs' config.toml); InputError names what is missing or does not fit."""
    data = Path(data_dir) if data_dir is not None else data_dir_of(runs)
    if data is None:
        raise InputError(runs[0].path.parent, NO_DATA)
    names, aligned, covered = _aligned(runs)
    predictions = np.stack([item.points for item in aligned])
    truth = truth_for(data, names)
    if truth.shape[1] != predictions.shape[2]:
        raise InputError(
            runs[0].val_predictions_path,
            f"{predictions.shape[2]} points per image, the labels in {data} have {truth.shape[1]}",
        )
    return Validation(runs, names, predictions, truth, data, aligned, covered)
