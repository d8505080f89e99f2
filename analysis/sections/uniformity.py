"""Report section 1: point-frequency uniformity of test_points.csv."""

from __future__ import annotations

from pathlib import Path

from analysis.document import Figure, Paragraph, Section, Table, fmt, fmt_p
from ensemble.competition.layout import dataset_layout


def uniformity_section(
    path: Path | None,
    n_points: int,
    alpha: float = 0.01,
    plot_dir: Path | None = None,
    n_points_from: str = "",
    data_dir: Path | None = None,
) -> Section:
    """Point-frequency uniformity of test_points.csv (regions from the layout of `data_dir`)."""
    from analysis.uniformity import uniformity
    from ensemble.io.test_points import read_test_points

    section = Section("uniformity", "1. Point-frequency uniformity (test_points.csv)")
    if path is None or not Path(path).exists():
        where = f" ({path} not found)" if path is not None else ""
        section.missing = (
            f"no test_points.csv{where}: give --data DIR (with test/test_points.csv) "
            "or --test-points FILE"
        )
        return section
    if n_points < 2:
        section.missing = (
            f"N = {n_points} (from {n_points_from or 'the caller'}): a uniformity test needs "
            "at least 2 landmarks"
        )
        return section
    layout = dataset_layout(data_dir, n_points)
    table = read_test_points(path, n_points=n_points, ragged=True)
    result = uniformity(table.indices, layout, alpha)
    verdict = "consistent with uniform" if result.uniform else "NOT uniform"
    section.headline = f"{verdict} (p = {fmt_p(result.p_value_design)}, level {alpha:g})"
    if result.rows_with_other_k:
        per_row = f"{result.k} indices in most rows ({result.rows_with_other_k:,} rows differ)"
        expected_from = "all indices of all rows / N"
    else:
        per_row, expected_from = f"{result.k} indices per row (every row)", "rows x K / N"
    section.blocks.append(
        Paragraph(
            f"{path}: {result.n_rows:,} rows, {per_row}; in every row the indices are distinct "
            f"and in [0, {n_points}) (checked while reading; N from "
            f"{n_points_from or 'the caller'}). Each index is expected {fmt(result.expected)} "
            f"times ({expected_from}). Verdict at level {alpha:g}: the index frequencies are "
            f"{verdict}."
        )
    )
    section.blocks.append(
        Table(
            "Chi-square goodness of fit against uniform",
            ["test", "statistic", "df", "p-value", "decision"],
            [
                [
                    "Pearson chi-square",
                    fmt(result.statistic, 6),
                    str(result.df),
                    fmt_p(result.p_value),
                    "reject" if result.p_value < alpha else "keep uniform",
                ],
                [
                    f"adjusted for distinct indices per row (/ {result.design_factor:.4f})",
                    fmt(result.statistic / result.design_factor, 6),
                    str(result.df),
                    fmt_p(result.p_value_design),
                    "reject" if not result.uniform else "keep uniform",
                ],
            ],
            note=(
                "Indices are drawn without replacement within a row, which makes counts "
                f"less variable than a multinomial: the statistic follows "
                f"{result.design_factor:.4f} x chi2({result.df}) under uniformity. The verdict "
                "uses the adjusted row."
            ),
        )
    )
    top = result.largest_deviations(10)
    section.blocks.append(
        Table(
            "Largest deviations",
            ["index", "region", "count", "expected", "z", "beyond chance"],
            [
                [
                    str(i),
                    layout.region_of(int(i)).name,
                    str(int(result.counts[i])),
                    fmt(result.expected),
                    f"{result.z[i]:+.2f}",
                    "yes" if abs(result.z[i]) > result.z_critical else "no",
                ]
                for i in top
            ],
            note=(
                f"z = (count - expected) / sd; with {n_points} indices, |z| up to "
                f"{result.z_critical:.2f} is chance at level {alpha:g} (Bonferroni)."
            ),
        )
    )
    section.blocks.append(
        Table(
            "Counts per region",
            ["region", "points", "observed", "expected", "observed / expected", "z"],
            [
                [
                    region.name,
                    str(region.size),
                    f"{region.observed:,}",
                    fmt(region.expected, 6),
                    f"{region.observed / region.expected:.4f}" if region.expected else "n/a",
                    f"{region.z:+.2f}",
                ]
                for region in result.regions
            ],
        )
    )
    if plot_dir is not None:
        from analysis.plots import uniformity_plot

        section.blocks.append(
            Figure(
                uniformity_plot(result, layout, plot_dir / "uniformity.png"),
                "Count of every landmark index (top) and the distribution of counts (bottom).",
            )
        )
    section.summary = {
        "file": str(path),
        "n_rows": result.n_rows,
        "n_points": n_points,
        "k": result.k,
        "rows_with_other_k": result.rows_with_other_k,
        "expected_count": result.expected,
        "chi_square": {
            "statistic": result.statistic,
            "df": result.df,
            "p_value": result.p_value,
            "design_factor": result.design_factor,
            "p_value_adjusted": result.p_value_design,
            "alpha": alpha,
            "uniform": result.uniform,
        },
        "z_critical": result.z_critical,
        "largest_deviations": [
            {"index": int(i), "count": int(result.counts[i]), "z": float(result.z[i])} for i in top
        ],
        "regions": [vars(region) for region in result.regions],
        "counts": result.counts.tolist(),
    }
    return section
