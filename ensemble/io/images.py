"""Image files: the one opener (with one wording for a missing or undecodable image), sizes."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ensemble.errors import InputError
from ensemble.io.file_kind import special_file_kind

IMAGE_NOT_FOUND = "image not found"
CANNOT_DECODE = "cannot decode image"
# The largest image opened: 100 megapixels (10,000 x 10,000). Competition photos are at most
# about 1,200 px wide; a header declaring more is a decompression bomb (a 1 KB PNG can declare
# 30,000 x 30,000 pixels, 2.7 GB decoded), refused before it is decoded.
MAX_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow raises DecompressionBombError above twice this
# and warns above it, where `open_image` refuses the image with its own message
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@contextlib.contextmanager
def open_image(path: str | Path) -> Iterator[Image.Image]:
    """Open an image with Pillow; a missing or undecodable file is an `InputError` naming it.

    Errors raised while the block decodes the image (a truncated file) are reported the same
    way: `image not found`, or `cannot decode image: <the reason>`. So are a file that is not a
    regular file (a FIFO: refused without opening it) and an image over `MAX_PIXELS`.
    """
    path = Path(path)
    kind = special_file_kind(path)
    if kind is not None:
        raise InputError(path, f"{CANNOT_DECODE}: it is {kind}, not a regular file")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise InputError(path, f"{CANNOT_DECODE}: {_too_many(image.size)}")
            yield image
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(path, IMAGE_NOT_FOUND) from None
    except Image.DecompressionBombError:  # over twice the limit: Pillow refuses it in open
        raise InputError(path, f"{CANNOT_DECODE}: {_too_many(None)}") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InputError(path, f"{CANNOT_DECODE}: {error}") from None


def _too_many(size: tuple[int, int] | None) -> str:
    """Why an image over `MAX_PIXELS` is refused (its size, when known)."""
    if size is None:
        declared = f"more than {2 * MAX_PIXELS:,}"
    else:
        declared = f"{size[0]:,} x {size[1]:,} = {size[0] * size[1]:,}"
    return (
        f"its header declares {declared} pixels, over the limit of {MAX_PIXELS:,} "
        "(a decompression bomb?)"
    )


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
