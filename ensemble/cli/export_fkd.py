"""`ens export-fkd`: a package submission -> Kaggle's RowId,Location file."""

from __future__ import annotations

from pathlib import Path

import click

from ensemble.cli.options import FILE, output_option


@click.command("export-fkd")
@click.argument("submission", type=FILE)
@click.option("--lookup", "lookup_csv", required=True, type=FILE, help="Kaggle IdLookupTable.csv.")
@output_option("Kaggle submission CSV to write (RowId,Location).")
def export_fkd(submission: Path, lookup_csv: Path, output: Path) -> None:
    """Turn SUBMISSION (rows = test_points rows) into Kaggle's RowId,Location file.

    One row per lookup row, in lookup order; locations are clipped to the 96x96 image and
    rounded half-to-even to 4 decimals.
    """
    from ensemble.fkd.exporter import export_fkd as run_export

    rows = run_export(submission, lookup_csv, output)
    click.echo(f"wrote {output} ({rows} rows)")
