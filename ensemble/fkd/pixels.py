"""Kaggle's `Image` cells: 9,216 space-separated grey values, one 96x96 image each."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ensemble.errors import InputError
from ensemble.fkd.layout import IMAGE_SIZE, N_PIXELS


def parse_pixels(path: Path, texts: Sequence[object], first_line: int) -> np.ndarray:
    """Parse a chunk of `Image` cells (line numbers from `first_line`) into (n, 96, 96) uint8."""
    out = np.empty((len(texts), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for row, text in enumerate(texts):
        out[row] = parse_image(path, text, first_line + row)
    return out


def parse_image(path: Path, text: object, line: int) -> np.ndarray:
    """One `Image` cell -> (96, 96) uint8; InputError naming the line and the bad value."""
    if isinstance(text, str):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns (not raises) on unparsable text
            try:
                values = np.fromstring(text, dtype=np.int64, sep=" ")
            except (ValueError, DeprecationWarning):
                values = None
        if (
            values is not None
            and values.size == N_PIXELS
            and values.min() >= 0
            and values.max() <= 255
        ):
            return values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)
    raise _image_error(path, text, line)


def _image_error(path: Path, text: object, line: int) -> InputError:
    """What is wrong with an `Image` cell the fast path refused."""
    if not isinstance(text, str) or not text.strip():
        return InputError(path, "empty Image cell", line)
    tokens = text.split()
    for position, token in enumerate(tokens):
        if not (token.isascii() and token.isdigit()) or int(token) > 255:
            return InputError(
                path, f"pixel {position + 1} of Image is '{token}', expected an integer 0-255", line
            )
    return InputError(
        path,
        f"Image has {len(tokens)} pixel values, expected {N_PIXELS} ({IMAGE_SIZE}x{IMAGE_SIZE})",
        line,
    )
