"""`ens predict`: a run's predictions redone from a checkpoint (with or without flip TTA)."""

from __future__ import annotations

from pathlib import Path

from ensemble.errors import InputError
from ensemble.runs import BEST_CHECKPOINT, CONFIG, RunFolder
from models.augment import BatchPipeline
from models.checkpoint import load_checkpoint
from models.config import run_from_dict
from models.data import load_run_data
from models.predict import record_score, update_summary, write_predictions
from models.train import build_for_run, select_device


def predict_run(
    run_dir: str | Path,
    tta: bool | None = None,
    data_dir: str | Path | None = None,
    cache_root: str | Path | None = None,
    checkpoint: str | None = None,
    progress: bool = True,
) -> dict:
    """Rewrite val/test predictions, submission.csv, summary.json and the scores.csv row."""
    run_dir = Path(run_dir)
    values = RunFolder(run_dir.name, run_dir).config()
    if not values:
        raise InputError(run_dir / CONFIG, "run configuration not found")
    data_dir = Path(data_dir or values.get("data", ""))
    config = run_from_dict(values)
    device = select_device(config.device)
    checkpoint = checkpoint or BEST_CHECKPOINT
    state = load_checkpoint(RunFolder.at(run_dir).checkpoints / checkpoint, "cpu")
    data = load_run_data(
        data_dir, config.crop_size, config.val_fraction, config.split_seed, cache_root, progress
    )
    built = build_for_run(config, data.n_points, weights_path="")
    built.model.load_state_dict(state["model"])
    model = built.model.to(device)
    perm = state["flip_perm"]
    pipeline = BatchPipeline(tuple(state["norm_mean"]), tuple(state["norm_std"]), built.in_channels)
    use_tta = config.tta if tta is None else tta
    results = write_predictions(
        run_dir,
        data_dir.resolve(),
        data,
        model,
        pipeline,
        2 * config.batch_size,
        device,
        perm if use_tta else None,
        config.bf16,
        False,
    )
    update_summary(run_dir, {**results, "predicted_from": checkpoint})
    record_score(run_dir, results["val_score"])
    return results
