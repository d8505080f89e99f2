"""Readers for Kaggle's training.csv, test.csv and IdLookupTable.csv, with precise errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ensemble.errors import InputError
from ensemble.fkd.layout import IMAGE_SIZE, KEYPOINTS, N_KEYPOINTS, coordinate_columns
from ensemble.fkd.pixels import parse_pixels
from ensemble.io.checks import parser_error, read_first_line

TRAIN_HEADER = [*coordinate_columns(), "Image"]
TEST_HEADER = ["ImageId", "Image"]
LOOKUP_HEADER = ["RowId", "ImageId", "FeatureName", "Location"]
_CHUNK_ROWS = 512
# A keypoint may lie up to one image size beyond an edge (a face cut by the border), not more.
COORDINATE_RANGE = (-IMAGE_SIZE, 2 * IMAGE_SIZE)


@dataclass(frozen=True)
class Lookup:
    """IdLookupTable.csv: one requested coordinate per row (point index, axis 0 = x, 1 = y)."""

    row_ids: np.ndarray
    image_ids: np.ndarray
    features: np.ndarray
    points: np.ndarray
    axes: np.ndarray

    def __len__(self) -> int:
        return len(self.row_ids)


@dataclass(frozen=True)
class TrainingChunk:
    """Consecutive training.csv rows: keypoints (n, 15, 2) with NaN = empty cell, images."""

    first_line: int
    points: np.ndarray
    images: np.ndarray


def test_file_name(image_id: int) -> str:
    """File name of a test image in the package layout."""
    return f"{int(image_id)}.png"


def train_file_name(line: int) -> str:
    """File name of the training image on `line` of training.csv (line 2 = first row)."""
    return f"{line - 1:05d}.png"


def _open(path: Path, header: list[str], chunksize: int | None):
    """A pandas reader of a Kaggle CSV after checking its header; every cell is a string."""
    first = read_first_line(path)
    if not first:
        raise InputError(path, "file is empty (expected a header line)", 1)
    found = first.split(",")
    if found != header:
        shown = ",".join(header) if len(header) < 8 else f"{header[0]},...,{header[-1]}"
        detail = next(
            (
                f"column {i + 1} is '{g}', expected '{w}'"
                for i, (g, w) in enumerate(zip(found, header, strict=False))
                if g != w
            ),
            f"{len(found)} columns, expected {len(header)}",
        )
        raise InputError(path, f"wrong header ({detail}); expected {shown}", 1)
    return pd.read_csv(
        path,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        skip_blank_lines=False,
        chunksize=chunksize,
        engine="c",
    )


def _read_whole(path: Path, header: list[str]) -> pd.DataFrame:
    """A whole Kaggle CSV (header checked, at least one row); parse errors name the line."""
    try:
        frame = _open(path, header, None)
    except pd.errors.ParserError as error:
        raise parser_error(path, error, ",", csv_quotes=True) from None
    if len(frame) == 0:
        raise InputError(path, "no data rows after the header", 2)
    return frame


def _unique_ids(path: Path, frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column of distinct non-negative integers (ImageId, RowId) of a whole file."""
    ids = _integers(path, frame[column], column, 2)
    _first_duplicate(path, ids, column, 2)
    return ids


def _integers(path: Path, values: pd.Series, column: str, first_line: int) -> np.ndarray:
    """A column of non-negative integers, or InputError naming the first bad line."""
    text = values.fillna("").str.strip()
    bad = ~text.str.fullmatch(r"\d{1,18}")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            path, f"{column} '{values.iloc[row]}' is not a non-negative integer", first_line + row
        )
    return text.astype(np.int64).to_numpy()


def _first_duplicate(path: Path, ids: np.ndarray, column: str, first_line: int) -> None:
    """Raise on the first repeated value of `ids`, naming both lines."""
    seen: dict = {}
    for row, value in enumerate(ids.tolist()):
        if value in seen:
            raise InputError(
                path,
                f"duplicate {column} {value} (first seen on line {seen[value]})",
                first_line + row,
            )
        seen[value] = first_line + row


def read_test_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """test.csv -> (ImageIds (n,) int64, images (n, 96, 96) uint8)."""
    path = Path(path)
    frame = _read_whole(path, TEST_HEADER)
    ids = _unique_ids(path, frame, "ImageId")
    return ids, parse_pixels(path, frame["Image"].tolist(), 2)


