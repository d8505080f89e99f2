"""Missing labels (NaN) in training: masked losses, augmentation, label checks, val scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ensemble.competition.baseline import mean_shape
from ensemble.competition.metric import validation_score
from ensemble.competition.subsets import validation_subsets
from ensemble.errors import InputError
from models.augment import BatchPipeline, affine_matrices, warp_points
from models.config import AugmentConfig, RunConfig
from models.labels import check_labels
from models.losses import LOSSES
from models.val_metrics import masked_crop_mse

BETA, WING_W, WING_EPS = 0.02, 0.05, 0.01


def hand_penalty(name: str, error: np.ndarray) -> np.ndarray:
    """Each loss's element-wise closed form, written out in numpy."""
    size = np.abs(error)
    if name == "mse":
        return error**2
    if name == "l1":
        return size
    if name == "smooth_l1":
        return np.where(size < BETA, 0.5 * error**2 / BETA, size - 0.5 * BETA)
    offset = WING_W - WING_W * math.log(1 + WING_W / WING_EPS)
    return np.where(size < WING_W, WING_W * np.log(1 + size / WING_EPS), size - offset)


@pytest.mark.parametrize("name", ["mse", "l1", "smooth_l1", "wing"])
def test_masked_loss_equals_the_hand_computation_over_present_values(name: str) -> None:
    rng = np.random.default_rng(1)
    target = rng.uniform(-0.5, 0.5, (4, 15, 2))
    predicted = target + rng.normal(0, 0.05, target.shape)
    target[0, 3:] = np.nan  # a partly labelled row
    target[2, [2, 7, 9]] = np.nan
    present = ~np.isnan(target)
    expected = hand_penalty(name, predicted[present] - target[present]).sum() / present.sum()
    config = RunConfig(
        name="r", arch="a", smooth_l1_beta=BETA, wing_w=WING_W, wing_epsilon=WING_EPS
    )
    pred_t = torch.tensor(predicted, requires_grad=True)
    loss = LOSSES[name](config)(pred_t, torch.tensor(target))
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    assert torch.isfinite(pred_t.grad).all()
    assert (pred_t.grad[torch.tensor(~present)] == 0).all()  # a missing label pulls nowhere
    assert (pred_t.grad[torch.tensor(present)] != 0).any()
    full = torch.tensor(np.nan_to_num(target, nan=0.25))
    unmasked = hand_penalty(name, predicted - full.numpy()).mean()
    assert LOSSES[name](config)(torch.tensor(predicted), full).item() == pytest.approx(unmasked)


def test_rotation_moves_present_points_exactly_and_keeps_missing_ones_missing() -> None:
    angle = torch.tensor([math.radians(30.0), math.radians(-17.0)], dtype=torch.float64)
    forward = affine_matrices(
        angle,
        torch.ones(2, dtype=torch.float64),
        torch.zeros(2, 2, dtype=torch.float64),
        torch.zeros(2, dtype=torch.bool),
    )
    points = np.array([[[0.1, -0.2], [np.nan, 0.3], [-0.4, 0.25]], [[0.3, 0.1]] * 3])
    points[1, 2] = np.nan
    moved = warp_points(torch.tensor(points), forward).numpy()
    for row, theta in enumerate(angle.tolist()):
        rotation = np.array(
            [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]
        )
        for point in range(3):
            if np.isnan(points[row, point]).any():
                assert np.isnan(moved[row, point]).all()  # half-missing becomes fully missing
            else:
                np.testing.assert_allclose(moved[row, point], rotation @ points[row, point])


