"""Report section 3: per-point and per-region MSE of the runs' validation predictions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.document import Figure, Paragraph, Section, Table, fmt
from analysis.inputs import runs_and_data
from ensemble.competition.health import RULE, Health, run_health
from ensemble.competition.layout import Layout, dataset_layout
from ensemble.errors import InputError
from ensemble.io.run_folder import RunFolder


@dataclass(frozen=True)
class Floor:
    """The mean-shape baseline's score on the same validation images, and each run's health."""

    baseline: float | None
    health: dict[str, Health]

    def label(self, name: str) -> str:
        """A run's name as plots show it: "(poor)" after a poor run."""
        health = self.health.get(name)
        return f"{name} (poor)" if health is not None and health.poor else name


def run_floor(runs: list[RunFolder], data_dir: Path, names: np.ndarray, truth: np.ndarray) -> Floor:
    """The baseline the runs' summary.json recorded (when they agree: one shared split), else
    the mean-shape baseline scored here on `names`; the runs' health (ensemble.competition)."""
    from ensemble.competition.baseline import baseline_for_train_images
    from ensemble.competition.metric import validation_score

    recorded = {run.summary().get("baseline_val_score") for run in runs}
    if len(recorded) == 1 and None not in recorded:
        baseline = float(recorded.pop())
    else:
        try:
            predicted = baseline_for_train_images(data_dir, names)
        except InputError:  # no readable train images to size the mean shape: no baseline
            return Floor(None, run_health(runs))
        baseline = validation_score(names, predicted, truth)
    return Floor(baseline if math.isfinite(baseline) else None, run_health(runs))


