"""`ens analyze`: uniformity, val-to-leaderboard fit, per-point MSE, error tails, calibration."""

from __future__ import annotations

from pathlib import Path

import click

from ensemble.cli.options import FILE, FOLDER, data_option, output_option

_OPTIONS = {
    "data": data_option(
        "Competition data folder (test/test_points.csv, train labels).", dest="data"
    ),
    "runs": click.option("--runs", type=FOLDER, help="Runs folder (run folders, scores.csv)."),
    "scores": click.option("--scores", type=FILE, help="scores.csv (default RUNS/scores.csv)."),
    "test_points": click.option(
        "--test-points", type=FILE, help="test_points.csv (default DATA/test/test_points.csv)."
    ),
    "n_points": click.option(
        "--n-points",
        type=click.IntRange(min=1),
        help="Landmarks per face N of test_points.csv, for the uniformity section (default: "
        "from DATA/train/landmarks.csv, else 971).",
    ),
    "alpha": click.option(
        "--alpha",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        help="Level of the uniformity test (default 0.01).",
    ),
    "bootstrap": click.option(
        "--bootstrap",
        type=click.IntRange(min=10),
        help="Bootstrap resamples for the score intervals (default 1000).",
    ),
    "gallery": click.option(
        "--gallery",
        type=click.IntRange(1, 64),
        help="Images per gallery of worst images and suspect labels (default 8).",
    ),
}


def _options(*names: str):
    """Attach the named shared options (all default to None, i.e. 'inherit or default')."""

    def decorate(function):
        for name in reversed(names):
            function = _OPTIONS[name](function)
        return function

    return decorate


def _merged(ctx: click.Context, given: dict) -> dict:
    """Subcommand options, falling back to those given to `ens analyze` itself.

    An option given to `ens analyze` that the subcommand does not take is a usage error.
    """
    inherited = ctx.obj or {}
    for key, value in inherited.items():
        if value is not None and key not in given:
            raise click.UsageError(_not_here(ctx, key), ctx)
    return {key: value if value is not None else inherited.get(key) for key, value in given.items()}


def _not_here(ctx: click.Context, key: str) -> str:
    """Says that option `key` has no effect on this subcommand, and where it applies."""
    users = [
        f"`ens analyze {name}`"
        for name, command in analyze.commands.items()
        if any(param.name == key for param in command.params)
    ]
    option = "--" + key.replace("_", "-")
    return (
        f"{option} has no effect on `ens analyze {ctx.info_name}`; it applies to "
        f"{', '.join(users)} and the full report (ens analyze -o REPORT)"
    )


def _inputs(options: dict):
    from analysis.inputs import resolve_inputs

    return resolve_inputs(
        options.get("data"),
        options.get("runs"),
        options.get("scores"),
        options.get("test_points"),
        options.get("n_points"),
    )


def _print_section(section, in_short: bool = False) -> None:
    """Print a section (and with `in_short`, its headline); a section that cannot run is an
    error naming what it misses."""
    from analysis.document import section_text

    if not section.available:
        raise click.ClickException(f"{section.title}: cannot run: {section.missing}")
    click.echo(section_text(section), nl=False)
    if in_short:
        click.echo(f"\nIn short: {section.headline}.")


def _check_report_folder(output: Path | None, inputs) -> None:
    """Refuse a report folder that is, or is inside, the data or runs folder read."""
    from ensemble.io.atomic import check_output

    if output is not None:
        check_output(output, read_dirs=[d for d in (inputs.data, inputs.runs) if d], folder=True)


