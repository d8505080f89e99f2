"""Batched on-device image pipeline: uint8 crops -> normalised float tensors (+ augmentation).

All work happens on whole batches on the training device. Colour jitter (brightness, contrast,
saturation), the uint8 scaling and the mean/std normalisation fold into one per-image linear
colour map (no clipping in between); then one affine warp (rotation, scale, shift, horizontal
flip) with affine_grid / grid_sample, whose matrix is applied to the landmarks too (exact).
Targets live in normalised crop coordinates t in [-0.5, 0.5] (models.geometry); grid_sample's
coordinates (align_corners=False) are 2t. Missing labels (NaN) stay NaN through every transform.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.config import AugmentConfig

_GRAY = (0.299, 0.587, 0.114)


def colour_maps(
    brightness: torch.Tensor,
    contrast: torch.Tensor,
    saturation: torch.Tensor,
    mean_gray: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image colour jitter as one linear map on [0, 1] RGB: x -> A x + t, (B,3,3), (B,3).

    Brightness scales by b; contrast blends with the image's mean gray m by c; saturation blends
    each pixel with its own gray by s. All three are linear, so they compose exactly into
    A = (s I + (1 - s) 1 w^T) c b and t = (1 - c) b m (w = the luminance weights).
    """
    weights = torch.tensor(_GRAY, dtype=brightness.dtype, device=brightness.device)
    eye = torch.eye(3, dtype=brightness.dtype, device=brightness.device)
    s = saturation.view(-1, 1, 1)
    blend = s * eye + (1 - s) * weights.view(1, 1, 3).expand(len(s), 3, 3)
    matrix = blend * (contrast * brightness).view(-1, 1, 1)
    offset = ((1 - contrast) * brightness * mean_gray).view(-1, 1).expand(-1, 3)
    return matrix, offset


def affine_matrices(
    angle: torch.Tensor, zoom: torch.Tensor, shift: torch.Tensor, flip: torch.Tensor
) -> torch.Tensor:
    """Forward maps (B, 2, 3) in grid coordinates: R(angle) diag(+-zoom, zoom) in + 2 shift."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    sign = 1.0 - 2.0 * flip.to(angle.dtype)
    matrix = torch.stack(
        [
            torch.stack([cos * zoom * sign, -sin * zoom, 2 * shift[:, 0]], dim=1),
            torch.stack([sin * zoom * sign, cos * zoom, 2 * shift[:, 1]], dim=1),
        ],
        dim=1,
    )
    return matrix


def warp_images(x: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """Warp images by forward maps (B, 2, 3); outside the source becomes 0 (the mean colour)."""
    linear, offset = forward[:, :, :2], forward[:, :, 2:]
    inverse = torch.linalg.inv(linear)
    theta = torch.cat([inverse, -inverse @ offset], dim=2).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def warp_points(targets: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """Apply forward maps (B, 2, 3) to normalised targets (B, N, 2).

    A missing point (NaN in x or y) comes out missing (both NaN) and touches no other point.
    """
    missing = torch.isnan(targets).any(dim=-1, keepdim=True)
    grid = 2.0 * torch.where(missing, 0.0, targets)
    moved = grid @ forward[:, :, :2].transpose(1, 2) + forward[:, None, :, 2]
    return torch.where(missing, torch.nan, moved / 2.0)


def inverse_permutation(perm: torch.Tensor) -> torch.Tensor:
    """The inverse of a permutation vector."""
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm), device=perm.device)
    return inverse


def flip_points(targets: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Landmarks of the mirrored image: x -> -x, and point i becomes landmark perm[i]."""
    mirrored = targets * torch.tensor([-1.0, 1.0], device=targets.device, dtype=targets.dtype)
    return mirrored[:, inverse_permutation(perm)]