def test_augmented_batch_keeps_nan_points_nan_and_leaves_the_others_untouched() -> None:
    perm = torch.tensor([1, 0, 4, 5, 2, 3, 8, 9, 6, 7, 10, 12, 11, 13, 14])  # the FKD twins
    config = AugmentConfig(
        flip=True,
        rotation=30.0,
        scale=0.1,
        shift=0.05,
        brightness=0.2,
        contrast=0.2,
        saturation=0.0,
    )
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (16, 24, 24, 3), dtype=np.uint8))
    full = rng.uniform(-0.4, 0.4, (16, 15, 2)).astype(np.float32)
    missing = np.zeros((16, 15), dtype=bool)
    missing[:, [2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13]] = rng.random((16, 11)) < 0.7
    missing[:, 0] = True  # left eye missing, right eye present: a flip is visible in the mask
    with_nan = full.copy()
    with_nan[missing] = np.nan

    def augment(targets: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        pipeline = BatchPipeline((0.5,), (0.25,), 1, config, perm, seed=5)
        x, y = pipeline.train_batch(images, torch.from_numpy(targets))
        return x, y.numpy()

    x_nan, y_nan = augment(with_nan)
    x_full, y_full = augment(full)
    torch.testing.assert_close(x_nan, x_full)  # labels never touch the image
    now_missing = np.isnan(y_nan).all(axis=2)
    assert (np.isnan(y_nan).any(axis=2) == now_missing).all()
    flipped = now_missing[:, 1]  # the left eye's label moved to the right eye's slot
    assert flipped.any() and (~flipped).any()
    inverse = np.argsort(perm.numpy())
    expected_mask = np.where(flipped[:, None], missing[:, inverse], missing)
    np.testing.assert_array_equal(now_missing, expected_mask)
    np.testing.assert_array_equal(y_nan[~now_missing], y_full[~now_missing])
    assert np.isfinite(y_full).all()


def test_label_checks_reject_rows_points_and_half_points_without_labels(tmp_path) -> None:
    path = tmp_path / "landmarks.csv"
    points = np.random.default_rng(0).uniform(10, 80, (6, 4, 2))
    points[1, 2:] = np.nan
    check_labels(path, points, np.arange(6))  # partial rows are fine
    empty = points.copy()
    empty[3] = np.nan
    with pytest.raises(InputError, match=r"line 5.*no landmark labelled in this row"):
        check_labels(path, empty, np.arange(6))
    half = points.copy()
    half[4, 1, 1] = np.nan
    with pytest.raises(InputError, match=r"line 6.*Point_M1_X is set but its other"):
        check_labels(path, half, np.arange(6))
    lonely = points.copy()
    lonely[:5, 3] = np.nan  # point 3 labelled only in row 5, which is a validation row
    with pytest.raises(InputError, match="Point_M3 has no label among the 5 training images"):
        check_labels(path, lonely, np.arange(5))
    check_labels(path, lonely, np.arange(6))


def test_mean_shape_and_scores_leave_missing_values_out() -> None:
    rng = np.random.default_rng(3)
    truth = rng.uniform(0, 96, (12, 15, 2))
    predicted = truth + rng.normal(0, 2, truth.shape)
    names = np.array([f"{i}.png" for i in range(12)])
    complete = validation_subsets(names, 15)
    direct = np.mean(
        [((predicted[i, c] - truth[i, c]) ** 2).mean() for i, c in enumerate(complete)]
    )
    assert validation_score(names, predicted, truth) == pytest.approx(direct)
    truth[::2, 4:] = np.nan
    truth[1, :, :] = np.nan
    truth[1, 9] = [40.0, 50.0]
    np.testing.assert_allclose(mean_shape(truth)[5], truth[1::2, 5][1:].mean(axis=0))
    np.testing.assert_allclose(mean_shape(truth)[9], truth[1::2, 9].mean(axis=0))
    subsets = validation_subsets(names, 15)
    per_row = []
    for row in range(12):
        values = [
            (predicted[row, j, a] - truth[row, j, a]) ** 2
            for j in subsets[row]
            for a in (0, 1)
            if not np.isnan(truth[row, j, a])
        ]
        per_row.append(np.mean(values))
    assert validation_score(names, predicted, truth) == pytest.approx(np.mean(per_row))
    normalised, targets = predicted / 96, truth / 96
    present = ~np.isnan(targets)
    expected = np.mean((normalised[present] - targets[present]) ** 2) * 96**2
    assert masked_crop_mse(normalised, targets, 96) == pytest.approx(expected)
    with pytest.raises(ValueError, match="no label in any image"):
        mean_shape(np.full((3, 2, 2), np.nan))