@click.group(invoke_without_command=True)
@_options("data", "runs", "scores", "test_points", "n_points", "alpha", "bootstrap", "gallery")
@output_option(
    "Report folder: report.html, summary.json, suspect_labels.csv and the PNGs.",
    kind="folder",
    required=False,
)
@click.pass_context
def analyze(ctx: click.Context, output: Path | None, **options) -> None:
    """Report on a competition: index uniformity, val-to-leaderboard fit, where the error lives.

    \b
    ens analyze --data DATA --runs RUNS -o report     # all sections, report/report.html
    ens analyze uniformity --data DATA                # one section in the terminal
    ens analyze leaderboard --scores RUNS/scores.csv
    ens analyze points --runs RUNS --data DATA
    ens analyze errors --runs RUNS -o report          # error tails, suspect_labels.csv
    ens analyze calibration --runs RUNS -o report     # sigma of runs with uncertainty

    Each section runs when its inputs exist and says what is missing otherwise.
    """
    ctx.obj = {**options, "output": output}
    if ctx.invoked_subcommand is not None:
        return
    if output is None:
        raise click.UsageError("give -o REPORT (a folder) or a subcommand")
    from analysis.report import write_report
    from analysis.sections.calibration import calibration_section
    from analysis.sections.errors import DEFAULT_GALLERY, errors_section
    from analysis.sections.leaderboard import leaderboard_section
    from analysis.sections.points import points_section
    from analysis.sections.uniformity import uniformity_section

    inputs = _inputs(options)
    _check_report_folder(output, inputs)
    output.mkdir(parents=True, exist_ok=True)
    sections = [
        uniformity_section(
            inputs.test_points,
            inputs.n_points,
            options["alpha"] or 0.01,
            output,
            inputs.n_points_from,
        ),
        leaderboard_section(inputs.scores, output),
        points_section(inputs.runs, inputs.data, output, options["bootstrap"] or 1000),
        errors_section(inputs.runs, inputs.data, output, options["gallery"] or DEFAULT_GALLERY),
        calibration_section(inputs.runs, inputs.data, output),
    ]
    given = {
        name: str(value)
        for name, value in vars(inputs).items()
        if value is not None and name not in ("n_points_from",)
    }
    report = write_report(output, sections, given)
    for section in sections:
        status = section.headline if section.available else f"not available: {section.missing}"
        click.echo(f"{section.title}: {status}")
    click.echo(f"wrote {report} and {output / 'summary.json'}")


@analyze.command()
@_options("data", "runs", "test_points", "n_points", "alpha")
@click.pass_context
def uniformity(ctx: click.Context, **options) -> None:
    """Point-frequency uniformity of test_points.csv (chi-square against uniform)."""
    from analysis.sections.uniformity import uniformity_section

    options = _merged(ctx, options)
    inputs = _inputs(options)
    _print_section(
        uniformity_section(
            inputs.test_points,
            inputs.n_points,
            options["alpha"] or 0.01,
            None,
            inputs.n_points_from,
        )
    )


@analyze.command()
@_options("runs", "scores")
@click.pass_context
def leaderboard(ctx: click.Context, **options) -> None:
    """Fit leaderboard scores on validation scores (OLS, Theil-Sen, outliers, shake-up)."""
    from analysis.sections.leaderboard import leaderboard_section

    options = _merged(ctx, options)
    _print_section(leaderboard_section(_inputs(options).scores, None))


@analyze.command()
@_options("data", "runs", "bootstrap")
@click.pass_context
def points(ctx: click.Context, **options) -> None:
    """Per-point and per-region MSE of the runs' validation predictions."""
    from analysis.sections.points import points_section

    options = _merged(ctx, options)
    inputs = _inputs(options)
    _print_section(points_section(inputs.runs, inputs.data, None, options["bootstrap"] or 1000))


@analyze.command()
@_options("data", "runs", "gallery")
@output_option(
    "Folder for suspect_labels.csv and the gallery PNGs (default: print only).",
    kind="folder",
    required=False,
)
@click.pass_context
def errors(ctx: click.Context, **options) -> None:
    """Where the error lives: per-image MSE/NME tails, worst images, suspect labels.

    \b
    ens analyze errors --runs RUNS -o report    # report/suspect_labels.csv, *.png

    Per run, on validation (and on test with the demo truth): P50/P90/P99 per-image MSE and
    NME, the share of the worst 1% and 5% of images and the score without them. A label is
    suspect when the runs agree with each other and all disagree with it.
    """
    from analysis.sections.errors import DEFAULT_GALLERY, errors_section

    options = _merged(ctx, options)
    inputs = _inputs(options)
    _check_report_folder(options["output"], inputs)
    gallery = options["gallery"] or DEFAULT_GALLERY
    _print_section(errors_section(inputs.runs, inputs.data, options["output"], gallery), True)


@analyze.command()
@_options("data", "runs")
@output_option(
    "Folder for calibration_reliability.png (default: print only).",
    kind="folder",
    required=False,
)
@click.pass_context
def calibration(ctx: click.Context, **options) -> None:
    """Calibration of the sigma of runs trained with `uncertainty = "gaussian" | "laplace"`.

    \b
    ens analyze calibration --runs RUNS -o report    # report/calibration_reliability.png

    Per run with sigma, on validation (and on test with the demo truth): the share of
    coordinates inside the central 68% and 95% intervals, mean sigma, NLL, and a verdict
    (well calibrated within 3 points of nominal, else over- or under-confident); the plot
    bins sigma by quantiles against the observed RMS error.
    """
    from analysis.sections.calibration import calibration_section

    options = _merged(ctx, options)
    inputs = _inputs(options)
    _check_report_folder(options["output"], inputs)
    _print_section(calibration_section(inputs.runs, inputs.data, options["output"]), True)
