"""The 15-keypoint layout of Kaggle Facial Keypoints, with its left/right twins and eyes.

Kaggle's "left" is the subject's left, which appears on the right of the image (larger x).
"""

from __future__ import annotations

import numpy as np

from ensemble.competition.layout import Layout, Region, flip_mismatches, flip_permutation

IMAGE_SIZE = 96
N_PIXELS = IMAGE_SIZE * IMAGE_SIZE

# Kaggle's column order of training.csv (each name has an _x and a _y column).
KEYPOINTS: tuple[str, ...] = (
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)
N_KEYPOINTS = len(KEYPOINTS)

# Indices of the two eye centres (the inter-ocular distance of NME and PCK).
EYES = (KEYPOINTS.index("left_eye_center"), KEYPOINTS.index("right_eye_center"))

# The keypoints present in almost every training row of the real data.
ALWAYS_LABELLED: tuple[str, ...] = (
    "left_eye_center",
    "right_eye_center",
    "nose_tip",
    "mouth_center_bottom_lip",
)

FKD_TWINS: dict[str, str] = {
    "left_eye_center": "right_eye_center",
    "left_eye_inner_corner": "right_eye_inner_corner",
    "left_eye_outer_corner": "right_eye_outer_corner",
    "left_eyebrow_inner_end": "right_eyebrow_inner_end",
    "left_eyebrow_outer_end": "right_eyebrow_outer_end",
    "mouth_left_corner": "mouth_right_corner",
}

FKD_LAYOUT = Layout(
    "fkd15",
    tuple(Region(name, index, index + 1) for index, name in enumerate(KEYPOINTS)),
    twins=tuple(FKD_TWINS.items()),
    eyes=((EYES[0],), (EYES[1],)),
)


def fkd_layout() -> Layout:
    """The 15-keypoint layout: a one-point region per keypoint, its twins and eye centres."""
    return FKD_LAYOUT


def coordinate_columns() -> list[str]:
    """Kaggle's 30 coordinate column names: left_eye_center_x, left_eye_center_y, ..."""
    return [f"{name}_{axis}" for name in KEYPOINTS for axis in ("x", "y")]


def twin_permutation() -> np.ndarray:
    """The flip permutation the twin table prescribes: perm[i] = twin of keypoint i (or i)."""
    pairs = dict(FKD_TWINS)
    pairs.update({right: left for left, right in FKD_TWINS.items()})
    return np.array([KEYPOINTS.index(pairs.get(name, name)) for name in KEYPOINTS])


def fkd_flip_permutation(mean_shape: np.ndarray) -> np.ndarray:
    """Derive the horizontal-flip permutation from a (15, 2) mean shape and check it.

    Uses `ensemble.competition.layout.flip_permutation` (mirror and optimal assignment); raises
    ValueError unless the result swaps every left_*/right_* pair and keeps the centre line in
    place.
    """
    perm = flip_permutation(mean_shape)
    problems = flip_mismatches(perm, FKD_LAYOUT, FKD_TWINS)
    if problems:
        raise ValueError("flip permutation of the mean shape is wrong: " + "; ".join(problems))
    return perm
