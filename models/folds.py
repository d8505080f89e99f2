"""K-fold runs: one model per fold in RUN/fold_<k>/, and at the run's root the out-of-fold
validation predictions of every train image and the fold models' mean test predictions."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

from ensemble.competition.metric import validation_score
from ensemble.competition.uncertainty import coverage, nll
from ensemble.errors import InputError
from ensemble.io.checks import row_index
from ensemble.io.predictions import Predictions, load_predictions, save_predictions
from ensemble.io.run_folder import RunFolder
from models.config import RunConfig, to_toml
from models.data import RunData
from models.predict import write_run_submission
from models.val_metrics import validation_metrics

FOLD_PREFIX = "fold_"


def fold_dirs(run_dir: Path, folds: int) -> list[Path]:
    """RUN/fold_0 ... RUN/fold_<K-1>."""
    return [run_dir / f"{FOLD_PREFIX}{k}" for k in range(folds)]


def has_checkpoint(run_dir: Path, folds: int) -> bool:
    """True when the run (or, with folds, any of its folds) has a last.pt to resume from."""
    dirs = fold_dirs(run_dir, folds) if folds else [run_dir]
    return any(RunFolder.at(path).last_checkpoint.is_file() for path in dirs)


def fold_is_current(fold_dir: Path, data_dir: Path, config: RunConfig) -> bool:
    """True when the fold finished (summary.json) with the same data folder and configuration."""
    if not RunFolder.at(fold_dir).finished:
        return False
    try:
        saved = RunFolder.at(fold_dir).config()
    except InputError:
        return False
    return saved == tomllib.loads(to_toml({"data": str(data_dir), **config.to_dict()}))


def out_of_fold(data: RunData, folds: list[Predictions], fold_paths: list[Path]) -> Predictions:
    """The folds' validation predictions as one set, in train order; each image exactly once,
    from the fold that held it out."""
    position = row_index(data.train.file_names)
    rows, seen = [], np.zeros(len(position), dtype=bool)
    for fold, (item, path) in enumerate(zip(folds, fold_paths, strict=True)):
        fold_rows = np.array([position[name] for name in item.file_names], dtype=np.int64)
        if seen[fold_rows].any() or (data.fold_ids[fold_rows] != fold).any():
            raise InputError(path, f"fold {fold} predicts images it did not hold out")
        seen[fold_rows] = True
        rows.append(fold_rows)
    kept = data.train.valid if data.excluded is None else data.train.valid & ~data.excluded
    if not np.array_equal(seen, kept):
        raise InputError(fold_paths[0].parent, "the folds' validation images do not cover train")
    order = np.argsort(np.concatenate(rows), kind="stable")
    spreads, sigmas = [item.tta_spread for item in folds], [item.sigma for item in folds]
    return Predictions(
        np.concatenate([item.file_names for item in folds])[order],
        np.concatenate([item.points for item in folds])[order],
        None if any(s is None for s in spreads) else np.concatenate(spreads)[order],
        None if any(s is None for s in sigmas) else np.concatenate(sigmas)[order],
    )


def fold_mean(folds: list[Predictions], fold_paths: list[Path]) -> Predictions:
    """The mean of the fold models' test predictions (and of their flip-view spreads); their
    sigmas combine as sqrt(mean sigma^2), the typical scale of one fold model."""
    for item, path in zip(folds[1:], fold_paths[1:], strict=True):
        if not np.array_equal(item.file_names, folds[0].file_names):
            raise InputError(path, "test images differ from fold 0's")
    spreads, sigmas = [item.tta_spread for item in folds], [item.sigma for item in folds]
    return Predictions(
        folds[0].file_names,
        np.mean([item.points.astype(np.float64) for item in folds], axis=0),
        None if any(s is None for s in spreads) else np.mean(spreads, axis=0),
        None if any(s is None for s in sigmas) else np.sqrt(np.mean(np.square(sigmas), axis=0)),
    )


def combine_folds(
    run_dir: Path, data_dir: Path, data: RunData, fold_summaries: list[dict], kind: str = "none"
) -> dict:
    """Write the run's root predictions and submission from its folds; the run's summary.

    With an uncertainty head (`kind`) each fold's sigmas are calibrated on its own held-out
    images; the summary gives the out-of-fold coverage of the 68% and 95% intervals."""
    paths = fold_dirs(run_dir, len(fold_summaries))
    val_paths = [RunFolder.at(path).val_predictions_path for path in paths]
    oof = out_of_fold(data, [load_predictions(p) for p in val_paths], val_paths)
    test_paths = [RunFolder.at(path).test_predictions_path for path in paths]
    test = fold_mean([load_predictions(p) for p in test_paths], test_paths)
    save_predictions(
        RunFolder.at(run_dir).val_predictions_path,
        oof.file_names,
        oof.points,
        oof.tta_spread,
        oof.sigma,
    )
    save_predictions(
        RunFolder.at(run_dir).test_predictions_path,
        test.file_names,
        test.points,
        test.tta_spread,
        test.sigma,
    )
    write_run_submission(run_dir, data_dir, data.n_points, test.points)
    position = row_index(data.train.file_names)
    truth = data.points[[position[name] for name in oof.file_names]]
    n_val = np.array([s["n_val"] for s in fold_summaries], dtype=np.float64)
    first = fold_summaries[0]

    def weighted(key: str) -> float:  # per-image means of the folds -> the out-of-fold mean
        return float(np.dot(n_val, [s[key] for s in fold_summaries]) / n_val.sum())

    sigma = {}
    if oof.sigma is not None:
        errors = oof.points - truth
        sigma = {
            "fold_sigma_temperatures": [s["sigma_temperature"] for s in fold_summaries],
            "val_sigma_coverage_68": coverage(errors, oof.sigma, kind, 0.68),
            "val_sigma_coverage_95": coverage(errors, oof.sigma, kind, 0.95),
            "val_sigma_nll": nll(errors, oof.sigma, kind),
        }
    return {
        **sigma,
        "run": run_dir.name,
        "arch": first["arch"],
        "params": first["params"],
        "trainable_params": first["trainable_params"],
        "crop_size": first["crop_size"],
        "n_points": first["n_points"],
        "folds": len(fold_summaries),
        "fold_val_scores": [s["val_score"] for s in fold_summaries],
        "fold_best_epochs": [s["best_epoch"] for s in fold_summaries],
        "n_train": len(oof.file_names),
        "n_val": len(oof.file_names),
        "n_test": first["n_test"],
        "val_score": validation_score(oof.file_names, oof.points, truth),
        "val_mse_crop": weighted("val_mse_crop"),
        "baseline_val_score": weighted("baseline_val_score"),
        **validation_metrics(oof.points, truth, data.layout),
        "tta": first["tta"],
        "train_seconds": sum(s["train_seconds"] for s in fold_summaries),
        "device": first["device"],
        "versions": first["versions"],
        "command": first["command"],
        "rollbacks": [r for s in fold_summaries for r in s["rollbacks"]],
        "spikes": [r for s in fold_summaries for r in s["spikes"]],
        "warnings": [f"fold {k}: {w}" for k, s in enumerate(fold_summaries) for w in s["warnings"]],
        "bad_images": first["bad_images"],
        "world_size": first["world_size"],
    }
