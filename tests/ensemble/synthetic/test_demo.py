"""The procedural demo dataset: layout, determinism, the template's flip symmetry, ens show."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy.spatial.distance import pdist

from ensemble.cli import cli
from ensemble.competition.layout import FACE_971, FACE_971_TWINS, flip_mismatches, flip_permutation
from ensemble.errors import InputError
from ensemble.io.checks import point_columns
from ensemble.io.landmarks import read_landmarks
from ensemble.io.test_points import read_test_points
from ensemble.synthetic import demo
from ensemble.synthetic.demo import make_demo
from ensemble.synthetic.face_model import FaceParams, build_shape, sample_shape
from ensemble.synthetic.render import render_face

N_TRAIN, N_TEST, K = 12, 6, 30


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "data"
    make_demo(out, n_train=N_TRAIN, n_test=N_TEST, seed=0, points_per_row=K, progress=False)
    return out


def test_layout_headers_and_integer_values(dataset: Path) -> None:
    for split in ("train", "test"):
        text = (dataset / split / "landmarks.csv").read_text()
        lines = text.splitlines()
        assert lines[0].split("\t") == ["file_name", *point_columns(971)]
        assert len(lines) == 1 + (N_TRAIN if split == "train" else N_TEST)
        for line in lines[1:]:
            fields = line.split("\t")
            assert len(fields) == 1 + 2 * 971
            assert re.fullmatch(r"\d{8}\.jpg", fields[0])
            assert all(re.fullmatch(r"-?\d+", value) for value in fields[1:])
    points_header = (dataset / "test" / "test_points.csv").read_text().splitlines()[0]
    assert points_header == "file_name\tpoint_index_list"


def test_images_match_landmarks(dataset: Path) -> None:
    names = {}
    for split in ("train", "test"):
        marks = read_landmarks(dataset / split / "landmarks.csv")
        assert marks.n_points == 971
        names[split] = set(marks.file_names)
        on_disk = {p.name for p in (dataset / split / "images").iterdir()}
        assert on_disk == names[split]
        assert np.array_equal(marks.points, np.rint(marks.points))
        widths = []
        for name, points in zip(marks.file_names, marks.points, strict=True):
            with Image.open(dataset / split / "images" / name) as image:
                image.load()
                assert image.format == "JPEG" and image.mode == "RGB"
                width, height = image.size
            widths.append(width)
            assert points.min() >= 0
            assert points[:, 0].max() <= width - 1 and points[:, 1].max() <= height - 1
            # the face fills most of the crop
            extent = points.max(axis=0) - points.min(axis=0)
            assert (extent / [width, height]).max() > 0.5
        assert len(set(widths)) > 1
    assert not names["train"] & names["test"]


def test_test_points_are_k_distinct_indices(dataset: Path) -> None:
    points = read_test_points(dataset / "test" / "test_points.csv", n_points=971)
    truth = read_landmarks(dataset / "test" / "landmarks.csv")
    assert list(points.file_names) == list(truth.file_names)
    assert points.indices.shape == (N_TEST, K)
    assert points.indices.min() >= 0 and points.indices.max() < 971
    assert all(len(set(row)) == K for row in points.indices.tolist())
    assert len({tuple(row) for row in points.indices.tolist()}) == N_TEST


def test_same_seed_same_bytes_whatever_the_chunking(dataset: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "CHUNK", 4)  # several chunks, drawn by two processes
    again = tmp_path / "again"
    make_demo(again, n_train=N_TRAIN, n_test=N_TEST, seed=0, progress=False, n_jobs=2)
    first, second = _files(dataset), _files(again)
    assert first.keys() == second.keys()
    assert all(first[name] == second[name] for name in first)


def test_different_seed_differs(dataset: Path, tmp_path) -> None:
    other = tmp_path / "other"
    make_demo(other, n_train=N_TRAIN, n_test=N_TEST, seed=1, progress=False, n_jobs=1)
    first, second = _files(dataset), _files(other)
    assert first["train/landmarks.csv"] != second["train/landmarks.csv"]
    assert first["test/test_points.csv"] != second["test/test_points.csv"]
    assert first["train/images/00000000.jpg"] != second["train/images/00000000.jpg"]


def test_refuses_non_empty_directory(tmp_path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        make_demo(tmp_path, n_train=1, n_test=1, progress=False)
    result = CliRunner().invoke(cli, ["make-demo", str(tmp_path), "--train", "1", "--test", "1"])
    assert result.exit_code == 1 and "not empty" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(
        cli, ["make-demo", str(tmp_path), "--train", "2", "--test", "1", "--force"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    assert len(read_landmarks(tmp_path / "train" / "landmarks.csv")) == 2
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_template_flip_permutation_agrees_with_the_table() -> None:
    shape = build_shape(FaceParams())
    assert shape.shape == (971, 2)
    assert pdist(shape).min() > 1e-4  # all points distinct: the assignment is unique
    perm = flip_permutation(shape)
    assert np.array_equal(perm[perm], np.arange(971))
    assert flip_mismatches(perm, FACE_971, FACE_971_TWINS) == []
    j = np.arange(64)
    assert np.array_equal(perm[j], 127 - j)
    j = np.arange(72)
    assert np.array_equal(perm[128 + j], 272 - j)
    assert perm[200] == 200
    for name in ("upper lip, outer", "upper lip, inner", "lower lip, outer", "lower lip, inner"):
        region = FACE_971.region(name)
        assert np.array_equal(perm[region.indices], region.stop - 1 - np.arange(32))
    for left, right in FACE_971_TWINS.items():
        if "oval" not in left:
            assert np.array_equal(
                perm[FACE_971.region(left).indices], FACE_971.region(right).indices
            )
    assert perm[969] == 970 and perm[970] == 969
    line = FACE_971.region("nose centre line").indices
    assert np.array_equal(perm[line], line)
    assert np.all(shape[line, 0] == 0) and len(np.unique(shape[line, 1])) == len(line)


def test_template_regions_sit_where_a_face_has_them() -> None:
    shape = build_shape(FaceParams())

    def centre(name: str) -> np.ndarray:
        return shape[FACE_971.region(name).indices].mean(axis=0)

    assert centre("left eye")[0] < 0 < centre("right eye")[0]
    assert centre("left eyebrow")[1] < centre("left eye")[1] < centre("nose centre line")[1]
    assert centre("nose centre line")[1] < centre("upper lip, outer")[1]
    assert centre("upper lip, outer")[1] < centre("lower lip, outer")[1] < shape[63, 1]
    assert shape[200, 1] == shape[:, 1].min()  # forehead centre on top
    iris = shape[FACE_971.region("left iris").indices]
    radii = np.linalg.norm(iris - shape[969], axis=1)
    assert np.allclose(radii, radii[0])  # a circle around the pupil


def test_random_faces_vary_and_their_mean_flips_like_the_table() -> None:
    rng = np.random.default_rng(3)
    shapes = np.stack([sample_shape(rng)[0] for _ in range(200)])
    assert shapes.std(axis=0).mean() > 0.02
    perm = flip_permutation(shapes.mean(axis=0))
    assert flip_mismatches(perm, FACE_971, FACE_971_TWINS) == []
    assert perm[969] == 970 and np.array_equal(perm[:64], 127 - np.arange(64))


def _patch(luminance: np.ndarray, point: np.ndarray) -> float:
    """Median luminance of the 3 x 3 pixels around a point."""
    x, y = np.rint(point).astype(int)
    return float(np.median(luminance[y - 1 : y + 2, x - 1 : x + 2]))


def test_pupils_are_drawn_dark_on_the_landmarks() -> None:
    template = build_shape(FaceParams())
    points = 200 + 300 * template  # a 400 px wide face in a 500 x 500 image
    for seed in range(5):
        pixels = np.asarray(render_face(np.random.default_rng(seed), points, 500, 500), float)
        luminance = pixels.mean(axis=2)
        cheek = _patch(luminance, 0.5 * (points[969] + points[841]))
        for pupil in (969, 970):
            assert _patch(luminance, points[pupil]) < 0.6 * cheek


def test_show_writes_a_png(dataset: Path, tmp_path) -> None:
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(cli, ["show", str(dataset), "--n", "4", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 300
    result = CliRunner().invoke(
        cli, ["show", str(dataset), "--split", "test", "--n", "2", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
