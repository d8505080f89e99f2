"""`ens blend`: score-weighted or fitted blends of submissions."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ensemble.blend.names import (
    COMBINERS,
    CV_FOLDS,
    FIT_METHODS,
    FUSION_METHOD,
    LEARNED_METHODS,
    SCHEMES,
    SCORE_COLUMNS,
)
from ensemble.cli.options import data_option, output_option
from ensemble.io.atomic import check_output


class FiniteRange(click.FloatRange):
    """A click.FloatRange that also refuses nan and infinities (FloatRange lets nan through)."""

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(
                f"{number} is not a finite number in the range {self._describe_range()}.",
                param,
                ctx,
            )
        return number


@click.command("blend")
@click.argument("submissions", nargs=-1, type=click.Path(path_type=Path))
@output_option("Blend to write (not with --compare).", kind="any", required=False)
@click.option(
    "--weights",
    "scores_path",
    type=click.Path(path_type=Path),
    help="scores.csv listing submissions (paths relative to it) and their scores.",
)
@click.option(
    "--scheme",
    type=click.Choice(SCHEMES),
    help="Weighting: default inverse with --weights, equal without.",
)
@click.option(
    "--by", help=f"Score column of scores.csv (default: {', else '.join(SCORE_COLUMNS)})."
)
@click.option("--higher-is-better", is_flag=True, help="Larger scores are better.")
@click.option(
    "--power",
    type=FiniteRange(min=0),
    default=1.0,
    show_default=True,
    help="inverse: w ~ score^-p.",
)
@click.option(
    "--temperature",
    type=FiniteRange(min=0, min_open=True),
    help="softmax: w ~ exp(-score/T) (default: std).",
)
@click.option("--top", type=click.IntRange(min=1), help="Keep only the K best-scored.")
@click.option(
    "--combine",
    type=click.Choice(COMBINERS),
    default="mean",
    show_default=True,
    help="Weighted mean, or per-value median / trimmed mean of the weighted-in submissions.",
)
@click.option(
    "--trim",
    type=FiniteRange(0, 0.5, max_open=True),
    default=0.2,
    show_default=True,
    help="trimmed: fraction cut per tail.",
)
@click.option(
    "--fit",
    "runs_dir",
    type=click.Path(path_type=Path),
    help="Fit weights on the validation predictions of the run folders in RUNS.",
)
@data_option("Data folder for --fit.", dest="data")
@click.option(
    "--method",
    type=click.Choice([*FIT_METHODS, FUSION_METHOD, *LEARNED_METHODS]),
    default="lsq",
    show_default=True,
    help="--fit: constrained least squares, Caruana greedy selection; uncertainty: the lsq "
    "weights, then per image and landmark w_r / sigma_r^(2 gamma) for runs trained with "
    "`uncertainty` (gamma chosen on validation, never worse than lsq there); shrink: weights "
    "per landmark pulled toward the region's and the global fit; stack: a ridge regression "
    "per landmark coordinate on the runs' predictions (shrink and stack choose their strength "
    f"across {CV_FOLDS} folds of the validation images).",
)
@click.option("--per-region", is_flag=True, help="--fit: one weight vector per face region.")
@click.option(
    "--compare",
    is_flag=True,
    help="--fit: score every method (lsq, greedy, uncertainty when runs have sigma, lsq and greedy "
    "per region, shrink, stack) in sample and cross-validated over the validation images, and "
    "name the simplest within one standard error of the lowest; writes nothing.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="--method greedy: bag size.",
)
@click.option(
    "--decimals",
    type=click.IntRange(0, 10),
    default=4,
    show_default=True,
    help="Decimals (round half-even).",
)
def blend(
    submissions: tuple[Path, ...],
    output: Path,
    scores_path: Path | None,
    scheme: str | None,
    by: str | None,
    higher_is_better: bool,
    power: float,
    temperature: float | None,
    top: int | None,
    combine: str,
    trim: float,
    runs_dir: Path | None,
    data: Path | None,
    method: str,
    per_region: bool,
    compare: bool,
    rounds: int,
    decimals: int,
) -> None:
    """Blend submissions into OUT.csv: score-weighted, or with weights fitted on validation.

    \b
    ens blend --weights RUNS/scores.csv -o blend.csv            # inverse-score weights
    ens blend a.csv b.csv --weights scores.csv --scheme rank --top 2 -o blend.csv
    ens blend a.csv b.csv c.csv --combine median -o blend.csv   # no scores needed
    ens blend --fit RUNS -o blend.csv                           # fitted on validation
    ens blend --fit RUNS --per-region -o blend.csv              # one weight set per region
    ens blend --fit RUNS --method shrink -o blend.csv           # weights per landmark
    ens blend --fit RUNS --compare                              # which method to trust

    All inputs must share header and file names (rows are aligned by file name). The output
    is written atomically, never over an input, rounded half-to-even. --fit also writes
    OUT.weights.json with the weights and the validation scores, in sample and cross-validated
    (5 folds over the validation images: each fold blended with weights fitted on the others).
    """
    if compare:
        if runs_dir is None or output is not None:
            raise click.UsageError("--compare goes with --fit RUNS and writes nothing (no -o)")
        if method != "lsq" or per_region:
            raise click.UsageError("--compare scores every method: no --method or --per-region")
        _warn_other_data(runs_dir, data)
        _compare(runs_dir, data, rounds)
        return
    if output is None:
        raise click.UsageError("Missing option '-o' / '--output'.")
    if runs_dir is not None:
        if submissions or scores_path is not None:
            raise click.UsageError("--fit takes no SUBMISSIONS and no --weights")
        if combine != "mean":
            raise click.UsageError("fitted weights blend with the weighted mean only")
        if per_region and method in LEARNED_METHODS:
            raise click.UsageError(
                f"--method {method} fits every landmark already: no --per-region"
            )
        _check_fit_outputs(output, runs_dir, data)
        _warn_other_data(runs_dir, data)
        _fitted(runs_dir, data, method, per_region, rounds, output, decimals)
        return
    check_output(output, [*submissions, *([scores_path] if scores_path else [])])
    if scores_path is None:
        if (scheme or "equal") != "equal" or top is not None:
            raise click.UsageError("score-based weights need --weights scores.csv")
        if not submissions:
            raise click.UsageError("give SUBMISSIONS, --weights scores.csv or --fit RUNS")
        _plain(submissions, output, combine, trim, decimals)
        return
    _scored(
        scores_path,
        submissions,
        output,
        dict(
            scheme=scheme or "inverse",
            by=by,
            power=power,
            temperature=temperature,
            top=top,
            higher_is_better=higher_is_better,
            combine=combine,
            trim=trim,
            decimals=decimals,
        ),
    )


def _plain(submissions, output: Path, combine: str, trim: float, decimals: int) -> None:
    from ensemble.blend import blend_submissions

    result = blend_submissions(submissions, None, output, combine, trim, decimals)
    click.echo(f"{'submission':<40} {'weight':>8}")
    for path in submissions:
        click.echo(f"{str(path):<40} {1 / len(submissions):>8.4f}")
    click.echo(f"wrote {output} ({len(result.file_names)} rows, {combine} of {len(submissions)})")


def _scored(scores_path: Path, submissions, output: Path, options: dict) -> None:
    from ensemble.blend import blend_from_scores

    table, result = blend_from_scores(scores_path, output, submissions or None, **options)
    column = table.score_column or "score"
    click.echo(f"{'submission':<32} {column:>12} {'weight':>8}")
    for name, score, weight in zip(table.names, table.scores, table.weights, strict=True):
        shown = "" if score != score else f"{score:.6g}"
        click.echo(f"{name:<32} {shown:>12} {weight:>8.4f}")
    used = int((table.weights > 0).sum())
    how = f"{options['scheme']} weights" + (f", top {options['top']}" if options["top"] else "")
    if options["combine"] != "mean":
        how = f"{options['combine']} of the weighted-in submissions (weights only select)"
    click.echo(f"wrote {output} ({len(result.file_names)} rows, {used} submissions, {how})")
    if options["combine"] == "mean":
        _check_on_validation(table, output)


def _check_on_validation(table, output: Path) -> None:
    """Say how the blend scores on the runs' validation predictions, and warn when it loses."""
    from ensemble.blend.validation_check import validation_check
    from ensemble.errors import InputError

    try:
        check = validation_check(table.paths, table.weights)
    except InputError as error:
        click.echo(f"note: not checked on validation ({error})", err=True)
        return
    if check is None:
        return
    if check.poor is not None:
        for line in check.poor.lines(fitted=False):
            click.echo(f"warning: {line}", err=True)
    where = f"on validation ({check.n_images} images)"
    best = f"best single run {check.best_run} {check.best_score:.6g}"
    if not check.worse:
        gain = 100 * (check.best_score - check.blend_score) / check.best_score
        click.echo(f"{where}: blend {check.blend_score:.6g}, {best} ({gain:.2f}% below it)")
        return
    loss = 100 * (check.blend_score - check.best_score) / check.best_score
    click.echo(
        f"warning: {where} this blend scores {check.blend_score:.6g}, {loss:.2f}% worse than its "
        f"{best}. Fit the weights on validation instead: ens blend --fit {check.runs_dir} "
        f"-o {output.with_name('fitted.csv')} (or keep the best run alone: --top 1)",
        err=True,
    )


