"""The tests' own helpers (`tests.helpers`): the drawn faces are left/right symmetric."""

from __future__ import annotations

from pathlib import Path

from ensemble.competition.layout import flip_permutation
from ensemble.io.landmarks import read_landmarks
from tests.helpers import N_OVAL, write_faces


def test_drawn_faces_are_symmetric_for_the_flip_permutation(tmp_path: Path) -> None:
    data = write_faces(tmp_path / "d", n_train=30, n_test=2)
    points = read_landmarks(data / "train" / "landmarks.csv").points
    perm = flip_permutation(points.mean(axis=0))
    assert sorted(perm.tolist()) == list(range(N_OVAL + 6))
    assert perm[N_OVAL] == N_OVAL + 1 and perm[N_OVAL + 4] == N_OVAL + 5
