"""The stages of `ens demo`, each one the same `ens` command a user would type."""

from __future__ import annotations

import shlex
from importlib.resources import files
from pathlib import Path

import click
import numpy as np
import pandas as pd

from ensemble.blend.validation_check import blend_val_score
from ensemble.io.data_folder import DataFolder
from ensemble.io.run_folder import find_runs
from ensemble.io.scores_table import read_scores

SCORE_BLEND = "blend_score_weighted.csv"
FIT_BLEND = "blend_fitted.csv"


def packaged_config(name: str) -> Path:
    """Path of a run configuration shipped with the package (configs/<name>)."""
    return Path(str(files("ensemble.configs") / name))


def _header(number: int, title: str) -> None:
    click.secho(f"\n== {number}. {title} ", fg="cyan", bold=True, nl=False)
    click.secho("=" * max(0, 70 - len(title)), fg="cyan")


def _ens(*args: str | Path) -> None:
    """Run one `ens` subcommand in-process, echoing it like a shell would."""
    from ensemble.cli import cli

    words = [str(a) for a in args]
    click.secho("$ ens " + shlex.join(words), dim=True)
    cli.main(args=words, prog_name="ens", standalone_mode=False)


def run_demo(
    directory: Path,
    n_train: int | None = None,
    n_test: int | None = None,
    config: Path | None = None,
) -> pd.DataFrame:
    """Make data, train, score, blend and analyse under `directory`; return the closing table."""
    data, runs = directory / "data", directory / "runs"
    scores = runs / "scores.csv"
    config = config or packaged_config("demo.toml")

    _header(1, "make-demo: a competition-format dataset")
    if DataFolder.at(data).test_landmarks.is_file():
        click.echo(f"{data} exists: reused")
    else:
        sizes = [*(["--train", str(n_train)] if n_train else [])]
        sizes += ["--test", str(n_test)] if n_test else []
        _ens("make-demo", data, *sizes)

    _header(2, "baseline: the mean-shape floor")
    baseline = directory / "baseline.csv"
    if not baseline.is_file():
        _ens("baseline", "--data", data, "-o", baseline)
    _ens("score", baseline, "--data", data)

    _header(3, f"train-all: {config.name}")
    _ens("train-all", "--data", data, "--config", config, "--out", runs)

    _header(4, "score: every run on the simulated leaderboard")
    submissions = [Path(p) for p in read_scores(scores)["submission_path"] if p]
    _ens("score", *submissions, "--data", data, "--scores", scores)

    _header(5, "blend: score-weighted and fitted on validation predictions")
    score_blend, fit_blend = directory / SCORE_BLEND, directory / FIT_BLEND
    _ens("blend", "--weights", scores, "--by", "public", "-o", score_blend)
    _ens("blend", "--fit", runs, "--data", data, "-o", fit_blend)
    _ens("score", score_blend, fit_blend, "--data", data)

    _header(6, "analyze: the report")
    report = directory / "report"
    _ens("analyze", "--data", data, "--runs", runs, "-o", report)

    table = closing_table(directory, data, runs)
    _header(7, "results (MSE in original pixels; lower is better)")
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    click.echo(f"\nreport: {report / 'report.html'}")
    return table


def _score_weighted_val(runs_dir: Path, data: Path, weights_by_run: dict[str, float]) -> float:
    """Validation score of the runs' validation predictions with the score-based weights."""
    runs = find_runs(runs_dir)
    weights = np.array([weights_by_run.get(run.name, 0.0) for run in runs])
    return blend_val_score(runs, weights, data)[0]


def closing_table(directory: Path, data: Path, runs_dir: Path) -> pd.DataFrame:
    """Val, public and private MSE of the baseline, every run (with its health) and both
    blends."""
    from ensemble.blend.weights import weights_from_scores
    from ensemble.competition.health import run_health
    from ensemble.competition.leaderboard import score_files

    scores = read_scores(runs_dir / "scores.csv")
    health = {name: h.status for name, h in run_health(find_runs(runs_dir)).items()}
    rows = [
        {"name": run, "val": val, "public": public, "private": private, "health": health[run]}
        for run, val, public, private in scores[["run", "val", "public", "private"]].itertuples(
            index=False
        )
    ]
    table = weights_from_scores(runs_dir / "scores.csv", None, "inverse", by="public")
    by_run = {Path(p).parent.name: w for p, w in zip(table.paths, table.weights, strict=True)}
    fitted = pd.read_json(directory / Path(FIT_BLEND).with_suffix(".weights.json"), typ="series")
    blends = {
        "blend: score-weighted": (SCORE_BLEND, _score_weighted_val(runs_dir, data, by_run)),
        "blend: fitted": (FIT_BLEND, float(fitted["blend_val_score"])),
    }
    baseline = score_files([directory / "baseline.csv"], data)[0]
    baseline_val = find_runs(runs_dir)[0].summary().get("baseline_val_score", np.nan)
    rows.insert(
        0,
        {
            "name": "mean-shape baseline",
            "val": baseline_val,
            "public": baseline.public,
            "private": baseline.private,
            "health": "",
        },
    )
    for name, (file_name, val) in blends.items():
        result = score_files([directory / file_name], data)[0]
        rows.append(
            {"name": name, "val": val, "public": result.public, "private": result.private}
            | {"health": ""}
        )
    return pd.DataFrame(rows)
