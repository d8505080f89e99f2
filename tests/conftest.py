"""Shared fixtures: tiny competition-format datasets written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ensemble.formats import write_landmarks, write_test_points
from ensemble.subsets import draw_point_subsets


def write_tiny_competition(
    root: Path, n_train: int = 8, n_test: int = 6, n_points: int = 12, k: int = 5, seed: int = 0
) -> dict:
    """A competition-layout folder with random images and landmarks inside each image."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, count, offset in (("train", n_train, 0), ("test", n_test, 1000)):
        images = root / split / "images"
        images.mkdir(parents=True)
        names = [f"{offset + i:06d}.jpg" for i in range(count)]
        sizes = rng.integers(40, 90, size=(count, 2))
        points = rng.uniform(0.1, 0.9, size=(count, n_points, 2)) * sizes[:, None, :]
        points = np.rint(points)
        for name, (width, height) in zip(names, sizes, strict=True):
            pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(images / name, quality=90)
        write_landmarks(root / split / "landmarks.csv", names, points, integer=True)
        out[split] = (names, points, sizes.astype(float))
    indices = draw_point_subsets(rng, n_test, n_points, k)
    write_test_points(root / "test" / "test_points.csv", out["test"][0], indices)
    out["indices"] = indices
    return out


@pytest.fixture
def tiny_competition(tmp_path: Path):
    """(data_dir, contents) of a tiny competition written to a temp folder."""
    data = tmp_path / "data"
    return data, write_tiny_competition(data)
