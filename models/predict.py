"""Prediction in original pixels (+ horizontal-flip TTA) and the prediction files of a run."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ensemble.competition.metric import points_score
from ensemble.competition.subsets import validation_subsets
from ensemble.competition.uncertainty import coverage, fit_temperature, nll
from ensemble.io.data_folder import DataFolder
from ensemble.io.predictions import save_predictions
from ensemble.io.run_folder import RunFolder
from ensemble.io.submission import gather_points, write_submission
from ensemble.io.test_points import read_test_points
from models.augment import BatchPipeline, unflip_points
from models.data import RunData, iterate_batches, mean_shape_for_bad_images
from models.heads import split_outputs
from models.val_metrics import masked_crop_mse, validation_metrics


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked, a no-op otherwise."""
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass(frozen=True)
class PredictOptions:
    """How a model predicts: batch size, device, flip TTA (with the flip permutation), speed."""

    batch_size: int
    device: torch.device
    flip_perm: torch.Tensor | None = None  # flip TTA when set
    bf16: bool = True
    channels_last: bool = False


@dataclass(frozen=True)
class SplitPredictions:
    """A model's predictions for rows of one split, normalised and in original pixels."""

    rows: np.ndarray
    normalised: np.ndarray  # (n, N, 2) normalised to the crop
    points: np.ndarray  # (n, N, 2) original pixels
    tta_spread: np.ndarray | None  # (n,) px^2 with flip TTA, see ensemble/io/predictions.py
    sigma: np.ndarray | None = None  # (n, N) original pixels, with an uncertainty head

    def calibrated(self, temperature: float) -> np.ndarray | None:
        """Sigma times the run's temperature (None without an uncertainty head)."""
        return None if self.sigma is None else self.sigma * temperature


@dataclass(frozen=True)
class Views:
    """A model's normalised predictions for some rows, with what the flip views add."""

    points: np.ndarray  # (n, N, 2): the mean of the views with flip TTA
    half: np.ndarray | None  # (n, N, 2): half the difference of the two views (TTA only)
    sigma: np.ndarray | None  # (n, N): predicted scale (uncertainty heads), views combined


@torch.no_grad()
def predict_views(
    model: nn.Module,
    pipeline: BatchPipeline,
    images: np.ndarray,
    rows: np.ndarray,
    n_points: int,
    options: PredictOptions,
) -> Views:
    """Normalised predictions for `rows` of a cache (and sigma from an uncertainty head).

    Flip TTA averages the prediction on the image with the prediction on its mirror image,
    mapped back (x -> -x and the flip permutation undone); the sigmas of the two views combine
    as sqrt((s1^2 + s2^2) / 2), the mirrored one permuted back.
    """
    model.eval()
    out, halves, sigmas = [], [], []
    device, flip_perm = options.device, options.flip_perm
    memory = torch.channels_last if options.channels_last else torch.contiguous_format
    for pixels, _ in iterate_batches(images, rows, options.batch_size, device):
        x = pipeline(pixels).contiguous(memory_format=memory)
        with autocast(device, options.bf16):
            predicted, log_sigma = split_outputs(model(x).float(), n_points)
            if flip_perm is not None:
                perm = flip_perm.to(device)
                mirrored, mirrored_log_sigma = split_outputs(model(x.flip(-1)).float(), n_points)
                mirrored = unflip_points(mirrored, perm)
                halves.append(((predicted - mirrored) / 2).cpu().numpy())
                predicted = (predicted + mirrored) / 2
                if log_sigma is not None:
                    variance = torch.exp(2 * log_sigma) + torch.exp(2 * mirrored_log_sigma[:, perm])
                    log_sigma = 0.5 * torch.log(variance / 2)
        out.append(predicted.cpu().numpy())
        if log_sigma is not None:
            sigmas.append(torch.exp(log_sigma).cpu().numpy())
    return Views(
        np.concatenate(out).astype(np.float64),
        np.concatenate(halves).astype(np.float64) if halves else None,
        np.concatenate(sigmas).astype(np.float64) if sigmas else None,
    )


