"""`ens train`: train one run of a config, or resume a killed run from its last checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from ensemble.cli import options


@click.command()
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A run folder to continue from its checkpoints/last.pt (with its own config.toml).",
)
@options.config_option("Runs TOML (as for train-all); needs --run, --data and --out.", exists=True)
@click.option(
    "--run",
    "--name",
    "run_name",
    help="The [[run]] of --config to train (--name: the same, for torchrun command lines).",
)
@options.data_option("Dataset folder (default with --resume: the run's own).", exists=True)
@options.out_option
@options.cache_option
@options.checkpoint_every_option
@options.quiet_option
def train(
    resume_dir: Path | None,
    config_path: Path | None,
    run_name: str | None,
    data_dir: Path | None,
    out_dir: Path,
    cache_dir: Path | None,
    checkpoint_every: int | None,
    quiet: bool,
) -> None:
    """Train one run (--config, --run, --data), or continue one (--resume RUNS/<run>).

    A resumed run reaches the same weights and metrics as an uninterrupted one with the same
    seed (on CPU, bit for bit). Under torchrun the run trains over all the processes.
    """
    import dataclasses

    from ensemble.io.atomic import check_output
    from models import distributed
    from models.run_locks import lock_runs
    from models.train import train_run
    from models.train_all import load_runs, resume_target

    if resume_dir is not None:
        config, data_dir, run_dir = resume_target(resume_dir, data_dir)
    else:
        if config_path is None or run_name is None or data_dir is None:
            raise click.UsageError("give --resume RUN, or --config, --run and --data")
        runs = {r.name: r for r in load_runs(config_path)}
        if run_name not in runs:
            raise click.UsageError(f"--run {run_name} is not in {config_path}")
        config, run_dir = runs[run_name], out_dir / run_name
        check_output(run_dir, [data_dir], [data_dir], folder=True)
    if checkpoint_every is not None:
        config = dataclasses.replace(config, checkpoint_every=checkpoint_every)
    distributed.init_from_env()
    with lock_runs([run_dir], "training"):
        summary = train_run(
            config, data_dir, run_dir, cache_dir, not quiet, resume=resume_dir is not None
        )
    if distributed.is_main():
        click.echo(f"{run_dir.name}: val score {summary['val_score']:.3f} ({run_dir})")
        for warning in summary["warnings"]:
            click.echo(f"{run_dir.name}: warning: {warning}", err=True)
        if summary["health"]["status"] == "poor":
            click.echo(
                f"{run_dir.name}: warning: poor: {summary['health']['reason']} (ens train-all "
                "trains a poor run again with the next seed: `restarts`)",
                err=True,
            )
