"""On-device augmentation and flip TTA: images and landmarks move together, exactly."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from models.augment import (
    OCCLUSION_AREA,
    BatchPipeline,
    affine_matrices,
    colour_maps,
    gaussian_blur,
    inverse_permutation,
    occlude,
    random_boxes,
    unflip_points,
    warp_images,
    warp_points,
)
from models.config import AugmentConfig
from models.predict import PredictOptions, predict_views
from models.registry import build_model

PERM = torch.tensor([1, 0, 2, 4, 3])  # two swapped pairs and a centre point


def dot_image(size: int, points: torch.Tensor) -> torch.Tensor:
    """(1, 1, size, size) image with a single bright pixel at each normalised point."""
    image = torch.zeros(1, 1, size, size)
    for x, y in points:
        image[0, 0, int((y + 0.5) * size), int((x + 0.5) * size)] = 1.0
    return image


def centroid(image: torch.Tensor) -> torch.Tensor:
    """Normalised (x, y) centroid of an image's intensity."""
    size = image.shape[-1]
    coords = (torch.arange(size) + 0.5) / size - 0.5
    weights = image[0, 0] / image[0, 0].sum()
    return torch.stack([(weights.sum(0) * coords).sum(), (weights.sum(1) * coords).sum()])


@pytest.mark.parametrize(
    ("angle", "zoom", "shift", "flip"),
    [
        (0.0, 1.0, (0.0, 0.0), True),
        (25.0, 1.2, (0.05, -0.1), False),
        (-40.0, 0.8, (0.1, 0.0), True),
    ],
)
def test_warped_dot_lands_where_the_point_goes(angle, zoom, shift, flip) -> None:
    point = torch.tensor([[0.1, -0.15]])
    size = 129
    image = dot_image(size, point)
    pixel_centre = (torch.floor((point + 0.5) * size) + 0.5) / size - 0.5
    forward = affine_matrices(
        torch.tensor([math.radians(angle)]),
        torch.tensor([zoom]),
        torch.tensor([shift]),
        torch.tensor([flip]),
    )
    moved = warp_points(pixel_centre[None], forward)[0, 0]
    assert torch.allclose(centroid(warp_images(image, forward)), moved, atol=0.5 / size)


def test_pure_flip_warp_is_the_mirror_image_and_points_mirror_then_relabel() -> None:
    image = torch.rand(2, 3, 16, 16)
    forward = affine_matrices(torch.zeros(2), torch.ones(2), torch.zeros(2, 2), torch.ones(2))
    assert torch.allclose(warp_images(image, forward), image.flip(-1), atol=1e-5)
    points = torch.rand(2, 5, 2) - 0.5
    flipped = (points * torch.tensor([-1.0, 1.0]))[:, inverse_permutation(PERM)]  # mirror, relabel
    assert torch.allclose(flipped[:, 1, 0], -points[:, 0, 0])
    assert torch.allclose(flipped[:, 3], points[:, 4] * torch.tensor([-1.0, 1.0]))
    assert torch.allclose(unflip_points(flipped, PERM), points)


def test_training_batch_moves_landmarks_with_the_image() -> None:
    """Every augmented batch: a dot drawn at each landmark ends where its target says."""
    size = 97
    torch.manual_seed(0)
    points = (torch.rand(4, 5, 2) - 0.5) * 0.3
    images = torch.zeros(4, size, size, 3, dtype=torch.uint8)
    for row in range(4):
        x, y = ((points[row, 2] + 0.5) * size).long()
        images[row, y, x] = 255
        points[row, 2] = (torch.tensor([x, y]) + 0.5) / size - 0.5
    config = AugmentConfig(
        rotation=30, scale=0.2, shift=0.1, brightness=0, contrast=0, saturation=0
    )
    pipeline = BatchPipeline((0.0,) * 3, (1.0,) * 3, 3, config, PERM, seed=3)
    x, y = pipeline.train_batch(images, points)
    for row in range(4):
        assert torch.allclose(centroid(x[row : row + 1, :1]), y[row, 2], atol=0.5 / size)


