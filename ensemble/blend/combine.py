"""Combiners: weighted mean, per-value median and trimmed mean of aligned submissions."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ensemble.blend.names import COMBINERS


def weighted_mean(stream: Iterable[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Sum of weights[i] * array i, accumulated in input order (arrays are consumed in place).

    The order of the additions is fixed (first, then second, ...), so the result is the same
    float for float as `w0 * x0 + w1 * x1 + ...` evaluated left to right.
    """
    total = None
    for weight, values in zip(np.asarray(weights, dtype=np.float64), stream, strict=True):
        np.multiply(values, weight, out=values)
        if total is None:
            total = values
        else:
            total += values
    if total is None:
        raise ValueError("no input to combine")
    return total


def median(stack: np.ndarray) -> np.ndarray:
    """Per-value median over the first axis of (submissions, ...)."""
    return np.median(stack, axis=0)


def trimmed_mean(stack: np.ndarray, trim: float = 0.2) -> np.ndarray:
    """Per-value mean after cutting the `trim` fraction of lowest and of highest values."""
    if not 0 <= trim < 0.5:
        raise ValueError(f"trim must be in [0, 0.5), got {trim}")
    from scipy import stats  # imported here: scipy.stats alone takes 0.5 s to import

    return stats.trim_mean(stack, trim, axis=0)


def combine_stack(stack: np.ndarray, method: str, trim: float = 0.2) -> np.ndarray:
    """Apply the unweighted combiner `method` ('median' or 'trimmed') to (submissions, ...)."""
    if method == "median":
        return median(stack)
    if method == "trimmed":
        return trimmed_mean(stack, trim)
    raise ValueError(f"unknown combiner '{method}'; choose from {COMBINERS}")
