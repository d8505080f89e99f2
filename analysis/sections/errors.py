"""Report section 4: where the error lives (per-image tails, worst images) and suspect labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.document import Figure, Paragraph, Section, Table, fmt
from analysis.image_errors import PERCENTILES, WORST_PERCENT, Tail, image_mse, tail
from analysis.inputs import runs_and_data
from analysis.sections.registry import DEFAULTS
from ensemble.competition.landmark_metrics import (
    BOUNDING_BOX,
    INTER_OCULAR,
    Eyes,
    layout_eyes,
    normalisation,
    per_image_nme,
)
from ensemble.competition.layout import dataset_layout
from ensemble.errors import InputError
from ensemble.io.data_folder import DataFolder

TITLE = "4. Where the error lives (per-image errors, suspect labels)"
DEFAULT_GALLERY = DEFAULTS["gallery"]
_TOP_ROWS = 15
BLEND = "blend (equal weights)"


NME_NOTES = {
    INTER_OCULAR: "NME: mean point distance / inter-ocular distance of the layout's eyes.",
    BOUNDING_BOX: "NME: mean point distance / sqrt(w·h) of the true points' bounding box (the "
    "layout names no eyes).",
}


@dataclass(frozen=True)
class SplitErrors:
    """Per-image errors of the runs (and their blend) on one split."""

    split: str  # "validation" or "test"
    file_names: np.ndarray
    image_dir: Path
    run_names: list[str]
    predictions: np.ndarray  # (R, n, N, 2)
    truth: np.ndarray  # (n, N, 2)
    mse: np.ndarray  # (R, n) per-image MSE of each run
    tails: list[Tail]  # each run, then the blend when R > 1
    blend_mse: np.ndarray | None = None  # (n,) per-image MSE of the blend when R > 1
    nme_norm: str = INTER_OCULAR  # what the per-image NME divides by

    def tail_mse(self) -> list[np.ndarray]:
        """The per-image MSEs behind each of `tails`, in the same order."""
        return [*self.mse, *([] if self.blend_mse is None else [self.blend_mse])]

    @property
    def worst(self) -> np.ndarray:
        """Rows by the runs' mean per-image MSE, worst first (images without labels last)."""
        mean = self.mse.mean(axis=0)
        return np.argsort(-np.where(np.isfinite(mean), mean, -np.inf), kind="stable")


def split_errors(
    split: str,
    file_names: np.ndarray,
    image_dir: Path,
    run_names: list[str],
    predictions: np.ndarray,
    truth: np.ndarray,
    eyes: Eyes | None,
) -> SplitErrors:
    """Per-image MSE and NME (by the layout's `eyes`, else the bounding box) of every run and of
    the blend, and their tails."""
    mse = np.stack([image_mse(p, truth) for p in predictions])
    tails = [
        tail(name, mse[r], per_image_nme(predictions[r], truth, eyes))
        for r, name in enumerate(run_names)
    ]
    blend_mse = None
    if len(run_names) > 1:
        blend = predictions.mean(axis=0)
        blend_mse = image_mse(blend, truth)
        tails.append(tail(BLEND, blend_mse, per_image_nme(blend, truth, eyes)))
    return SplitErrors(
        split,
        file_names,
        image_dir,
        run_names,
        predictions,
        truth,
        mse,
        tails,
        blend_mse,
        normalisation(eyes),
    )


def pct(share: float) -> str:
    """A share as a percentage a tired reader can take in: 72%, 4.5%, 0.4%, 0.0075%."""
    if not np.isfinite(share):
        return "n/a"
    value = 100 * share
    if value >= 10:
        return f"{value:.0f}%"
    return f"{value:.1f}%" if value >= 1 else f"{value:.2g}%"


def tail_sentence(item: Tail, split: str) -> str:
    """'3 images (0.4%) carry 72% of resnet18's validation MSE (...)' or the worst-1% line."""
    count = len(item.outliers)
    if count:
        plural = count > 1
        return (
            f"{count} image{'s' if plural else ''} ({pct(count / item.n_images)}) "
            f"carr{'y' if plural else 'ies'} {pct(item.outlier_share)} of {item.name}'s {split} "
            f"MSE: {fmt(item.score)} px² in all, {fmt(item.score_without_outliers)} px² without "
            f"{'them' if plural else 'it'}."
        )
    worst = item.worst_count[1]
    return (
        f"No outlier image in {item.name}'s {split} MSE; the worst 1% ({worst} image"
        f"{'s' if worst > 1 else ''}) carr{'y' if worst > 1 else 'ies'} "
        f"{pct(item.worst_share[1])} of it: {fmt(item.score)} px² in all, "
        f"{fmt(item.score_without_worst)} px² without {'them' if worst > 1 else 'it'}."
    )