def test_flip_tta_agrees_with_flipping_the_image() -> None:
    """TTA on the mirrored image, mapped back, equals TTA on the image (any model)."""
    torch.manual_seed(1)
    model = build_model("small_cnn_basic", 5).model.eval()
    images = np.random.default_rng(0).integers(0, 255, size=(6, 32, 32, 3), dtype=np.uint8)
    mirrored = np.ascontiguousarray(images[:, :, ::-1])
    pipeline = BatchPipeline((0.5,) * 3, (0.25,) * 3, 3)
    rows, cpu = np.arange(6), torch.device("cpu")
    tta = PredictOptions(4, cpu, PERM)
    views = predict_views(model, pipeline, images, rows, 5, tta)
    on_image, half = views.points, views.half
    on_mirror = predict_views(model, pipeline, mirrored, rows, 5, tta).points
    back = unflip_points(torch.from_numpy(on_mirror), PERM).numpy()
    np.testing.assert_allclose(back, on_image, atol=1e-5)
    plain_views = predict_views(model, pipeline, images, rows, 5, PredictOptions(4, cpu))
    plain, no_half = plain_views.points, plain_views.half
    assert not np.allclose(plain, on_image, atol=1e-5)
    assert no_half is None
    # the plain view is the TTA mean plus half the difference of the two views
    np.testing.assert_allclose(on_image + half, plain, atol=1e-5)


