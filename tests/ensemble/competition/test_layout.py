"""The face layout and the flip permutation derived by optimal assignment."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble.competition.layout import (
    FACE_971,
    FACE_971_TWINS,
    flip_mismatches,
    flip_permutation,
    generic_layout,
    layout_for,
)


def test_regions_tile_the_971_points() -> None:
    assert len(FACE_971.regions) == 20
    assert FACE_971.n_points == 971
    assert sum(len(region) for region in FACE_971.regions) == 971
    assert FACE_971.region_of(200).name == "forehead centre"
    assert FACE_971.region_of(969).name == "left pupil centre"
    assert FACE_971.region_of(650).name == "left eye"
    assert FACE_971.region_of(0).name == "face oval, lower left"
    with pytest.raises(IndexError):
        FACE_971.region_of(971)
    assert layout_for(15).n_points == 15 and layout_for(971) is FACE_971


def _symmetric_shape(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random shape with known mirror pairs: returns (shape, true permutation)."""
    left = rng.uniform(-1.0, -0.1, size=(10, 2))
    right = left * [-1.0, 1.0]
    centre = np.column_stack([np.zeros(4), rng.uniform(-1, 1, 4)])
    shape = np.concatenate([left, centre, right]) + [3.0, 0.0]  # axis away from x = 0
    perm = np.concatenate([np.arange(14, 24), np.arange(10, 14), np.arange(10)])
    order = rng.permutation(len(shape))
    inverse = np.argsort(order)
    return shape[order], inverse[perm[order]]


@pytest.mark.parametrize("seed", range(5))
def test_flip_permutation_recovers_mirror_pairs(seed: int) -> None:
    shape, truth = _symmetric_shape(np.random.default_rng(seed))
    perm = flip_permutation(shape)
    np.testing.assert_array_equal(perm, truth)
    np.testing.assert_array_equal(perm[perm], np.arange(len(shape)))


def test_flip_permutation_tolerates_noise() -> None:
    rng = np.random.default_rng(7)
    shape, truth = _symmetric_shape(rng)
    noisy = shape + rng.normal(0, 0.005, shape.shape)
    np.testing.assert_array_equal(flip_permutation(noisy), truth)


def test_flip_mismatches_reports_wrong_regions() -> None:
    identity = np.arange(971)
    problems = flip_mismatches(identity, FACE_971, FACE_971_TWINS)
    assert any("left eyebrow" in p for p in problems)
    perm = identity.copy()
    for left, right in FACE_971_TWINS.items():
        a, b = FACE_971.region(left), FACE_971.region(right)
        perm[a.start : a.stop] = b.indices
        perm[b.start : b.stop] = a.indices
    assert flip_mismatches(perm, FACE_971, FACE_971_TWINS) == []
    assert generic_layout(3).region_of(2).name == "all points"


def test_flip_permutation_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match="finite"):
        flip_permutation(np.array([[0.0, np.nan], [1.0, 1.0]]))


def test_region_flip_permutation_stays_within_twin_regions() -> None:
    from ensemble.competition.layout import region_flip_permutation
    from ensemble.synthetic.face_model import FaceParams, build_shape

    shape = build_shape(FaceParams())
    exact = flip_permutation(shape)
    np.testing.assert_array_equal(region_flip_permutation(shape, FACE_971, FACE_971_TWINS), exact)
    # a strongly asymmetric mean shape (a face turned to one side) breaks the free matching
    turned = shape.copy()
    turned[:, 0] += 0.25 * turned[:, 0] ** 2
    perm = region_flip_permutation(turned, FACE_971, FACE_971_TWINS)
    assert flip_mismatches(perm, FACE_971, FACE_971_TWINS) == []
    np.testing.assert_array_equal(perm[perm], np.arange(971))
