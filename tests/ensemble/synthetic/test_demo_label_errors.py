"""Planted label errors and crowd images in the demo data (`make-demo --label-errors --crowd`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ensemble.cli import cli
from ensemble.io.landmarks import read_landmarks
from ensemble.synthetic import demo
from ensemble.synthetic.demo import Scene, choose_scenes, make_demo, place_face, planted_count
from ensemble.synthetic.face_model import sample_shape

N_TRAIN, N_TEST, SHARE = 40, 10, 0.1
SPLITS = {"train": 0, "test": 1}


def _write(out: Path, seed: int = 0, share: float = SHARE, n_jobs: int = 1) -> Path:
    make_demo(
        out,
        n_train=N_TRAIN,
        n_test=N_TEST,
        seed=seed,
        label_errors=share,
        crowd=share,
        progress=False,
        n_jobs=n_jobs,
    )
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("planted") / "data")


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("plain") / "data", share=0.0)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _listed(data: Path) -> list[str]:
    lines = (data / "train" / "label_errors.csv").read_text().splitlines()
    assert lines[0] == "file_name"
    return lines[1:]


def _subject(seed: int, split: int, index: int) -> np.ndarray:
    """The subject's landmarks as an image without a background face places them."""
    rng = np.random.default_rng([seed, split, index])
    shape, _ = sample_shape(rng)
    return place_face(rng, shape)[0]


def _on_subject(label: np.ndarray, subject: np.ndarray) -> bool:
    """Whether a label is the subject, moved sideways (a canvas widened on the left)."""
    shift = label - np.rint(subject)
    return bool(np.abs(shift - shift[0]).max() <= 1 and np.abs(shift[:, 1]).max() <= 1)


def _box_area(points: np.ndarray) -> float:
    return float(np.prod(points.max(axis=0) - points.min(axis=0)))


def _changed_images(first: Path, second: Path, split: str) -> set[str]:
    a, b = _files(first / split / "images"), _files(second / split / "images")
    assert a.keys() == b.keys()
    return {name for name in a if a[name] != b[name]}


def test_shares_are_rounded_half_up_and_disjoint() -> None:
    assert planted_count(0.01, 2000) == 20 and planted_count(0.01, 500) == 5
    assert planted_count(0.01, 50) == 1 and planted_count(0.01, 49) == 0
    scenes = choose_scenes(0, 0, 2000, 0.01, 0.01)
    assert np.count_nonzero(scenes == Scene.LABEL_ERROR) == 20
    assert np.count_nonzero(scenes == Scene.CROWD) == 20
    assert np.array_equal(scenes, choose_scenes(0, 0, 2000, 0.01, 0.01))
    assert not np.array_equal(scenes, choose_scenes(0, 1, 2000, 0.01, 0.01))
    capped = choose_scenes(0, 0, 3, 0.5, 0.5)  # 2 + 2 rounded up, but only 3 images
    assert sorted(capped.tolist()) == [Scene.CROWD, Scene.LABEL_ERROR, Scene.LABEL_ERROR]


def test_label_errors_csv_lists_exactly_the_labels_off_the_subject(planted: Path) -> None:
    marks = read_landmarks(planted / "train" / "landmarks.csv")
    off_subject = [
        name
        for index, (name, label) in enumerate(zip(marks.file_names, marks.points, strict=True))
        if not _on_subject(label, _subject(0, 0, index))
    ]
    assert _listed(planted) == off_subject == sorted(off_subject)
    assert len(off_subject) == planted_count(SHARE, N_TRAIN) == 4


def test_label_errors_sit_on_a_smaller_face_inside_the_image(planted: Path) -> None:
    marks = read_landmarks(planted / "train" / "landmarks.csv")
    rows = {name: row for row, name in enumerate(marks.file_names)}
    for name in _listed(planted):
        label = marks.points[rows[name]]
        with Image.open(planted / "train" / "images" / name) as image:
            width, height = image.size
        assert label.min() >= 0
        assert label[:, 0].max() <= width - 1 and label[:, 1].max() <= height - 1
        subject = _subject(0, 0, rows[name])
        assert 0.1 < _box_area(label) / _box_area(subject) < 0.4