def points_section(
    runs_dir: Path | None,
    data_dir: Path | None,
    plot_dir: Path | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Section:
    """Per-point and per-region MSE of the runs' validation predictions."""
    from analysis.per_point import analyze_points
    from ensemble.io.aligned_predictions import load_validation

    section = Section("points", _title("30-index subsets"))
    found = runs_and_data(section, runs_dir, data_dir)
    if found is None:
        return section
    runs, data_dir = found
    validation = load_validation(runs, data_dir)
    names, predictions, truth = validation.names, validation.predictions, validation.truth
    layout = dataset_layout(data_dir, truth.shape[1])
    result = analyze_points(
        [run.name for run in runs], predictions, truth, names, layout, n_boot=n_boot, seed=seed
    )
    floor = run_floor(runs, data_dir, names, truth)
    _points_blocks(section, result, plot_dir, floor)
    _metrics_block(section, [run.name for run in runs], predictions, truth, layout, plot_dir)
    return section


def _metrics_block(
    section: Section,
    names: list[str],
    predictions: np.ndarray,
    truth: np.ndarray,
    layout: Layout,
    plot_dir: Path | None = None,
) -> None:
    """RMSE, MAE, NME, PCK, AUC and failure rates of every run (and the blend) on all points of
    every image, and their cumulative error distributions."""
    from ensemble.competition.landmark_metrics import (
        layout_eyes,
        metric_report,
        normalisation,
        per_image_nme,
    )

    labelled = [*names, "blend (equal weights)"] if len(names) > 1 else names
    sets = [*predictions, predictions.mean(axis=0)] if len(names) > 1 else list(predictions)
    reports = {
        name: metric_report(p, truth, alpha=0.1, layout=layout)
        for name, p in zip(labelled, sets, strict=True)
    }
    norm = normalisation(layout_eyes(layout))
    if layout.eyes is not None:
        size = "the inter-ocular distance (the layout's eye centres)"
        missing = "n/a where no image has both eyes labelled"
    else:
        size = (
            "sqrt(w·h) of the true landmarks' bounding box (the layout names no eyes; a "
            "layout file DATA/train/layout.json can)"
        )
        missing = "n/a where no image has a box of non-zero width and height"
    section.blocks.append(
        Table(
            "Other metrics (all points of every validation image)",
            ["run", "RMSE (px)", "MAE (px)", f"NME ({norm})", "PCK@0.1"]
            + ["AUC@0.08", "FR@0.08", "AUC@0.10", "FR@0.10"],
            [
                [n, fmt(r.rmse), fmt(r.mae), fmt(r.nme), fmt(r.pck)]
                + [fmt(r.auc_08), _share(r.fr_08), fmt(r.auc_10), _share(r.fr_10)]
                for n, r in reports.items()
            ],
            note=f"NME: mean point distance / {size}, per image; PCK@0.1: share of points "
            "within 0.1 x that size; AUC@t: area under the cumulative error distribution of the "
            "per-image NME up to t, over t (1 = every image perfect); FR@t: share of images "
            f"with NME above t (failures); {missing}.",
        )
    )
    section.summary["metrics"] = {name: report.as_dict() for name, report in reports.items()}
    if plot_dir is not None and all(r.nme is not None for r in reports.values()):
        from analysis.plots import ced_plot

        eyes = layout_eyes(layout)
        errors = {n: per_image_nme(p, truth, eyes) for n, p in zip(labelled, sets, strict=True)}
        section.blocks.append(
            Figure(
                ced_plot(errors, norm, plot_dir / "points_ced.png"),
                "Cumulative error distribution: the share of validation images whose NME is at "
                "most x, per run and for the equal-weight blend; the legend gives AUC@0.08.",
            )
        )


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _title(scored_on: str) -> str:
    return f"3. Per-point MSE on {scored_on} (validation predictions)"


def _points_blocks(section: Section, result, plot_dir: Path | None, floor: Floor) -> None:
    from analysis.per_point import region_errors

    layout = result.layout
    best = result.best
    everything = result.all
    section.title = _title(result.scored_on)
    section.headline = f"best run {best.name}: {best.score:.4g} px²" + (
        f"; equal-weight blend {result.blend.score:.4g} px²" if result.blend else ""
    )
    intro = (
        f"{len(result.file_names):,} validation images shared by {len(result.runs)} run(s), "
        f"{layout.n_points} landmarks, scored like the leaderboard on {result.k} landmarks per "
        "image (the fixed validation subsets every ens tool uses). Per-point MSE: the mean "
        "squared error (x and y averaged) of a landmark over the images whose subset contains "
        "it; the dense version uses every labelled landmark of every image."
    )
    section.blocks.append(Paragraph(intro))
    rows = []
    for number in np.argsort([item.score for item in everything]):
        item = everything[number]
        low, high = result.ci[number]
        health = floor.health.get(item.name)
        rows.append(
            [
                item.name,
                fmt(item.score),
                f"[{low:.4g}, {high:.4g}]",
                f"{item.score - best.score:+.4g}",
                f"{floor.baseline / item.score:.1f}x" if floor.baseline else "n/a",
                "" if health is None else (f"poor: {health.reason}" if health.poor else "ok"),
                fmt(float(np.nanmean(item.point_mse_dense))),
            ]
        )
    if floor.baseline is not None:
        rows.append(["mean-shape baseline", fmt(floor.baseline), "", "", "1x", "", ""])
    section.blocks.append(
        Table(
            "Validation score (leaderboard-style)",
            [
                "run",
                "score (px²)",
                f"{result.level:.0%} bootstrap CI",
                "vs best run",
                "below the mean shape",
                "health",
                "dense MSE (all points)",
            ],
            rows,
            note="Bootstrap: images resampled with replacement, same resamples for every run, "
            "fixed seed. Below the mean shape: the mean-shape baseline's score on the same "
            f"images over the run's. Health (as ens train-all judged it): {RULE}.",
        )
    )
    best_regions = region_errors(best, layout)
    blend_regions = region_errors(result.blend, layout) if result.blend else None
    per_run = [region_errors(run, layout) for run in result.runs]
    region_rows = []
    for number, region in enumerate(best_regions):
        winner = min(range(len(result.runs)), key=lambda r: per_run[r][number].mse_dense)
        region_rows.append(
            [
                region.name,
                str(region.size),
                fmt(region.mse_dense),
                fmt(region.mse_subset),
                f"{region.share:.1%}" if np.isfinite(region.share) else "n/a",
                fmt(blend_regions[number].mse_dense) if blend_regions else "",
                result.runs[winner].name,
                fmt(per_run[winner][number].mse_dense),
            ]
        )
    section.blocks.append(
        Table(
            f"Per-region error (best run: {best.name})",
            [
                "region",
                "points",
                "MSE dense",
                "MSE on subsets",
                "share of score",
                "blend MSE",
                "best run here",
                "its MSE",
            ],
            region_rows,
            note="share of score: the region's part of the summed squared error on the scored "
            "subsets; MSE in px².",
        )
    )
    if result.pick is not None:
        section.blocks.append(
            Paragraph(
                f"A per-region pick (each region's landmarks from the run best on it) scores "
                f"{result.pick.score_in_sample:.4g} px² when chosen and scored on the same "
                f"images (optimistic) and {result.pick.score_cross_fit:.4g} px² cross-fitted "
                f"(chosen on one half of the images, scored on the other), against "
                f"{best.score:.4g} for the best run and {result.blend.score:.4g} for the "
                "equal-weight blend."
            )
        )
    hardest = np.argsort(-best.point_mse_dense, kind="stable")[:15]
    section.blocks.append(
        Table(
            f"Hardest landmarks (best run: {best.name})",
            ["index", "region", "MSE dense", "MSE on subsets", "times scored", "blend MSE dense"],
            [
                [
                    str(i),
                    layout.region_of(int(i)).name,
                    fmt(best.point_mse_dense[i]),
                    fmt(float(best.point_mse[i])),
                    str(int(best.point_hits[i])),
                    fmt(result.blend.point_mse_dense[i]) if result.blend else "",
                ]
                for i in hardest
            ],
        )
    )
    if len(result.runs) > 1:
        names = [run.name for run in result.runs]
        off = result.correlation[~np.eye(len(names), dtype=bool)]
        section.blocks.append(
            Table(
                f"Correlation of the runs' errors (mean off-diagonal {off.mean():.3f})",
                ["run", *names],
                [
                    [name, *[f"{value:.3f}" for value in result.correlation[row]]]
                    for row, name in enumerate(names)
                ],
                note="Pearson correlation of the signed errors (x and y) on the scored entries; "
                "the lower, the more an average of the two runs gains.",
            )
        )
    if plot_dir is not None:
        _points_figures(section, result, plot_dir, floor)
    section.summary = _points_summary(result)
    section.summary["baseline_score"] = floor.baseline
    section.summary["health"] = {name: h.as_dict() for name, h in floor.health.items()}
    poor = [name for name, health in floor.health.items() if health.poor]
    if poor:
        section.headline += f"; poor: {', '.join(poor)}"


def _points_figures(section: Section, result, plot_dir: Path, floor: Floor) -> None:
    from analysis.plots import correlation_plot, face_plot, region_plot, scores_plot

    labels = {item.name: floor.label(item.name) for item in result.all}
    section.blocks.append(
        Figure(
            scores_plot(result, plot_dir / "points_scores.png", floor.baseline, labels),
            "Validation score of each run and the blend, with bootstrap intervals, against the "
            "mean-shape baseline on the same images (solid) and half of it (dashed: a run not "
            "under it is poor); poor runs in red.",
        )
    )
    section.blocks.append(
        Figure(
            face_plot(result, plot_dir / "points_face.png"),
            "The mean true face of the validation images; each landmark coloured by its MSE "
            "over all images (shared colour scale), the ten hardest circled.",
        )
    )
    section.blocks.append(
        Figure(
            region_plot(result, plot_dir / "points_regions.png"),
            "MSE per face region for every run and the blend.",
        )
    )
    if len(result.runs) > 1:
        section.blocks.append(
            Figure(
                correlation_plot(result, plot_dir / "points_correlation.png"),
                "Correlation of the runs' errors: low values mark diverse runs.",
            )
        )


def _points_summary(result) -> dict:
    from analysis.per_point import region_errors

    def item_summary(item, number: int) -> dict:
        return {
            "score": item.score,
            "ci": list(result.ci[number]),
            "point_mse": item.point_mse.tolist(),
            "point_mse_dense": item.point_mse_dense.tolist(),
            "regions": [vars(region) for region in region_errors(item, result.layout)],
        }

    everything = result.all
    return {
        "n_images": len(result.file_names),
        "n_points": result.layout.n_points,
        "k": result.k,
        "confidence_level": result.level,
        "best_run": result.best.name,
        "runs": {run.name: item_summary(run, i) for i, run in enumerate(result.runs)},
        "blend": item_summary(result.blend, len(everything) - 1) if result.blend else None,
        "region_pick": None
        if result.pick is None
        else {
            "best_run_per_region": {
                region.name: result.runs[r].name
                for region, r in zip(result.layout.regions, result.pick.best_run, strict=True)
            },
            "score_in_sample": result.pick.score_in_sample,
            "score_cross_fit": result.pick.score_cross_fit,
        },
        "error_correlation": {
            "runs": [run.name for run in result.runs],
            "matrix": result.correlation.tolist(),
        },
    }
