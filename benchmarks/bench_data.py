"""Benchmark the training data pipeline: one epoch from the cache vs the seeds' per-sample one.

Ours: `ens prepare`'s uint8 memory-mapped cache, read one batch at a time by fancy indexing
(random order), then the batched augmentation (colour jitter, affine warp with rotation, scale,
shift and flip, normalisation) on the device. The seeds' pipeline (the organisers' baseline):
a torch Dataset that per sample does cv2.imread, BGR->RGB, scale the short side to the crop
size, centre crop, ToPILImage, ToTensor, Normalize, served by a DataLoader with 2 workers.
Both run on the same images in the same process; the cache build is timed separately (it is
paid once per crop size and shared by every architecture). Needs the `bench` extra (OpenCV).

    .venv/bin/python benchmarks/bench_data.py                  # makes the default demo data
    .venv/bin/python benchmarks/bench_data.py --data demo --size 128 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ensemble.io.landmarks import read_landmarks
from models.augment import BatchPipeline
from models.cache import build_cache
from models.config import AugmentConfig
from models.data import iterate_batches
from models.registry import IMAGENET_MEAN, IMAGENET_STD


class SeedDataset(Dataset):
    """The seeds' per-sample pipeline (organisers' baseline transforms)."""

    def __init__(self, folder: Path, names: list[str], points: np.ndarray, size: int) -> None:
        self.folder, self.names, self.points, self.size = folder, names, points, size
        self.to_tensor = transforms.Compose(
            [
                transforms.ToPILImage(),
                transforms.ToTensor(),
                transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int):
        image = cv2.imread(str(self.folder / self.names[index]))
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        factor = self.size / min(width, height)
        image = cv2.resize(image, None, None, factor, factor, interpolation=cv2.INTER_AREA)
        height, width = image.shape[:2]
        top, left = (height - self.size) // 2, (width - self.size) // 2
        image = image[top : top + self.size, left : left + self.size]
        landmarks = self.points[index] * factor - [left, top]
        return self.to_tensor(image), torch.from_numpy(landmarks.astype(np.float32))


def seed_epoch(dataset: SeedDataset, batch_size: int, workers: int) -> float:
    """Images/s of one shuffled epoch through the seeds' DataLoader."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)
    start, seen = time.perf_counter(), 0
    for images, _ in loader:
        seen += len(images)
    return seen / (time.perf_counter() - start)


def cache_epoch(
    cache, targets: np.ndarray, batch_size: int, pipeline: BatchPipeline, augment: bool
) -> float:
    """Images/s of one shuffled epoch from the cache: normalised tensors (+ augmentation)."""
    rows = np.random.default_rng(0).permutation(len(cache))
    start, seen = time.perf_counter(), 0
    for pixels, labels in iterate_batches(
        cache.images, rows, batch_size, torch.device("cpu"), targets
    ):
        x = pipeline.train_batch(pixels, labels)[0] if augment else pipeline(pixels)
        seen += len(x)
    return seen / (time.perf_counter() - start)


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="dataset folder (default: fresh demo data)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from ensemble.synthetic.demo import make_demo

            data = Path(tmp) / "demo"
            make_demo(data, progress=False)
        labels = read_landmarks(data / "train" / "landmarks.csv")
        start = time.perf_counter()
        cache = build_cache(data, "train", args.size, Path(tmp) / "cache", progress=False)
        build_seconds = time.perf_counter() - start
        targets = np.zeros((len(cache), labels.n_points, 2), dtype=np.float32)
        perm = torch.arange(labels.n_points)
        pipeline = BatchPipeline(IMAGENET_MEAN, IMAGENET_STD, 3, AugmentConfig(), perm)
        dataset = SeedDataset(
            data / "train" / "images", list(labels.file_names), labels.points, args.size
        )
        ours, augmented, theirs = [], [], []
        for _ in range(args.repeats):
            ours.append(cache_epoch(cache, targets, args.batch_size, pipeline, False))
            augmented.append(cache_epoch(cache, targets, args.batch_size, pipeline, True))
            theirs.append(seed_epoch(dataset, args.batch_size, args.workers))
    fast, slow = statistics.median(ours), statistics.median(theirs)
    heavy = statistics.median(augmented)
    print(
        f"images: {len(cache)}, crop {args.size}, batch {args.batch_size}, cores {os.cpu_count()}"
    )
    print(f"| pipeline | images/s (median of {args.repeats} epochs) |")
    print("|---|---|")
    print(f"| seeds: cv2 per sample, DataLoader {args.workers} workers | {slow:.0f} |")
    print(f"| cache -> normalised tensors (same work as the seeds) | {fast:.0f} |")
    print(f"| **ratio, same work** | **{fast / slow:.1f}x** |")
    print(f"| cache + batched augmentation (more work than the seeds) | {heavy:.0f} |")
    print(f"| ratio with augmentation | {heavy / slow:.1f}x |")
    print(
        f"cache build (once per crop size): {build_seconds:.1f} s, "
        f"{len(cache) / build_seconds:.0f} images/s"
    )


if __name__ == "__main__":
    main()