def unflip_points(predicted: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Map landmarks predicted on a mirrored image back to the original image (inverse of flip)."""
    mirrored = predicted * torch.tensor([-1.0, 1.0], device=predicted.device, dtype=predicted.dtype)
    return mirrored[:, perm]


class BatchPipeline:
    """uint8 batches on the device -> normalised model input, with optional augmentation.

    Colour jitter, the uint8 -> float scaling and the mean/std normalisation are folded into one
    per-image linear colour map applied in a single batched matmul; the geometric part is one
    grid_sample. Padding (outside the warped source) is 0 = the normalisation mean.
    """

    def __init__(
        self,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        model_channels: int,
        augment: AugmentConfig | None = None,
        flip_perm: torch.Tensor | None = None,
        seed: int = 0,
    ) -> None:
        gray = torch.tensor(_GRAY).view(1, 3)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1)
        # RGB in [0, 1] -> normalised channels: P x - mean / std
        self.project = (gray if len(mean) == 1 else torch.eye(3)) / std_t
        self.shift = -(mean_t / std_t).view(-1)
        self.model_channels = model_channels
        self.augment = augment
        self.flip_perm = flip_perm
        self.generator = torch.Generator().manual_seed(seed)

    def _colour(
        self, images: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor
    ) -> torch.Tensor:
        """uint8 (B, H, W, 3) -> normalised float (B, C, H, W) through x -> A x / 255 + t."""
        batch, height, width, _ = images.shape
        device = images.device
        project = self.project.to(device)
        full = project @ matrix / 255.0  # (B, C, 3)
        bias = offset @ project.T + self.shift.to(device)  # (B, C)
        pixels = images.reshape(batch, height * width, 3).float()
        out = torch.baddbmm(bias.unsqueeze(1), pixels, full.transpose(1, 2))
        out = out.view(batch, height, width, -1).permute(0, 3, 1, 2)
        if out.shape[1] != self.model_channels:
            out = out.expand(-1, self.model_channels, -1, -1)
        return out

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Evaluation input: no augmentation."""
        device = images.device
        if self.project.shape[0] == 1:  # grayscale: the general colour map
            eye = torch.eye(3, device=device).expand(len(images), 3, 3)
            return self._colour(images, eye, torch.zeros(len(images), 3, device=device))
        scale = torch.diagonal(self.project).to(device) / 255.0
        out = torch.addcmul(self.shift.to(device), images.float(), scale).permute(0, 3, 1, 2)
        if out.shape[1] != self.model_channels:
            out = out.expand(-1, self.model_channels, -1, -1)
        return out

    def train_batch(
        self, images: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented input and the matching targets (B, N, 2) for one training batch."""
        config = self.augment
        if config is None:
            return self(images), targets
        batch, device = images.shape[0], images.device

        def uniform(spread: float, shape: tuple[int, ...] = (batch,)) -> torch.Tensor:
            values = torch.rand(shape, generator=self.generator) * 2 - 1
            return (values * spread).to(device)

        if config.brightness or config.contrast or config.saturation:
            mean_rgb = images.float().mean(dim=(1, 2)) / 255.0  # (B, 3)
            mean_gray = mean_rgb @ torch.tensor(_GRAY, device=device)
            matrix, offset = colour_maps(
                1 + uniform(config.brightness),
                1 + uniform(config.contrast),
                1 + uniform(config.saturation),
                mean_gray,
            )
            x = self._colour(images, matrix, offset)
        else:
            x = self(images)
        flip = torch.zeros(batch, dtype=torch.bool)
        if config.flip and self.flip_perm is not None:
            flip = torch.rand(batch, generator=self.generator) < 0.5
        flip = flip.to(device)
        if not (config.rotation or config.scale or config.shift or flip.any()):
            return x, targets
        forward = affine_matrices(
            uniform(math.radians(config.rotation)),
            1 + uniform(config.scale),
            uniform(config.shift, (batch, 2)),
            flip,
        )
        x = warp_images(x, forward)
        moved = warp_points(targets.float(), forward)
        if flip.any():
            relabelled = moved[:, inverse_permutation(self.flip_perm.to(device))]
            moved = torch.where(flip.view(-1, 1, 1), relabelled, moved)
        return x, moved
