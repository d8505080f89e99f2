"""The `ens` command group. Subcommands load lazily, so `ens blend` never imports torch.

One module per command in this package (`ensemble.cli.<command>`), beside the options they share
(`options`), the `ens demo` pipeline (`demo_pipeline`), the `ens show` grid (`show_grid`) and the
signal handling of `main` (`signals`). `python -m ensemble` runs `main`.
"""

from __future__ import annotations

import importlib
import sys

import click

from ensemble import __version__
from ensemble.errors import InputError, TrainingError, full_disk

# name -> "module:attribute" of a click command; modules import only when the command runs.
# Keep one entry per line (helpers add theirs here).
LAZY_COMMANDS: dict[str, str] = {
    "score": "ensemble.cli.score:score",
    "baseline": "ensemble.cli.baseline:baseline",
    "demo": "ensemble.cli.demo:demo",
    "import-fkd": "ensemble.cli.import_fkd:import_fkd",
    "export-fkd": "ensemble.cli.export_fkd:export_fkd",
    "import-run": "ensemble.cli.import_run:import_run",
    "blend": "ensemble.cli.blend:blend",
    "make-demo": "ensemble.cli.make_demo:make_demo",
    "show": "ensemble.cli.show:show",
    "analyze": "ensemble.cli.analyze:analyze",
    "train-all": "ensemble.cli.train_all:train_all",
    "train": "ensemble.cli.train:train",
    "prepare": "ensemble.cli.prepare:prepare",
    "predict": "ensemble.cli.predict:predict",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module_name, attribute = LAZY_COMMANDS[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attribute)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (InputError, TrainingError) as error:  # every command's, handled once here
            raise click.ClickException(str(error)) from None
        except OSError as error:  # a full disk met by a writer that does not name its file
            problem = full_disk(error)
            if problem is None:
                raise
            where = "an output file" if error.filename is None else error.filename
            raise click.ClickException(f"{where}: {problem}") from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ens")
def cli() -> None:
    """ens: from a facial-landmark dataset to a blended, analysed submission.

    \b
    Typical session:
      ens make-demo demo              # a small competition-format dataset
      ens train-all --data demo       # train several backbones
      ens blend --weights RUNS/scores.csv -o blend.csv
      ens analyze --data demo --runs RUNS -o report
    """


def main() -> None:
    """Console-script entry point (SIGTERM and SIGHUP clean up like Ctrl-C)."""
    from ensemble.cli.signals import Terminated, stop_cleanly_on_signals

    stop_cleanly_on_signals()
    try:
        sys.exit(cli.main(standalone_mode=True))
    except Terminated as stop:
        click.echo(f"ens: stopped by {stop.signal_name}; no partial output left", err=True)
        raise
