"""Reading run folders written by `ens train-all` (see DESIGN.md, "Runs")."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.errors import InputError
from ensemble.formats import Landmarks, read_landmarks
from ensemble.predictions import Predictions, load_predictions

VAL_PREDICTIONS = "val_predictions.npz"
TEST_PREDICTIONS = "test_predictions.npz"
SUBMISSION = "submission.csv"
SUMMARY = "summary.json"
CONFIG = "config.toml"
METRICS = "metrics.csv"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.pt"  # every epoch (and every checkpoint_every steps): what resumes
BEST_CHECKPOINT = "best.pt"  # the best val score so far: what predicts


@dataclass(frozen=True)
class RunFolder:
    """One finished (or partial) run folder."""

    name: str
    path: Path

    @classmethod
    def at(cls, path: str | Path) -> RunFolder:
        """The run folder at `path` (named after its last component)."""
        return cls(Path(path).name, Path(path))

    @property
    def checkpoints(self) -> Path:
        """The checkpoints/ folder."""
        return self.path / CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        """checkpoints/last.pt: the state a resume or a rollback continues from."""
        return self.checkpoints / LAST_CHECKPOINT

    @property
    def best_checkpoint(self) -> Path:
        """checkpoints/best.pt: the weights of the best val score so far."""
        return self.checkpoints / BEST_CHECKPOINT

    @property
    def val_predictions_path(self) -> Path:
        """Path of the validation predictions."""
        return self.path / VAL_PREDICTIONS

    @property
    def test_predictions_path(self) -> Path:
        """Path of the test predictions."""
        return self.path / TEST_PREDICTIONS

    @property
    def submission_path(self) -> Path:
        """Path of the ready submission."""
        return self.path / SUBMISSION

    def val_predictions(self) -> Predictions:
        """Load the validation predictions."""
        return load_predictions(self.val_predictions_path)

    def test_predictions(self) -> Predictions:
        """Load the test predictions."""
        return load_predictions(self.test_predictions_path)

    def summary(self) -> dict:
        """summary.json as a dict ({} when absent)."""
        path = self.path / SUMMARY
        return json.loads(path.read_text()) if path.is_file() else {}

    def config(self) -> dict:
        """config.toml as a dict ({} when absent); InputError when it is not valid TOML."""
        path = self.path / CONFIG
        if not path.is_file():
            return {}
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise InputError(path, f"not UTF-8 text: {error}") from None
        except tomllib.TOMLDecodeError as error:
            raise InputError(path, f"not valid TOML: {error}") from None


def find_runs(runs_dir: str | Path, require: str = VAL_PREDICTIONS) -> list[RunFolder]:
    """Run folders under `runs_dir` (sorted by name) that hold the file `require`."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise InputError(root, "runs folder not found")
    runs = [
        RunFolder(child.name, child)
        for child in sorted(root.iterdir())
        if child.is_dir() and (child / require).is_file()
    ]
    if not runs:
        raise InputError(root, f"no run folder with {require} inside")
    return runs


def data_dir_of(runs: list[RunFolder]) -> Path | None:
    """The data folder recorded in the runs' config.toml (`data` key), if any."""
    for run in runs:
        data = run.config().get("data")
        if data:
            return Path(data)
    return None


def truth_for(data_dir: str | Path, file_names: np.ndarray) -> np.ndarray:
    """True train landmarks (n, N, 2) for `file_names`, in that order, from DATA/train."""
    path = Path(data_dir) / "train" / "landmarks.csv"
    landmarks: Landmarks = read_landmarks(path, allow_missing=True)
    position = {name: row for row, name in enumerate(landmarks.file_names)}
    missing = [name for name in file_names if name not in position]
    if missing:
        raise InputError(
            path, f"{len(missing)} predicted file(s) not in the labels, e.g. {missing[0]}"
        )
    return landmarks.points[[position[name] for name in file_names]]


def align_predictions(runs: list[RunFolder]) -> tuple[np.ndarray, np.ndarray]:
    """Validation predictions of all runs on their common images: (names, (R, n, N, 2))."""
    loaded = [run.val_predictions() for run in runs]
    common = set(loaded[0].file_names)
    for item in loaded[1:]:
        common &= set(item.file_names)
    if not common:
        raise InputError(runs[0].path, "the runs share no validation image")
    names = np.array(sorted(common), dtype=object)
    stacked = []
    for run, item in zip(runs, loaded, strict=True):
        if item.points.shape[1] != loaded[0].points.shape[1]:
            raise InputError(run.val_predictions_path, "point count differs from the other runs")
        position = {name: row for row, name in enumerate(item.file_names)}
        stacked.append(item.points[[position[name] for name in names]])
    return names, np.stack(stacked)
