"""Prediction in original pixels (+ horizontal-flip TTA) and the prediction files of a run."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ensemble.atomic import atomic_open
from ensemble.formats import gather_points, read_test_points, write_submission
from ensemble.predictions import save_predictions
from ensemble.runs import SUBMISSION, SUMMARY, TEST_PREDICTIONS, VAL_PREDICTIONS
from ensemble.scores_table import upsert_score_row
from ensemble.scoring import validation_score
from models.augment import BatchPipeline, unflip_points
from models.data import RunData, iterate_batches, mean_shape_for_bad_images
from models.missing import masked_crop_mse, validation_metrics


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked, a no-op otherwise."""
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict_normalised(
    model: nn.Module,
    pipeline: BatchPipeline,
    images: np.ndarray,
    rows: np.ndarray,
    batch_size: int,
    device: torch.device,
    flip_perm: torch.Tensor | None = None,
    bf16: bool = True,
    channels_last: bool = False,
) -> np.ndarray:
    """Normalised predictions (n, N, 2) for `rows` of a cache; with `flip_perm`, flip TTA.

    Flip TTA averages the prediction on the image with the prediction on its mirror image,
    mapped back (x -> -x and the flip permutation undone).
    """
    model.eval()
    out = []
    memory = torch.channels_last if channels_last else torch.contiguous_format
    for pixels, _ in iterate_batches(images, rows, batch_size, device):
        x = pipeline(pixels).contiguous(memory_format=memory)
        with autocast(device, bf16):
            predicted = model(x).float().view(len(x), -1, 2)
            if flip_perm is not None:
                mirrored = model(x.flip(-1)).float().view(len(x), -1, 2)
                predicted = (predicted + unflip_points(mirrored, flip_perm.to(device))) / 2
        out.append(predicted.cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def write_predictions(
    run_dir: Path,
    data_dir: Path,
    data: RunData,
    model: nn.Module,
    pipeline: BatchPipeline,
    batch_size: int,
    device: torch.device,
    flip_perm: torch.Tensor | None,
    bf16: bool,
    channels_last: bool,
) -> dict:
    """val/test predictions, the submission; returns val score, crop MSE and timings."""
    start = time.perf_counter()
    options = dict(bf16=bf16, channels_last=channels_last, flip_perm=flip_perm)
    val_rows = data.val_indices
    val_norm = predict_normalised(
        model, pipeline, data.train.images, val_rows, batch_size, device, **options
    )
    val_points = data.to_original(val_norm, "train", val_rows)
    val_names = data.train.file_names[val_rows]
    score = validation_score(val_names, val_points, data.points[val_rows])
    crop_mse = masked_crop_mse(val_norm, data.targets[val_rows], data.size)
    save_predictions(run_dir / VAL_PREDICTIONS, val_names, val_points)
    test_rows = np.arange(len(data.test))
    test_norm = predict_normalised(
        model, pipeline, data.test.images, test_rows, batch_size, device, **options
    )
    test_points = mean_shape_for_bad_images(data, data.to_original(test_norm, "test", test_rows))
    save_predictions(run_dir / TEST_PREDICTIONS, data.test.file_names, test_points)
    requests = read_test_points(  # ragged rows (Kaggle FKD): -1 padding, left empty
        data_dir / "test" / "test_points.csv", n_points=data.n_points, ragged=True
    )
    write_submission(
        run_dir / SUBMISSION, requests.file_names, gather_points(test_points, requests.indices)
    )
    return {
        "val_score": score,
        "val_mse_crop": crop_mse,
        **validation_metrics(val_points, data.points[val_rows]),
        "tta": flip_perm is not None,
        "predict_seconds": time.perf_counter() - start,
    }


def record_score(run_dir: Path, score: float) -> None:
    """Add or replace this run's row of RUNS/scores.csv."""
    upsert_score_row(
        run_dir.parent / "scores.csv",
        {"run": run_dir.name, "submission": f"{run_dir.name}/{SUBMISSION}", "val": score},
    )


def update_summary(run_dir: Path, values: dict) -> None:
    """Merge values into summary.json (written atomically)."""
    path = run_dir / SUMMARY
    summary = json.loads(path.read_text()) if path.is_file() else {}
    summary.update(values)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