def test_folded_colour_map_equals_jitter_then_normalise_step_by_step() -> None:
    """brightness, contrast, saturation, /255 and mean/std in one matmul = the steps in numpy."""
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(3, 5, 4, 3), dtype=np.uint8)
    b, c, s = np.array([1.2, 0.8, 1.0]), np.array([0.7, 1.3, 1.0]), np.array([1.1, 0.5, 1.0])
    mean, std = np.array([0.4, 0.5, 0.6]), np.array([0.2, 0.25, 0.3])
    gray_w = np.array([0.299, 0.587, 0.114])
    x = images / 255.0 * b[:, None, None, None]
    gray_mean = (images / 255.0 @ gray_w).mean(axis=(1, 2)) * b
    x = (
        gray_mean[:, None, None, None]
        + (x - gray_mean[:, None, None, None]) * c[:, None, None, None]
    )
    gray = (x @ gray_w)[..., None]
    x = gray + (x - gray) * s[:, None, None, None]
    expected = ((x - mean) / std).transpose(0, 3, 1, 2)
    pipeline = BatchPipeline(tuple(mean), tuple(std), 3)
    matrix, offset = colour_maps(
        torch.tensor(b),
        torch.tensor(c),
        torch.tensor(s),
        torch.tensor((images / 255.0 @ gray_w).mean(axis=(1, 2))),
    )
    got = pipeline._colour(torch.from_numpy(images), matrix.float(), offset.float())
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)
    plain = pipeline(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(
        plain, ((images / 255.0 - mean) / std).transpose(0, 3, 1, 2), atol=1e-4
    )
    gray_input = BatchPipeline((0.45,), (0.25,), 3)(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(
        gray_input[:, 0], ((images / 255.0 @ gray_w) - 0.45) / 0.25, atol=1e-4
    )
    assert gray_input.shape == (3, 3, 5, 4)


def test_occlusion_changes_pixels_only_inside_its_box() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, 20, 20, generator=generator)
    fill = torch.randn(5, 3, 20, 20, generator=generator)
    boxes = torch.tensor(
        [[2, 3, 7, 11], [0, 0, 20, 20], [0, 0, 0, 0], [19, 19, 20, 20], [5, 5, 6, 9]]
    )
    out = occlude(x, boxes, fill)
    for row, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        inside = np.zeros((20, 20), dtype=bool)
        inside[y0:y1, x0:x1] = True  # rows y, columns x
        changed = (out[row] != x[row]).any(dim=0).numpy()
        np.testing.assert_array_equal(changed, inside)
        np.testing.assert_array_equal(out[row][:, inside].numpy(), fill[row][:, inside].numpy())


def test_random_boxes_cover_their_share_of_the_crop_for_the_chosen_images_only() -> None:
    chosen = torch.arange(400) % 3 != 0
    boxes = random_boxes(chosen, 64, torch.Generator().manual_seed(1), OCCLUSION_AREA)
    x0, y0, x1, y1 = boxes.T
    assert (boxes[~chosen] == 0).all()
    assert ((x0 >= 0) & (y0 >= 0) & (x1 <= 64) & (y1 <= 64)).all()
    share = ((x1 - x0) * (y1 - y0))[chosen].float() / 64**2
    assert share.min() > 0.5 * OCCLUSION_AREA[0] and share.max() < 1.5 * OCCLUSION_AREA[1]


def test_blur_is_the_normalised_gaussian_kernel_and_sigma_zero_leaves_the_image() -> None:
    x = torch.zeros(2, 1, 21, 21)
    x[:, 0, 10, 10] = 1.0
    out = gaussian_blur(x, torch.tensor([1.3, 0.0]))
    offsets = np.arange(-4, 5)  # radius ceil(3 x 1.3) = 4
    kernel = np.exp(-0.5 * (offsets / 1.3) ** 2)
    kernel /= kernel.sum()
    expected = np.zeros((21, 21))
    expected[6:15, 6:15] = np.outer(kernel, kernel)
    np.testing.assert_allclose(out[0, 0].numpy(), expected, atol=1e-7)
    assert torch.equal(out[1], x[1])


@pytest.mark.parametrize("geometry", [False, True])
def test_occlusion_blur_and_noise_leave_the_landmarks_unchanged(geometry: bool) -> None:
    images = torch.randint(0, 255, (8, 32, 32, 3), dtype=torch.uint8)
    points = (torch.rand(8, 5, 2) - 0.5) * 0.6
    moves = (
        dict(rotation=20.0, scale=0.1, shift=0.05)
        if geometry
        else dict(rotation=0.0, scale=0.0, shift=0.0, flip=False)
    )
    plain = AugmentConfig(brightness=0, contrast=0, saturation=0, **moves)
    degraded = dataclasses.replace(plain, occlusion=1.0, blur=2.0, noise=0.1)
    x_plain, y_plain = BatchPipeline((0.5,) * 3, (0.25,) * 3, 3, plain, PERM, 4).train_batch(
        images, points
    )
    x, y = BatchPipeline((0.5,) * 3, (0.25,) * 3, 3, degraded, PERM, 4).train_batch(images, points)
    assert torch.equal(y, y_plain)
    if not geometry:
        assert torch.equal(y, points)
    assert not torch.equal(x, x_plain)  # the pixels did change


def test_noise_is_zero_mean_with_a_per_image_std_up_to_its_key() -> None:
    images = torch.randint(0, 255, (16, 48, 48, 3), dtype=torch.uint8)
    still = AugmentConfig(rotation=0.0, scale=0.0, shift=0.0, flip=False, brightness=0.0)
    still = dataclasses.replace(still, contrast=0.0, saturation=0.0)
    noisy = dataclasses.replace(still, noise=0.1)
    pipeline = BatchPipeline((0.5,) * 3, (0.25,) * 3, 3, noisy, PERM, 7)
    difference = pipeline.train_batch(images, torch.zeros(16, 5, 2))[0] - pipeline(images)
    std = difference.flatten(1).std(dim=1)  # in normalised units: pixel-range std / 0.25
    assert std.max() < 1.05 * 0.1 / 0.25 and std.min() >= 0
    assert abs(float(difference.mean())) < 0.01