def _fitted(runs_dir, data, method, per_region, rounds, output: Path, decimals: int) -> None:
    from ensemble.blend import blend_runs, fit_runs, weights_path_for

    report = fit_runs(runs_dir, data, method, per_region, rounds)
    names = [run.name for run in report.runs]
    weights = report.fitted.weights
    click.echo(f"fitted on {report.n_images} validation images{report.shared_note} ({method}):")
    column = "weight" if method != "stack" else "coef"
    click.echo(f"{'run':<32} {'val score':>12} {column:>8}")
    mean_weights = report.fitted.mean_weights()
    for name, score, weight in zip(names, report.val_scores, mean_weights, strict=True):
        click.echo(f"{name:<32} {score:>12.6g} {weight:>8.4f}")
    best = float(report.val_scores.min())
    gain = 100 * (best - report.blend_score) / best if best > 0 else 0.0
    if report.fusion is not None:
        lsq_gain = 100 * (best - report.fitted_score) / best if best > 0 else 0.0
        below = f"({_versus(lsq_gain)} the best single run)"
        click.echo(f"{'lsq blend':<32} {report.fitted_score:>12.6g}   {below}")
        label = f"fused (gamma {report.fusion.gamma:g})"
    else:
        label = "blend"
    click.echo(f"{label:<32} {report.blend_score:>12.6g}   ({_versus(gain)} the best single run)")
    if report.fusion is not None:
        without = [n for n in names if n not in report.sigma_runs]
        note = f"; without sigma (fitted weight kept): {', '.join(without)}" if without else ""
        click.echo(f"sigma from {', '.join(report.sigma_runs)}{note}")
    if method in LEARNED_METHODS:
        _learned_summary(report.fitted, names)
    if report.fitted.per_region:
        click.echo("per-region weights (weight column above: their mean):")
        fallback = report.fitted.fallback
        notes = [" (global)" if r.name in fallback else "" for r in report.fitted.layout.regions]
        _region_table(report.fitted.layout.regions, names, weights, notes)
        if fallback:
            from ensemble.blend.fit import MIN_REGION_VALUES

            click.echo(
                f"(global): too few labelled values in the region to fit its own weights "
                f"(under {MIN_REGION_VALUES}); it keeps the global ones"
            )
    if report.cv_score is not None:
        click.echo(
            f"{'cross-validated':<32} {report.cv_score:>12.6g}   ({CV_FOLDS} folds over the "
            "images: each scored with weights fitted without it; the blend's line is in sample)"
        )
    for name, reason in report.no_weight.items():
        click.echo(f"{name} gets no weight: {reason}")
    if report.poor is not None:
        for line in report.poor.lines(fitted=True):
            click.echo(f"warning: {line}", err=True)
    result = blend_runs(report, output, decimals)
    click.echo(f"wrote {output} ({len(result.file_names)} rows) and {weights_path_for(output)}")