def iter_training(path: str | Path) -> Iterator[TrainingChunk]:
    """training.csv in chunks: keypoints with NaN for empty cells, and the decoded images."""
    path = Path(path)
    columns = coordinate_columns()
    line = 2
    try:
        for frame in _open(path, TRAIN_HEADER, _CHUNK_ROWS):
            values = _coordinates(path, frame, columns, line)
            images = parse_pixels(path, frame["Image"].tolist(), line)
            yield TrainingChunk(line, values.reshape(len(frame), N_KEYPOINTS, 2), images)
            line += len(frame)
    except pd.errors.ParserError as error:
        raise parser_error(path, error, ",", csv_quotes=True) from None
    if line == 2:
        raise InputError(path, "no data rows after the header", 2)


def _coordinates(path: Path, frame: pd.DataFrame, columns: list[str], first_line: int):
    """The 30 coordinate columns as float64 (NaN where empty); InputError on bad numbers."""
    block = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = (np.isnan(block) & frame[columns].notna().to_numpy()) | np.isinf(block)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(
            path,
            f"value '{frame[columns[col]].iloc[row]}' in column '{columns[col]}' is not a "
            "finite number",
            first_line + int(row),
        )
    _check_inside(path, frame, columns, block, first_line)
    return block


def _check_inside(
    path: Path, frame: pd.DataFrame, columns: list[str], block: np.ndarray, first_line: int
) -> None:
    """InputError on the first keypoint outside COORDINATE_RANGE (NaN = empty is fine)."""
    low, high = COORDINATE_RANGE
    outside = (block < low) | (block >= high)
    if outside.any():
        row, col = np.argwhere(outside)[0]
        raise InputError(
            path,
            f"keypoint {columns[col]} = {frame[columns[col]].iloc[row].strip()} (column "
            f"{col + 1}) lies outside the {IMAGE_SIZE}x{IMAGE_SIZE} image: keypoints must be in "
            f"[{low}, {high}), at most one image size beyond an edge",
            first_line + int(row),
        )


def read_lookup(path: str | Path, test_ids: np.ndarray | None = None) -> Lookup:
    """IdLookupTable.csv; with `test_ids`, every ImageId must be one of them."""
    path = Path(path)
    frame = _read_whole(path, LOOKUP_HEADER)
    row_ids = _unique_ids(path, frame, "RowId")
    image_ids = _integers(path, frame["ImageId"], "ImageId", 2)
    if test_ids is not None:
        unknown = ~np.isin(image_ids, test_ids)
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise InputError(path, f"ImageId {image_ids[row]} is not in test.csv", row + 2)
    features = frame["FeatureName"].fillna("").to_numpy(dtype=object)
    codes = {name: i for i, name in enumerate(coordinate_columns())}
    known = np.array([name in codes for name in features])
    if not known.all():
        row = int(np.flatnonzero(~known)[0])
        raise InputError(
            path,
            f"unknown FeatureName '{features[row]}' (expected one of the 30 coordinates, "
            f"like {KEYPOINTS[0]}_x)",
            row + 2,
        )
    code = np.array([codes[name] for name in features], dtype=np.int64)
    _repeated_request(path, image_ids, features)
    return Lookup(row_ids, image_ids, features, code // 2, code % 2)


def _repeated_request(path: Path, image_ids: np.ndarray, features: np.ndarray) -> None:
    """Raise if an image asks for the same coordinate twice."""
    seen: dict[tuple[int, str], int] = {}
    for row, key in enumerate(zip(image_ids.tolist(), features.tolist(), strict=True)):
        if key in seen:
            raise InputError(
                path,
                f"ImageId {key[0]} asks for {key[1]} again (first on line {seen[key]})",
                row + 2,
            )
        seen[key] = row + 2


def requested_points(lookup: Lookup) -> tuple[dict[int, list[int]], np.ndarray]:
    """Each image's requested keypoints in order of first appearance, and every lookup row's
    position in its image's list (the pair of the submission row that holds its value)."""
    order: dict[int, list[int]] = {}
    positions = np.empty(len(lookup), dtype=np.int64)
    for row, (image, point) in enumerate(
        zip(lookup.image_ids.tolist(), lookup.points.tolist(), strict=True)
    ):
        points = order.setdefault(image, [])
        if point not in points:
            points.append(point)
        positions[row] = points.index(point)
    return order, positions
