"""`export_fkd`: a package submission -> Kaggle's `RowId,Location` file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ensemble.errors import InputError
from ensemble.fkd.kaggle_files import read_lookup, requested_points, test_file_name
from ensemble.fkd.layout import IMAGE_SIZE
from ensemble.io.atomic import atomic_open, check_output
from ensemble.io.checks import row_index
from ensemble.io.submission import format_values, read_submission


def export_fkd(
    submission_csv: str | Path, lookup_csv: str | Path, out_csv: str | Path, decimals: int = 4
) -> int:
    """Write Kaggle's submission: one `RowId,Location` row per lookup row, in lookup order.

    The submission has one row per test_points row (file name `<ImageId>.png`) whose j-th pair
    is the j-th keypoint that image requests, in lookup order. Locations are clipped to
    [0, 96] and rounded half-to-even. Returns the number of rows written.
    """
    submission_csv, lookup_csv = Path(submission_csv), Path(lookup_csv)
    check_output(out_csv, [submission_csv, lookup_csv])
    lookup = read_lookup(lookup_csv)
    submission = read_submission(submission_csv, allow_missing=True)
    rows = _submission_rows(submission_csv, submission.file_names, lookup.image_ids)
    _, pairs = requested_points(lookup)
    width = submission.values.shape[1]
    if pairs.max() >= width:
        row = int(np.flatnonzero(pairs >= width)[0])
        raise InputError(
            submission_csv,
            f"has {width} pairs per row, but ImageId {lookup.image_ids[row]} requests "
            f"{int(pairs[lookup.image_ids == lookup.image_ids[row]].max()) + 1} keypoints",
            int(rows[row]) + 2,
        )
    values = submission.values[rows, pairs, lookup.axes]
    missing = np.isnan(values)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        column = f"Point_M{pairs[row]}_{'XY'[lookup.axes[row]]}"
        raise InputError(
            submission_csv,
            f"empty value in column '{column}', needed for {lookup.features[row]} of ImageId "
            f"{lookup.image_ids[row]} (RowId {lookup.row_ids[row]})",
            int(rows[row]) + 2,
        )
    locations = format_values(np.clip(values, 0.0, float(IMAGE_SIZE)), decimals)
    with atomic_open(out_csv, "w", encoding="utf-8", newline="") as handle:
        handle.write("RowId,Location\n")
        handle.writelines(
            f"{row_id},{location:.{decimals}f}\n"
            for row_id, location in zip(lookup.row_ids.tolist(), locations.tolist(), strict=True)
        )
    return len(lookup)


def _submission_rows(path: Path, file_names: np.ndarray, image_ids: np.ndarray) -> np.ndarray:
    """Row of the submission for every lookup row; InputError on a missing or extra image."""
    row_of = row_index(file_names.tolist())
    wanted = {test_file_name(image_id) for image_id in np.unique(image_ids).tolist()}
    for row, name in enumerate(file_names.tolist()):
        if name not in wanted:
            raise InputError(
                path, f"row '{name}' is not an image the lookup table asks for", row + 2
            )
    missing = sorted(wanted - row_of.keys(), key=lambda name: int(name.split(".")[0]))
    if missing:
        raise InputError(
            path, f"no row for {len(missing)} requested image(s), first '{missing[0]}'"
        )
    return np.array([row_of[test_file_name(image_id)] for image_id in image_ids.tolist()])
