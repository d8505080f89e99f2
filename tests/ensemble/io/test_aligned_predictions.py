"""`labels_for`: the rows of a labels file for given file names, the file streamed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ensemble.errors import InputError
from ensemble.io import landmarks
from ensemble.io.aligned_predictions import labels_for
from ensemble.io.landmarks import write_landmarks


@pytest.fixture
def labels(tmp_path: Path, monkeypatch) -> tuple[Path, list[str], np.ndarray]:
    """A labels file of 200 rows (some values missing), read in several blocks."""
    rng = np.random.default_rng(0)
    names = [f"{i:04d}.jpg" for i in range(200)]
    points = rng.uniform(0, 900, size=(200, 6, 2)).round(2)
    points[rng.random((200, 6)) < 0.1] = np.nan
    path = tmp_path / "landmarks.csv"
    write_landmarks(path, names, points, allow_missing=True)
    monkeypatch.setattr(landmarks, "_BLOCK_BYTES", 1024)
    return path, names, points


def test_rows_in_the_order_asked(labels) -> None:
    path, names, points = labels
    rows = [150, 3, 199, 3, 70]
    got = labels_for(path, np.array([names[row] for row in rows], dtype=object))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, points[rows].astype(np.float32))


def test_a_name_not_in_the_labels_is_an_error(labels) -> None:
    path, names, _ = labels
    with pytest.raises(InputError, match=r"1 predicted file\(s\) not in the labels, e.g. x.jpg"):
        labels_for(path, np.array([names[5], "x.jpg"], dtype=object))


def test_the_message_names_the_predictions_file(labels) -> None:
    path, _, _ = labels
    message = r"1 predicted file\(s\) of runs/a/val.npz not in the labels, e.g. x.jpg"
    with pytest.raises(InputError, match=message):
        labels_for(path, np.array(["x.jpg"], dtype=object), "runs/a/val.npz")