def _learned_summary(fitted, names: list[str]) -> None:
    """The chosen strength, what it means, and the per-region means of the landmarks' weights."""
    import math

    from ensemble.blend.point_statistics import OUTLIER_FACTOR

    what = (
        "pseudo-counts, x the median values per landmark, pulling each landmark's weights "
        "toward its region's and the regions' toward the global fit"
        if fitted.method == "shrink"
        else "ridge penalty toward the global lsq weights, x values x the runs' mean squared error"
    )
    if math.isinf(fitted.strength):
        chosen = "infinite: " + (
            "every landmark keeps the global lsq weights"
            if fitted.method == "shrink"
            else "the global lsq weights plus a bias correction per landmark coordinate"
        )
    else:
        chosen = f"{fitted.strength:g}"
    click.echo(f"strength chosen across {CV_FOLDS} folds: {chosen} ({what})")
    if fitted.images_left_out:
        click.echo(
            f"  {fitted.images_left_out} validation images left out of the fit: the runs' mean "
            f"misses their labels by over {OUTLIER_FACTOR:g}x the median image's squared error "
            "(label errors, crowds: no blend fixes them); the scores count them"
        )
    kept = " of the images kept" if fitted.images_left_out else ""
    click.echo(
        f"  its held-out mse on every labelled point{kept}: "
        f"{fitted.held_out_errors[fitted.strength]:.6g}"
        " (the cross-validated line below scores only the points the leaderboard would)"
    )
    click.echo(
        f"mean per region ({'weight' if fitted.method == 'shrink' else 'coef'} column "
        "above: the mean over every landmark):"
    )
    _region_table(fitted.layout.regions, names, fitted.region_weights())


