"""Letterbox geometry and the image cache: exact round trips, landmarks land on their pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ensemble.errors import InputError
from ensemble.io.landmarks import read_landmarks, write_landmarks
from ensemble.io.test_points import write_test_points
from models.cache import build_cache, cache_dir_for
from models.geometry import denormalise, from_crop, letterbox_geometry, normalise, to_crop
from tests.helpers import write_faces


@pytest.mark.parametrize(("width", "height"), [(1000, 600), (37, 91), (64, 64), (501, 499)])
def test_letterbox_keeps_the_whole_image_inside_the_crop(width: int, height: int) -> None:
    new_w, new_h, geometry = letterbox_geometry(width, height, 64)
    assert max(new_w, new_h) == 64
    corners = np.array([[[0.0, 0.0], [width, height]]])
    crop = to_crop(corners, geometry[None])[0]
    assert crop.min() >= 0 and crop.max() <= 64
    assert np.allclose(crop[1] - crop[0], [new_w, new_h])


def test_cache_geometry_restores_the_truth_exactly(tmp_path: Path) -> None:
    data = write_faces(tmp_path / "d", n_train=20, n_test=3)
    cache = build_cache(data, "train", 48, progress=False)
    truth = read_landmarks(data / "train" / "landmarks.csv")
    assert list(cache.file_names) == list(truth.file_names)
    targets = normalise(to_crop(truth.points, cache.geometry), 48)
    assert np.abs(targets).max() <= 0.5
    restored = from_crop(denormalise(targets, 48), cache.geometry)
    np.testing.assert_allclose(restored, truth.points, rtol=0, atol=1e-9)
    sizes = np.array([Image.open(data / "train" / "images" / n).size for n in truth.file_names])
    np.testing.assert_array_equal(cache.sizes, sizes)


@pytest.mark.parametrize(("width", "height"), [(1200, 700), (90, 150)])
def test_a_landmark_lands_on_its_pixel_in_the_crop(tmp_path: Path, width: int, height: int) -> None:
    """A bright square around a point appears where the geometry maps the point (large JPEGs
    are decoded at reduced DCT scale first; the mapping must still hold)."""
    root = tmp_path / "d"
    (root / "train" / "images").mkdir(parents=True)
    (root / "test" / "images").mkdir(parents=True)
    point = np.array([0.7 * width, 0.3 * height])
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    half = max(3, width // 40)
    x, y = point.astype(int)
    pixels[y - half : y + half, x - half : x + half] = 255
    Image.fromarray(pixels).save(root / "train" / "images" / "a.png")
    Image.fromarray(pixels).save(root / "test" / "images" / "b.png")
    write_landmarks(root / "train" / "landmarks.csv", ["a.png"], point[None, None, :])
    write_test_points(root / "test" / "test_points.csv", ["b.png"], np.array([[0]]))
    cache = build_cache(root, "train", 96, progress=False)
    crop = cache.images[0].astype(float).mean(axis=2)
    bright = crop > 128
    ys, xs = np.nonzero(bright)
    centroid = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
    expected = to_crop(np.array([[[x, y]]], dtype=float), cache.geometry)[0, 0]
    assert np.abs(centroid - expected).max() < 0.75


def test_cache_is_reused_and_rebuilt_when_the_labels_change(tmp_path: Path) -> None:
    data = write_faces(tmp_path / "d", n_train=6, n_test=2)
    first = build_cache(data, "train", 32, progress=False)
    stamp = (first.path / "images.npy").stat().st_mtime_ns
    again = build_cache(data, "train", 32, progress=False)
    assert (again.path / "images.npy").stat().st_mtime_ns == stamp
    labels = read_landmarks(data / "train" / "landmarks.csv")
    write_landmarks(data / "train" / "landmarks.csv", labels.file_names[:4], labels.points[:4])
    rebuilt = build_cache(data, "train", 32, progress=False)
    assert len(rebuilt) == 4
    assert rebuilt.path == cache_dir_for(data, "train", 32, None)
    assert not [p for p in rebuilt.path.parent.iterdir() if p.name.startswith(".")]


def test_missing_and_broken_images_are_named(tmp_path: Path) -> None:
    data = write_faces(tmp_path / "d", n_train=5, n_test=2)
    (data / "train" / "images" / "train00003.jpg").unlink()
    with pytest.raises(InputError, match="train00003.jpg: image not found"):
        build_cache(data, "train", 32, progress=False)
    (data / "test" / "images" / "test00001.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="test00001.jpg: cannot decode image"):
        cache = build_cache(data, "test", 32, progress=False)
    assert cache.valid.tolist() == [True, False]  # reported and left out, not fatal
    assert cache.bad_images[0]["file_name"] == "test00001.jpg"
    (data / "test" / "images" / "test00000.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="no test image could be decoded"):
        build_cache(data, "test", 40, progress=False)  # a new size: the cache is built
