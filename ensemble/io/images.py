"""Image files: the one opener (with one wording for a missing or undecodable image), sizes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ensemble.errors import InputError

IMAGE_NOT_FOUND = "image not found"
CANNOT_DECODE = "cannot decode image"


@contextlib.contextmanager
def open_image(path: str | Path) -> Iterator[Image.Image]:
    """Open an image with Pillow; a missing or undecodable file is an `InputError` naming it.

    Errors raised while the block decodes the image (a truncated file) are reported the same
    way: `image not found`, or `cannot decode image: <Pillow's reason>`.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            yield image
    except FileNotFoundError:
        raise InputError(path, IMAGE_NOT_FOUND) from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InputError(path, f"{CANNOT_DECODE}: {error}") from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image, read from its header; InputError if missing or unreadable."""
    path = Path(path)
    with open_image(path) as image:
        width, height = image.size
    if width <= 0 or height <= 0:
        raise InputError(path, f"image has size {width}x{height}")
    return width, height


def image_sizes(folder: str | Path, file_names: Sequence[str]) -> np.ndarray:
    """(n, 2) float64 array of (width, height) for `file_names` inside `folder`."""
    folder = Path(folder)
    return np.array([image_size(folder / name) for name in file_names], dtype=np.float64)
