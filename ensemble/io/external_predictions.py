"""Predictions made elsewhere (`ens import-run`): read from any accepted format and matched to a
data set's images.

Formats, told apart by their content (a protocol 0-1 pickle by its suffix):

- the organisers' pickle: a dict `{"image_names": [paths], "landmarks": array (n, N, 2)}`, read
  by the restricted unpickler of `ensemble.io.safe_pickle`;
- `.npz`: arrays `file_names` and `points` (as this package's predictions files) or
  `image_names` and `landmarks`; an `.npz` with the points alone, or an `.npy` array
  (n, N, 2), has no file names;
- a landmarks TSV in the `train/landmarks.csv` layout: every landmark of each image;
- a submission CSV: only the points `test_points.csv` requests of each test image.

File names are matched to the data set's by their last path component, so the organisers'
`data/test/images/000123.jpg` is the image `000123.jpg`.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.errors import InputError
from ensemble.io.checks import MAX_COORDINATE, quoted, read_first_line
from ensemble.io.file_kind import require_file
from ensemble.io.landmarks import read_landmarks
from ensemble.io.safe_pickle import load_pickle
from ensemble.io.submission import read_submission

NAME_KEYS = ("file_names", "image_names")
POINT_KEYS = ("points", "landmarks")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pck")
SUBMISSION = "submission"
_ZIP, _NPY, _PICKLE2 = b"PK", b"\x93NUMPY", b"\x80"
_NO_NAMES = (
    "the points have no file names: save them with the names (an .npz with 'file_names' and "
    "'points', or a pickled dict with 'image_names' and 'landmarks'), or pass --order data "
    "when the rows follow {reference} row by row"
)


@dataclass(frozen=True)
class ExternalPredictions:
    """Points read from a file: every landmark, or with format "submission" the requested ones."""

    path: Path
    format: str  # "pickle", "npz", "npy", "landmarks" or "submission"
    file_names: np.ndarray | None  # (n,) as written in the file (paths allowed); None: no names
    points: np.ndarray  # (n, P, 2) float64

    @property
    def requested_only(self) -> bool:
        """True for a submission: only the points test_points.csv requests, not all N."""
        return self.format == SUBMISSION


@dataclass(frozen=True)
class Matched:
    """External points matched to a reference list of images, in the reference's order."""

    positions: np.ndarray  # (m,) rows of the reference the file covers, increasing
    points: np.ndarray  # (m, P, 2) float64


def read_external(path: str | Path) -> ExternalPredictions:
    """Read predictions in any accepted format (InputError naming the file when none fits)."""
    path = Path(path)
    require_file(path)
    try:
        with open(path, "rb") as handle:
            start = handle.read(8)
    except OSError as error:
        raise InputError(path, f"cannot read the file ({error.strerror or error})") from None
    if start.startswith(_ZIP) or start.startswith(_NPY):
        return _read_numpy(path)
    if start.startswith(_PICKLE2) or path.suffix.lower() in PICKLE_SUFFIXES:
        return _from_object(path, "pickle", load_pickle(path))
    header = read_first_line(path)
    if "\t" in header:
        landmarks = read_landmarks(path)
        return ExternalPredictions(path, "landmarks", landmarks.file_names, landmarks.points)
    if header.startswith("file_name,") or header.startswith('"file_name",'):
        submission = read_submission(path, allow_missing=True)
        return ExternalPredictions(path, SUBMISSION, submission.file_names, submission.values)
    raise InputError(
        path,
        "unknown format: expected a pickle, an .npz or .npy file, a landmarks TSV or a "
        "submission CSV (see `ens import-run --help`)",
    )