def _region_table(regions, names: list[str], rows, notes: list[str] | None = None) -> None:
    """One row of weights per region, a column per run, each as wide as its run's name."""
    widths = [max(10, len(name)) for name in names]
    click.echo(
        f"{'region':<26} " + " ".join(f"{n:>{w}}" for n, w in zip(names, widths, strict=True))
    )
    for number, (region, row) in enumerate(zip(regions, rows, strict=True)):
        values = " ".join(f"{v:>{w}.4f}" for v, w in zip(row, widths, strict=True))
        click.echo(f"{region.name[:26]:<26} {values}{notes[number] if notes else ''}")


def _versus(gain: float) -> str:
    """'1.23% below' for a gain over the best single run, '0.20% above (worse than)' for a loss."""
    return f"{gain:.2f}% below" if gain >= 0 else f"{-gain:.2f}% above (worse than)"


def _compare(runs_dir: Path, data: Path | None, rounds: int) -> None:
    import math

    from ensemble.blend import compare_fits

    comparison = compare_fits(runs_dir, data, rounds)
    folds = (
        f"{CV_FOLDS} folds: each fitted on the others, scored on itself"
        if comparison.n_images >= 2 * CV_FOLDS
        else "too few to cross-validate: in sample only; shrink and stack left out"
    )
    click.echo(
        f"compared on {comparison.n_images} validation images{comparison.shared_note} ({folds}):"
    )
    lowest = comparison.lowest()
    click.echo(f"{'method':<24} {'in sample':>12} {'cross-validated':>16}   vs the lowest (s.e.)")
    for row in comparison.methods:
        held_out = "n/a" if row.cross_validated is None else f"{row.cross_validated:.6g}"
        gap, error = comparison.gap(row)
        versus = "" if math.isnan(gap) else f"{gap:+.3f} ({error:.3f})"
        if row is lowest and row.cross_validated is not None:
            versus = "lowest"
        click.echo(f"{row.method:<24} {row.in_sample:>12.6g} {held_out:>16}   {versus}".rstrip())
    best_run, best = min(comparison.singles.items(), key=lambda item: item[1])
    click.echo(f"best single run: {best_run}, {best:.6g}")
    chosen = comparison.chosen()
    if chosen.cross_validated is None:
        click.echo(
            f"too few validation images to cross-validate ({comparison.n_images}, at least "
            f"{2 * CV_FOLDS}): the in-sample column favours the most flexible method; keep lsq"
        )
        return
    score = chosen.cross_validated
    gain = 100 * (best - score) / best if best > 0 else 0.0
    versus = _versus(gain)
    why = (
        "the lowest cross-validated score"
        if chosen is lowest
        else f"the simplest within one standard error of {lowest.method}'s"
    )
    click.echo(
        f"would choose: {chosen.method}, {why} (cross-validated {score:.6g}, {versus} the best "
        f"single run): ens blend --fit {runs_dir} --method {chosen.method} -o OUT.csv"
    )


def _check_fit_outputs(output: Path, runs_dir: Path, data: Path | None) -> None:
    """Refuse OUT.csv and OUT.weights.json inside RUNS (its run folders, its scores.csv) or the
    data folder --fit reads."""
    from ensemble.blend import weights_path_for
    from ensemble.io.run_folder import data_dir_of, find_runs

    runs = find_runs(runs_dir)
    data = data if data is not None else data_dir_of(runs)
    read_dirs = [*(run.path for run in runs), runs_dir] + ([data] if data is not None else [])
    for path in (output, weights_path_for(output)):
        check_output(path, read_dirs=read_dirs)


def _warn_other_data(runs_dir: Path, data: Path | None) -> None:
    """Warn when --data is not the data folder the runs recorded (their labels would be taken
    for the same file names without a word)."""
    import os

    from ensemble.io.run_folder import data_dir_of, find_runs

    recorded = data_dir_of(find_runs(runs_dir))
    if data is None or recorded is None or not recorded.is_dir() or not data.is_dir():
        return
    if not os.path.samefile(recorded, data):
        click.echo(
            f"warning: --data {data} is not the data folder the runs were trained on "
            f"({recorded}); its labels are used for the images of the same names",
            err=True,
        )
