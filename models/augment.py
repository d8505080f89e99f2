"""Batched on-device image pipeline: uint8 crops -> normalised float tensors (+ augmentation).

All work happens on whole batches on the training device. Colour jitter (brightness, contrast,
saturation), the uint8 scaling and the mean/std normalisation fold into one per-image linear
colour map (no clipping in between); then one affine warp (rotation, scale, shift, horizontal
flip) with affine_grid / grid_sample, whose matrix is applied to the landmarks too (exact); then
what real photos add and the landmarks do not follow: Gaussian blur (one separable grouped
convolution for the batch, a sigma per image), pixel noise, and occlusion (a random box of noise).
Targets live in normalised crop coordinates t in [-0.5, 0.5] (models.geometry); grid_sample's
coordinates (align_corners=False) are 2t. Missing labels (NaN) stay NaN through every transform.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.config import AugmentConfig

_GRAY = (0.299, 0.587, 0.114)
OCCLUSION_AREA = (0.02, 0.2)  # share of the crop an occluding box covers


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


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image (B, C, H, W) by its own Gaussian sigma (B,) in pixels (0 = unchanged).

    Separable: one grouped convolution along each axis for the whole batch, with reflected
    borders and kernels of radius ceil(3 x the largest sigma), each normalised to sum 1.
    """
    batch, channels, height, width = x.shape
    radius = min(max(1, math.ceil(3 * float(sigma.max()))), min(height, width) - 1)
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    safe = sigma.to(x.dtype).clamp_min(1e-6).view(-1, 1)
    kernel = torch.exp(-0.5 * (offsets / safe) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # sigma ~ 0: the delta kernel
    kernel = kernel.repeat_interleave(channels, dim=0)  # (B*C, K)
    flat = x.reshape(1, batch * channels, height, width)
    flat = F.pad(flat, (radius, radius, 0, 0), mode="reflect")
    flat = F.conv2d(flat, kernel.view(-1, 1, 1, 2 * radius + 1), groups=batch * channels)
    flat = F.pad(flat, (0, 0, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernel.view(-1, 1, 2 * radius + 1, 1), groups=batch * channels)
    return flat.view(batch, channels, height, width)


def box_mask(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H, W) True inside each image's box (x0, y0, x1, y1), pixels x0 <= x < x1."""
    ys = torch.arange(height, device=boxes.device).view(1, -1, 1)
    xs = torch.arange(width, device=boxes.device).view(1, 1, -1)
    x0, y0, x1, y1 = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    return (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)


def occlude(x: torch.Tensor, boxes: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W) with the pixels inside each box replaced by `fill` (same shape)."""
    inside = box_mask(boxes, x.shape[2], x.shape[3]).unsqueeze(1)
    return torch.where(inside, fill, x)


def random_boxes(
    chosen: torch.Tensor, size: int, generator: torch.Generator, area: tuple[float, float]
) -> torch.Tensor:
    """(B, 4) integer boxes in a size x size crop: for the chosen images a share `area` of it
    (uniform) with aspect between 1:3 and 3:1 (log-uniform) at a uniform position; an empty box
    (0, 0, 0, 0) for the others."""
    batch = len(chosen)
    share = area[0] + (area[1] - area[0]) * torch.rand(batch, generator=generator)
    aspect = torch.exp((torch.rand(batch, generator=generator) * 2 - 1) * math.log(3))
    height = (torch.sqrt(share * aspect) * size).round().clamp(1, size)
    width = (torch.sqrt(share / aspect) * size).round().clamp(1, size)
    y0 = (torch.rand(batch, generator=generator) * (size - height + 1)).floor()
    x0 = (torch.rand(batch, generator=generator) * (size - width + 1)).floor()
    boxes = torch.stack([x0, y0, x0 + width, y0 + height], dim=1).long()
    return torch.where(chosen.view(-1, 1), boxes, torch.zeros_like(boxes))


def inverse_permutation(perm: torch.Tensor) -> torch.Tensor:
    """The inverse of a permutation vector."""
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm), device=perm.device)
    return inverse


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
        self.pixel_scale = (1.0 / std_t).view(1, -1, 1, 1)  # a [0, 1] pixel step, normalised
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
        if config.rotation or config.scale or config.shift or flip.any():
            forward = affine_matrices(
                uniform(math.radians(config.rotation)),
                1 + uniform(config.scale),
                uniform(config.shift, (batch, 2)),
                flip,
            )
            x = warp_images(x, forward)
            targets = warp_points(targets.float(), forward)
            if flip.any():
                relabelled = targets[:, inverse_permutation(self.flip_perm.to(device))]
                targets = torch.where(flip.view(-1, 1, 1), relabelled, targets)
        return self._degrade(x), targets

    def _degrade(self, x: torch.Tensor) -> torch.Tensor:
        """Blur, pixel noise and occlusion (`augment.blur`, `noise`, `occlusion`): what real
        photos have and the landmarks do not follow. Random draws only for the keys that are on,
        so a config without them keeps its random stream."""
        config, batch, device = self.augment, x.shape[0], x.device
        if config.blur:
            blurred = torch.rand(batch, generator=self.generator) < 0.5
            sigma = torch.rand(batch, generator=self.generator) * config.blur
            x = gaussian_blur(x, torch.where(blurred, sigma, 0.0).to(device))
        if config.noise:
            std = (torch.rand(batch, generator=self.generator) * config.noise).to(device)
            noise = torch.randn(x.shape, generator=self._device_generator(device), device=device)
            x = x + std.view(-1, 1, 1, 1) * self.pixel_scale.to(device) * noise
        if config.occlusion:
            chosen = torch.rand(batch, generator=self.generator) < config.occlusion
            boxes = random_boxes(chosen, x.shape[-1], self.generator, OCCLUSION_AREA)
            fill = torch.randn(x.shape, generator=self._device_generator(device), device=device)
            x = occlude(x, boxes.to(device), fill)
        return x

    def _device_generator(self, device: torch.device) -> torch.Generator:
        """A generator on `device` seeded from the pipeline's own (so resumes stay exact)."""
        seed = int(torch.randint(2**62, (1,), generator=self.generator))
        return torch.Generator(device).manual_seed(seed)