def _test_split(runs, data_dir: Path) -> SplitErrors | str:
    """The test split's errors where the demo truth and test predictions exist, else why not."""
    from ensemble.io.aligned_predictions import align, labels_for
    from ensemble.io.predictions import load_predictions

    truth_path = DataFolder.at(data_dir).test_landmarks
    if not truth_path.is_file():
        return f"no test truth ({truth_path} exists for demo data only)"
    with_test = [run for run in runs if run.test_predictions_path.is_file()]
    if not with_test:
        return "no run has test_predictions.npz"
    paths = [run.test_predictions_path for run in with_test]
    names, aligned = align([load_predictions(path) for path in paths], paths)
    if not len(names):
        return "the runs share no test image"
    truth = labels_for(truth_path, names)
    predictions = np.stack([item.points for item in aligned])
    if truth.shape[1] != predictions.shape[2]:
        raise InputError(
            with_test[0].test_predictions_path,
            f"{predictions.shape[2]} points per image, {truth_path} has {truth.shape[1]}",
        )
    return split_errors(
        "test",
        names,
        DataFolder.at(data_dir).images("test"),
        [run.name for run in with_test],
        predictions,
        truth,
        layout_eyes(dataset_layout(data_dir, truth.shape[1])),
    )


def errors_section(
    runs_dir: Path | None,
    data_dir: Path | None,
    out_dir: Path | None = None,
    n_gallery: int = DEFAULT_GALLERY,
    shown_dir: Path | None = None,
) -> Section:
    """Per-image error tails on validation (and test with the demo truth) and suspect labels.

    With `out_dir`, also writes out_dir/suspect_labels.csv and the gallery PNGs; the text names
    them in `shown_dir` when out_dir is a staging folder that becomes it.
    """
    from analysis.suspect_labels import find_suspects
    from ensemble.io.aligned_predictions import load_validation

    section = Section("errors", TITLE)
    found = runs_and_data(section, runs_dir, data_dir)
    if found is None:
        return section
    runs, data_dir = found
    validation = load_validation(runs, data_dir)
    names, predictions, truth = validation.names, validation.predictions, validation.truth
    tta_spread = validation.aligned[0].tta_spread if len(runs) == 1 else None
    run_names = [run.name for run in runs]
    eyes = layout_eyes(dataset_layout(data_dir, truth.shape[1]))
    images = DataFolder.at(data_dir).images("train")
    val = split_errors("validation", names, images, run_names, predictions, truth, eyes)
    test = _test_split(runs, data_dir)
    suspects = find_suspects(names, predictions, truth, tta_spread)

    best_run = min(range(len(run_names)), key=lambda r: val.tails[r].score)
    best = val.tails[best_run]
    carried = _suspect_shares(val, suspects.suspect)
    if suspects.count:
        share = carried[best_run]
        section.headline = (
            f"{suspects.count} suspect label{'' if suspects.count == 1 else 's'} "
            f"({pct(suspects.count / len(names))} of {len(names):,} validation images) carr"
            f"{'ies' if suspects.count == 1 else 'y'} {pct(share['share'])} of {best.name}'s "
            f"MSE: {fmt(best.score)} px² in all, {fmt(share['score_without'])} px² without them"
        )
    else:
        section.headline = (
            f"{tail_sentence(best, 'validation').rstrip('.')}; no suspect label among "
            f"{len(names):,} validation images"
        )
    _tail_blocks(section, val, n_runs=len(run_names))
    if isinstance(test, SplitErrors):
        _tail_blocks(section, test, n_runs=len(test.run_names))
    else:
        section.blocks.append(Paragraph(f"Test split: not analysed: {test}."))
    csv_path = _suspect_blocks(
        section, suspects, data_dir, out_dir, val, carried, shown_dir or out_dir
    )
    if out_dir is not None:
        _galleries(section, val, test, suspects, out_dir, n_gallery)
    section.summary = {
        "definition": "per-image MSE over all 2N values (missing labels left out); score = mean "
        "per-image MSE",
        "validation": _split_summary(val, n_gallery),
        "test": _split_summary(test, n_gallery) if isinstance(test, SplitErrors) else None,
        "test_missing": None if isinstance(test, SplitErrors) else test,
        "suspect_labels": {
            **_suspect_summary(suspects, csv_path, data_dir),
            "carried": {item["name"]: item for item in carried},
        },
    }
    return section


