"""`ens predict`: a run's predictions redone from a checkpoint (with or without flip TTA)."""

from __future__ import annotations

from pathlib import Path

from ensemble.errors import InputError
from ensemble.io.run_folder import BEST_CHECKPOINT, RunFolder
from models.augment import BatchPipeline
from models.checkpoint import evaluated_weights, load_checkpoint
from models.config import RunConfig, run_from_dict
from models.data import RunData, load_run_data
from models.folds import combine_folds, fold_dirs
from models.predict import PredictOptions, write_predictions
from models.train import build_for_run, excluding, select_device


def predict_run(
    run_dir: str | Path,
    tta: bool | None = None,
    data_dir: str | Path | None = None,
    cache_root: str | Path | None = None,
    checkpoint: str | None = None,
    progress: bool = True,
) -> dict:
    """Rewrite val/test predictions, submission.csv, summary.json and the scores.csv row.

    With `folds = K` each fold's model predicts in its fold_<k>/ and the root is rebuilt.
    """
    run_dir = Path(run_dir)
    values = RunFolder.at(run_dir).config()
    if not values:
        raise InputError(RunFolder.at(run_dir).config_path, "run configuration not found")
    data_dir = Path(data_dir or values.get("data", "")).resolve()
    config = run_from_dict(values)
    checkpoint = checkpoint or BEST_CHECKPOINT
    data = load_run_data(
        data_dir,
        config.crop_size,
        config.val_fraction,
        config.split_seed,
        cache_root,
        progress,
        folds=config.folds,
    )
    data = excluding(config, data)
    if not config.folds:
        results = predict_model(run_dir, config, data, data_dir, tta, checkpoint)
    else:
        summaries = []
        for fold, fold_dir in enumerate(fold_dirs(run_dir, config.folds)):
            predict_model(fold_dir, config, data.for_fold(fold), data_dir, tta, checkpoint)
            summaries.append(RunFolder.at(fold_dir).summary())
        results = combine_folds(run_dir, data_dir, data, summaries, config.uncertainty)
        RunFolder.at(run_dir).update_summary({**results, "predicted_from": checkpoint})
    RunFolder.at(run_dir).record_score(results["val_score"])
    return results


def predict_model(
    model_dir: Path,
    config: RunConfig,
    data: RunData,
    data_dir: Path,
    tta: bool | None,
    checkpoint: str,
) -> dict:
    """One model's predictions from its checkpoint, into its folder (a run or a fold)."""
    device = select_device(config.device)
    state = load_checkpoint(RunFolder.at(model_dir).checkpoints / checkpoint, "cpu")
    built = build_for_run(config, data.n_points, weights_path="")
    built.model.load_state_dict(evaluated_weights(state))
    model = built.model.to(device)
    perm = state["flip_perm"]
    pipeline = BatchPipeline(tuple(state["norm_mean"]), tuple(state["norm_std"]), built.in_channels)
    use_tta = config.tta if tta is None else tta
    options = PredictOptions(
        2 * config.batch_size, device, perm if use_tta else None, config.bf16, False
    )
    results = write_predictions(
        model_dir, data_dir, data, model, pipeline, options, config.uncertainty
    )
    RunFolder.at(model_dir).update_summary({**results, "predicted_from": checkpoint})
    return results
