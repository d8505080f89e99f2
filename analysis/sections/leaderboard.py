"""Report section 2: validation score to leaderboard score (scores.csv).

A malformed scores.csv raises `InputError`; a valid file without what the fit needs (a val or
public column, three rows with both) gives a section whose `missing` says so.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from analysis.document import Figure, Paragraph, Section, Table, fmt, fmt_line

_FILL_HINT = (
    "fill the leaderboard column: `ens score SUBMISSIONS --data DATA --scores FILE` where the "
    "data has test truth (demo data), else by hand from the real leaderboard (Kaggle)"
)


def _header_of(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as handle:
        return [column.strip() for column in next(csv.reader(handle), [])]


def leaderboard_section(path: Path | None, plot_dir: Path | None = None) -> Section:
    """OLS and Theil-Sen fits of leaderboard scores on validation scores, plus shake-up."""
    from analysis.leaderboard_fit import fit_target, shake_up
    from ensemble.io.scores_table import read_scores

    section = Section("leaderboard", "2. Validation score to leaderboard score (scores.csv)")
    if path is None or not Path(path).exists():
        where = f" ({path} not found)" if path is not None else ""
        section.missing = f"no scores.csv{where}: give --scores FILE or --runs RUNS"
        return section
    frame = read_scores(path)
    header = _header_of(path)
    if "val" not in header:
        section.missing = f"{path}: no 'val' column (the fit needs columns val and public)"
        return section
    if "public" in header:
        targets = ["public", *(["private"] if "private" in header else [])]
    elif "score" in header:
        targets = ["score"]
    else:
        section.missing = f"{path}: no 'public' column (the fit needs columns val and public)"
        return section
    labels = frame["run"].tolist()
    val = frame["val"].to_numpy(dtype=float)
    fits = []
    for target in targets:
        try:
            fits.append(fit_target(target, val, frame[target].to_numpy(dtype=float)))
        except ValueError as error:
            if target == targets[0]:
                section.missing = f"{path}: {error} ({_FILL_HINT})"
                return section
            section.blocks.append(Paragraph(f"No {target} line: {error}."))
    main = fits[0]
    line, robust, clean = main.ols, main.theil, main.clean
    flagged = [labels[row] for row in main.rows[main.outlier]]
    section.headline = (
        f"{main.target} = {fmt_line(clean.slope, clean.intercept, 3)} "
        f"(R² {clean.r_squared:.3f}, {clean.n} runs)"
    )
    text = (
        f"{path}: {len(frame)} rows. Ordinary least squares on the {line.n} runs with both "
        f"scores gives {main.target} = {fmt_line(line.slope, line.intercept)} "
        f"(R² {line.r_squared:.4f}); the robust Theil-Sen line is "
        f"{fmt_line(robust.slope, robust.intercept)}."
    )
    if flagged:
        section.headline += f"; outlier(s): {', '.join(flagged)}"
        text += (
            f" Outlier(s) off the line: {', '.join(flagged)}; without them OLS gives "
            f"{fmt_line(clean.slope, clean.intercept)} (R² {clean.r_squared:.4f}), the "
            "line the plot and the predictions use."
        )
    text += (
        " A slope near 1 and an intercept near 0 mean the validation score predicts the "
        "leaderboard directly."
    )
    section.blocks.insert(0, Paragraph(text))
    section.blocks.append(_lines_table(fits))
    section.blocks.append(_residuals_table(labels, fits))
    predictions = [fit for fit in fits if len(fit.predict_rows)]
    if predictions:
        section.blocks.append(_predictions_table(labels, val, predictions))
    shake = None
    shake_values = None
    shake_labels: list[str] = []
    if "public" in header and "private" in header:
        public = frame["public"].to_numpy(dtype=float)
        private = frame["private"].to_numpy(dtype=float)
        both = np.flatnonzero(np.isfinite(public) & np.isfinite(private))
        if len(both) >= 3:
            shake = shake_up(public[both], private[both])
            shake_values = (public[both], private[both])
            shake_labels = [labels[i] for i in both]
            section.blocks.append(_shake_table(shake_labels, *shake_values, shake))
    if plot_dir is not None:
        from analysis.plots import leaderboard_plot

        figure_path = leaderboard_plot(
            labels, val, fits, shake, shake_labels, shake_values, plot_dir / "leaderboard.png"
        )
        section.blocks.append(
            Figure(
                figure_path,
                "Validation vs leaderboard: OLS line with its confidence band (the line's "
                "uncertainty) and prediction band (where a new run should land), the Theil-Sen "
                "line, flagged outliers, predicted scores of val-only runs; right: public vs "
                "private.",
            )
        )
    section.summary = {
        "file": str(path),
        "fits": {fit.target: _fit_summary(labels, fit) for fit in fits},
        "shake_up": None
        if shake is None
        else {
            "n": shake.n,
            "spearman": shake.spearman,
            "kendall": shake.kendall,
            "mean_private_minus_public": shake.mean_shift,
            "runs": [
                {"run": label, "public_rank": int(a), "private_rank": int(b)}
                for label, a, b in zip(
                    shake_labels, shake.public_rank, shake.private_rank, strict=True
                )
            ],
        },
    }
    return section


def _ci(bounds: tuple[float, float]) -> str:
    return f"[{bounds[0]:.4g}, {bounds[1]:.4g}]"


def _lines_table(fits) -> Table:
    rows = []
    for fit in fits:
        line = fit.ols
        rows.append(
            [
                fit.target,
                "OLS",
                f"{line.slope:.4g} ± {line.slope_se:.2g}",
                _ci(line.slope_ci),
                f"{line.intercept:.4g} ± {line.intercept_se:.2g}",
                _ci(line.intercept_ci),
                f"{line.r_squared:.4f}",
                str(line.n),
            ]
        )
        rows.append(
            [
                fit.target,
                "Theil-Sen",
                f"{fit.theil.slope:.4g}",
                _ci(fit.theil.slope_ci),
                f"{fit.theil.intercept:.4g}",
                "",
                "",
                str(line.n),
            ]
        )
        if fit.clean is not fit.ols:
            clean = fit.clean
            rows.append(
                [
                    fit.target,
                    "OLS without outliers",
                    f"{clean.slope:.4g} ± {clean.slope_se:.2g}",
                    _ci(clean.slope_ci),
                    f"{clean.intercept:.4g} ± {clean.intercept_se:.2g}",
                    _ci(clean.intercept_ci),
                    f"{clean.r_squared:.4f}",
                    str(clean.n),
                ]
            )
    return Table(
        "Fitted lines (leaderboard = slope x val + intercept)",
        [
            "target",
            "method",
            "slope ± SE",
            "slope 95% CI",
            "intercept ± SE",
            "intercept 95% CI",
            "R²",
            "runs",
        ],
        rows,
        note="Intervals: t distribution with n - 2 degrees of freedom (OLS); Theil-Sen slope "
        "interval from scipy.stats.theilslopes.",
    )


def _residuals_table(labels: list[str], fits) -> Table:
    from analysis.leaderboard_fit import MIN_POINTS_FOR_OUTLIERS

    rows = []
    for fit in fits:
        fitted = fit.ols.predict(fit.x)
        for row, x, y, f, z, flag in zip(
            fit.rows, fit.x, fit.y, fitted, fit.z, fit.outlier, strict=True
        ):
            rows.append(
                [
                    labels[row],
                    fit.target,
                    fmt(x),
                    fmt(y),
                    fmt(f),
                    f"{y - f:+.4g}",
                    "n/a" if np.isnan(z) else f"{z:+.2f}",
                    "OUTLIER" if flag else "",
                ]
            )
    return Table(
        "Runs on the line",
        ["run", "target", "val", "leaderboard", "OLS fit", "residual", "robust z", "flag"],
        rows,
        note="robust z: modified z-score of the residual from the Theil-Sen line "
        "(0.6745 x (r - median) / MAD, or (r - median) / (1.2533 x mean absolute deviation) "
        f"when the MAD is 0); |z| > 3.5 is flagged; n/a with fewer than "
        f"{MIN_POINTS_FOR_OUTLIERS} runs, where the spread is not estimable. A submission "
        "written with truncated coordinates sits above the line.",
    )


def _predictions_table(labels: list[str], val: np.ndarray, fits) -> Table:
    rows = []
    for fit in fits:
        for row, value, half in zip(
            fit.predict_rows, fit.predicted, fit.prediction_halfwidth, strict=True
        ):
            rows.append(
                [
                    labels[row],
                    fmt(val[row]),
                    fit.target,
                    fmt(value),
                    f"[{value - half:.4g}, {value + half:.4g}]",
                ]
            )
    return Table(
        "Predicted leaderboard scores of runs with only a validation score",
        ["run", "val", "target", "predicted", "95% prediction interval"],
        rows,
        note="From the OLS line (without flagged outliers, if any).",
    )


def _shake_table(labels, public, private, shake) -> Table:
    change = shake.public_rank - shake.private_rank
    order = np.argsort(-np.abs(change), kind="stable")
    rows = [
        [
            labels[i],
            fmt(public[i]),
            str(shake.public_rank[i]),
            fmt(private[i]),
            str(shake.private_rank[i]),
            f"{change[i]:+d}",
        ]
        for i in order
    ]
    return Table(
        f"Public vs private shake-up: Spearman {shake.spearman:.3f}, Kendall "
        f"{shake.kendall:.3f}, mean private - public {shake.mean_shift:+.4g}",
        ["run", "public", "public rank", "private", "private rank", "places gained"],
        rows,
        note="Biggest movers first (rank 1 = best, lower MSE).",
    )


def _fit_summary(labels: list[str], fit) -> dict:
    def line_dict(line) -> dict:
        return {
            "n": line.n,
            "slope": line.slope,
            "intercept": line.intercept,
            "r_squared": line.r_squared,
            "slope_se": line.slope_se,
            "intercept_se": line.intercept_se,
            "slope_ci95": list(line.slope_ci),
            "intercept_ci95": list(line.intercept_ci),
            "residual_se": line.residual_se,
        }

    return {
        "ols": line_dict(fit.ols),
        "ols_without_outliers": line_dict(fit.clean),
        "theil_sen": {
            "slope": fit.theil.slope,
            "intercept": fit.theil.intercept,
            "slope_ci95": list(fit.theil.slope_ci),
        },
        "runs": [
            {
                "run": labels[row],
                "val": x,
                fit.target: y,
                "robust_z": None if np.isnan(z) else z,
                "outlier": bool(flag),
            }
            for row, x, y, z, flag in zip(fit.rows, fit.x, fit.y, fit.z, fit.outlier, strict=True)
        ],
        "predicted": [
            {"run": labels[row], "predicted": p, "pi95": [p - h, p + h]}
            for row, p, h in zip(
                fit.predict_rows, fit.predicted, fit.prediction_halfwidth, strict=True
            )
        ],
    }
