"""Which landmarks and regions carry the error: per-point MSE on the validation K-subsets.

Every number here uses `ensemble.competition.subsets.validation_subsets`, so a run's score equals
`ensemble.competition.metric.validation_score`. The per-point MSE of landmark j is the mean over
images whose subset contains j of the squared error (x and y averaged); the dense version averages
over every image and every landmark (same expectation, less noise).

Missing labels (NaN truth, as in Kaggle Facial Keypoints) are left out of every number: an
image's score is the mean over its present values (NaN, and skipped, when it has none); the
per-point sums, hit counts and dense MSEs use present values only; the bootstrap resamples
the images that have a score; the region pick and the error correlation use present values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ensemble.competition.layout import Layout
from ensemble.competition.metric import public_mask
from ensemble.competition.subsets import validation_subsets
from ensemble.io.submission import gather_points

_CHUNK = 2048


@dataclass(frozen=True)
class PointErrors:
    """The errors of one set of predictions (a run or a blend) on the validation images."""

    name: str
    image_scores: np.ndarray  # (n,) leaderboard-style MSE of each image on its subset (NaN: none)
    subset_sq: np.ndarray  # (n, K) squared error (present of x, y averaged); NaN if unlabelled
    point_sq_sum: np.ndarray  # (N,) sum of the squared errors of each point's scored entries
    point_hits: np.ndarray  # (N,) how many images score each point (with a label)
    point_mse_dense: np.ndarray  # (N,) per-point MSE over all images with a label (NaN: none)
    image_region_mse: np.ndarray  # (n, regions) dense MSE of each image in each region
    residuals: np.ndarray  # (n * K * 2,) signed errors of the scored entries (NaN: unlabelled)
    subset_count: np.ndarray | None = None  # (n, K) present values per entry (None: all 2)

    @property
    def point_mse(self) -> np.ndarray:
        """Per-point MSE on the subsets, (N,); NaN where a point is never scored."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.point_hits > 0, self.point_sq_sum / self.point_hits, np.nan)

    @property
    def score(self) -> float:
        """The leaderboard-style validation score (over the images that have a score)."""
        return float(_finite_mean(self.image_scores))


def _finite_mean(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Mean over the finite values along `axis` (NaN where there is none), without warnings."""
    present = np.isfinite(values)
    if present.all():
        return values.mean(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(present, values, 0.0).sum(axis=axis) / present.sum(axis=axis)


def _pair_mean(squared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the last axis (x, y) of the present values, and how many are present."""
    present = np.isfinite(squared)
    count = present.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(present, squared, 0.0).sum(axis=-1) / count, count


def _weighted_rows(subset_sq: np.ndarray, count: np.ndarray | None) -> np.ndarray:
    """Per-image mean over present values: entries (n, K) weighted by their value count."""
    if count is None:
        return subset_sq.mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, subset_sq * count, 0.0).sum(axis=1) / count.sum(axis=1)


def point_errors(
    name: str, predicted: np.ndarray, truth: np.ndarray, subsets: np.ndarray, layout: Layout
) -> PointErrors:
    """Errors of predictions (n, N, 2) against truth (n, N, 2) on the subsets (n, K).

    NaN truth values (missing labels) are left out of every number.
    """
    n_points = truth.shape[1]
    difference = gather_points(predicted, subsets) - gather_points(truth, subsets)
    subset_sq, count = _pair_mean(difference**2)
    complete = bool((count == 2).all())
    scored = count > 0
    sums = np.bincount(
        subsets.ravel(), weights=np.where(scored, subset_sq, 0.0).ravel(), minlength=n_points
    )
    hits = np.bincount(subsets[scored], minlength=n_points)
    dense_sum = np.zeros(n_points)
    dense_hits = np.zeros(n_points)
    starts = np.array([region.start for region in layout.regions])
    sizes = np.array([len(region) for region in layout.regions])
    image_region = np.empty((len(truth), len(starts)))
    for start in range(0, len(truth), _CHUNK):
        stop = start + _CHUNK
        error = predicted[start:stop].astype(np.float64) - truth[start:stop]
        squared, present = _pair_mean(error**2)
        labelled = present > 0
        squared = np.where(labelled, squared, 0.0)
        dense_sum += squared.sum(axis=0)
        dense_hits += labelled.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            image_region[start:stop] = np.add.reduceat(squared, starts, axis=1) / (
                sizes if labelled.all() else np.add.reduceat(labelled, starts, axis=1)
            )
    with np.errstate(invalid="ignore", divide="ignore"):
        dense = dense_sum / dense_hits
    return PointErrors(
        name=name,
        image_scores=_weighted_rows(subset_sq, None if complete else count),
        subset_sq=subset_sq,
        point_sq_sum=sums,
        point_hits=hits,
        point_mse_dense=dense,
        image_region_mse=image_region,
        residuals=difference.ravel(),
        subset_count=None if complete else count,
    )


