"""The report's PNG plots (matplotlib, no pyplot state, written atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, LogFormatter, LogLocator
from scipy import stats

from analysis.calibration import RMS_PER_SIGMA, RunCalibration
from analysis.document import fmt_line
from analysis.leaderboard_fit import ShakeUp, TargetFit
from analysis.per_point import PointAnalysis, region_errors
from analysis.uniformity import Uniformity
from ensemble.competition.layout import Layout
from ensemble.io.atomic import atomic_path

DPI = 110
_SHADE = "#eef1f6"


def _save(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return path


def _shade_regions(axes, layout: Layout) -> None:
    """Alternate background bands for the regions of a layout along the x axis."""
    if len(layout.regions) < 2:
        return
    for number, region in enumerate(layout.regions):
        if number % 2 == 0:
            axes.axvspan(region.start - 0.5, region.stop - 0.5, color=_SHADE, zorder=0, lw=0)


def uniformity_plot(result: Uniformity, layout: Layout, path: Path) -> Path:
    """Count per landmark index with the uniform expectation, and the distribution of counts."""
    figure = Figure(layout="constrained", figsize=(11, 7.5))
    top, bottom = figure.subplots(2, 1, gridspec_kw={"height_ratios": [3, 2]})
    index = np.arange(result.n_points)
    spread = result.z_critical * result.count_sd
    _shade_regions(top, layout)
    top.plot(index, result.counts, lw=0.8, color="#1f5fa8", label="times the index is scored")
    top.axhline(result.expected, color="black", lw=1.2, label=f"expected {result.expected:.1f}")
    if spread > 0:
        for sign in (-1, 1):
            top.axhline(
                max(0.0, result.expected + sign * spread),  # a count is never negative
                color="#d95f02",
                ls="--",
                lw=1.2,
                label=f"chance range of any index at level {result.alpha:g}" if sign < 0 else None,
            )
    flagged = np.flatnonzero(np.abs(result.z) > result.z_critical)
    if len(flagged):
        top.scatter(flagged, result.counts[flagged], color="red", zorder=3, label="outside range")
    top.set_xlim(-0.5, result.n_points - 0.5)
    top.set_ylim(bottom=0)
    top.set_xlabel("landmark index (alternate shading: face regions, see the table)")
    top.set_ylabel("count (rows naming the index)")
    verdict = "consistent with uniform" if result.uniform else "NOT uniform"
    top.set_title(
        f"How often each landmark is scored: {result.n_rows:,} rows x {result.k} indices, "
        f"{verdict} (p = {result.p_value_design:.3g})"
    )
    top.legend(loc="upper right", fontsize=8, framealpha=0.9)

    lo, hi = int(result.counts.min()), int(result.counts.max())
    width = max(1, int(np.ceil((hi - lo + 1) / 40)))  # whole counts per bin: no comb pattern
    bins = np.arange(lo, hi + width + 1, width) - 0.5
    bottom.hist(result.counts, bins=bins, color="#1f5fa8", alpha=0.75, label="observed indices")
    grid = np.arange(max(lo - 3 * width, 0), hi + 3 * width + 1)
    pmf = stats.binom.pmf(grid, result.n_rows, result.k / result.n_points) * result.n_points
    bottom.plot(grid, pmf * width, color="black", lw=1.5, label="expected if uniform (binomial)")
    bottom.set_xlabel("count per index (times scored)")
    bottom.set_ylabel(f"number of indices (bins of {width})")
    bottom.set_title("Distribution of the counts per index")
    bottom.legend(fontsize=8)
    return _save(figure, path)


def leaderboard_plot(
    labels: list[str],
    val: np.ndarray,
    fits: list[TargetFit],
    shake: ShakeUp | None,
    shake_labels: list[str],
    shake_values: tuple[np.ndarray, np.ndarray] | None,
    path: Path,
) -> Path:
    """val vs leaderboard with OLS (confidence and prediction bands) and Theil-Sen lines."""
    panels = len(fits) + (1 if shake is not None else 0)
    columns = min(panels, 2)
    rows = (panels + 1) // 2
    figure = Figure(layout="constrained", figsize=(6.4 * columns, 5.6 * rows))
    axes_list = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for extra in axes_list[panels:]:
        extra.set_visible(False)
    axes_list = axes_list[:panels]
    for axes, fit in zip(axes_list, fits, strict=False):
        _fit_panel(axes, labels, val, fit)
    if shake is not None and shake_values is not None:
        _shake_panel(axes_list[-1], shake_labels, *shake_values, shake)
    return _save(figure, path)


def _fit_panel(axes, labels: list[str], val: np.ndarray, fit: TargetFit) -> None:
    finite_val = val[np.isfinite(val)]
    span = np.ptp(finite_val) or 1.0
    grid = np.linspace(finite_val.min() - 0.08 * span, finite_val.max() + 0.08 * span, 200)
    line = fit.clean  # without flagged outliers: the line the predictions use
    name = "OLS without outliers" if fit.clean is not fit.ols else "OLS"
    bands = (
        (line.prediction_halfwidth, 0.12, "prediction interval"),
        (line.confidence_halfwidth, 0.3, "confidence band"),
    )
    for halfwidth, alpha, band in bands:
        axes.fill_between(
            grid,
            line.predict(grid) - halfwidth(grid),
            line.predict(grid) + halfwidth(grid),
            color="#1f5fa8",
            alpha=alpha,
            label=f"{name} {line.level:.0%} {band}",
        )
    axes.plot(
        grid,
        line.predict(grid),
        color="#1f5fa8",
        lw=1.8,
        label=f"{name}: {fmt_line(line.slope, line.intercept, 3)} (R² {line.r_squared:.3f})",
    )
    axes.plot(
        grid,
        fit.theil.predict(grid),
        color="#d95f02",
        lw=1.6,
        ls="--",
        label=f"Theil-Sen: {fmt_line(fit.theil.slope, fit.theil.intercept, 3)}",
    )
    axes.plot(grid, grid, color="grey", lw=0.8, ls=":", label="leaderboard = val")
    keep = ~fit.outlier
    axes.scatter(fit.x[keep], fit.y[keep], color="black", zorder=3, s=22, label="runs")
    if fit.outlier.any():
        axes.scatter(
            fit.x[fit.outlier],
            fit.y[fit.outlier],
            color="red",
            marker="X",
            s=70,
            zorder=4,
            label="outlier (|robust z| > 3.5)",
        )
    if len(fit.predict_rows):
        axes.errorbar(
            val[fit.predict_rows],
            fit.predicted,
            yerr=fit.prediction_halfwidth,
            fmt="o",
            mfc="white",
            color="green",
            capsize=3,
            zorder=3,
            label="predicted (val only), 95% PI",
        )
    named = zip(
        [*fit.rows, *fit.predict_rows],
        [*fit.x, *val[fit.predict_rows]],
        [*fit.y, *fit.predicted],
        strict=True,
    )
    for row, x, y in named:
        axes.annotate(labels[row], (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    axes.set_xlabel("validation score (MSE, px²)")
    axes.set_ylabel(f"{fit.target} leaderboard score (MSE, px²)")
    axes.set_title(f"Validation vs {fit.target} leaderboard ({fit.ols.n} runs)")
    axes.legend(fontsize=7, loc="upper left", framealpha=0.9)


def _shake_panel(axes, labels, public, private, shake: ShakeUp) -> None:
    low = min(public.min(), private.min())
    high = max(public.max(), private.max())
    pad = 0.05 * ((high - low) or 1.0)
    axes.plot(
        [low - pad, high + pad],
        [low - pad, high + pad],
        color="grey",
        ls=":",
        lw=0.8,
        label="private = public",
    )
    axes.scatter(public, private, color="black", s=22, zorder=3, label="runs")
    for label, x, y in zip(labels, public, private, strict=True):
        axes.annotate(label, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    axes.set_xlabel("public leaderboard score (MSE, px²)")
    axes.set_ylabel("private leaderboard score (MSE, px²)")
    axes.set_title(f"Shake-up: Spearman rank correlation {shake.spearman:.2f}")
    axes.legend(fontsize=8, loc="upper left")


def scores_plot(
    analysis: PointAnalysis,
    path: Path,
    baseline: float | None = None,
    labels: dict[str, str] | None = None,
) -> Path:
    """Each run's (and the blend's) validation score with its bootstrap interval, against the
    mean-shape `baseline` and half of it (log scale then); `labels` mark poor runs."""
    items = analysis.all
    labels = labels or {}
    figure = Figure(layout="constrained", figsize=(8, 1.2 + 0.45 * len(items)))
    axes = figure.subplots()
    order = np.argsort([item.score for item in items])[::-1]
    positions = np.arange(len(items))
    for position, number in zip(positions, order, strict=True):
        item = items[number]
        low, high = analysis.ci[number]
        colour = "#d95f02" if item is analysis.blend else "#1f5fa8"
        if labels.get(item.name, item.name) != item.name:
            colour = "#c0392b"
        axes.errorbar(
            item.score,
            position,
            xerr=[[item.score - low], [high - item.score]],
            fmt="o",
            color=colour,
            capsize=3,
        )
    axes.set_yticks(positions, [labels.get(items[n].name, items[n].name) for n in order])
    axes.set_xlabel(f"validation score (MSE on {analysis.scored_on}, px²)")
    axes.set_title(
        f"Validation score per run ({analysis.level:.0%} bootstrap interval over images)"
    )
    axes.errorbar([], [], xerr=[], fmt="o", color="#1f5fa8", capsize=3, label="run")
    if analysis.blend is not None:
        axes.errorbar([], [], xerr=[], fmt="o", color="#d95f02", capsize=3, label="blend")
    if any(labels.get(item.name, item.name) != item.name for item in items):
        axes.errorbar([], [], xerr=[], fmt="o", color="#c0392b", capsize=3, label="poor run")
    if baseline is not None:
        axes.set_xscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        axes.xaxis.set_major_formatter(plain)
        axes.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        axes.xaxis.set_minor_formatter(plain)
        axes.axvline(baseline, color="black", lw=1.2, label=f"mean shape {baseline:.4g}")
        axes.axvline(baseline / 2, color="black", lw=1, ls="--", label="half of it")
    axes.set_ylim(-0.6, len(items) - 0.4)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    axes.grid(axis="x", alpha=0.3, which="both")
    return _save(figure, path)


def ced_plot(errors: dict[str, np.ndarray], norm: str, path: Path) -> Path:
    """Cumulative error distribution of each set's per-image NME, up to NME 0.1 (and beyond
    when every set needs more), with the 0.08 and 0.10 failure thresholds marked."""
    from ensemble.competition.landmark_metrics import FAILURE_THRESHOLDS, ced, ced_auc

    figure = Figure(layout="constrained", figsize=(7, 4.2))
    axes = figure.subplots()
    finite = np.concatenate([e[np.isfinite(e)] for e in errors.values()])
    right = max(0.1, float(np.percentile(finite, 90))) if len(finite) else 0.1
    grid = np.linspace(0, right, 400)
    colours = iter(["C0", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"] * 4)
    for name, values in errors.items():
        blend = name.startswith("blend")
        axes.plot(
            grid,
            ced(values, grid),
            color="#d95f02" if blend else next(colours),
            lw=2.2 if blend else 1.4,
            label=f"{name} (AUC@0.08 {ced_auc(values, 0.08):.3f})",
        )
    for threshold in FAILURE_THRESHOLDS:
        axes.axvline(threshold, color="grey", lw=0.8, ls=":")
    axes.set_xlim(0, right)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel(f"NME ({norm})")
    axes.set_ylabel("share of validation images")
    axes.set_title("Cumulative error distribution (CED)")
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def face_plot(analysis: PointAnalysis, path: Path, n_hardest: int = 10) -> Path:
    """The mean face with each landmark coloured by its MSE: best run, and the blend."""
    items = [analysis.best, *([analysis.blend] if analysis.blend is not None else [])]
    values = np.concatenate([item.point_mse_dense for item in items])
    positive = values[values > 0]
    if len(positive) and positive.max() / positive.min() > 30:
        norm = LogNorm(vmin=positive.min(), vmax=positive.max())
    else:
        norm = Normalize(vmin=values.min(), vmax=values.max())
    figure = Figure(layout="constrained", figsize=(6.2 * len(items) + 1.2, 6.6))
    axes_list = np.atleast_1d(figure.subplots(1, len(items)))
    shape = analysis.mean_shape
    for axes, item in zip(axes_list, items, strict=True):
        mse = item.point_mse_dense
        points = axes.scatter(shape[:, 0], shape[:, 1], c=mse, cmap="viridis", norm=norm, s=14)
        hardest = np.argsort(-mse)[:n_hardest]
        axes.scatter(
            shape[hardest, 0],
            shape[hardest, 1],
            s=90,
            facecolors="none",
            edgecolors="red",
            lw=1.2,
            label=f"{n_hardest} hardest points",
        )
        axes.set_aspect("equal")
        if not axes.yaxis_inverted():
            axes.invert_yaxis()
        axes.set_xlabel("x (px, mean true shape)")
        axes.set_ylabel("y (px, image rows downward)")
        role = "" if item is analysis.blend else "best run "
        axes.set_title(f"{role}{item.name}: score {item.score:.4g} px²")
        axes.legend(fontsize=8, loc="lower right")
    colorbar = figure.colorbar(points, ax=list(axes_list), shrink=0.85)
    colorbar.set_label("per-point MSE over all validation images (px²)")
    figure.suptitle("Where the error is: mean validation face, each landmark coloured by its MSE")
    return _save(figure, path)


def region_plot(analysis: PointAnalysis, path: Path) -> Path:
    """Heatmap of the MSE of every face region (rows) for every run and the blend (columns)."""
    items = analysis.all
    layout = analysis.layout
    table = np.array([[r.mse_dense for r in region_errors(i, layout)] for i in items]).T
    n_regions, n_items = table.shape
    figure = Figure(layout="constrained", figsize=(4.5 + 1.15 * n_items, 1.8 + 0.36 * n_regions))
    axes = figure.subplots()
    positive = table[table > 0]
    norm = (
        LogNorm(positive.min(), positive.max())
        if len(positive) and positive.max() / positive.min() > 30
        else Normalize(table.min(), table.max())
    )
    image = axes.imshow(table, cmap="viridis", norm=norm, aspect="auto")
    best = table[:, : len(analysis.runs)].argmin(axis=1)
    for row in range(n_regions):
        for col in range(n_items):
            value = table[row, col]
            bright = norm(value) > 0.6
            axes.text(
                col,
                row,
                f"{value:.3g}",
                ha="center",
                va="center",
                fontsize=8,
                color="black" if bright else "white",
                fontweight="bold" if col == best[row] else "normal",
            )
        axes.add_patch(
            Rectangle((best[row] - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.6)
        )
    axes.set_xticks(np.arange(n_items), [item.name for item in items], rotation=30, ha="right")
    axes.set_yticks(np.arange(n_regions), [region.name for region in layout.regions])
    axes.set_xlabel("run")
    axes.set_ylabel("face region")
    axes.set_title("MSE per face region (px², all validation images)")
    figure.legend(
        handles=[Patch(fill=False, edgecolor="red", label="best single run in the region")],
        loc="outside lower right",
        fontsize=8,
    )
    colorbar = figure.colorbar(image, ax=axes)
    colorbar.set_label("MSE (px²)")
    return _save(figure, path)


def correlation_plot(analysis: PointAnalysis, path: Path) -> Path:
    """Heatmap of the correlation of the runs' signed errors (lower = more diverse)."""
    names = [run.name for run in analysis.runs]
    size = len(names)
    figure = Figure(layout="constrained", figsize=(2.5 + 0.7 * size, 2 + 0.6 * size))
    axes = figure.subplots()
    low = min(0.0, float(analysis.correlation.min()))
    image = axes.imshow(analysis.correlation, cmap="magma", vmin=low, vmax=1)
    for row in range(size):
        for col in range(size):
            value = analysis.correlation[row, col]
            axes.text(
                col,
                row,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="black" if value > 0.6 else "white",
            )
    axes.set_xticks(np.arange(size), names, rotation=45, ha="right")
    axes.set_yticks(np.arange(size), names)
    axes.set_xlabel("run")
    axes.set_ylabel("run")
    axes.set_title("Correlation of the runs' errors\n(lower = more to gain from blending)")
    colorbar = figure.colorbar(image, ax=axes)
    colorbar.set_label("correlation of signed errors")
    return _save(figure, path)