def predict_split(
    model: nn.Module,
    pipeline: BatchPipeline,
    data: RunData,
    split: str,
    rows: np.ndarray,
    options: PredictOptions,
) -> SplitPredictions:
    """Predict `rows` of the "train" or "test" split; original pixels and the views' spread.

    The spread is, per image, the mean over its 2N values of the squared half difference of
    the two flip views in original pixels (px^2); None without TTA. Sigma (uncertainty heads)
    is scaled to original pixels, not yet calibrated.
    """
    images = (data.train if split == "train" else data.test).images
    views = predict_views(model, pipeline, images, rows, data.n_points, options)
    points = data.to_original(views.points, split, rows)
    spread = sigma = None
    if views.half is not None:
        shifted = data.to_original(views.points + views.half, split, rows)
        spread = ((shifted - points) ** 2).mean(axis=(1, 2))
    if views.sigma is not None:
        sigma = views.sigma * data.pixels_per_unit(split, rows)[:, None]
    return SplitPredictions(rows, views.points, points, spread, sigma)


def evaluate(
    model: nn.Module,
    pipeline: BatchPipeline,
    data: RunData,
    options: PredictOptions,
    subsets: np.ndarray | None = None,
) -> tuple[SplitPredictions, dict]:
    """The validation images' predictions and metrics: crop MSE, the leaderboard-comparable
    score (on `subsets`, else the file names' fixed 30-index subsets), RMSE/MAE/NME/PCK."""
    predicted = predict_split(model, pipeline, data, "train", data.val_indices, options)
    rows = predicted.rows
    truth = data.points[rows]
    if subsets is None:
        subsets = validation_subsets(data.train.file_names[rows], data.n_points)
    return predicted, {
        "val_mse_crop": masked_crop_mse(predicted.normalised, data.targets[rows], data.size),
        "val_score": points_score(predicted.points, truth, subsets),
        **validation_metrics(predicted.points, truth, data.layout),
    }


def write_predictions(
    run_dir: Path,
    data_dir: Path,
    data: RunData,
    model: nn.Module,
    pipeline: BatchPipeline,
    options: PredictOptions,
    kind: str = "none",
) -> dict:
    """val/test predictions, the submission; returns the val metrics and timings.

    With an uncertainty head (`kind` "gaussian" or "laplace") sigma is calibrated on the
    validation images (one temperature) and saved with the predictions."""
    start = time.perf_counter()
    val, metrics = evaluate(model, pipeline, data, options)
    calibration = calibrate(val, data.points[val.rows], kind)
    temperature = calibration.get("sigma_temperature", 1.0)
    val_names = data.train.file_names[val.rows]
    save_predictions(
        RunFolder.at(run_dir).val_predictions_path,
        val_names,
        val.points,
        val.tta_spread,
        val.calibrated(temperature),
    )
    test = predict_split(model, pipeline, data, "test", np.arange(len(data.test)), options)
    test_points = mean_shape_for_bad_images(data, test.points)
    save_predictions(
        RunFolder.at(run_dir).test_predictions_path,
        data.test.file_names,
        test_points,
        test.tta_spread,
        test.calibrated(temperature),
    )
    write_run_submission(run_dir, data_dir, data.n_points, test_points)
    return {
        **metrics,
        **calibration,
        "tta": options.flip_perm is not None,
        "predict_seconds": time.perf_counter() - start,
    }


def calibrate(val: SplitPredictions, truth: np.ndarray, kind: str) -> dict:
    """The run's sigma temperature (maximum likelihood on validation) and the calibrated
    coverage of the central 68% and 95% intervals; {} without an uncertainty head."""
    if val.sigma is None:
        return {}
    errors = val.points - truth
    temperature = fit_temperature(errors, val.sigma, kind)
    sigma = val.sigma * temperature
    return {
        "sigma_temperature": temperature,
        "val_sigma_coverage_68": coverage(errors, sigma, kind, 0.68),
        "val_sigma_coverage_95": coverage(errors, sigma, kind, 0.95),
        "val_sigma_nll": nll(errors, sigma, kind),
    }


def write_run_submission(
    run_dir: Path, data_dir: Path, n_points: int, test_points: np.ndarray
) -> None:
    """RUN/submission.csv: the points test_points.csv asks for, from all test predictions."""
    requests = read_test_points(  # ragged rows (Kaggle FKD): -1 padding, left empty
        DataFolder.at(data_dir).test_points, n_points=n_points, ragged=True
    )
    write_submission(
        RunFolder.at(run_dir).submission_path,
        requests.file_names,
        gather_points(test_points, requests.indices),
    )
