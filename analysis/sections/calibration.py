"""Report section 5: calibration of the runs' predicted sigma (reliability, interval coverage)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.calibration import (
    LEVELS,
    N_BINS,
    RMS_PER_SIGMA,
    TOLERANCE,
    RunCalibration,
    SplitCalibration,
    calibrate_split,
)
from analysis.document import Figure, Paragraph, Section, Table, fmt
from analysis.inputs import runs_and_data
from ensemble.competition.uncertainty import KINDS, interval_halfwidth
from ensemble.errors import InputError
from ensemble.io.data_folder import DataFolder

TITLE = "5. Calibration of the predicted sigma (runs with uncertainty)"
NO_SIGMA = (
    'add `uncertainty = "laplace"` (or "gaussian") to a run (or to [defaults]) of the runs '
    "file and train again: such a run predicts a sigma per landmark, calibrated on validation"
)


def _errors(loaded, labels_path: Path, source: Path) -> np.ndarray:
    """Signed errors (n, N, 2) of a predictions file against the labels (NaN where unlabelled)."""
    from ensemble.io.aligned_predictions import labels_for

    truth = labels_for(labels_path, loaded.file_names, source)
    if truth.shape[1] != loaded.points.shape[1]:
        raise InputError(
            source,
            f"{loaded.points.shape[1]} points per image, {labels_path} has {truth.shape[1]}",
        )
    return loaded.points.astype(np.float64) - truth


def _kind(run) -> str:
    """The run's `uncertainty` kind from config.toml; InputError when sigma has no known kind."""
    kind = run.config().get("uncertainty")
    if kind not in KINDS:
        raise InputError(
            run.path / "config.toml",
            f"{run.val_predictions_path.name} has sigma but `uncertainty` is {kind!r}, not "
            f"one of {', '.join(KINDS)}",
        )
    return kind


def _temperature(run) -> float | None:
    """summary.json's `sigma_temperature` (None when absent); InputError when not JSON."""
    try:
        value = run.summary().get("sigma_temperature")
    except (ValueError, AttributeError) as error:
        raise InputError(run.path / "summary.json", f"not a valid JSON object: {error}") from None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def calibrate_runs(runs, data_dir: Path) -> tuple[list[RunCalibration], list[str], str | None]:
    """(calibration of each run with sigma, names of runs without, why test is absent or None)."""
    train_path = DataFolder.at(data_dir).train_landmarks
    test_path = DataFolder.at(data_dir).test_landmarks
    results, without = [], []
    test_missing = None
    if not test_path.is_file():
        test_missing = f"no test truth ({test_path} exists for demo data only)"
    for run in runs:
        loaded = run.val_predictions()
        if loaded.sigma is None:
            without.append(run.name)
            continue
        kind = _kind(run)
        errors = _errors(loaded, train_path, run.val_predictions_path)
        validation = calibrate_split("validation", errors, loaded.sigma, kind)
        tested = None
        if test_missing is None and run.test_predictions_path.is_file():
            predicted = run.test_predictions()
            if predicted.sigma is not None:
                errors = _errors(predicted, test_path, run.test_predictions_path)
                tested = calibrate_split("test", errors, predicted.sigma, kind)
        results.append(RunCalibration(run.name, kind, _temperature(run), validation, tested))
    if results and test_missing is None and all(item.test is None for item in results):
        test_missing = "no run with sigma has test_predictions.npz with sigma"
    return results, without, test_missing


def calibration_section(
    runs_dir: Path | None, data_dir: Path | None, out_dir: Path | None = None
) -> Section:
    """Per run with sigma: interval coverage, NLL, a verdict and a reliability plot."""

    section = Section("calibration", TITLE)
    found = runs_and_data(section, runs_dir, data_dir)
    if found is None:
        return section
    runs, data_dir = found
    results, without, test_missing = calibrate_runs(runs, data_dir)
    if not results:
        section.missing = (
            f"no run in {runs_dir} has sigma in {runs[0].val_predictions_path.name} "
            f"({len(runs)} run(s) without: {', '.join(without)}); {NO_SIGMA}"
        )
        return section
    section.headline = "; ".join(_headline(item) for item in results)
    section.blocks.append(Paragraph(_intro(results)))
    section.blocks.extend(Paragraph(_verdict_line(item)) for item in results)
    section.blocks.append(_table(results))
    if without:
        section.blocks.append(
            Paragraph(f"Without sigma (not shown): {', '.join(without)}. To get one, {NO_SIGMA}.")
        )
    if test_missing:
        section.blocks.append(Paragraph(f"Test split: not analysed: {test_missing}."))
    if out_dir is None:
        section.blocks.append(Paragraph("Give -o DIR to write the reliability plot."))
    else:
        _figure(section, results, Path(out_dir))
    section.summary = {
        "definition": "coverage: share of labelled coordinates inside the central interval of "
        "their point's sigma; NLL: mean negative log-likelihood per coordinate (nats); "
        "reliability: quantile bins of sigma, RMS sigma and observed RMS error per bin",
        "levels": list(LEVELS),
        "tolerance_points": TOLERANCE,
        "runs": {
            item.name: {
                "kind": item.kind,
                "temperature": item.temperature,
                "validation": item.validation.as_dict(),
                "test": None if item.test is None else item.test.as_dict(),
            }
            for item in results
        },
        "runs_without_sigma": without,
        "test_missing": test_missing,
    }
    return section