def reliability_plot(runs: list[RunCalibration], path: Path) -> Path:
    """Predicted sigma (quantile bins) against observed RMS error, log-log, one line per run."""
    figure = Figure(layout="constrained", figsize=(7.2, 6.2))
    axes = figure.subplots()
    values = np.concatenate(
        [
            np.concatenate([r.validation.reliability.sigma, r.validation.reliability.rms])
            for r in runs
        ]
    )
    values = values[np.isfinite(values) & (values > 0)]
    low, high = (values.min(), values.max()) if len(values) else (1.0, 10.0)
    low, high = low / 1.4, high * 1.4
    grid = np.geomspace(low / max(RMS_PER_SIGMA.values()), high, 50)
    axes.plot(grid, grid, color="grey", lw=1, ls=":", label="RMS = sigma (calibrated Gaussian)")
    if any(run.kind == "laplace" for run in runs):
        factor = RMS_PER_SIGMA["laplace"]
        axes.plot(
            grid,
            factor * grid,
            color="grey",
            lw=1,
            ls="--",
            label="RMS = √2·sigma (calibrated Laplace)",
        )
    for run in runs:
        bins = run.validation.reliability
        axes.plot(bins.sigma, bins.rms, marker="o", ms=4, lw=1.4, label=f"{run.name} ({run.kind})")
    axes.set_xscale("log")
    axes.set_yscale("log")
    for axis in (axes.xaxis, axes.yaxis):  # plain numbers (3, 4, 6), not 3 x 10^0
        axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    axes.set_xlim(low, high)
    axes.set_ylim(low, high)
    axes.set_xlabel("predicted sigma (px, root mean square within the bin)")
    axes.set_ylabel("observed RMS error per coordinate (px)")
    n_bins = max(len(run.validation.reliability.count) for run in runs)
    axes.set_title(f"Reliability of the predicted sigma (validation, {n_bins} quantile bins)")
    axes.legend(fontsize=8, loc="upper left", framealpha=0.9)
    axes.grid(which="both", alpha=0.25)
    return _save(figure, path)
