"""The 15-keypoint Kaggle layout, its flip permutation and the 971 -> 15 keypoint mapping."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble.competition.layout import (
    FACE_971,
    LAYOUTS_FOLDER,
    flip_mismatches,
    flip_permutation,
    layout_for,
    read_layout,
)
from ensemble.fkd.layout import EYES, FKD_LAYOUT, FKD_TWINS, KEYPOINTS
from ensemble.synthetic.face_model import FaceParams, build_shape, sample_shape
from ensemble.synthetic.fkd import SOURCES, keypoints_from_971

# Means of the real Kaggle training labels (rounded): "left" is on the image's right.
KAGGLE_MEAN = np.array(
    [
        [66.4, 37.7], [30.3, 38.0], [59.2, 37.9], [73.3, 37.7], [36.7, 38.0], [22.4, 38.0],
        [56.1, 29.3], [79.5, 29.3], [39.3, 29.5], [15.9, 30.4], [48.4, 62.7], [63.3, 76.0],
        [32.9, 76.2], [48.0, 72.9], [48.6, 79.0],
    ]
)  # fmt: skip


def _swap_sides(name: str) -> str:
    return name.replace("left", "@").replace("right", "left").replace("@", "right")


def _swapped_by_name() -> np.ndarray:
    """The flip permutation by the keypoints' names: left_* <-> right_*, the rest in place."""
    return np.array([KEYPOINTS.index(_swap_sides(name)) for name in KEYPOINTS])


def test_layout_has_one_region_per_keypoint_in_kaggle_order() -> None:
    layout = FKD_LAYOUT
    assert layout.n_points == 15
    assert [region.name for region in layout.regions] == list(KEYPOINTS)
    assert all(len(region) == 1 for region in layout.regions)
    assert layout.region("nose_tip").start == 10
    assert KEYPOINTS[EYES[0]] == "left_eye_center" and KEYPOINTS[EYES[1]] == "right_eye_center"
    assert layout_for(15) is layout  # region tables and per-region blends use keypoint names
    assert layout == read_layout(LAYOUTS_FOLDER / "fkd15.json", 15)  # shipped as a layout file
    for left, right in FKD_TWINS.items():
        assert right == _swap_sides(left)


@pytest.mark.parametrize("source", ["kaggle", "template"])
def test_flip_permutation_derived_from_a_mean_shape(source: str) -> None:
    mean = KAGGLE_MEAN if source == "kaggle" else keypoints_from_971(build_shape(FaceParams()))
    np.testing.assert_array_equal(flip_permutation(mean), _swapped_by_name())
    np.testing.assert_array_equal(FKD_LAYOUT.flip_permutation(mean), _swapped_by_name())


def test_a_shape_with_sides_mixed_up_is_named() -> None:
    mixed = KAGGLE_MEAN.copy()
    mixed[[0, 2]] = mixed[[2, 0]]  # a left eye centre labelled as the inner corner
    problems = flip_mismatches(flip_permutation(mixed), FKD_LAYOUT, FKD_TWINS)
    assert any("left_eye_center" in problem for problem in problems)


def test_keypoints_are_extreme_points_of_their_971_regions() -> None:
    shape = build_shape(FaceParams())
    for name, region, pick in [
        ("right_eye_outer_corner", "left eye", np.argmin),
        ("right_eye_inner_corner", "left eye", np.argmax),
        ("left_eye_inner_corner", "right eye", np.argmin),
        ("left_eye_outer_corner", "right eye", np.argmax),
        ("mouth_right_corner", "upper lip, outer", np.argmin),
        ("mouth_left_corner", "upper lip, outer", np.argmax),
    ]:
        r = FACE_971.region(region)
        assert SOURCES[name] == (r.start + int(pick(shape[r.start : r.stop, 0])),)
    keypoints = keypoints_from_971(shape)
    assert keypoints[0, 0] > keypoints[1, 0]  # the subject's left eye is on the image's right
    centre = [KEYPOINTS.index(n) for n in ("nose_tip", "mouth_center_top_lip")]
    np.testing.assert_allclose(keypoints[centre, 0], 0.0, atol=1e-12)


def test_mapping_commutes_with_a_horizontal_flip() -> None:
    perm971 = flip_permutation(build_shape(FaceParams()))
    perm15 = _swapped_by_name()
    shape, _ = sample_shape(np.random.default_rng(3))  # asymmetric (pose and expression)

    def flip(points: np.ndarray, perm: np.ndarray) -> np.ndarray:
        out = points[perm].copy()
        out[:, 0] = 10.0 - out[:, 0]
        return out

    np.testing.assert_allclose(
        keypoints_from_971(flip(shape, perm971)), flip(keypoints_from_971(shape), perm15)
    )
