"""Landmark layouts, the dataset's metadata: regions, left/right twins, eyes, the flip permutation.

A `Layout` is to ens what mmpose's `dataset_info` is to mmpose: what the landmarks of a dataset are.
It names contiguous index ranges (regions: per-region tables, per-region blends), says which points
swap under a horizontal flip (flip augmentation, flip TTA), and which points are the eyes (NME and
PCK normalise by the inter-ocular distance; without eyes, by the face's box, see
`ensemble.competition.landmark_metrics`). Nothing else in the package chooses behaviour by the
number of points.

Where a dataset's layout comes from (`dataset_layout`, the one lookup training, metrics and
analysis call):

1. `DATA/train/layout.json` when the dataset ships one (any N; format in `read_layout`);
2. else the built-in layout for N (`BUILTIN_LAYOUTS`: the competition's 971 points, the 15
   Kaggle Facial Keypoints), shipped as layout files in `ensemble/competition/layouts/` and read
   by the same reader;
3. else a generic layout: one region "all points", its flip permutation matched freely on the
   mean shape, no eyes.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.errors import TOO_DEEP, TOO_MANY_DIGITS, InputError
from ensemble.io.checks import literal, quoted, shortened
from ensemble.io.data_folder import DataFolder
from ensemble.io.file_kind import require_regular_file


@dataclass(frozen=True)
class Region:
    """A named, contiguous range of landmark indices [start, stop)."""

    name: str
    start: int
    stop: int

    @property
    def indices(self) -> np.ndarray:
        """The landmark indices of the region."""
        return np.arange(self.start, self.stop)

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Layout:
    """A landmark layout: regions tiling [0, n_points), flip twins and eyes where known.

    `twins`: pairs of region names (left, right) that swap under a horizontal flip; every other
    region maps onto itself. The point order inside a pair is matched on the mean shape.
    `point_twins`: pairs of point indices that swap (every other point stays), the exact
    permutation, as mmpose's `swap`. At most one of the two; with neither the permutation is
    matched freely on the mean shape. `eyes`: the indices of the left and of the right eye
    (each eye's centre is the mean of its points), or None.
    """

    name: str
    regions: tuple[Region, ...]
    twins: tuple[tuple[str, str], ...] | None = None
    point_twins: tuple[tuple[int, int], ...] | None = None
    eyes: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        problem = layout_problem(self.regions, self.twins, self.point_twins, self.eyes)
        if problem is not None:
            raise ValueError(f"layout '{self.name}': {problem}")

    @property
    def n_points(self) -> int:
        """Total number of landmarks."""
        return self.regions[-1].stop

    def region_ids(self) -> np.ndarray:
        """Region number of every landmark index, shape (n_points,)."""
        ids = np.empty(self.n_points, dtype=np.int64)
        for number, region in enumerate(self.regions):
            ids[region.start : region.stop] = number
        return ids

    def region_of(self, index: int) -> Region:
        """The region that holds landmark `index`."""
        if not 0 <= index < self.n_points:
            raise IndexError(f"landmark index {index} out of range [0, {self.n_points})")
        return self.regions[int(self.region_ids()[index])]

    def region(self, name: str) -> Region:
        """The region called `name`."""
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(f"no region '{name}' in layout '{self.name}'")

    def flip_permutation(self, mean_shape: np.ndarray | None = None) -> np.ndarray:
        """The horizontal-flip permutation: `perm[i]` is the landmark point i becomes.

        Point twins give it exactly. Otherwise it is matched on `mean_shape` (N, 2): freely
        (`flip_permutation`), and with region twins checked against them and, where the free
        matching crosses a region boundary (a slightly asymmetric mean shape), matched region
        by region instead (`region_flip_permutation`).
        """
        if self.point_twins is not None:
            perm = np.arange(self.n_points)
            for left, right in self.point_twins:
                perm[left], perm[right] = right, left
            return perm
        if mean_shape is None:
            raise ValueError(f"layout '{self.name}' lists no point twins: give the mean shape")
        if len(mean_shape) != self.n_points:
            raise ValueError(
                f"mean shape has {len(mean_shape)} points, layout '{self.name}' {self.n_points}"
            )
        free = flip_permutation(mean_shape)
        if self.twins is None:
            return free
        twins = dict(self.twins)
        if flip_mismatches(free, self, twins):
            return region_flip_permutation(mean_shape, self, twins)
        return free


def layout_problem(
    regions: tuple[Region, ...],
    twins: tuple[tuple[str, str], ...] | None,
    point_twins: tuple[tuple[int, int], ...] | None,
    eyes: tuple[tuple[int, ...], tuple[int, ...]] | None,
) -> str | None:
    """What makes these parts an inconsistent Layout (None when they fit together)."""
    if not regions:
        return "no regions"
    stop, sizes = 0, {}
    for region in regions:
        if region.start != stop or region.stop <= region.start:
            return (
                f"region '{region.name}' is [{region.start}, {region.stop}), expected it to "
                f"start at {stop} and hold at least one point"
            )
        if region.name in sizes:
            return f"region name '{region.name}' is repeated"
        stop, sizes[region.name] = region.stop, len(region)
    if twins is not None and point_twins is not None:
        return "give region twins or point twins, not both"
    seen: set = set()
    for left, right in twins or ():
        for name in (left, right):
            if name not in sizes:
                return f"twins: no region '{name}'"
            if name in seen:
                return f"twins: region '{name}' has more than one twin"
            seen.add(name)
        if left == right:
            return f"twins: region '{left}' is paired with itself"
        if sizes[left] != sizes[right]:
            return (
                f"twins: region '{left}' has {sizes[left]} points, its twin '{right}' "
                f"{sizes[right]}"
            )
    for pair in point_twins or ():
        for index in pair:
            if not 0 <= index < stop:
                return f"twins: point {index} is out of range [0, {stop})"
            if index in seen:
                return f"twins: point {index} has more than one twin"
            seen.add(index)
        if pair[0] == pair[1]:
            return f"twins: point {pair[0]} is paired with itself"
    if eyes is not None:
        if len(eyes) != 2 or not all(eyes):
            return "eyes: expected the left and the right eye's indices, both non-empty"
        for index in (i for eye in eyes for i in eye):
            if not 0 <= index < stop:
                return f"eyes: point {index} is out of range [0, {stop})"
        if set(eyes[0]) & set(eyes[1]):
            return "eyes: the left and the right eye share a point"
    return None


# The layouts ens knows by their number of points, shipped as layout files beside this module
# (read by `read_layout`, as a dataset's own train/layout.json); the only place N picks a layout.
BUILTIN_LAYOUTS: dict[int, str] = {971: "face971.json", 15: "fkd15.json"}
LAYOUTS_FOLDER = Path(__file__).with_name("layouts")


@functools.cache
def builtin_layout(n_points: int) -> Layout | None:
    """The built-in layout with `n_points` landmarks (`BUILTIN_LAYOUTS`), or None."""
    name = BUILTIN_LAYOUTS.get(n_points)
    return None if name is None else read_layout(LAYOUTS_FOLDER / name, n_points)


def generic_layout(n_points: int) -> Layout:
    """A layout with a single region, no twins and no eyes, for any N."""
    return Layout(f"points{n_points}", (Region("all points", 0, n_points),))


def layout_for(n_points: int) -> Layout:
    """The built-in layout with `n_points` landmarks (`BUILTIN_LAYOUTS`), else a generic one."""
    return builtin_layout(n_points) or generic_layout(n_points)


def layout_path(data_dir: str | Path) -> Path:
    """Where a dataset keeps its own layout: DATA/train/layout.json."""
    return DataFolder.at(data_dir).layout_file


def dataset_layout(data_dir: str | Path | None, n_points: int) -> Layout:
    """The layout of the dataset in `data_dir` with `n_points` landmarks.

    DATA/train/layout.json when it exists (read and checked by `read_layout`), else
    `layout_for(n_points)`: the built-in layout for N, or a generic one.
    """
    if data_dir is not None and layout_path(data_dir).exists():
        return read_layout(layout_path(data_dir), n_points)
    return layout_for(n_points)


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _regions_from(path: Path, value: object, n_points: int) -> tuple[Region, ...]:
    if not isinstance(value, dict) or not value:
        raise InputError(path, 'regions: expected an object {"name": [first, last], ...}')
    regions = []
    for name, span in value.items():
        if not (isinstance(span, list) and len(span) == 2 and all(map(_is_index, span))):
            raise InputError(
                path,
                f"regions: {quoted(name)} must be [first, last], its first and last index "
                f"(inclusive), got {shortened(json.dumps(span))}",
            )
        first, last = span
        if not 0 <= first <= last < n_points:
            raise InputError(
                path,
                f"regions: {quoted(name)} {shortened(json.dumps(span))} is not a range inside "
                f"[0, {n_points - 1}] "
                f"({n_points} points in train/landmarks.csv)",
            )
        regions.append(Region(name, first, last + 1))
    regions.sort(key=lambda region: region.start)
    covered = np.zeros(n_points, dtype=np.int64)
    for region in regions:
        covered[region.start : region.stop] += 1
    if (covered > 1).any():
        index = int(np.flatnonzero(covered > 1)[0])
        names = [r.name for r in regions if r.start <= index < r.stop]
        raise InputError(
            path, f"regions: point {index} is in more than one region {literal(names)}"
        )
    if (covered == 0).any():
        missing = np.flatnonzero(covered == 0)
        raise InputError(
            path,
            f"regions: {len(missing)} point(s) in no region (first: {int(missing[0])}); the "
            f"regions must cover all {n_points} points",
        )
    return tuple(regions)


def _twins_from(
    path: Path, value: object
) -> tuple[tuple[tuple[str, str], ...] | None, tuple[tuple[int, int], ...] | None]:
    if isinstance(value, dict):
        if not all(isinstance(twin, str) for twin in value.values()):
            raise InputError(path, 'twins: expected {"left region": "right region", ...}')
        return tuple(value.items()), None
    pairs = value if isinstance(value, list) else None
    if pairs is None or not all(
        isinstance(pair, list) and len(pair) == 2 and all(map(_is_index, pair)) for pair in pairs
    ):
        raise InputError(
            path,
            'twins: expected point pairs [[left, right], ...] or region names {"left": "right"}',
        )
    return None, tuple((left, right) for left, right in pairs)


def _eyes_from(path: Path, value: object) -> tuple[tuple[int, ...], tuple[int, ...]]:
    def eye(side: object) -> tuple[int, ...] | None:
        if _is_index(side):
            return (side,)
        if isinstance(side, list) and side and all(map(_is_index, side)):
            return tuple(side)
        return None

    sides = [eye(side) for side in value] if isinstance(value, list) and len(value) == 2 else []
    if len(sides) != 2 or None in sides:
        raise InputError(
            path,
            "eyes: expected [left, right], each an index or a list of indices (the eye's centre "
            f"is their mean), got {shortened(json.dumps(value))}",
        )
    return sides[0], sides[1]


LAYOUT_KEYS = ("name", "regions", "twins", "eyes")


def read_layout(path: str | Path, n_points: int) -> Layout:
    """Read and check a layout file for a dataset of `n_points` landmarks.

    A JSON object, every key optional::

        {"name": "300w68",
         "regions": {"jaw": [0, 16], "right eyebrow": [17, 21], ...},
         "twins": [[0, 16], [1, 15], ...],
         "eyes": [[36, 37, 38, 39, 40, 41], [42, 43, 44, 45, 46, 47]]}

    `regions`: name -> [first, last] (inclusive), covering every index 0..N-1 exactly once
    (default: one region "all points"). `twins`: point pairs [[left, right], ...] that swap
    under a horizontal flip (every other point stays), or region names {"left eye": "right
    eye", ...} (equal sizes; the point order is matched on the mean shape); default: matched
    freely on the mean shape. `eyes`: [left, right], each an index or a list of indices whose
    mean is the eye's centre (default: none, and NME/PCK normalise by the face's box).
    Raises InputError naming the file and what is wrong.
    """
    path = Path(path)
    require_regular_file(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8-sig"))
    except RecursionError:
        raise InputError(path, TOO_DEEP) from None
    except json.JSONDecodeError as error:
        raise InputError(
            path, f"not valid JSON: {error.msg} (column {error.colno})", error.lineno
        ) from None
    except UnicodeDecodeError as error:
        raise InputError(path, f"not UTF-8 text (byte {error.start + 1})") from None
    except ValueError:  # the one other error json raises: an integer over Python's digit limit
        raise InputError(path, TOO_MANY_DIGITS) from None
    if not isinstance(spec, dict):
        raise InputError(path, "expected a JSON object with regions, twins and eyes")
    unknown = sorted(set(spec) - set(LAYOUT_KEYS))
    if unknown:
        raise InputError(
            path, f"unknown key(s) {literal(unknown)}; a layout has {list(LAYOUT_KEYS)}"
        )
    name = spec.get("name", f"{path.parent.parent.name or 'dataset'} layout")
    if not isinstance(name, str):
        raise InputError(path, "name: expected a string")
    if "regions" in spec:
        regions = _regions_from(path, spec["regions"], n_points)
    else:
        regions = (Region("all points", 0, n_points),)
    twins, point_twins = _twins_from(path, spec["twins"]) if "twins" in spec else (None, None)
    eyes = _eyes_from(path, spec["eyes"]) if "eyes" in spec else None
    problem = layout_problem(regions, twins, point_twins, eyes)
    if problem is not None:
        raise InputError(path, problem)
    return Layout(name, regions, twins=twins, point_twins=point_twins, eyes=eyes)


def _optimal_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the minimum-cost matching (scipy, imported only when needed)."""
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(cost)


def flip_permutation(mean_shape: np.ndarray) -> np.ndarray:
    """Derive the horizontal-flip permutation from a mean shape (N, 2).

    Mirrors the shape about its vertical axis of symmetry (the mean x) and matches every
    mirrored point to an original point by optimal assignment (minimum total squared distance).
    `perm[i]` is the landmark that point i becomes after flipping the image.
    """
    shape = np.asarray(mean_shape, dtype=np.float64)
    if shape.ndim != 2 or shape.shape[1] != 2 or not np.isfinite(shape).all():
        raise ValueError(f"mean shape must be a finite (N, 2) array, got shape {shape.shape}")
    mirrored = shape.copy()
    mirrored[:, 0] = 2 * shape[:, 0].mean() - shape[:, 0]
    cost = ((mirrored[:, None, :] - shape[None, :, :]) ** 2).sum(axis=-1)
    rows, cols = _optimal_assignment(cost)
    perm = np.empty(len(shape), dtype=np.int64)
    perm[rows] = cols
    return perm


def flip_mismatches(perm: np.ndarray, layout: Layout, twins: dict[str, str]) -> list[str]:
    """Regions that `perm` does not map onto their twin (or onto themselves); empty if all do."""
    pairs = dict(twins)
    pairs.update({right: left for left, right in twins.items()})
    problems = []
    ids = layout.region_ids()
    for region in layout.regions:
        target = layout.region(pairs.get(region.name, region.name))
        landed = set(ids[perm[region.start : region.stop]].tolist())
        expected = {layout.regions.index(target)}
        if landed != expected:
            names = sorted(layout.regions[i].name for i in landed)
            problems.append(f"'{region.name}' maps to {names}, expected ['{target.name}']")
    return problems


def region_flip_permutation(
    mean_shape: np.ndarray, layout: Layout, twins: dict[str, str]
) -> np.ndarray:
    """Flip permutation matched region by region: each region only onto its twin (or itself).

    Robust where a free matching is not: a mean shape of few or posed faces is not quite
    symmetric, and near the boundary between two regions a free assignment may cross it.
    """
    shape = np.asarray(mean_shape, dtype=np.float64)
    if shape.shape != (layout.n_points, 2) or not np.isfinite(shape).all():
        raise ValueError(f"mean shape must be a finite ({layout.n_points}, 2) array")
    axis = 2 * shape[:, 0].mean()
    pairs = dict(twins)
    pairs.update({right: left for left, right in twins.items()})
    perm = np.empty(layout.n_points, dtype=np.int64)
    for region in layout.regions:
        target = layout.region(pairs.get(region.name, region.name))
        if len(target) != len(region):
            raise ValueError(f"regions '{region.name}' and '{target.name}' differ in size")
        mirrored = shape[region.start : region.stop].copy()
        mirrored[:, 0] = axis - mirrored[:, 0]
        candidates = shape[target.start : target.stop]
        cost = ((mirrored[:, None, :] - candidates[None, :, :]) ** 2).sum(axis=-1)
        rows, cols = _optimal_assignment(cost)
        perm[region.start + rows] = target.start + cols
    return perm


FACE_971 = layout_for(971)  # the competition's layout (layouts/face971.json)
FACE_971_TWINS = dict(FACE_971.twins or ())
DEFAULT_LAYOUT = FACE_971  # where no data says what N is
