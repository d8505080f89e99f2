"""Label errors found from the runs' predictions: consensus, spread, the robust rule, the CSV.

An image's label is suspect when the runs agree with each other and all disagree with its label.
Per image:

- consensus: the coordinate-wise median of the runs' predictions. With one or two runs it is
  their mean; with three or more, one run lost on an image (it predicts a background face, or
  diverged) does not drag the consensus away from the others, as a mean would.
- label_error: MSE (px²) of the label against the consensus over the label's present values.
- spread: the runs' disagreement, the mean over runs and over the 2N values of the squared
  deviation from the consensus (px²). For two runs this is the mean of ((a - b) / 2)², the same
  quantity a run's `tta_spread` holds for its two flip views; so one run alone uses its
  tta_spread as the spread. Without either (one run, no tta_spread) the spread is 0 and the rule
  uses label_error alone.
- size: the face's size, the mean squared distance of the consensus points from their centroid
  (px²). Errors in pixels grow with the face (images of 100 to 1,200 px hold faces of every
  size), so the rule compares label_error / size and spread / size, which do not change when an
  image is scaled; without that, a big face's ordinary error looks like a small face's label
  error.
- score: robust z (`analysis.leaderboard_fit.robust_z`: 0.6745 (r - median) / MAD) of the
  residual r of log(label_error / size) from a Theil-Sen line on log(spread / size), fitted over
  the images: how much farther the label is from the consensus than for other images the runs
  disagree on as much. Where the runs scatter (a hard image) the line expects a large label
  error, so a hard image is not flagged; where they agree, a label far from them stands out.
  The fitted slope lets the data say how much the spread predicts the error (1: proportional,
  0: not at all, which is the rule without a spread: robust z of log(label_error / size)).
- suspect: the score is significantly high at false discovery rate `FDR` (5%: one-sided normal
  p-values, Benjamini-Hochberg, see `analysis.image_errors`) and label_error > spread (the label
  is farther from the consensus than the runs are).

Logs, because errors are positive and skewed; Theil-Sen and median / MAD, because a few bad
labels do not move them; the z measures each image against the typical level, whatever the
number of runs (it changes that level, not the rule); and the false discovery rate keeps the
expected share of good labels among the flagged at 5% whatever the number of images (a fixed z
cut flags more good images the more images there are). The line is fitted on at most `MAX_FIT`
images (a fixed-seed sample; Theil-Sen is quadratic in its points).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.image_errors import FDR, LOG_FLOOR, MIN_IMAGES, significant, z_needed
from analysis.leaderboard_fit import robust_z
from ensemble.errors import InputError
from ensemble.io.atomic import atomic_open
from ensemble.io.checks import FILE_COLUMN
from ensemble.io.file_kind import require_regular_file

MAX_FIT = 2000  # images the Theil-Sen line is fitted on (its cost grows with their square)
CSV_COLUMNS = ("file_name", "label_error", "spread", "score", "suspect")
CSV_NAME = "suspect_labels.csv"
_CHUNK = 2048

SPREAD_RUNS = "runs"
SPREAD_TTA = "tta"
SPREAD_NONE = "none"


def consensus(predictions: np.ndarray) -> np.ndarray:
    """The runs' consensus (n, N, 2) of predictions (R, n, N, 2): coordinate-wise median."""
    predictions = np.asarray(predictions, dtype=np.float64)
    return predictions[0] if len(predictions) == 1 else np.median(predictions, axis=0)


