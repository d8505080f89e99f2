"""Image file helpers that need only Pillow: sizes and decoding with clear errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ensemble.errors import InputError


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image, read from its header; InputError if missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "image not found")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(path, f"cannot read image: {error}") from None
    if width <= 0 or height <= 0:
        raise InputError(path, f"image has size {width}x{height}")
    return width, height


def image_sizes(folder: str | Path, file_names: Sequence[str]) -> np.ndarray:
    """(n, 2) float64 array of (width, height) for `file_names` inside `folder`."""
    folder = Path(folder)
    return np.array([image_size(folder / name) for name in file_names], dtype=np.float64)