def _read_numpy(path: Path) -> ExternalPredictions:
    """An .npz of named arrays or an .npy array, loaded without pickle."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            kind, value = "npy", loaded
        else:
            with loaded:
                kind, value = "npz", {key: loaded[key] for key in loaded.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise InputError(
                path,
                "holds Python objects (an object array needs pickle, which is refused here); "
                "save file names as strings: np.array(names, dtype=str)",
            ) from None
        raise InputError(path, f"not a valid .npz or .npy file ({error})") from None
    except (EOFError, OSError, zipfile.BadZipFile, zlib.error) as error:
        raise InputError(path, f"not a valid .npz or .npy file ({error})") from None
    return _from_object(path, kind, value)


def _from_object(path: Path, kind: str, value: object) -> ExternalPredictions:
    """Names and points from a loaded dict of arrays, or a bare array of points."""
    if not isinstance(value, Mapping):
        if isinstance(value, np.ndarray):
            return ExternalPredictions(path, kind, None, _points(path, value))
        raise InputError(
            path,
            f"holds a {type(value).__name__}; expected a dict like {{'image_names': [...], "
            "'landmarks': array (images, points, 2)}",
        )
    points_key = next((key for key in POINT_KEYS if key in value), None)
    if points_key is None:
        raise InputError(
            path,
            f"no points: expected an array named {' or '.join(map(repr, POINT_KEYS))}, "
            f"found {sorted(map(str, value))}",
        )
    points = _points(path, value[points_key])
    names_key = next((key for key in NAME_KEYS if key in value), None)
    if names_key is None:
        return ExternalPredictions(path, kind, None, points)
    names = _names(path, value[names_key], names_key)
    if len(names) != len(points):
        raise InputError(path, f"{len(names)} {names_key} for {len(points)} rows of {points_key}")
    return ExternalPredictions(path, kind, names, points)


def _points(path: Path, value: object) -> np.ndarray:
    """A numeric array (images, points, 2) as float64."""
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nested lists
        raise InputError(path, "the points are not one array (rows of different lengths)") from None
    if array.dtype.kind not in "iuf" or array.ndim != 3 or array.shape[2] != 2:
        raise InputError(
            path, f"points of shape {array.shape} ({array.dtype}); expected (images, points, 2)"
        )
    return array.astype(np.float64)


def _names(path: Path, value: object, key: str) -> np.ndarray:
    """A 1-D array of non-empty strings."""
    array = np.asarray(value, dtype=object)
    if array.ndim != 1 or not all(isinstance(name, str) and name for name in array):
        raise InputError(path, f"{key} must be a list of non-empty strings")
    return array


def image_name(name: str) -> str:
    """The image a written name refers to: its last path component (either slash)."""
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def match_images(
    external: ExternalPredictions,
    reference: np.ndarray,
    reference_path: Path,
    *,
    data_order: bool = False,
    partial: bool = False,
) -> Matched:
    """The external points of the reference images the file covers, in reference order.

    Named rows are matched by file name; a repeated image, or one the reference lacks, is an
    InputError naming it, and so is a missing one unless `partial`. Points without names are
    taken row by row when `data_order` (then for every reference image), else refused.
    """
    path, count = external.path, len(external.points)
    if external.file_names is None:
        if not data_order:
            raise InputError(path, _NO_NAMES.format(reference=reference_path))
        if count != len(reference):
            raise InputError(
                path,
                f"{count} rows without file names, {reference_path} has {len(reference)}: with "
                "--order data the rows must be its images, in its order",
            )
        return Matched(np.arange(count), external.points)
    position = {name: row for row, name in enumerate(reference)}
    rows = np.full(len(reference), -1)
    for row, written in enumerate(external.file_names):
        name = image_name(written)
        if name not in position:
            extra = sum(image_name(other) not in position for other in external.file_names)
            raise InputError(
                path, f"{extra} image(s) not in {reference_path}, the first {quoted(written)}"
            )
        first = rows[position[name]]
        if first >= 0:
            raise InputError(
                path, f"image {quoted(name)} appears twice (rows {first + 1} and {row + 1})"
            )
        rows[position[name]] = row
    missing = np.flatnonzero(rows < 0)
    if len(missing) and not partial:
        raise InputError(
            path,
            f"{len(missing)} image(s) of {reference_path} missing, the first "
            f"{quoted(reference[missing[0]])}",
        )
    covered = np.flatnonzero(rows >= 0)
    return Matched(covered, external.points[rows[covered]])


def check_values(
    external: ExternalPredictions,
    names: np.ndarray,
    points: np.ndarray,
    requested: np.ndarray | None = None,
) -> None:
    """InputError naming the first image of `names` whose `points` (m, P, 2) are not finite
    pixel coordinates; with `requested` (m, P) only those values are checked."""
    bad = ~(np.abs(points) <= MAX_COORDINATE)  # NaN and infinity fail the comparison
    if requested is not None:
        bad &= requested[:, :, None]
    if bad.any():
        row, point, axis = np.argwhere(bad)[0]
        value = points[row, point, axis]
        problem = "not finite" if not np.isfinite(value) else "not a plausible pixel coordinate"
        raise InputError(
            external.path,
            f"image {quoted(names[row])}: point {point} {'xy'[axis]} = {value:g} is {problem}",
        )