def _tail_blocks(section: Section, errors: SplitErrors, n_runs: int) -> None:
    split = errors.split
    lead = (
        ""
        if split == "validation"
        else "Test split (the demo's hidden truth, test/landmarks.csv; test_predictions.npz):\n"
    )
    sentences = [tail_sentence(item, split) for item in errors.tails]
    section.blocks.append(Paragraph(lead + "\n".join(sentences)))
    headers = ["run", "images", "mean MSE"]
    headers += [f"P{p}" for p in PERCENTILES]
    headers += [f"worst {p}% share" for p in WORST_PERCENT]
    headers += ["without worst 1%", "outliers"]
    rows = []
    for item in errors.tails:
        rows.append(
            [
                item.name,
                f"{item.n_images:,}",
                fmt(item.score),
                *[fmt(v) for v in item.mse_percentiles],
                *[f"{pct(item.worst_share[p])} ({item.worst_count[p]})" for p in WORST_PERCENT],
                fmt(item.score_without_worst),
                f"{len(item.outliers)} ({pct(item.outlier_share)})",
            ]
        )
    note = ""
    if split == "validation":
        note = (
            "mean MSE: the mean of the per-image MSEs over all 2N values (the leaderboard "
            "score's expectation). worst p% share: the part of the summed MSE from the "
            "ceil(p·n/100) worst images (their count in brackets). outliers: images whose "
            "robust z of log(MSE) is significantly high (Benjamini-Hochberg, 5% false discovery "
            "rate), with their share of the MSE."
        )
    section.blocks.append(
        Table(
            f"Per-image MSE (px²) on {len(errors.file_names):,} {split} images, {n_runs} run(s)",
            headers,
            rows,
            note=note,
        )
    )
    if all(item.nme_percentiles is None for item in errors.tails):
        return  # no image has a defined normalising size
    nme_rows = [
        [
            item.name,
            *(["n/a"] * 3 if item.nme_percentiles is None else map(fmt, item.nme_percentiles)),
        ]
        for item in errors.tails
    ]
    section.blocks.append(
        Table(
            f"Per-image NME on {split}",
            ["run", *[f"P{p}" for p in PERCENTILES]],
            nme_rows,
            note=NME_NOTES[errors.nme_norm] if split == "validation" else "",
        )
    )


def _suspect_shares(errors: SplitErrors, suspect: np.ndarray) -> list[dict]:
    """Per tail (runs, blend): the suspect images' share of the MSE and the score without them."""
    out = []
    for item, mse in zip(errors.tails, errors.tail_mse(), strict=True):
        finite = np.isfinite(mse)
        kept = finite & ~suspect
        total = mse[finite].sum()
        out.append(
            {
                "name": item.name,
                "share": float(mse[finite & suspect].sum() / total) if total > 0 else np.nan,
                "score_without": float(mse[kept].mean()) if kept.any() else np.nan,
            }
        )
    return out


def _suspect_blocks(
    section: Section,
    suspects,
    data_dir: Path,
    out_dir: Path | None,
    val: SplitErrors,
    carried: list[dict],
    shown_dir: Path | None,
) -> Path | None:
    from analysis.suspect_labels import CSV_NAME, write_suspect_csv

    count = suspects.count
    lines = [
        f"Suspect labels: {count} of {len(suspects.file_names):,} validation images "
        f"({pct(count / len(suspects.file_names))}) have a label the {suspects.n_runs} run(s) "
        "agree against."
    ]
    if count:
        lines += [
            f"They carry {pct(item['share'])} of {item['name']}'s validation MSE: "
            f"{fmt(whole.score)} px² in all, {fmt(item['score_without'])} px² without them."
            for item, whole in zip(carried, val.tails, strict=True)
        ]
    lines.append(f"Rule: {suspects.rule_text()}")
    section.blocks.append(Paragraph("\n".join(lines)))
    order = suspects.order
    shown = order[: max(min(count, _TOP_ROWS), min(5, len(order)))]
    section.blocks.append(
        Table(
            "Labels ranked by suspicion (highest scores)",
            ["file_name", "label_error (px²)", "spread (px²)", "score", "suspect"],
            [
                [
                    str(suspects.file_names[row]),
                    fmt(suspects.label_error[row]),
                    fmt(suspects.spread[row]),
                    fmt(suspects.score[row], 3),
                    str(int(suspects.suspect[row])),
                ]
                for row in shown
            ],
        )
    )
    planted = _planted(suspects, data_dir)
    if planted is not None:
        section.blocks.append(Paragraph(planted["text"]))
    if out_dir is None:
        section.blocks.append(
            Paragraph("Give -o DIR to write DIR/suspect_labels.csv and the galleries.")
        )
        return None
    write_suspect_csv(Path(out_dir) / CSV_NAME, suspects)
    path = Path(shown_dir or out_dir) / CSV_NAME
    section.blocks.append(
        Paragraph(
            f'Wrote {path} ({len(order):,} rows, ranked by score; `exclude = "{path}"` in a '
            "runs file leaves the suspect = 1 rows out of training)."
        )
    )
    return path


