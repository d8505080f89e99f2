"""A dataset's own layout (DATA/train/layout.json) and NME/PCK for any layout, against numpy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ensemble.competition.landmark_metrics import masked_nme, masked_pck, metric_report
from ensemble.competition.layout import (
    FACE_971,
    FACE_971_TWINS,
    Layout,
    Region,
    dataset_layout,
    flip_mismatches,
    flip_permutation,
    layout_for,
    read_layout,
    region_flip_permutation,
)
from ensemble.errors import InputError
from ensemble.fkd.layout import FKD_LAYOUT, KEYPOINTS
from ensemble.synthetic.face_model import FaceParams, build_shape

# Seven points: a left and a right eye of two points each, a nose tip, two mouth corners.
#   0, 1: left eye (outer, inner)   2, 3: right eye (inner, outer)   4: nose   5, 6: mouth L, R
SEVEN = {
    "name": "seven",
    "regions": {"left eye": [0, 1], "right eye": [2, 3], "nose": [4, 4], "mouth": [5, 6]},
    "twins": [[0, 3], [1, 2], [5, 6]],
    "eyes": [[0, 1], [2, 3]],
}
SEVEN_PERM = np.array([3, 2, 1, 0, 4, 6, 5])  # by hand: each point's mirror image


def write_layout(data: Path, spec: object) -> Path:
    path = data / "train" / "layout.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec), encoding="utf-8")
    return path


def test_a_layout_file_is_read_with_regions_twins_and_eyes(tmp_path: Path) -> None:
    write_layout(tmp_path, SEVEN)
    layout = dataset_layout(tmp_path, 7)
    assert layout.name == "seven" and layout.n_points == 7
    assert [(r.name, r.start, r.stop) for r in layout.regions] == [
        ("left eye", 0, 2),
        ("right eye", 2, 4),
        ("nose", 4, 5),
        ("mouth", 5, 7),
    ]
    assert layout.eyes == ((0, 1), (2, 3))
    np.testing.assert_array_equal(layout.flip_permutation(), SEVEN_PERM)  # no mean shape needed


def test_regions_may_come_in_any_order_and_every_key_is_optional(tmp_path: Path) -> None:
    path = write_layout(tmp_path, {"regions": {"b": [3, 6], "a": [0, 2]}})
    layout = read_layout(path, 7)
    assert [r.name for r in layout.regions] == ["a", "b"] and layout.eyes is None
    bare = read_layout(write_layout(tmp_path / "bare", {}), 5)
    assert [(r.name, len(r)) for r in bare.regions] == [("all points", 5)]
    assert bare.twins is None and bare.point_twins is None and bare.eyes is None


def test_without_a_layout_file_the_built_in_or_a_generic_layout(tmp_path: Path) -> None:
    assert dataset_layout(tmp_path, 971) is FACE_971
    assert dataset_layout(tmp_path, 15) is FKD_LAYOUT
    assert dataset_layout(None, 15) is FKD_LAYOUT
    generic = dataset_layout(tmp_path, 7)
    assert [r.name for r in generic.regions] == ["all points"] and generic.eyes is None
    assert FACE_971.eyes == ((969,), (970,)) and FKD_LAYOUT.eyes == ((0,), (1,))


def test_region_twins_match_the_point_order_on_the_mean_shape(tmp_path: Path) -> None:
    # two 3-point contours, the right one listed in the opposite order, and a centre point
    left = np.array([[-3.0, 0.0], [-2.0, 1.0], [-0.3, 2.0]])
    right = (left * [-1.0, 1.0])[::-1]
    shape = np.concatenate([left, right, [[0.0, 2.0]]]) + [10.0, 0.0]
    spec = {"regions": {"L": [0, 2], "R": [3, 5], "centre": [6, 6]}, "twins": {"L": "R"}}
    layout = read_layout(write_layout(tmp_path, spec), 7)
    hand = np.array([5, 4, 3, 2, 1, 0, 6])
    np.testing.assert_array_equal(layout.flip_permutation(shape), hand)
    with pytest.raises(ValueError, match="give the mean shape"):
        layout.flip_permutation()
    # a lopsided mean shape (point 3 raised): the free matching pairs the centre point with
    # point 2, across regions; matched per region instead
    lopsided = shape.copy()
    lopsided[3, 1] += 1.0
    assert flip_mismatches(flip_permutation(lopsided), layout, {"L": "R"})
    np.testing.assert_array_equal(layout.flip_permutation(lopsided), hand)


def test_built_in_layouts_keep_their_flip_permutations() -> None:
    from models.train import run_flip_permutation

    shape = build_shape(FaceParams())
    turned = shape.copy()
    turned[:, 0] += 0.25 * turned[:, 0] ** 2  # a free matching crosses regions here
    for mean in (shape, turned):
        free = flip_permutation(mean)
        old = (
            region_flip_permutation(mean, FACE_971, FACE_971_TWINS)
            if flip_mismatches(free, FACE_971, FACE_971_TWINS)
            else free
        )
        np.testing.assert_array_equal(FACE_971.flip_permutation(mean), old)
        np.testing.assert_array_equal(run_flip_permutation(mean), old)
    fkd_mean = np.random.default_rng(0).uniform(0, 1, (15, 2))
    swap = [KEYPOINTS.index(_swap_sides(name)) for name in KEYPOINTS]  # left_* <-> right_*
    fkd_mean[swap] = fkd_mean * [-1, 1] + [96, 0]  # exactly mirror-symmetric
    fkd_mean[[10, 13, 14], 0] = 48.0
    np.testing.assert_array_equal(run_flip_permutation(fkd_mean), swap)
    seven = np.random.default_rng(1).normal(size=(7, 2))
    np.testing.assert_array_equal(run_flip_permutation(seven), flip_permutation(seven))
    exact = Layout("seven", (Region("all", 0, 7),), point_twins=((0, 3), (1, 2), (5, 6)))
    np.testing.assert_array_equal(run_flip_permutation(seven, exact), SEVEN_PERM)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ('{"regions": {"a": [0, 6]},', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ({"region": {}}, r"unknown key\(s\) \['region'\]"),
        ({"regions": {"a": [0, 7]}}, r"'a' \[0, 7\] is not a range inside \[0, 6\]"),
        ({"regions": {"a": [0, 1, 2, 3, 4, 5, 6]}}, r"'a' must be \[first, last\]"),
        ({"regions": {"a": [0, 3], "b": [3, 6]}}, r"point 3 is in more than one region"),
        ({"regions": {"a": [0, 2], "b": [4, 6]}}, "1 point.s. in no region .first: 3."),
        ({"twins": [[0, 7]]}, r"twins: point 7 is out of range \[0, 7\)"),
        ({"twins": [[0, 1], [1, 2]]}, "twins: point 1 has more than one twin"),
        ({"twins": [[0, 1, 2]]}, "twins: expected point pairs"),
        (
            {"regions": {"a": [0, 1], "b": [2, 4], "c": [5, 6]}, "twins": {"a": "b"}},
            "twins: region 'a' has 2 points, its twin 'b' 3",
        ),
        ({"regions": {"a": [0, 6]}, "twins": {"a": "z"}}, "twins: no region 'z'"),
        ({"eyes": [[0, 1], [9]]}, r"eyes: point 9 is out of range \[0, 7\)"),
        ({"eyes": [[0, 1], [1, 2]]}, "eyes: the left and the right eye share a point"),
        ({"eyes": [0, 1, 2]}, r"eyes: expected \[left, right\]"),
        ({"eyes": [[], [1]]}, r"eyes: expected \[left, right\]"),
        ({"name": 7}, "name: expected a string"),
    ],
)
def test_a_bad_layout_file_is_an_input_error_naming_it(
    tmp_path: Path, spec: object, problem: str
) -> None:
    path = write_layout(tmp_path, spec)
    with pytest.raises(InputError, match=problem) as caught:
        dataset_layout(tmp_path, 7)
    assert caught.value.path == str(path) and str(caught.value).startswith(str(path))


def test_bad_json_names_its_line(tmp_path: Path) -> None:
    write_layout(tmp_path, '{\n  "eyes": [0, 1]\n  "twins": []\n}')
    with pytest.raises(InputError, match=r"layout.json, line 3: not valid JSON"):
        dataset_layout(tmp_path, 7)


def _faces(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    truth = rng.uniform(10, 90, (n, 7, 2))
    return truth, truth + rng.normal(0, 3, truth.shape)


def test_inter_ocular_nme_and_pck_of_two_point_eyes_match_numpy() -> None:
    rng = np.random.default_rng(2)
    truth, pred = _faces(rng, 12)
    truth[3, 1] = np.nan  # an eye point missing: image 3 is left out of NME/PCK
    truth[5, 6] = np.nan  # another point missing: left out of image 5's mean
    layout = Layout(
        "seven",
        (Region("all", 0, 7),),
        eyes=((0, 1), (2, 3)),
    )
    report = metric_report(pred, truth, layout=layout, alpha=0.08)
    rows, ratios = [], []
    for p, t in zip(pred, truth, strict=True):
        labelled = ~np.isnan(t).any(axis=1)
        if not labelled[:4].all():
            continue
        iod = np.linalg.norm(t[[0, 1]].mean(axis=0) - t[[2, 3]].mean(axis=0))
        ratio = np.linalg.norm(p - t, axis=1)[labelled] / iod
        rows.append(ratio.mean())
        ratios.extend(ratio)
    assert report.nme_norm == "inter-ocular" and report.rows_normalised == 11
    assert report.nme == pytest.approx(np.mean(rows), rel=1e-12)
    assert report.pck == pytest.approx(np.mean(np.array(ratios) <= 0.08), rel=1e-12)
    assert masked_nme(pred, truth, ([0, 1], [2, 3])) == pytest.approx(np.mean(rows), rel=1e-12)


def test_bounding_box_nme_and_pck_without_eyes_match_numpy() -> None:
    rng = np.random.default_rng(3)
    truth, pred = _faces(rng, 12)
    truth[4, [0, 6]] = np.nan  # its box is that of the other five points
    truth[7, 1:] = np.nan  # one labelled point: a flat box, left out
    report = metric_report(pred, truth, alpha=0.05)  # N = 7: generic layout, no eyes
    rows, ratios = [], []
    for p, t in zip(pred, truth, strict=True):
        labelled = ~np.isnan(t).any(axis=1)
        box = t[labelled].max(axis=0) - t[labelled].min(axis=0)
        if not (box > 0).all():
            continue
        ratio = np.linalg.norm(p - t, axis=1)[labelled] / np.sqrt(box[0] * box[1])
        rows.append(ratio.mean())
        ratios.extend(ratio)
    assert report.nme_norm == "bbox" and report.rows_normalised == 11
    assert report.rows_without_eyes == 1
    assert report.nme == pytest.approx(np.mean(rows), rel=1e-12)
    assert report.pck == pytest.approx(np.mean(np.array(ratios) <= 0.05), rel=1e-12)
    assert masked_nme(pred, truth) == pytest.approx(np.mean(rows), rel=1e-12)
    assert masked_pck(pred, truth, None, 0.05) == report.pck
    flat = truth.copy()
    flat[..., 1] = 5.0  # every box has zero height
    with pytest.raises(ValueError, match="bounding box of non-zero width and height"):
        masked_nme(pred, flat)
    assert metric_report(pred, flat).nme is None


def test_validation_metrics_follow_the_layout_file(tmp_path: Path) -> None:
    from models.val_metrics import METRIC_KEYS, validation_metrics

    truth, pred = _faces(np.random.default_rng(4), 10)
    layout = read_layout(write_layout(tmp_path, SEVEN), 7)
    with_eyes = validation_metrics(pred, truth, layout)
    assert with_eyes["val_nme_norm"] == "inter-ocular" and list(with_eyes) == list(METRIC_KEYS)
    assert with_eyes["val_nme"] == pytest.approx(masked_nme(pred, truth, ([0, 1], [2, 3])))
    plain = validation_metrics(pred, truth)
    assert plain["val_nme_norm"] == "bbox"
    assert plain["val_nme"] == pytest.approx(masked_nme(pred, truth))
    assert plain["val_pck"] == pytest.approx(masked_pck(pred, truth, None, 0.1))


def test_analysis_reads_the_layout_file(tmp_path: Path) -> None:
    from analysis.sections.points import points_section
    from ensemble.io.landmarks import write_landmarks
    from ensemble.io.predictions import save_predictions

    rng = np.random.default_rng(5)
    names = [f"{i:03d}.png" for i in range(20)]
    truth, pred = _faces(rng, 20)
    write_landmarks(tmp_path / "data" / "train" / "landmarks.csv", names, truth)
    truth = truth.astype(np.float32).astype(np.float64)
    save_predictions(tmp_path / "runs" / "a" / "val_predictions.npz", names, pred)
    pred = pred.astype(np.float32).astype(np.float64)

    def metrics_table(section):
        return next(b for b in section.blocks if getattr(b, "title", "").startswith("Other"))

    plain = points_section(tmp_path / "runs", tmp_path / "data", n_boot=20)
    assert "NME (bbox)" in metrics_table(plain).headers
    assert plain.summary["metrics"]["a"]["nme"] == pytest.approx(masked_nme(pred, truth))
    write_layout(tmp_path / "data", SEVEN)
    section = points_section(tmp_path / "runs", tmp_path / "data", n_boot=20)
    assert "NME (inter-ocular)" in metrics_table(section).headers
    got = section.summary["metrics"]["a"]
    assert got["nme_norm"] == "inter-ocular"
    assert got["nme"] == pytest.approx(masked_nme(pred, truth, ([0, 1], [2, 3])), rel=1e-9)
    regions = [region["name"] for region in section.summary["runs"]["a"]["regions"]]
    assert regions == ["left eye", "right eye", "nose", "mouth"]


def _swap_sides(name: str) -> str:
    return name.replace("left", "@").replace("right", "left").replace("@", "right")


def test_layout_for_is_the_registry_lookup() -> None:
    assert layout_for(971) is FACE_971 and layout_for(15) is FKD_LAYOUT
    assert layout_for(7).regions == (Region("all points", 0, 7),)
