"""The blend API, with the CLI's names.

- `blend_submissions(paths, weights, output)`: weighted mean (or median / trimmed mean) of
  aligned submission files, written atomically.
- `weights_from_scores(scores.csv, ...)`: score-based weights (equal, inverse, softmax, rank,
  manual, top-K) for the submissions a scores.csv lists.
- `blend_from_scores(scores.csv, output, ...)`: both of the above in one call.
- `fit_weights(predictions, truth, file_names, ...)`: weights fitted on validation predictions.
- `fit_runs(RUNS, ...)` / `blend_runs(report, output)`: fit on run folders, then blend their
  test predictions (or submissions) and write OUT.csv and OUT.weights.json.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ensemble.blend.combine import COMBINERS, combine_stack, weighted_mean
from ensemble.blend.cross_validation import held_out_scores, mean_score
from ensemble.blend.fit import FittedWeights, fit_weights, residual_matrix
from ensemble.blend.fusion import FusionFit, fit_gamma, fuse, fused_weights, scored_values
from ensemble.blend.methods import fit_method
from ensemble.blend.names import CV_FOLDS, FUSION_METHOD, LEARNED_METHODS
from ensemble.blend.no_weight import NO_WEIGHT, why_no_weight
from ensemble.blend.point_blend import PointBlend
from ensemble.blend.poor_runs import PoorRuns, poor_among
from ensemble.competition.baseline import baseline_for_train_images
from ensemble.competition.layout import dataset_layout
from ensemble.competition.metric import validation_score
from ensemble.competition.subsets import validation_subsets
from ensemble.errors import InputError
from ensemble.io.atomic import atomic_open, check_output
from ensemble.io.data_folder import DataFolder
from ensemble.io.submission import gather_points, write_submission
from ensemble.io.submission_set import SubmissionSet, align_order, read_aligned
from ensemble.io.test_points import read_test_points

if TYPE_CHECKING:
    from ensemble.blend.comparison import compare_fits
    from ensemble.blend.weights import WeightTable, weights_from_scores
    from ensemble.io.run_folder import RunFolder

# Imported where used: the weights from scores.csv (pandas) and the run folders (npz loading)
# are not needed by a plain `ens blend a.csv b.csv`, which should start fast.

__all__ = [
    "BlendResult",
    "FitReport",
    "blend_from_scores",
    "blend_runs",
    "blend_submissions",
    "compare_fits",
    "fit_runs",
    "fit_weights",
    "weights_from_scores",
    "weights_path_for",
]


@dataclass(frozen=True)
class BlendResult:
    """A blend: file names and values stored column-major as (values, rows)."""

    file_names: np.ndarray
    columns: np.ndarray

    @property
    def values(self) -> np.ndarray:
        """Values as (rows, K, 2), like `ensemble.io.submission.Submission.values` (a view)."""
        return self.columns.T.reshape(self.columns.shape[1], -1, 2)


def blend_submissions(
    paths: Sequence[str | Path],
    weights: Sequence[float] | np.ndarray | None = None,
    output: str | Path | None = None,
    combine: str = "mean",
    trim: float = 0.2,
    decimals: int = 4,
) -> BlendResult:
    """Blend submission files and write `output` (atomically) when given.

    `weights` (default equal) are normalised to sum to one; submissions with weight 0 are not
    read. `combine='mean'` is the weighted mean, accumulated in input order; 'median' and
    'trimmed' (cut `trim` of each tail) are per-value and unweighted over the submissions with
    a positive weight. Inputs must share the header and the file names (rows are aligned to
    the first file's order); the output is rounded half-to-even to `decimals` places.
    """
    if combine not in COMBINERS:
        raise ValueError(f"unknown combiner '{combine}'; choose from {COMBINERS}")
    paths = [Path(p) for p in paths]
    raw = np.ones(len(paths)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(raw) != len(paths) or not np.isfinite(raw).all() or (raw < 0).any() or raw.sum() <= 0:
        raise ValueError("need one finite, non-negative weight per submission, positive sum")
    if output is not None:
        check_output(output, paths)
    used = raw > 0
    chosen = [p for p, keep in zip(paths, used, strict=True) if keep]
    submissions = SubmissionSet(chosen)
    stream = (item.values for item in submissions.iter_values())
    weights = raw[used] / raw.sum()
    if combine == "mean":
        columns = weighted_mean(stream, weights)
    else:
        first = next(stream)
        stack = np.empty((len(chosen), *first.shape))
        stack[0] = first
        for number, values in enumerate(stream, start=1):
            stack[number] = values
        columns = combine_stack(stack, combine, trim)
    if output is not None:
        write_submission(output, submissions.file_names_arrow, columns.T, decimals)
    return BlendResult(submissions.file_names, columns)


def blend_from_scores(
    scores_path: str | Path,
    output: str | Path | None = None,
    submissions: Sequence[str | Path] | None = None,
    scheme: str = "inverse",
    *,
    by: str | None = None,
    power: float = 1.0,
    temperature: float | None = None,
    top: int | None = None,
    higher_is_better: bool = False,
    combine: str = "mean",
    trim: float = 0.2,
    decimals: int = 4,
) -> tuple[WeightTable, BlendResult]:
    """Weight the submissions of scores.csv (see `weights_from_scores`) and blend them."""
    from ensemble.blend.weights import weights_from_scores

    table = weights_from_scores(
        scores_path,
        submissions,
        scheme,
        by=by,
        power=power,
        temperature=temperature,
        top=top,
        higher_is_better=higher_is_better,
    )
    if output is not None:
        check_output(output, [scores_path, *table.paths])
    result = blend_submissions(table.paths, table.weights, output, combine, trim, decimals)
    return table, result


# ----------------------------------------------------------------------------------------------
# fitted weights on run folders


@dataclass(frozen=True)
class FitReport:
    """Weights fitted on run folders, with every run's and the blend's validation score.

    With `--method uncertainty` the weights are the lsq fit and `fusion` the gamma chosen on
    validation; `blend_score` is then the fused blend's, `fitted_score` the lsq blend's.
    """

    runs: list[RunFolder]
    fitted: FittedWeights | PointBlend
    val_scores: np.ndarray
    blend_score: float
    n_images: int
    data_dir: Path
    fusion: FusionFit | None = None
    fitted_score: float | None = None
    sigma_runs: tuple[str, ...] = ()  # the runs whose predictions have sigma
    poor: PoorRuns | None = None  # poor runs among the inputs and the fit without them
    no_weight: dict[str, str] = field(default_factory=dict)  # run -> why the fit gave it none
    cv_score: float | None = None  # the out-of-fold blend's score (ensemble.blend.cross_validation)
    shared_note: str = ""  # which runs have fewer validation images, when they differ

    def to_json(self) -> dict:
        """A JSON-ready summary: runs, weights (global or per region), val scores."""
        names = [run.name for run in self.runs]
        data: dict = {
            "method": FUSION_METHOD if self.fusion else self.fitted.method,
            "per_region": self.fitted.per_region,
            "validation_images": self.n_images,
            "val_scores": dict(zip(names, map(float, self.val_scores), strict=True)),
            "blend_val_score": self.blend_score,
        }
        if self.poor is not None:
            data["poor_runs"] = {name: h.reason for name, h in self.poor.health.items()}
            data["val_score_without_poor_runs"] = self.poor.score_without
        if self.no_weight:
            data["no_weight"] = self.no_weight
        if self.cv_score is not None:
            data["cross_validated_score"] = {"score": self.cv_score, "folds": CV_FOLDS}
        if isinstance(self.fitted, PointBlend):
            data.update(self.fitted.to_json(names))
            return data
        rows = [dict(zip(names, map(float, row), strict=True)) for row in self.fitted.weights]
        if self.fitted.per_region:
            regions = [region.name for region in self.fitted.layout.regions]
            data["regions"] = dict(zip(regions, rows, strict=True))
            data["fallback_to_global"] = list(self.fitted.fallback)
        else:
            data["weights"] = rows[0]
        if self.fusion is not None:
            data["fusion"] = {
                "weights_fitted_by": self.fitted.method,
                "lsq_blend_val_score": self.fitted_score,
                "runs_with_sigma": list(self.sigma_runs),
                "gamma": self.fusion.gamma,
                "val_score_by_gamma": {str(g): v for g, v in self.fusion.scores.items()},
            }
        return data


def fit_runs(
    runs_dir: str | Path,
    data_dir: str | Path | None = None,
    method: str = "lsq",
    per_region: bool = False,
    rounds: int = 50,
) -> FitReport:
    """Fit a blend on the validation predictions of the run folders under `runs_dir`.

    The truth comes from `data_dir` (default: the `data` of the runs' config.toml). `method`
    "uncertainty" fits lsq weights, then the inverse-variance fusion of the runs with sigma
    (`ensemble.blend.fusion`) on the same validation images; "shrink" and "stack" fit one model
    per landmark (`ensemble.blend.shrink`, `ensemble.blend.stack`).
    """
    from ensemble.io.aligned_predictions import load_validation
    from ensemble.io.run_folder import find_runs

    runs = find_runs(runs_dir)
    validation = load_validation(runs, data_dir)
    names, predictions, truth = validation.names, validation.predictions, validation.truth
    data = validation.data_dir
    fused = method == FUSION_METHOD
    layout = dataset_layout(data, validation.n_points)  # its own layout.json, when it has one
    _check_enough_images(method, names, runs_dir)

    def fit(chosen: np.ndarray) -> FittedWeights | PointBlend:
        return fit_method(method, predictions[chosen], truth, names, per_region, rounds, layout)

    everyone = np.arange(len(runs))
    fitted = fit(everyone)
    scores = np.array([validation_score(names, p, truth) for p in predictions])
    score = validation_score(names, fitted.blend(predictions), truth)
    no_weight = {}
    if method != "stack":  # the stacker's coefficients are not shares: any sign, any sum
        no_weight = _no_weight_reasons(runs, fitted, scores, predictions, truth, names, data)
    poor = None
    if poor_runs := poor_among(runs):
        keep = np.array([i for i, run in enumerate(runs) if run.name not in poor_runs], int)
        without = None
        if len(keep):
            without = validation_score(names, fit(keep).blend(predictions[keep]), truth)
        mean_weights = dict(zip([r.name for r in runs], fitted.mean_weights(), strict=True))
        poor = PoorRuns(poor_runs, {n: mean_weights[n] for n in poor_runs}, score, without)
    common = dict(poor=poor, no_weight=no_weight, shared_note=validation.shared_note())
    if not fused:
        held_out = held_out_scores(predictions, truth, names, method, per_region, rounds, layout)
        cv_score = mean_score(held_out)
        return FitReport(runs, fitted, scores, score, len(names), data, cv_score=cv_score, **common)
    sigma = validation.sigma()
    sigma_runs = tuple(run.name for run, s in zip(runs, sigma, strict=True) if np.isfinite(s).all())
    if not sigma_runs:
        raise InputError(
            runs_dir,
            "--method uncertainty: no run has sigma in val_predictions.npz (train with "
            'uncertainty = "laplace" or "gaussian")',
        )
    scored = scored_values(predictions, sigma, truth, names)
    base = fitted.point_weights()[scored.indices]
    fusion = fit_gamma(scored.values, scored.sigma, scored.truth, base)
    held_out = held_out_scores(
        predictions, truth, names, method, per_region, layout=layout, sigma=sigma
    )
    cv_score = mean_score(held_out)
    return FitReport(
        runs,
        fitted,
        scores,
        fusion.score,
        len(names),
        data,
        fusion,
        score,
        sigma_runs,
        cv_score=cv_score,
        **common,
    )


def _check_enough_images(method: str, names: np.ndarray, runs_dir: str | Path) -> None:
    """A learned blend chooses its strength across CV_FOLDS folds: it needs 2 images per fold."""
    if method in LEARNED_METHODS and len(names) < 2 * CV_FOLDS:
        raise InputError(
            runs_dir,
            f"--method {method} needs at least {2 * CV_FOLDS} validation images shared by every "
            f"run to choose its strength across {CV_FOLDS} folds; the runs share {len(names)}",
        )


def _no_weight_reasons(
    runs: list[RunFolder],
    fitted: FittedWeights | PointBlend,
    val_scores: np.ndarray,
    predictions: np.ndarray,
    truth: np.ndarray,
    names: np.ndarray,
    data: Path,
) -> dict[str, str]:
    """Why the fit gave a run (nearly) no weight (`ensemble.blend.no_weight`); the mean shape is
    scored on the same validation images only when some run has none."""
    weights = fitted.mean_weights()
    if (weights > NO_WEIGHT).all():
        return {}
    indices = validation_subsets(names, predictions.shape[2])
    residuals, _ = residual_matrix(predictions, truth, indices)
    try:
        baseline = validation_score(names, baseline_for_train_images(data, names), truth)
    except InputError:  # the train images cannot be sized: judge by dominance alone
        baseline = None
    return why_no_weight([run.name for run in runs], weights, val_scores, residuals, baseline)


def weights_path_for(output: str | Path) -> Path:
    """Where the fitted weights of OUT.csv are saved: OUT.weights.json."""
    return Path(output).with_suffix(".weights.json")


def blend_runs(report: FitReport, output: str | Path, decimals: int = 4) -> BlendResult:
    """Blend the runs' test predictions with the fitted weights; write OUT.csv and its JSON.

    Without per-region weights and with every run's submission.csv present, the submissions
    are blended directly. Otherwise each run's test_predictions.npz (or submission.csv) is
    gathered on the data folder's test_points.csv and each value weighted by its landmark's
    region.
    """
    runs, fitted = report.runs, report.fitted
    submissions = [run.submission_path for run in runs]
    json_path = weights_path_for(output)
    inputs = [*submissions, *(run.test_predictions_path for run in runs)]
    check_output(output, inputs)
    check_output(json_path, inputs)
    plain = isinstance(fitted, FittedWeights) and not fitted.per_region and report.fusion is None
    if plain and all(p.is_file() for p in submissions):
        result = blend_submissions(submissions, fitted.weights[0], output, decimals=decimals)
    else:
        result = _blend_test_points(report, output, decimals)
    with atomic_open(json_path, "w", encoding="utf-8") as handle:
        json.dump(report.to_json(), handle, indent=2)
    return result


def _blend_test_points(report: FitReport, output: str | Path, decimals: int) -> BlendResult:
    test_points_path = DataFolder.at(report.data_dir).test_points
    n_points = report.fitted.layout.n_points
    test_points = read_test_points(test_points_path, n_points=n_points, ragged=True)
    indices = test_points.indices
    loaded = [_test_values(run, test_points, test_points_path, n_points) for run in report.runs]
    values = np.stack([run_values for run_values, _ in loaded])  # (runs, rows, K, 2)
    if isinstance(report.fitted, PointBlend):
        total = report.fitted.blend_values(values, indices)
    else:
        value_weights = report.fitted.point_weights()[indices]  # (rows, K, runs)
        if report.fusion is not None:
            sigma = np.stack([run_sigma for _, run_sigma in loaded])
            value_weights = fused_weights(value_weights, sigma, report.fusion.gamma)
        total = fuse(values, value_weights)
    total[~test_points.mask] = np.nan  # ragged padding stays empty
    columns = np.ascontiguousarray(total.reshape(len(total), -1).T)
    write_submission(output, list(test_points.file_names), columns.T, decimals)
    return BlendResult(test_points.file_names, columns)


def _test_values(
    run: RunFolder, test_points, test_points_path: Path, n_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """A run's test values (rows, K, 2) and sigmas (rows, K; NaN without) in test_points.csv
    order, from one read of its test predictions (else its submission, without sigma)."""
    reference, label = test_points.file_names, str(test_points_path)
    no_sigma = np.full(test_points.indices.shape, np.nan)
    if run.test_predictions_path.is_file():
        predictions = run.test_predictions()
        if predictions.points.shape[1] != n_points:
            raise InputError(
                run.test_predictions_path,
                f"{predictions.points.shape[1]} points per image, the fit used {n_points}",
            )
        order = align_order(run.test_predictions_path, predictions.file_names, reference, label)
        values = gather_points(predictions.points[order], test_points.indices)
        if predictions.sigma is None:
            return values, no_sigma
        rows = np.maximum(test_points.indices, 0)  # ragged padding (-1): masked later
        return values, np.take_along_axis(predictions.sigma[order], rows, axis=1)
    if run.submission_path.is_file():
        columns = read_aligned(run.submission_path, reference, label)
        if columns.shape[0] != 2 * test_points.indices.shape[1]:
            raise InputError(
                run.submission_path,
                f"{columns.shape[0] // 2} points per row, test_points.csv asks for "
                f"{test_points.indices.shape[1]}",
                1,
            )
        return columns.T.reshape(len(reference), -1, 2), no_sigma
    raise InputError(run.path, "neither test_predictions.npz nor submission.csv to blend")


def __getattr__(name: str) -> object:
    if name == "compare_fits":  # re-exported from its own module
        from ensemble.blend.comparison import compare_fits

        return compare_fits
    if name == "weights_from_scores":  # re-exported, imported on first use (pandas)
        from ensemble.blend.weights import weights_from_scores

        return weights_from_scores
    raise AttributeError(f"module 'ensemble.blend.api' has no attribute '{name}'")