def test_unchosen_images_are_the_same_as_without_planting(planted: Path, plain: Path) -> None:
    assert _listed(plain) == []
    assert (plain / "train" / "label_errors.csv").read_text() == "file_name\n"
    changed = _changed_images(planted, plain, "train")
    listed = set(_listed(planted))
    assert listed < changed and len(changed) == 2 * planted_count(SHARE, N_TRAIN)
    marks, plain_marks = (read_landmarks(d / "train" / "landmarks.csv") for d in (planted, plain))
    for row, name in enumerate(marks.file_names):
        if name not in changed:
            assert np.array_equal(marks.points[row], plain_marks.points[row])
        elif name not in listed:  # crowd: labelled on the subject
            assert _on_subject(marks.points[row], _subject(0, 0, row))
    assert (planted / "test" / "test_points.csv").read_bytes() == (
        plain / "test" / "test_points.csv"
    ).read_bytes()


def test_test_truth_is_always_the_subject(planted: Path, plain: Path) -> None:
    truth = read_landmarks(planted / "test" / "landmarks.csv")
    for index, label in enumerate(truth.points):
        assert _on_subject(label, _subject(0, 1, index))
    assert len(_changed_images(planted, plain, "test")) == planted_count(SHARE, N_TEST) == 1


def test_crowd_and_label_error_scenes_share_one_picture() -> None:
    crowd = demo.render_sample(0, 0, 3, Scene.CROWD)
    error = demo.render_sample(0, 0, 3, Scene.LABEL_ERROR)
    assert np.array_equal(np.asarray(crowd.image), np.asarray(error.image))
    assert crowd.label is crowd.subject and error.label is error.behind
    width, height = crowd.image.size
    for points in (crowd.subject, crowd.behind):
        assert points.min() >= 0
        assert points[:, 0].max() <= width - 1 and points[:, 1].max() <= height - 1
    single = demo.render_sample(0, 0, 3)
    assert single.behind is None and single.label is single.subject


def test_same_seed_same_bytes_whatever_the_jobs(planted: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "CHUNK", 8)  # several chunks, drawn by two processes
    again = _files(_write(tmp_path / "again", n_jobs=2))
    first = _files(planted)
    assert first.keys() == again.keys()
    assert all(first[name] == again[name] for name in first)


def test_another_seed_plants_another_set(planted: Path, tmp_path) -> None:
    other = _write(tmp_path / "other", seed=1)
    assert len(_listed(other)) == len(_listed(planted))
    assert _listed(other) != _listed(planted)


@pytest.mark.parametrize(
    ("label_errors", "crowd"), [(1.0, 0.0), (-0.1, 0.0), (0.0, 1.0), (0.6, 0.5), (np.nan, 0.0)]
)
def test_make_demo_refuses_bad_shares(tmp_path, label_errors: float, crowd: float) -> None:
    with pytest.raises(ValueError, match="label_errors|crowd"):
        make_demo(tmp_path, n_train=1, n_test=1, label_errors=label_errors, crowd=crowd)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--label-errors", "1"], "--label-errors"),
        (["--crowd", "-0.5"], "--crowd"),
        (["--label-errors", "0.6", "--crowd", "0.5"], "must be at most 1"),
        (["--format", "fkd", "--label-errors", "0.1"], "do not apply to --format fkd"),
        (["--format", "fkd", "--crowd", "0"], "do not apply to --format fkd"),
    ],
)
def test_cli_usage_errors(tmp_path, options: list[str], message: str) -> None:
    out = tmp_path / "data"
    result = CliRunner().invoke(
        cli, ["make-demo", str(out), "--train", "2", "--test", "1", *options]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_cli_plants_one_percent_by_default(tmp_path) -> None:
    out = tmp_path / "data"
    result = CliRunner().invoke(
        cli, ["make-demo", str(out), "--train", "100", "--test", "50", "--jobs", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "planted 1 label error (train/label_errors.csv)" in result.output
    assert "2 crowd images (1 train, 1 test)" in result.output
    assert len(_listed(out)) == 1
