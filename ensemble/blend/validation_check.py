"""Does a score-weighted blend beat its best run on validation? What `ens blend --weights` says.

A blend weighted by leaderboard scores can come out worse than its best member (a weak run with
a lucky score drags it up). When every weighted-in submission is a run's `submission.csv` with
`val_predictions.npz` beside it, the same weights are applied to the runs' validation
predictions and scored against the train labels, so the user sees it before uploading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.blend.poor_runs import PoorRuns, poor_among
from ensemble.competition.metric import validation_score
from ensemble.io.aligned_predictions import load_validation
from ensemble.io.data_folder import DataFolder
from ensemble.io.run_folder import RunFolder, data_dir_of


@dataclass(frozen=True)
class ValidationCheck:
    """Validation scores of a weighted blend and of its best run."""

    n_images: int
    blend_score: float
    best_run: str
    best_score: float
    runs_dir: Path  # the folder holding the runs (for the `--fit` advice)
    poor: PoorRuns | None = None  # poor runs weighted in, and the blend without them

    @property
    def worse(self) -> bool:
        """True when the blend scores above (worse than) its best run."""
        return self.blend_score > self.best_score


def blend_val_score(
    runs: list[RunFolder], weights: np.ndarray, data_dir: Path
) -> tuple[float, np.ndarray, int]:
    """(blend score, each run's score, images) of weighted validation predictions."""
    validation = load_validation(runs, data_dir)
    names, predictions, truth = validation.names, validation.predictions, validation.truth
    weights = np.asarray(weights, dtype=np.float64)
    blended = np.tensordot(weights / weights.sum(), predictions.astype(np.float64), axes=1)
    singles = np.array([validation_score(names, p, truth) for p in predictions])
    return validation_score(names, blended, truth), singles, len(names)


def validation_check(paths: list[Path], weights: np.ndarray) -> ValidationCheck | None:
    """Check a blend of `paths` with `weights` on validation; None when it cannot be checked.

    It can be checked when each weighted-in submission sits in a run folder with validation
    predictions and the runs' config.toml names a data folder with train labels.
    """
    chosen = [(Path(p), w) for p, w in zip(paths, weights, strict=True) if w > 0]
    runs = [RunFolder.at(path.parent) for path, _ in chosen]
    if not runs or not all(run.val_predictions_path.is_file() for run in runs):
        return None
    data = data_dir_of(runs)
    if data is None or not DataFolder.at(data).train_landmarks.is_file():
        return None
    weights = np.array([w for _, w in chosen])
    score, singles, n_images = blend_val_score(runs, weights, data)
    best = int(singles.argmin())
    parents = {run.path.parent for run in runs}
    runs_dir = parents.pop() if len(parents) == 1 else Path("RUNS")
    poor = None
    if poor_runs := poor_among(runs):
        keep = [i for i, run in enumerate(runs) if run.name not in poor_runs]
        kept = [runs[i] for i in keep]
        without = blend_val_score(kept, weights[keep], data)[0] if keep else None
        share = dict(zip([r.name for r in runs], weights / weights.sum(), strict=True))
        poor = PoorRuns(poor_runs, {n: share[n] for n in poor_runs}, score, without)
    return ValidationCheck(n_images, score, runs[best].name, float(singles[best]), runs_dir, poor)
