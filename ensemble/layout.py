"""Face layouts: named index ranges (regions) and the horizontal-flip permutation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    """A landmark layout: the number of points and the regions that tile [0, n_points)."""

    name: str
    regions: tuple[Region, ...]

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


def _layout(name: str, spec: list[tuple[str, int]]) -> Layout:
    regions, start = [], 0
    for region_name, count in spec:
        regions.append(Region(region_name, start, start + count))
        start += count
    return Layout(name, tuple(regions))


FACE_971 = _layout(
    "face971",
    [
        ("face oval, lower left", 64),
        ("face oval, lower right", 64),
        ("face oval, upper right", 72),
        ("forehead centre", 1),
        ("face oval, upper left", 72),
        ("left eyebrow", 64),
        ("right eyebrow", 64),
        ("left nose wing", 63),
        ("right nose wing", 63),
        ("nose centre line", 60),
        ("left iris", 63),
        ("left eye", 64),
        ("right iris", 63),
        ("right eye", 64),
        ("upper lip, outer", 32),
        ("upper lip, inner", 32),
        ("lower lip, outer", 32),
        ("lower lip, inner", 32),
        ("left pupil centre", 1),
        ("right pupil centre", 1),
    ],
)

# Left/right twins of the 971-point layout (as seen in the image); every other region maps onto
# itself under a horizontal flip.
FACE_971_TWINS = {
    "face oval, lower left": "face oval, lower right",
    "face oval, upper right": "face oval, upper left",
    "left eyebrow": "right eyebrow",
    "left nose wing": "right nose wing",
    "left iris": "right iris",
    "left eye": "right eye",
    "left pupil centre": "right pupil centre",
}


def generic_layout(n_points: int) -> Layout:
    """A layout with a single region, for point counts with no known face layout."""
    return Layout(f"points{n_points}", (Region("all points", 0, n_points),))


def layout_for(n_points: int) -> Layout:
    """The known layout with `n_points` landmarks (971 faces, 15 FKD keypoints), else one region."""
    if n_points == FACE_971.n_points:
        return FACE_971
    if n_points == 15:
        from ensemble.fkd.layout import fkd_layout  # the fkd package builds on this module

        return fkd_layout()
    return generic_layout(n_points)


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
