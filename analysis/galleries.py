"""Galleries of images with their label and each run's prediction drawn on the real pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.plots import DPI
from ensemble.errors import InputError
from ensemble.io.atomic import atomic_path

LABEL_COLOUR = "#ff1744"
RUN_COLOURS = ("#2979ff", "#ffea00", "#00e5ff", "#d500f9", "#ff9100", "#76ff03", "#ffffff")
COLUMNS = 4


def _load(path: Path) -> tuple[np.ndarray | None, str]:
    """The image as RGB pixels, or None and why not."""
    from ensemble.io.images import open_image

    try:
        with open_image(path) as image:
            return np.asarray(image.convert("RGB")), ""
    except InputError as error:
        return None, error.problem


def _limits(image: np.ndarray | None, shapes: list[np.ndarray]) -> tuple[float, ...]:
    """x0, x1, y0, y1 holding the image and every drawn point, with a small margin."""
    points = np.concatenate([shape[np.isfinite(shape).all(axis=1)] for shape in shapes])
    lows, highs = [], []
    if image is not None:
        lows.append(np.array([-0.5, -0.5]))
        highs.append(np.array([image.shape[1] - 0.5, image.shape[0] - 0.5]))
    if len(points):
        lows.append(points.min(axis=0))
        highs.append(points.max(axis=0))
    if not lows:
        return 0.0, 1.0, 0.0, 1.0
    low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    margin = 0.03 * max(float((high - low).max()), 1.0)
    return low[0] - margin, high[0] + margin, low[1] - margin, high[1] + margin


def gallery(
    image_dir: Path,
    file_names: list[str],
    truth: np.ndarray,
    predictions: np.ndarray,
    run_names: list[str],
    captions: list[str],
    title: str,
    path: Path,
) -> Path:
    """PNG of images (k) with the label (k, N, 2) and each run's prediction (R, k, N, 2)."""
    count = len(file_names)
    columns = min(COLUMNS, max(count, 1))
    rows = max(1, -(-count // columns))
    figure = Figure(figsize=(3.6 * columns, 3.9 * rows + 0.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    n_points = truth.shape[1]
    marker = max(1.5, 240.0 / n_points)
    colours = [RUN_COLOURS[r % len(RUN_COLOURS)] for r in range(len(run_names))]
    for ax in axes:
        ax.axis("off")
    for number, (ax, name) in enumerate(zip(axes, file_names, strict=False)):
        image, problem = _load(Path(image_dir) / name)
        shapes = [truth[number], *predictions[:, number]]
        x0, x1, y0, y1 = _limits(image, shapes)
        if image is not None:
            ax.imshow(image, interpolation="antialiased")
        else:
            ax.set_facecolor("#30343c")
            ax.text(0.5, 0.5, problem, transform=ax.transAxes, ha="center", color="white")
        for run, colour in enumerate(colours):
            ax.scatter(*predictions[run, number].T, s=marker, c=colour, lw=0, alpha=0.9)
        ax.scatter(*truth[number].T, s=marker * 1.6, c=LABEL_COLOUR, lw=0)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)
        ax.set_title(f"{name}\n{captions[number]}", fontsize=8)
    handles = [Line2D([], [], marker="o", ls="", color=LABEL_COLOUR, label="label")]
    handles += [
        Line2D([], [], marker="o", ls="", color=colour, markeredgecolor="#555", label=name)
        for name, colour in zip(run_names, colours, strict=True)
    ]
    figure.legend(
        handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8
    )
    figure.suptitle(title, fontsize=10)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)
    return Path(path)