def label_errors_and_spread(
    predictions: np.ndarray, truth: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label_error, spread, size) per image, px², of predictions (R, n, N, 2), labels (n, N, 2)."""
    n = truth.shape[0]
    error, spread, size = np.empty(n), np.empty(n), np.empty(n)
    for start in range(0, n, _CHUNK):
        stop = start + _CHUNK
        runs = np.asarray(predictions[:, start:stop], dtype=np.float64)
        centre = consensus(runs)
        true = np.asarray(truth[start:stop], dtype=np.float64)
        present = ~np.isnan(true)
        count = present.reshape(len(true), -1).sum(axis=1)
        squared = np.where(present, (true - centre) ** 2, 0.0).reshape(len(true), -1).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            error[start:stop] = np.where(count > 0, squared / count, np.nan)
        spread[start:stop] = ((runs - centre) ** 2).mean(axis=(0, 2, 3))
        size[start:stop] = ((centre - centre.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean(1)
    return error, spread, size


@dataclass(frozen=True)
class SuspectLabels:
    """Per image (in the input order): label error, spread, score, suspect; and the fitted line."""

    file_names: np.ndarray
    label_error: np.ndarray  # px², NaN for an image without any label
    spread: np.ndarray  # px²
    score: np.ndarray  # robust z of the log-residual; NaN: not scored
    suspect: np.ndarray  # bool
    n_runs: int
    spread_source: str  # SPREAD_RUNS, SPREAD_TTA or SPREAD_NONE
    slope: float | None  # of log(label_error) on log(spread); None without a spread
    n_fit: int  # images the line was fitted on
    fdr: float = FDR

    @property
    def z_cut(self) -> float:
        """The smallest flagged score, or without a flag the score one image would need."""
        return z_needed(self.score, significant(self.score, self.fdr), self.fdr)

    @property
    def order(self) -> np.ndarray:
        """Row indices ranked by score descending (NaN last), then label_error, then name."""
        score = np.where(np.isfinite(self.score), self.score, -np.inf)
        error = np.where(np.isfinite(self.label_error), self.label_error, -np.inf)
        names = np.asarray(self.file_names).astype(str)
        return np.lexsort((names, -error, -score))

    @property
    def flagged(self) -> np.ndarray:
        """Row indices of the suspect labels, most suspect first."""
        order = self.order
        return order[self.suspect[order]]

    @property
    def count(self) -> int:
        """How many labels are suspect."""
        return int(self.suspect.sum())

    def spread_text(self) -> str:
        """Where the spread comes from, in words."""
        if self.spread_source == SPREAD_RUNS:
            return (
                f"the disagreement of the {self.n_runs} runs (mean squared deviation of each run "
                "from the consensus)"
            )
        if self.spread_source == SPREAD_TTA:
            return (
                "one run alone, so its flip-TTA views (tta_spread: the variance of the two views "
                "around their mean)"
            )
        return (
            "none (one run without tta_spread, or runs that agree exactly everywhere), so the "
            "spread is 0 and the rule uses label_error alone"
        )

    def rule_text(self) -> str:
        """The rule and its threshold, in words."""
        consensus_text = (
            "the run's own prediction"
            if self.n_runs == 1
            else "the coordinate-wise median of the runs (robust to one run lost on an image)"
        )
        if self.slope is None:
            score = "score = robust z of log(label_error / size)"
            rule = "suspect when the score is significantly high"
        else:
            score = (
                "score = robust z of the residual of log(label_error / size) from a Theil-Sen "
                f"line on log(spread / size) (slope {self.slope:.3g}, fitted on {self.n_fit:,} "
                "images): how much farther the label is than for images the runs disagree on "
                "as much"
            )
            rule = "suspect when the score is significantly high and label_error > spread"
        return (
            f"label_error: MSE (px²) of the label against the consensus, {consensus_text}. "
            f"spread: {self.spread_text()}. size: the mean squared distance of the consensus "
            "points from their centroid, so that the rule does not depend on how big the face "
            f"is. {score}; {rule}. Robust z: 0.6745 x (r - median) / MAD over the "
            f"{len(self.file_names):,} images (Iglewicz-Hoaglin; the mean absolute deviation "
            f"when the MAD is 0). Significant: one-sided normal p-value, Benjamini-Hochberg at "
            f"a {self.fdr:.0%} false discovery rate (the expected share of good labels among "
            f"the flagged), which here means a score of {self.z_cut:.3g} or more; nothing is "
            f"flagged with fewer than {MIN_IMAGES} images."
        )


def _log(values: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(values, LOG_FLOOR))


def log_slope(x: np.ndarray, y: np.ndarray, max_points: int = MAX_FIT) -> float:
    """Theil-Sen slope of y on x on at most `max_points` (fixed-seed sample); 0 if x is flat."""
    from analysis.leaderboard_fit import theil_sen

    if len(x) > max_points:
        rows = np.sort(np.random.default_rng(0).choice(len(x), max_points, replace=False))
        x, y = x[rows], y[rows]
    if np.ptp(x) == 0:
        return 0.0
    return theil_sen(x, y).slope


def find_suspects(
    file_names: np.ndarray,
    predictions: np.ndarray,
    truth: np.ndarray,
    tta_spread: np.ndarray | None = None,
    fdr: float = FDR,
) -> SuspectLabels:
    """Suspect labels from predictions (R, n, N, 2) of R runs and labels (n, N, 2).

    `tta_spread` (n,) is the spread of a single run (ignored with two runs or more).
    """
    n_runs = len(predictions)
    label_error, spread, size = label_errors_and_spread(predictions, truth)
    source = SPREAD_RUNS
    if n_runs == 1:
        source = SPREAD_NONE if tta_spread is None else SPREAD_TTA
        spread = np.zeros(len(truth)) if tta_spread is None else np.asarray(tta_spread, float)
    if not (spread > 0).any():
        source = SPREAD_NONE
    scored = np.flatnonzero(np.isfinite(label_error))
    score = np.full(len(truth), np.nan)
    slope = None
    if len(scored) >= MIN_IMAGES:
        log_size = _log(size[scored])
        log_error = _log(label_error[scored]) - log_size
        residual = log_error
        if source != SPREAD_NONE:
            floor = max(float(np.median(spread[spread > 0])) * 1e-6, LOG_FLOOR)
            log_spread = np.log(np.maximum(spread[scored], floor)) - log_size
            slope = log_slope(log_spread, log_error)
            residual = log_error - slope * log_spread
        score[scored] = robust_z(residual)
    with np.errstate(invalid="ignore"):
        suspect = significant(score, fdr) & (label_error > spread)
    return SuspectLabels(
        file_names=np.asarray(file_names, dtype=object),
        label_error=label_error,
        spread=spread,
        score=score,
        suspect=np.asarray(suspect, dtype=bool),
        n_runs=n_runs,
        spread_source=source,
        slope=slope,
        n_fit=min(len(scored), MAX_FIT) if slope is not None else 0,
        fdr=fdr,
    )


def _cell(value: float, digits: int) -> str:
    return "" if not np.isfinite(value) else f"{value:.{digits}g}"


def write_suspect_csv(path: str | Path, result: SuspectLabels) -> Path:
    """Write `file_name,label_error,spread,score,suspect`, ranked by score descending."""
    path = Path(path)
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in result.order:
            writer.writerow(
                [
                    result.file_names[row],
                    _cell(result.label_error[row], 8),
                    _cell(result.spread[row], 8),
                    _cell(result.score[row], 6),
                    int(result.suspect[row]),
                ]
            )
    return path


def read_planted(path: str | Path) -> set[str]:
    """File names listed in a demo's train/label_errors.csv (header `file_name`)."""
    require_regular_file(path)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or not rows[0] or rows[0][0].strip() != FILE_COLUMN:
        raise InputError(path, f"header must start with '{FILE_COLUMN}'", 1)
    return {row[0].strip() for row in rows[1:] if row and row[0].strip()}
