"""`ens predict`: redo a run's predictions and submission from its best checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from ensemble.cli.options import cache_option, data_option, quiet_option


@click.command()
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Run folder written by `ens train-all` (RUNS/<run>).",
)
@click.option("--tta/--no-tta", default=None, help="Horizontal-flip TTA (default: the run's).")
@data_option("Dataset folder (default: the `data` of the run's config.toml).", exists=True)
@cache_option
@click.option(
    "--checkpoint",
    help="Checkpoint file inside RUN/checkpoints/ (default: best.pt, the best val score).",
)
@quiet_option
def predict(
    run_dir: Path,
    tta: bool | None,
    data_dir: Path | None,
    cache_dir: Path | None,
    checkpoint: str | None,
    quiet: bool,
) -> None:
    """Rewrite RUN's val/test predictions, submission.csv, summary and scores.csv row."""
    from ensemble.io.atomic import check_output
    from models.predict_run import predict_run
    from models.run_locks import lock_runs

    check_output(run_dir, read_dirs=[data_dir] if data_dir else [], folder=True)
    with lock_runs([run_dir], "re-predicting"):
        result = predict_run(run_dir, tta, data_dir, cache_dir, checkpoint, progress=not quiet)
    click.echo(
        f"{run_dir.name}: val score {result['val_score']:.4f} (tta {result['tta']}), "
        f"submission {run_dir / 'submission.csv'}"
    )
