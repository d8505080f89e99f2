"""`ens analyze`: uniformity, val-to-leaderboard fit, per-point MSE, error tails, calibration."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

from analysis.sections.registry import DEFAULTS, REPORT_FOLDER, SECTIONS, SectionSpec
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
        help=f"Level of the uniformity test (default {DEFAULTS['alpha']:g}).",
    ),
    "bootstrap": click.option(
        "--bootstrap",
        type=click.IntRange(min=10),
        help=f"Bootstrap resamples for the score intervals (default {DEFAULTS['bootstrap']}).",
    ),
    "gallery": click.option(
        "--gallery",
        type=click.IntRange(1, 64),
        help="Images per gallery of worst images and suspect labels "
        f"(default {DEFAULTS['gallery']}).",
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


@contextlib.contextmanager
def _staged(output: Path | None) -> Iterator[Path | None]:
    """Where sections write their files: a staging folder whose files move into `output` only
    when every section was built (None: print only)."""
    from ensemble.io.atomic import staged_folder

    if output is None:
        yield None
        return
    with staged_folder(output) as work:
        yield work


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

    inputs = _inputs(options)
    _check_report_folder(output, inputs)
    given = {
        name: str(value)
        for name, value in vars(inputs).items()
        if value is not None and name not in ("n_points_from",)
    }
    with _staged(output) as work:  # the report appears whole or not at all
        sections = [
            spec.build(inputs, {**options, REPORT_FOLDER: output}, work) for spec in SECTIONS
        ]
        report = write_report(work, sections, given)
    for section in sections:
        status = section.headline if section.available else f"not available: {section.missing}"
        click.echo(f"{section.title}: {status}")
    click.echo(f"wrote {output / report.name} and {output / 'summary.json'}")


def _subcommand(spec: SectionSpec) -> click.Command:
    """`ens analyze NAME`: one section in the terminal (and its files with -o, where it has any)."""

    @click.pass_context
    def run(ctx: click.Context, **options) -> None:
        options = _merged(ctx, options)
        inputs = _inputs(options)
        output = options.get("output")
        if spec.writes_files:
            _check_report_folder(output, inputs)
        with _staged(output) as work:
            section = spec.build(inputs, {**options, REPORT_FOLDER: output}, work)
        _print_section(section, in_short=bool(spec.writes_files))

    run.__doc__ = spec.help
    command = _options(*spec.options)(run)
    if spec.writes_files:
        command = output_option(spec.writes_files, kind="folder", required=False)(command)
    return analyze.command(spec.name)(command)


for _spec in SECTIONS:
    _subcommand(_spec)
