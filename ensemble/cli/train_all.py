"""`ens train-all`: train every [[run]] of a TOML config into RUNS/<run>/ and RUNS/scores.csv."""

from __future__ import annotations

from pathlib import Path

import click

from ensemble.cli import options


def default_config() -> Path:
    """The demo configuration shipped with the package (configs/demo.toml)."""
    from importlib.resources import files

    return Path(str(files("ensemble.configs") / "demo.toml"))


def _print_config_keys(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from models.config import config_reference

    click.echo(config_reference())
    ctx.exit()


@click.command("train-all")
@options.data_option(
    "Dataset folder in the competition layout (train/, test/).", required=True, exists=True
)
@options.config_option(
    "Runs TOML ([defaults] + one [[run]] per model); default: the shipped demo.toml."
)
@options.out_option
@options.cache_option
@click.option(
    "--run",
    "--only",
    "only",
    multiple=True,
    help="Train only this run (repeatable; --only is the same, for torchrun command lines).",
)
@click.option("--resume", is_flag=True, help="Continue unfinished runs from checkpoints/last.pt.")
@click.option(
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Runs trained at once (one GPU each, else the CPU cores split).",
)
@options.checkpoint_every_option
@options.quiet_option
@click.option(
    "--config-keys",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_print_config_keys,
    help="Print every config key (default and allowed values) and exit.",
)
def train_all(
    data_dir: Path,
    config_path: Path | None,
    out_dir: Path,
    cache_dir: Path | None,
    only: tuple[str, ...],
    resume: bool,
    jobs: int,
    checkpoint_every: int | None,
    quiet: bool,
) -> None:
    """Train several architectures one after another on the same data and validation split.

    Each run writes RUNS/<run>/ (config.toml, metrics.csv, checkpoints/, val and test
    predictions, submission.csv, summary.json) and its row of RUNS/scores.csv. A finished run
    (summary.json present) is skipped, so rerunning the command completes an interrupted set;
    with --resume an unfinished run continues from its last checkpoint.

    Launched by torchrun, each run trains over all the processes (DistributedDataParallel):
    torchrun --nproc_per_node=4 $(which ens) train-all --data DATA --config runs.toml
    """
    from ensemble.io.atomic import check_output
    from models import distributed
    from models.train_all import UnknownRun
    from models.train_all import train_all as run_all

    check_output(out_dir, read_dirs=[data_dir], folder=True)
    distributed.init_from_env()
    try:
        outcomes = run_all(
            config_path or default_config(),
            data_dir,
            out_dir,
            cache_dir,
            only,
            not quiet,
            resume=resume,
            jobs=jobs,
            checkpoint_every=checkpoint_every,
        )
    except UnknownRun as error:
        raise click.UsageError(str(error)) from None
    if not distributed.is_main():
        return
    click.echo(outcome_table(outcomes))
    scores = out_dir / "scores.csv"
    click.echo(f"scores: {scores}" if scores.is_file() else "scores: none yet (no run finished)")
    poor = [outcome.run for outcome in outcomes if outcome.poor]
    if poor:
        from ensemble.competition.health import RULE

        click.echo(
            f"poor: {', '.join(poor)} ({RULE}); `ens blend` names a poor run among its inputs "
            "and what it costs",
            err=True,
        )
    failed = [outcome.run for outcome in outcomes if outcome.failed]
    if failed:
        click.echo(
            f"{len(failed)} of {len(outcomes)} run(s) failed ({', '.join(failed)}); "
            "fix the cause and run the same command again: it trains only the failed and "
            "unfinished runs",
            err=True,
        )
        raise SystemExit(1)


def outcome_table(outcomes: list) -> str:
    """The closing table: run, status, val score, health (ensemble.competition.health), and a
    note: why it failed or is poor, what went wrong, which attempt was kept."""
    rows = [("run", "status", "val score", "health", "note")]
    for outcome in outcomes:
        score = "" if outcome.failed else f"{outcome.val_score:.4f}"
        status = outcome.status
        if outcome.reason and not outcome.failed:
            status += " (warning)"
        health = "" if outcome.health is None else outcome.health.status
        rows.append((outcome.run, status, score, health, "; ".join(outcome_notes(outcome))))
    widths = [*(max(len(row[i]) for row in rows) for i in range(4)), 0]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def outcome_notes(outcome) -> list[str]:
    """The closing table's note of a run: failure or warnings, health, restarts."""
    notes = [outcome.reason] if outcome.reason else []
    if outcome.poor:
        notes.append(outcome.health.reason)
    attempts = (outcome.summary or {}).get("attempts", [])
    if len(attempts) > 1:
        kept = next((a for a in attempts if a["kept"]), None)
        tried = ", ".join(str(a["seed"]) for a in attempts)
        notes.append(f"trained with seeds {tried}; seed {kept['seed']} kept" if kept else "")
    elif outcome.health is not None and not outcome.poor and outcome.health.reason:
        notes.append(outcome.health.reason)
    return [note for note in notes if note]
