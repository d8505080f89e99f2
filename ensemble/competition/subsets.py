"""Random K-subsets of landmark indices, drawn as the competition's test_points.csv draws them."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

_CHUNK = 8192


def draw_point_subsets(rng: np.random.Generator, n_rows: int, n_points: int, k: int) -> np.ndarray:
    """Uniform random K-subsets of range(n_points), one per row, in random order: (n_rows, k)."""
    if not 0 < k <= n_points:
        raise ValueError(f"cannot draw {k} distinct indices from {n_points} points")
    out = np.empty((n_rows, k), dtype=np.int32)
    for start in range(0, n_rows, _CHUNK):
        rows = min(_CHUNK, n_rows - start)
        keys = rng.random((rows, n_points))
        chosen = np.argpartition(keys, k - 1, axis=1)[:, :k]
        order = np.argsort(rng.random((rows, k)), axis=1)
        out[start : start + rows] = np.take_along_axis(chosen, order, axis=1)
    return out


def validation_subsets(
    file_names: Sequence[str], n_points: int, k: int = 30, seed: int = 0
) -> np.ndarray:
    """The fixed K-subsets a validation score uses: (len(file_names), k).

    Each row's subset depends only on (seed, file name), so every tool that scores the same
    validation images (trainer, blend, analyze) uses the same subsets whatever the row order.
    """
    k = min(k, n_points)
    out = np.empty((len(file_names), k), dtype=np.int32)
    for row, name in enumerate(file_names):
        rng = np.random.default_rng([seed, zlib.crc32(str(name).encode("utf-8"))])
        out[row] = rng.choice(n_points, size=k, replace=False)
    return out
