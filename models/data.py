"""Training data of a run: the shared caches, normalised targets, the validation split, batches."""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from queue import Queue

import numpy as np
import torch

from ensemble.competition.baseline import ShapeSum, mean_relative_shape
from ensemble.competition.layout import Layout, dataset_layout
from ensemble.competition.metric import validation_score
from ensemble.errors import InputError
from ensemble.io.data_folder import DataFolder
from ensemble.io.landmarks import read_landmarks
from models.cache import CachedSplit, build_cache
from models.distributed import shard, world_size
from models.geometry import denormalise, from_crop, normalise, to_crop
from models.labels import check_labels


def validation_mask(n_images: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the validation images: a fixed random fraction (at least one image)."""
    n_val = min(max(1, round(n_images * fraction)), n_images - 1)
    chosen = np.random.default_rng(seed).permutation(n_images)[:n_val]
    mask = np.zeros(n_images, dtype=bool)
    mask[chosen] = True
    return mask


def fold_assignment(n_images: int, folds: int, seed: int) -> np.ndarray:
    """Fold index (0..folds-1) of each image: a fixed random partition into near-equal folds."""
    order = np.random.default_rng(seed).permutation(n_images)
    fold_ids = np.empty(n_images, dtype=np.int64)
    fold_ids[order] = np.arange(n_images) % folds
    return fold_ids


_ROWS = 1024  # rows of labels taken at a time: float64 temporaries stay small
MIN_TRAIN_IMAGES = 2  # batch norm needs two images in a training batch


def check_split(path: Path, mask: np.ndarray, split: str, usable: np.ndarray | None = None) -> None:
    """InputError when the split leaves fewer than MIN_TRAIN_IMAGES usable images to train on.

    `split` names the split in the message ("val_fraction 0.1", "fold 2 of folds = 5");
    `usable` (bool per image, default all) is False for an undecodable image, left out.
    """
    usable = np.ones(len(mask), dtype=bool) if usable is None else usable
    n_train, n_val = int((~mask & usable).sum()), int((mask & usable).sum())
    if n_train >= MIN_TRAIN_IMAGES:
        return
    n_images, left_out, change = len(mask), "", "add training images"
    if not usable.all():
        left_out = f" ({n_images - int(usable.sum())} undecodable image(s) left out)"
    elif n_images > MIN_TRAIN_IMAGES and split.startswith("val_fraction"):
        most = (n_images - MIN_TRAIN_IMAGES) / n_images
        change = f"lower val_fraction to at most {most:.2f} or {change}"
    raise InputError(
        path,
        f"{split} of {n_images} image(s) leaves {n_train} to train on and "
        f"{n_val} to validate{left_out}; training needs at least {MIN_TRAIN_IMAGES} (one "
        f"batch-norm batch): {change}",
    )


def check_splits(
    path: Path, masks: list[np.ndarray], names: list[str], usable: np.ndarray | None = None
) -> None:
    """check_split for each of the run's splits (one, or one per fold)."""
    for mask, name in zip(masks, names, strict=True):
        check_split(path, mask, name, usable)


@dataclass
class RunData:
    """Everything a run reads: caches, original-pixel truth, normalised targets, the split."""

    train: CachedSplit
    test: CachedSplit
    points: np.ndarray  # (n, N, 2) original pixels, train split
    targets: CropTargets  # targets[rows]: (len(rows), N, 2) float32 normalised to the crop
    val_mask: np.ndarray
    fold_ids: np.ndarray | None = None  # with `folds = K`: each image's fold, 0..K-1
    excluded: np.ndarray | None = None  # bool per image: out of training and validation
    layout: Layout | None = (
        None  # the dataset's layout (ensemble.competition.layout.dataset_layout)
    )

    @property
    def folds(self) -> int:
        """K of a K-fold run (0 for a single validation split)."""
        return 0 if self.fold_ids is None else int(self.fold_ids.max()) + 1

    def for_fold(self, fold: int) -> RunData:
        """The same data with fold `fold` held out for validation."""
        return dataclasses.replace(self, val_mask=self.fold_ids == fold)

    def without(self, excluded: np.ndarray) -> RunData:
        """The same data with the `excluded` images out of training and validation."""
        return dataclasses.replace(self, excluded=excluded)

    @property
    def _kept(self) -> np.ndarray:
        kept = self.train.valid
        return kept if self.excluded is None else kept & ~self.excluded

    @property
    def n_points(self) -> int:
        """N."""
        return int(self.points.shape[1])

    @property
    def size(self) -> int:
        """Crop size S."""
        return self.train.size

    @property
    def train_indices(self) -> np.ndarray:
        """Rows of the training images (undecodable and excluded images left out)."""
        return np.flatnonzero(~self.val_mask & self._kept)

    @property
    def val_indices(self) -> np.ndarray:
        """Rows of the validation images (undecodable and excluded images left out)."""
        return np.flatnonzero(self.val_mask & self._kept)

    def mean_targets(self) -> np.ndarray:
        """Mean normalised training shape (N, 2), missing labels left out."""
        total = ShapeSum(self.n_points)
        for rows in row_blocks(self.train_indices):
            total.add(self.targets[rows].astype(np.float64))
        return total.mean()

    def mean_relative_shape(self) -> np.ndarray:
        """Mean training shape (N, 2) in coordinates divided by each image's (width, height),
        missing labels left out: the mean shape of the baseline."""
        return mean_relative_shape(self.points, self.train.sizes, rows=self.train_indices)

    def baseline_val_score(self) -> float:
        """Val score of the mean-shape baseline (mean of points / image size, per image size)."""
        val = self.val_indices
        predicted = self.mean_relative_shape()[None] * self.train.sizes[val][:, None, :]
        return validation_score(self.train.file_names[val], predicted, self.points[val])

    def pixels_per_unit(self, split: str, rows: np.ndarray) -> np.ndarray:
        """Original pixels per normalised unit (n,) of `rows`: the crop size over the
        letterbox scale (isotropic; the geometric mean of x and y)."""
        cache = self.train if split == "train" else self.test
        geometry = np.asarray(cache.geometry[rows], dtype=np.float64)
        return self.size / np.sqrt(geometry[:, 0] * geometry[:, 1])

    def to_original(self, targets: np.ndarray, split: str, rows: np.ndarray) -> np.ndarray:
        """Normalised predictions for `rows` of a split -> original pixels."""
        cache = self.train if split == "train" else self.test
        return from_crop(denormalise(targets, self.size), cache.geometry[rows])


def load_run_data(
    data_dir: str | Path,
    crop_size: int,
    val_fraction: float,
    split_seed: int,
    cache_root: str | Path | None = None,
    progress: bool = True,
    folds: int = 0,
) -> RunData:
    """Prepare (or reuse) the caches and the targets of a run.

    `folds` = K >= 2 partitions the images into K folds (by `split_seed`) instead of holding
    out `val_fraction`; the data then validates on fold 0 until `for_fold` picks another.
    """
    data_dir = Path(data_dir)
    labels_path = DataFolder.at(data_dir).train_landmarks
    labels = read_landmarks(labels_path, allow_missing=True)  # NaN = not labelled
    layout = dataset_layout(data_dir, labels.points.shape[1])  # a bad layout.json fails here
    fold_ids = None
    if folds:
        if folds > len(labels):
            raise InputError(
                labels_path, f"folds = {folds} needs at least {folds} images, found {len(labels)}"
            )
        fold_ids = fold_assignment(len(labels), folds, split_seed)
        masks = [fold_ids == k for k in range(folds)]
        names = [f"fold {k} of folds = {folds}" for k in range(folds)]
    else:
        masks = [validation_mask(len(labels), val_fraction, split_seed)]
        names = [f"val_fraction {val_fraction:g}"]
    check_splits(labels_path, masks, names)  # before a cache is written
    train = build_cache(data_dir, "train", crop_size, cache_root, progress=progress)
    test = build_cache(data_dir, "test", crop_size, cache_root, progress=progress)
    if not np.array_equal(labels.file_names, train.file_names):
        raise InputError(labels_path, "labels changed after the cache was built; run again")
    check_splits(labels_path, masks, names, train.valid)
    targets = CropTargets(labels.points, train.geometry, crop_size)
    for mask in masks:
        check_labels(labels_path, labels.points, np.flatnonzero(~mask))
    return RunData(train, test, labels.points, targets, masks[0], fold_ids, layout=layout)


def row_blocks(rows: np.ndarray) -> Iterator[np.ndarray]:
    """`rows` a few thousand at a time."""
    for start in range(0, len(rows), _ROWS):
        yield rows[start : start + _ROWS]


@dataclass(frozen=True)
class CropTargets:
    """The network targets of the train images, made from the labels when asked for:
    `targets[rows]` is (len(rows), N, 2) float32, the labels `points` mapped onto the crop by
    the letterbox `geometry` rows and normalised. No second copy of every label is held."""

    points: np.ndarray  # (n, N, 2) original pixels
    geometry: np.ndarray  # (n, 4)
    size: int  # crop size S

    def __getitem__(self, rows: np.ndarray | slice) -> np.ndarray:
        crop = to_crop(self.points[rows], self.geometry[rows])
        return normalise(crop, self.size).astype(np.float32)

    def __len__(self) -> int:
        return len(self.points)


def epoch_order(
    rows: np.ndarray, batch_size: int, seed: int, epoch: int, reshuffles: Sequence[int] = ()
) -> np.ndarray:
    """The training rows of one epoch: shuffled by (seed, epoch), each batch sorted for locality.

    `reshuffles` lists the batch positions where a rollback restarted this epoch: from each
    one on, the rows not yet seen are shuffled anew (by seed, epoch and the rollback's count),
    so a replay never meets the batch sequence that diverged. Under torchrun each rank takes
    its DistributedSampler-like share of the shuffled rows.
    """
    order = np.random.default_rng([seed, epoch]).permutation(rows)
    for count, batch in enumerate(reshuffles, start=1):
        start = batch * batch_size * world_size()
        order[start:] = np.random.default_rng([seed, epoch, count]).permutation(order[start:])
    shuffled = shard(order)
    chunks = [np.sort(shuffled[i : i + batch_size]) for i in range(0, len(shuffled), batch_size)]
    return np.concatenate(chunks) if chunks else shuffled


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    """Optimizer steps of an epoch over `n_rows`: one per batch, a last single-image batch left
    out (as `iterate_batches(..., drop_single=True)` does); at least 1."""
    full, rest = divmod(n_rows, batch_size)
    return max(1, full + (rest >= 2 or (rest == 1 and full == 0)))


def iterate_batches(
    images: np.ndarray,
    rows: np.ndarray,
    batch_size: int,
    device: torch.device,
    targets: np.ndarray | None = None,
    drop_single: bool = False,
    start_batch: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """uint8 image batches (B, S, S, 3) (+ targets) on `device`, read one batch ahead.

    Each batch is one fancy-indexing read of the memory-mapped cache, in the order of `rows`,
    pinned and copied non-blocking on CUDA. A background thread reads the next batch meanwhile.
    `start_batch` skips the batches a resumed epoch has done already.
    """
    pin = device.type == "cuda"
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    if drop_single and batches and len(batches[-1]) < 2 and len(batches) > 1:
        batches.pop()
    batches = batches[start_batch:]

    def read(batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        pixels = torch.from_numpy(np.ascontiguousarray(images[batch]))
        labels = None if targets is None else torch.from_numpy(targets[batch])
        if pin:
            pixels = pixels.pin_memory()
            labels = None if labels is None else labels.pin_memory()
        return pixels, labels

    queue: Queue = Queue(maxsize=2)

    def producer() -> None:
        try:
            for batch in batches:
                queue.put(read(batch))
        except BaseException as error:  # handed to the consumer
            queue.put(error)
            return
        queue.put(None)

    threading.Thread(target=producer, daemon=True).start()
    while (item := queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        pixels, labels = item
        pixels = pixels.to(device, non_blocking=True)
        labels = None if labels is None else labels.to(device, non_blocking=True)
        yield pixels, labels


def mean_shape_for_bad_images(data: RunData, points: np.ndarray) -> np.ndarray:
    """Test predictions with each undecodable test image's rows replaced by the mean shape.

    The mean shape is the mean training shape relative to the image size, scaled by the image's
    size (read from its header, else the mean training image size). Each one is warned about.
    """
    bad = np.flatnonzero(~data.test.valid)
    if not len(bad):
        return points
    test_sizes = data.test.sizes[bad].copy()
    unknown = ~np.isfinite(test_sizes).all(axis=1)
    test_sizes[unknown] = data.train.sizes[data.train_indices].mean(axis=0)
    points = points.copy()
    points[bad] = data.mean_relative_shape()[None] * test_sizes[:, None, :]
    for row in bad:
        warnings.warn(
            f"{data.test.file_names[row]}: image could not be decoded; predicted the mean shape",
            stacklevel=2,
        )
    return points
