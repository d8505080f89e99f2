"""Tiny learnable face datasets for the model tests (drawn ellipses with eyes, nose and mouth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ensemble.formats import read_landmarks, write_landmarks, write_test_points
from ensemble.layout import flip_permutation
from ensemble.subsets import draw_point_subsets

N_OVAL = 12


def face_points(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A symmetric face of N_OVAL + 6 landmarks placed at random inside a width x height image."""
    radius = rng.uniform(0.25, 0.4) * min(width, height)
    cx = rng.uniform(radius, width - radius)
    cy = rng.uniform(radius, height - radius)
    angle = rng.uniform(-0.3, 0.3)
    t = np.linspace(0, 2 * np.pi, N_OVAL, endpoint=False) + np.pi / N_OVAL
    local = [np.stack([0.8 * np.cos(t), np.sin(t)], axis=1)]
    eye_dx, mouth = rng.uniform(0.25, 0.4), rng.uniform(0.35, 0.55)
    local.append(np.array([[-eye_dx, -0.25], [eye_dx, -0.25], [-0.15, 0.1], [0.15, 0.1]]))
    local.append(np.array([[-0.3, mouth], [0.3, mouth]]))
    shape = np.concatenate(local) * radius
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return shape @ rotation.T + [cx, cy]


def draw_face(rng: np.random.Generator, width: int, height: int, points: np.ndarray) -> Image.Image:
    """Render the face of `points` on a noisy background."""
    pixels = rng.integers(0, 90, size=(height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    draw.polygon([tuple(p) for p in points[:N_OVAL]], fill=(220, 180, 150))
    r = max(1.5, 0.04 * min(width, height))
    for (x, y), colour in zip(
        points[N_OVAL:], [(20, 20, 20)] * 2 + [(150, 90, 70)] * 2 + [(200, 30, 40)] * 2, strict=True
    ):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    draw.line([tuple(points[-2]), tuple(points[-1])], fill=(200, 30, 40), width=max(1, int(r)))
    return image


def write_faces(
    root: Path, n_train: int = 160, n_test: int = 20, seed: int = 0, k: int = 5
) -> Path:
    """A competition-layout folder of drawn faces (with the demo's hidden test/landmarks.csv)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("test", n_test)):
        folder = root / split / "images"
        folder.mkdir(parents=True)
        names, shapes = [], []
        for i in range(count):
            width, height = (int(v) for v in rng.integers(48, 120, size=2))
            points = face_points(rng, width, height)
            draw_face(rng, width, height, points).save(folder / f"{split}{i:05d}.jpg", quality=92)
            names.append(f"{split}{i:05d}.jpg")
            shapes.append(points)
        write_landmarks(root / split / "landmarks.csv", names, np.array(shapes))
    test_names = [f"test{i:05d}.jpg" for i in range(n_test)]
    n_points = N_OVAL + 6
    write_test_points(
        root / "test" / "test_points.csv", test_names, draw_point_subsets(rng, n_test, n_points, k)
    )
    return root


def test_drawn_faces_are_symmetric_for_the_flip_permutation(tmp_path: Path) -> None:
    data = write_faces(tmp_path / "d", n_train=30, n_test=2)
    points = read_landmarks(data / "train" / "landmarks.csv").points
    perm = flip_permutation(points.mean(axis=0))
    assert sorted(perm.tolist()) == list(range(N_OVAL + 6))
    assert perm[N_OVAL] == N_OVAL + 1 and perm[N_OVAL + 4] == N_OVAL + 5
