"""Kaggle Facial Keypoints: its 15 keypoints in Kaggle's column order, image size, layout.

The layout (a one-point region per keypoint, the left/right twins, the eye centres) is the
built-in layout file `ensemble/competition/layouts/fkd15.json`. Kaggle's "left" is the
subject's left, which appears on the right of the image (larger x).
"""

from __future__ import annotations

from ensemble.competition.layout import layout_for

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

FKD_LAYOUT = layout_for(N_KEYPOINTS)  # ensemble/competition/layouts/fkd15.json
FKD_TWINS: dict[str, str] = dict(FKD_LAYOUT.twins or ())
# Indices of the two eye centres (the inter-ocular distance of NME and PCK).
EYES = (FKD_LAYOUT.eyes[0][0], FKD_LAYOUT.eyes[1][0])

# The keypoints present in almost every training row of the real data.
ALWAYS_LABELLED: tuple[str, ...] = (
    "left_eye_center",
    "right_eye_center",
    "nose_tip",
    "mouth_center_bottom_lip",
)


def coordinate_columns() -> list[str]:
    """Kaggle's 30 coordinate column names: left_eye_center_x, left_eye_center_y, ..."""
    return [f"{name}_{axis}" for name in KEYPOINTS for axis in ("x", "y")]