def _intro(results: list[RunCalibration]) -> str:
    kinds = sorted({item.kind for item in results})
    widths = "; ".join(
        f"{kind}: ±{interval_halfwidth(LEVELS[0], kind):.3g}·sigma and "
        f"±{interval_halfwidth(LEVELS[1], kind):.3g}·sigma"
        for kind in kinds
    )
    return (
        'A run trained with `uncertainty = "gaussian" | "laplace"` predicts a scale sigma '
        "(px) for every landmark of every image: each coordinate's error is N(0, sigma²) or "
        "Laplace(0, sigma), and one temperature per run, fitted on validation, has scaled "
        f"sigma already. The central 68% and 95% intervals are {widths}; coverage is the share "
        "of labelled coordinates (x and y apart) inside them. The validation numbers are "
        "in-sample (the temperature was fitted on those images); the test numbers, where the "
        "demo truth exists, are the out-of-sample check."
    )


def _headline(item: RunCalibration) -> str:
    """'lap: well calibrated on validation, over-confident on test'."""
    text = f"{item.name}: {item.validation.verdict} on validation"
    return text if item.test is None else f"{text}, {item.test.verdict} on test"


def _shares(split: SplitCalibration) -> str:
    return " and ".join(_share(split.coverage[level]) for level in LEVELS)


def _verdict_line(item: RunCalibration) -> str:
    """'gau (gaussian): well calibrated on validation (the 68% and 95% intervals hold ...).'"""
    levels = " and ".join(f"{level:.0%}" for level in LEVELS)
    line = (
        f"{item.name} ({item.kind}): {item.validation.verdict} on validation (the {levels} "
        f"intervals hold {_shares(item.validation)} of the coordinates)"
    )
    if item.test is None:
        return line + "."
    return line + f"; {item.test.verdict} on test ({_shares(item.test)})."


def _share(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.1f}%"


def _table(results: list[RunCalibration]) -> Table:
    with_test = any(item.test is not None for item in results)
    headers = ["run", "kind", "temperature", "val images"]
    headers += [f"{level:.0%} coverage (val)" for level in LEVELS]
    if with_test:
        headers += ["test images", *[f"{level:.0%} coverage (test)" for level in LEVELS]]
    headers += ["mean sigma (px, val)", "NLL (val)"]
    rows = []
    for item in results:
        val = item.validation
        row = [item.name, item.kind, fmt(item.temperature, 3), f"{val.n_images:,}"]
        row += [_share(val.coverage[level]) for level in LEVELS]
        if with_test:
            test = item.test
            row += (
                ["", *[""] * len(LEVELS)]
                if test is None
                else [f"{test.n_images:,}", *[_share(test.coverage[level]) for level in LEVELS]]
            )
        row += [fmt(val.mean_sigma), fmt(val.nll)]
        rows.append(row)
    return Table(
        "Calibration of the predicted sigma",
        headers,
        rows,
        note="temperature: the factor calibration applied to the run's sigma (summary.json; "
        "below 1, the raw sigma was too wide). coverage: share of labelled coordinates inside "
        f"the central interval (nominal 68% and 95%; within ±{TOLERANCE:g} points counts as "
        "well calibrated, below as over-confident, above as under-confident). NLL: mean "
        "negative log-likelihood per coordinate in nats (lower is better; it depends on the "
        "pixel scale, so compare runs on the same images only).",
    )


def _figure(section: Section, results: list[RunCalibration], out_dir: Path) -> None:
    from analysis.plots import reliability_plot

    path = reliability_plot(results, out_dir / "calibration_reliability.png")
    kinds = {item.kind for item in results}
    lines = []
    if "gaussian" in kinds:
        lines.append("a calibrated Gaussian run lies on the diagonal (RMS = sigma)")
    if "laplace" in kinds:
        lines.append(
            "a calibrated Laplace run on the dashed line RMS = √2·sigma (the RMS of "
            f"Laplace(0, sigma) is {RMS_PER_SIGMA['laplace']:.3g}·sigma)"
        )
    section.blocks.append(
        Figure(
            path,
            f"Reliability on validation: each run's labelled coordinates in {N_BINS} bins of "
            "equal count by predicted sigma; x: the bin's sigma (root mean square), y: the "
            f"observed RMS error per coordinate; log-log axes. {_sentence('; '.join(lines))} "
            "Above its line a run's errors are larger than its sigma says (over-confident), "
            "below smaller (under-confident).",
        )
    )


def _sentence(text: str) -> str:
    """`text` with its first letter upper-cased and a full stop."""
    return text[:1].upper() + text[1:] + "."