def bootstrap_ci(
    image_scores: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> np.ndarray:
    """Percentile bootstrap CI of the mean over images, paired across rows: (S, n) -> (S, 2).

    Images without a score in some row (NaN: no label on their subset) are left out.
    """
    scores = np.atleast_2d(np.asarray(image_scores, dtype=np.float64))
    scores = scores[:, np.isfinite(scores).all(axis=0)]
    n = scores.shape[1]
    rng = np.random.default_rng(seed)
    means = np.empty((len(scores), n_boot))
    chunk = max(1, min(n_boot, 4_000_000 // max(n * len(scores), 1)))
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        picks = rng.integers(0, n, size=(stop - start, n))
        means[:, start:stop] = scores[:, picks].mean(axis=2)
    tail = (1 - level) / 2 * 100
    return np.percentile(means, [tail, 100 - tail], axis=1).T


@dataclass(frozen=True)
class RegionPick:
    """A per-region pick: each region's points from the run best on that region."""

    best_run: list[int]  # per region, index into the runs
    score_in_sample: float  # chosen and scored on the same images (optimistic)
    score_cross_fit: float  # chosen on one half of the images, scored on the other


def region_pick(
    runs: list[PointErrors], subsets: np.ndarray, halves: np.ndarray, layout: Layout
) -> RegionPick:
    """Score a per-region pick of runs, in sample and cross-fitted over two image halves."""
    region_of_entry = layout.region_ids()[subsets]  # (n, K)
    stacked = np.stack([run.subset_sq for run in runs])  # (R, n, K)
    dense = np.stack([run.image_region_mse for run in runs])  # (R, n, regions)
    count = runs[0].subset_count  # the same for every run: it depends on the truth only

    def image_scores(best_per_region: np.ndarray, rows: np.ndarray) -> np.ndarray:
        choice = best_per_region[region_of_entry[rows]][None]
        picked = np.take_along_axis(stacked[:, rows], choice, axis=0)[0]
        return _weighted_rows(picked, None if count is None else count[rows])

    def best_runs(rows: np.ndarray) -> np.ndarray:
        means = _finite_mean(dense[:, rows], axis=1)  # (R, regions)
        return np.where(np.isnan(means), np.inf, means).argmin(axis=0)

    everyone = np.ones(len(subsets), dtype=bool)
    best = best_runs(everyone)
    cross_fit = np.empty(len(subsets))
    for half in (halves, ~halves):
        other = ~half if (~half).any() else half
        cross_fit[half] = image_scores(best_runs(other), half)
    return RegionPick(
        best_run=[int(b) for b in best],
        score_in_sample=float(_finite_mean(image_scores(best, everyone))),
        score_cross_fit=float(_finite_mean(cross_fit)),
    )


@dataclass(frozen=True)
class PointAnalysis:
    """Per-point analysis of several runs and their equal-weight blend on the same images."""

    file_names: np.ndarray
    layout: Layout
    k: int
    runs: list[PointErrors]
    blend: PointErrors | None
    ci: np.ndarray  # (len(runs) + blend, 2) bootstrap CI of each score, same order as `all`
    correlation: np.ndarray  # (R, R) correlation of the runs' signed errors
    mean_shape: np.ndarray  # (N, 2) mean true shape of the validation images
    pick: RegionPick | None
    level: float

    @property
    def all(self) -> list[PointErrors]:
        """The runs, then the blend (if there are two runs or more)."""
        return [*self.runs, *([self.blend] if self.blend is not None else [])]

    @property
    def best(self) -> PointErrors:
        """The run with the lowest score."""
        return min(self.runs, key=lambda run: run.score)

    @property
    def scored_on(self) -> str:
        """What each validation image is scored on: '30-index subsets' or 'all 15 landmarks'."""
        if self.k == self.layout.n_points:
            return f"all {self.k} landmarks"
        return f"{self.k}-index subsets"


def analyze_points(
    run_names: list[str],
    predictions: np.ndarray,
    truth: np.ndarray,
    file_names: np.ndarray,
    layout: Layout,
    k: int = 30,
    seed: int = 0,
    n_boot: int = 1000,
    level: float = 0.95,
) -> PointAnalysis:
    """Analyse predictions (R, n, N, 2) of `run_names` against truth (n, N, 2)."""
    subsets = validation_subsets(file_names, truth.shape[1], k=k, seed=seed)
    runs = [
        point_errors(name, predictions[r], truth, subsets, layout)
        for r, name in enumerate(run_names)
    ]
    blend = None
    if len(runs) > 1:
        blend = point_errors("equal-weight blend", predictions.mean(axis=0), truth, subsets, layout)
    everything = [*runs, *([blend] if blend else [])]
    ci = bootstrap_ci(np.stack([item.image_scores for item in everything]), n_boot, level, seed)
    correlation = np.ones((1, 1))
    if len(runs) > 1:
        residuals = np.stack([run.residuals for run in runs])
        correlation = np.corrcoef(residuals[:, np.isfinite(residuals).all(axis=0)])
    pick = region_pick(runs, subsets, public_mask(file_names), layout) if len(runs) > 1 else None
    return PointAnalysis(
        file_names=np.asarray(file_names),
        layout=layout,
        k=subsets.shape[1],
        runs=runs,
        blend=blend,
        ci=ci,
        correlation=np.atleast_2d(correlation),
        mean_shape=_finite_mean(np.asarray(truth, dtype=np.float64), axis=0),
        pick=pick,
        level=level,
    )


@dataclass(frozen=True)
class RegionError:
    """The error of one region: dense and subset MSE, and its share of the score."""

    name: str
    size: int
    mse_dense: float
    mse_subset: float
    share: float


def region_errors(errors: PointErrors, layout: Layout) -> list[RegionError]:
    """Per-region MSE of `errors`; `share` is the region's part of the summed scored error.

    `mse_dense` is the mean of the region's per-point dense MSEs over its labelled points.
    """
    total = errors.point_sq_sum.sum()
    out = []
    for region in layout.regions:
        part = slice(region.start, region.stop)
        hits = errors.point_hits[part].sum()
        sq = errors.point_sq_sum[part].sum()
        out.append(
            RegionError(
                name=region.name,
                size=len(region),
                mse_dense=float(_finite_mean(errors.point_mse_dense[part])),
                mse_subset=float(sq / hits) if hits else float("nan"),
                share=float(sq / total) if total > 0 else float("nan"),
            )
        )
    return out
