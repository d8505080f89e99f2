"""The report's sections, declared once: name, options, defaults, help, and how to build each.

`ens analyze -o REPORT` builds every section in this order; `ens analyze NAME` builds one. The
name is the subcommand and the section's key in summary.json. This module imports nothing but
the standard library (the CLI reads it to make its subcommands); a section's module loads only
when the section is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis.document import Section
    from analysis.inputs import Inputs

# option -> default, for the options that have one (None given = this default)
DEFAULTS: dict[str, Any] = {"alpha": 0.01, "bootstrap": 1000, "gallery": 8}
# options key: the folder a section's files end up in, when it writes into a staging folder
REPORT_FOLDER = "report_folder"


@dataclass(frozen=True)
class SectionSpec:
    """One report section: its name (subcommand, summary key), options, help and builder."""

    name: str
    options: tuple[str, ...]
    help: str
    build: Callable[[Inputs, dict[str, Any], Path | None], Section]
    writes_files: str = ""  # what `-o` holds for the subcommand alone; "" = prints only


def option(options: dict[str, Any], name: str) -> Any:
    """The value of option `name`: as given, else its default."""
    value = options.get(name)
    return DEFAULTS.get(name) if value is None else value


def _uniformity(inputs: Inputs, options: dict[str, Any], output: Path | None) -> Section:
    from analysis.sections.uniformity import uniformity_section

    return uniformity_section(
        inputs.test_points,
        inputs.n_points,
        option(options, "alpha"),
        output,
        inputs.n_points_from,
        inputs.data,
    )


def _leaderboard(inputs: Inputs, options: dict[str, Any], output: Path | None) -> Section:
    from analysis.sections.leaderboard import leaderboard_section

    return leaderboard_section(inputs.scores, output)


def _points(inputs: Inputs, options: dict[str, Any], output: Path | None) -> Section:
    from analysis.sections.points import points_section

    return points_section(inputs.runs, inputs.data, output, option(options, "bootstrap"))


def _errors(inputs: Inputs, options: dict[str, Any], output: Path | None) -> Section:
    from analysis.sections.errors import errors_section

    gallery, shown = option(options, "gallery"), options.get(REPORT_FOLDER)
    return errors_section(inputs.runs, inputs.data, output, gallery, shown)


def _calibration(inputs: Inputs, options: dict[str, Any], output: Path | None) -> Section:
    from analysis.sections.calibration import calibration_section

    return calibration_section(inputs.runs, inputs.data, output)


SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec(
        "uniformity",
        ("data", "runs", "test_points", "n_points", "alpha"),
        "Point-frequency uniformity of test_points.csv (chi-square against uniform).",
        _uniformity,
    ),
    SectionSpec(
        "leaderboard",
        ("runs", "scores"),
        "Fit leaderboard scores on validation scores (OLS, Theil-Sen, outliers, shake-up).",
        _leaderboard,
    ),
    SectionSpec(
        "points",
        ("data", "runs", "bootstrap"),
        "Per-point and per-region MSE of the runs' validation predictions.",
        _points,
    ),
    SectionSpec(
        "errors",
        ("data", "runs", "gallery"),
        """Where the error lives: per-image MSE/NME tails, worst images, suspect labels.

    \b
    ens analyze errors --runs RUNS -o report    # report/suspect_labels.csv, *.png

    Per run, on validation (and on test with the demo truth): P50/P90/P99 per-image MSE and
    NME, the share of the worst 1% and 5% of images and the score without them. A label is
    suspect when the runs agree with each other and all disagree with it.
    """,
        _errors,
        "Folder for suspect_labels.csv and the gallery PNGs (default: print only).",
    ),
    SectionSpec(
        "calibration",
        ("data", "runs"),
        """Calibration of the sigma of runs trained with `uncertainty = "gaussian" | "laplace"`.

    \b
    ens analyze calibration --runs RUNS -o report    # report/calibration_reliability.png

    Per run with sigma, on validation (and on test with the demo truth): the share of
    coordinates inside the central 68% and 95% intervals, mean sigma, NLL, and a verdict
    (well calibrated within 3 points of nominal, else over- or under-confident); the plot
    bins sigma by quantiles against the observed RMS error.
    """,
        _calibration,
        "Folder for calibration_reliability.png (default: print only).",
    ),
)