def _planted(suspects, data_dir: Path) -> dict | None:
    """Demo data only: precision and recall against train/label_errors.csv."""
    from analysis.suspect_labels import read_planted

    path = DataFolder.at(data_dir).label_errors
    if not path.is_file():
        return None
    names = [str(name) for name in suspects.file_names]
    planted = read_planted(path) & set(names)
    flagged = {name for name, flag in zip(names, suspects.suspect, strict=True) if flag}
    found = len(planted & flagged)
    precision = found / len(flagged) if flagged else float("nan")
    recall = found / len(planted) if planted else float("nan")
    ranks = [rank + 1 for rank, row in enumerate(suspects.order) if names[row] in planted]
    shown = ", ".join(map(str, ranks[:20])) + (", ..." if len(ranks) > 20 else "")
    text = (
        f"Demo check against {path}: {len(planted)} planted label error(s) among these "
        f"{len(names):,} images; {found} flagged (recall {fmt(recall, 3)}); {found} of the "
        f"{len(flagged)} flagged are planted (precision {fmt(precision, 3)})."
        + (f" Their ranks by score: {shown}." if ranks else "")
    )
    return {
        "file": str(path),
        "planted": len(planted),
        "flagged": len(flagged),
        "found": found,
        "precision": precision,
        "recall": recall,
        "ranks": ranks,
        "text": text,
    }


def _galleries(
    section: Section, val: SplitErrors, test, suspects, out_dir: Path, n_gallery: int
) -> None:
    from analysis.galleries import gallery

    for errors in (val, test):
        if not isinstance(errors, SplitErrors):
            continue
        rows = errors.worst[:n_gallery]
        mean = errors.mse.mean(axis=0)
        short = "val" if errors.split == "validation" else errors.split
        path = gallery(
            errors.image_dir,
            [str(errors.file_names[row]) for row in rows],
            errors.truth[rows],
            errors.predictions[:, rows],
            errors.run_names,
            [f"mean MSE {fmt(mean[row])} px²" for row in rows],
            f"The {len(rows)} worst {errors.split} images (runs' mean per-image MSE): "
            "label and each run's prediction",
            Path(out_dir) / f"errors_worst_{short}.png",
        )
        section.blocks.append(
            Figure(
                path,
                f"The {len(rows)} {errors.split} images with the largest mean per-image MSE "
                "over the runs, worst first: the label in red, each run's prediction in its "
                "colour, on the image's real pixels.",
            )
        )
    flagged = suspects.flagged[:n_gallery]
    if len(flagged):
        title = f"The {len(flagged)} most suspect labels (of {suspects.count} flagged)"
    else:
        flagged = suspects.order[: min(4, len(suspects.order))]
        title = f"No suspect label: the {len(flagged)} highest scores, for comparison"
    path = gallery(
        val.image_dir,
        [str(suspects.file_names[row]) for row in flagged],
        val.truth[flagged],
        val.predictions[:, flagged],
        val.run_names,
        [
            f"label_error {fmt(suspects.label_error[row])} px², spread "
            f"{fmt(suspects.spread[row])} px², score {fmt(suspects.score[row], 3)}"
            for row in flagged
        ],
        title,
        Path(out_dir) / "suspect_labels.png",
    )
    section.blocks.append(
        Figure(
            path,
            "Suspect labels, most suspect first: the label in red, each run's prediction in its "
            "colour. A suspect label sits away from where the runs agree the face is.",
        )
    )


def _split_summary(errors: SplitErrors, n_gallery: int) -> dict:
    mean = errors.mse.mean(axis=0)
    return {
        "n_images": len(errors.file_names),
        "runs": {item.name: item.as_dict() for item in errors.tails},
        "worst_images": [
            {
                "file_name": str(errors.file_names[row]),
                "mean_mse": float(mean[row]),
                "mse": {name: float(errors.mse[r, row]) for r, name in enumerate(errors.run_names)},
            }
            for row in errors.worst[:n_gallery]
        ],
    }


def _suspect_summary(suspects, csv_path: Path | None, data_dir: Path) -> dict:
    planted = _planted(suspects, data_dir)
    return {
        "n_images": len(suspects.file_names),
        "n_runs": suspects.n_runs,
        "n_suspect": suspects.count,
        "fdr": suspects.fdr,
        "score_cut": suspects.z_cut,
        "consensus": "run" if suspects.n_runs == 1 else "median",
        "spread_source": suspects.spread_source,
        "slope": suspects.slope,
        "n_fit": suspects.n_fit,
        "rule": suspects.rule_text(),
        "csv": None if csv_path is None else str(csv_path),
        "suspect_files": [str(suspects.file_names[row]) for row in suspects.flagged],
        "planted": None if planted is None else {k: v for k, v in planted.items() if k != "text"},
    }
