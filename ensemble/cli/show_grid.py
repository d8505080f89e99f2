"""A grid of dataset images with their landmarks coloured by region (`ens show`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ensemble.competition.layout import dataset_layout
from ensemble.errors import InputError
from ensemble.io.atomic import atomic_path
from ensemble.io.checks import count_data_lines, read_point_header
from ensemble.io.data_folder import DataFolder


def sample_landmark_rows(path: str | Path, n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """`n` random rows of a landmarks TSV (file order), read without loading the whole file."""
    path = Path(path)
    header = read_point_header(path, "\t")
    n_points = (len(header) - 1) // 2
    with open(path, encoding="utf-8") as handle:
        handle.readline()
        n_rows = count_data_lines(path)
        if n_rows < 1:
            raise InputError(path, "no data rows after the header", 2)
        chosen = np.sort(np.random.default_rng(seed).permutation(n_rows)[: min(n, n_rows)])
        wanted, names, rows = set(chosen.tolist()), [], []
        for row, line in enumerate(handle):
            if row not in wanted:
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != len(header):
                raise InputError(
                    path, f"expected {len(header)} columns, found {len(fields)}", row + 2
                )
            names.append(fields[0])
            rows.append(_parse_values(path, fields[1:], row + 2).reshape(n_points, 2))
    return names, np.stack(rows)


def _parse_values(path: Path, fields: list[str], line: int) -> np.ndarray:
    """Coordinates of one row; an empty cell is a missing label (NaN, Kaggle Facial Keypoints)."""
    empty = np.array([field.strip() == "" for field in fields])
    try:
        values = np.array([np.nan if not field.strip() else float(field) for field in fields])
    except ValueError:
        raise InputError(path, "non-numeric landmark value", line) from None
    if not np.isfinite(values[~empty]).all():
        raise InputError(path, "non-finite landmark value", line)
    return values


def _load_image(path: Path) -> np.ndarray:
    from ensemble.io.images import open_image

    with open_image(path) as image:
        return np.asarray(image.convert("RGB"))


def _labelled(shape: np.ndarray) -> str:
    """Title suffix ', k/N labelled' when some points of `shape` (N, 2) are missing (NaN)."""
    labelled = int((~np.isnan(shape).any(axis=1)).sum())
    return "" if labelled == len(shape) else f", {labelled}/{len(shape)} labelled"


def show_grid(
    data_dir: str | Path, output: str | Path, n: int = 16, split: str = "train", seed: int = 0
) -> Path:
    """Draw `n` random images of a split with their landmarks coloured by region; write a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    data_dir = Path(data_dir)
    landmarks = DataFolder.at(data_dir).landmarks(split)
    if split == "test" and not landmarks.is_file():
        imported = " (`ens import-fkd` writes none)" if (data_dir / "fkd.json").is_file() else ""
        raise InputError(
            landmarks,
            f"no hidden test truth here{imported}: only demo data has one; use --split train",
        )
    names, points = sample_landmark_rows(landmarks, n, seed)
    layout = dataset_layout(data_dir, points.shape[1])
    cmap = plt.get_cmap("tab20")
    colours = [cmap(i % 20) for i in range(len(layout.regions))]
    region_ids = layout.region_ids()
    marker = max(1.2, 240.0 / points.shape[1])  # 971 dots stay fine, 15 keypoints visible
    cols = int(np.ceil(np.sqrt(len(names))))
    rows = int(np.ceil(len(names) / cols))
    width = max(3.2 * cols, 8.0)
    ncol = 5 if width >= 12 else 3
    legend_height = 0.25 * np.ceil(len(layout.regions) / ncol) + 0.3
    height = 3.4 * rows + legend_height + 0.6
    figure, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, name, shape in zip(axes.ravel(), names, points, strict=False):
        image = _load_image(DataFolder.at(data_dir).images(split) / name)
        ax.imshow(image)
        ax.scatter(*shape.T, s=marker, c=[colours[r] for r in region_ids], lw=0)
        ax.set_title(f"{name} ({image.shape[1]}x{image.shape[0]}){_labelled(shape)}", fontsize=8)
    handles = [
        Line2D([], [], marker="o", ls="", color=colours[i], label=region.name)
        for i, region in enumerate(layout.regions)
    ]
    figure.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    figure.suptitle(
        f"{data_dir.name or data_dir}: {len(names)} {split} images, landmarks by region"
    )
    figure.tight_layout(rect=(0, legend_height / height, 1, 1 - 0.5 / height))
    output = Path(output)
    with atomic_path(output) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
    return output
