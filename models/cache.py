"""`ens prepare`: decode, letterbox and store every image once as a uint8 memory-mapped array.

A cache holds one split (train or test) at one crop size S, in
DATA/.ens_cache/<split>_<S>/ (or under a chosen cache folder):

    images.npy      uint8 (n, S, S, 3), opened memory-mapped
    geometry.npy    float64 (n, 4): scale_x, scale_y, offset_x, offset_y (see models.geometry)
    sizes.npy       float64 (n, 2): original (width, height)
    file_names.npy  the file names in the order of the label file
    valid.npy       bool (n,): False for an image that could not be decoded (left out)
    bad_images.json [{"file_name", "reason"}] of those images
    fingerprint.json what the cache was built from; a different fingerprint means rebuild

The folder is built in a temporary sibling and moved into place with os.replace, so a cache is
either complete or absent; one process at a time builds it (a second waits, then reuses it), and
a build that was killed leaves a temp that the next build removes (`ensemble.io.temps`). Every
architecture of a train-all reads the same cache.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from PIL import Image
from tqdm import tqdm

from ensemble.errors import InputError, full_disk, full_disk_error
from ensemble.io.atomic import named_as_target
from ensemble.io.data_folder import LANDMARKS, TEST_POINTS, DataFolder
from ensemble.io.images import IMAGE_NOT_FOUND, open_image
from ensemble.io.landmarks import read_landmark_names
from ensemble.io.locks import hold
from ensemble.io.temps import remove_stale, temp_folder
from ensemble.io.test_points import read_test_points
from models.geometry import letterbox_geometry

CACHE_VERSION = 3
PAD_COLOUR = (124, 116, 104)  # ImageNet mean, so padding normalises to about zero
_CHUNK = 64
SPLITS = {"train": LANDMARKS, "test": TEST_POINTS}  # the file listing each split's images


@dataclass(frozen=True)
class CachedSplit:
    """A prepared split: memory-mapped images, geometry rows and file names."""

    path: Path
    images: np.ndarray
    geometry: np.ndarray
    file_names: np.ndarray
    sizes: np.ndarray
    valid: np.ndarray  # bool (n,): False = undecodable image, left out of training

    @property
    def bad_images(self) -> list[dict]:
        """[{"file_name", "reason"}] of the images that could not be decoded."""
        path = self.path / "bad_images.json"
        return json.loads(path.read_text()) if path.is_file() else []

    @property
    def size(self) -> int:
        """Crop size S."""
        return int(self.images.shape[1])

    def __len__(self) -> int:
        return len(self.file_names)


def label_file(data_dir: str | Path, split: str) -> Path:
    """The label file that lists a split's images (train/landmarks.csv, test/test_points.csv)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}'; allowed: {sorted(SPLITS)}")
    return Path(data_dir) / split / SPLITS[split]


def split_file_names(data_dir: str | Path, split: str) -> np.ndarray:
    """File names of a split, in the order of its label file."""
    path = label_file(data_dir, split)
    if split == "train":
        return read_landmark_names(path, allow_missing=True)  # NaN: checked in data
    return read_test_points(path, ragged=True).file_names


def cache_dir_for(
    data_dir: str | Path, split: str, size: int, cache_root: str | Path | None
) -> Path:
    """Folder of the cache of `split` at crop `size`."""
    root = Path(cache_root) if cache_root else Path(data_dir) / ".ens_cache"
    return root / f"{split}_{size}"


def fingerprint(data_dir: str | Path, split: str, size: int, file_names: np.ndarray) -> dict:
    """What a cache depends on: label file size and mtime, the file names and the crop size."""
    import hashlib

    path = label_file(data_dir, split)
    stat = path.stat()
    names = hashlib.sha256("\n".join(map(str, file_names)).encode("utf-8")).hexdigest()
    return {
        "version": CACHE_VERSION,
        "split": split,
        "size": int(size),
        "label_file": str(path.resolve()),
        "label_bytes": stat.st_size,
        "label_mtime_ns": stat.st_mtime_ns,
        "n_images": len(file_names),
        "file_names_sha256": names,
    }


def load_image(path: Path, size: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Decode one image and letterbox it: (S, S, 3) uint8, its geometry row, (width, height)."""
    with open_image(path) as image:
        width, height = image.size
        new_w, new_h, geometry = letterbox_geometry(width, height, size)
        drafted = image.draft("RGB", (2 * new_w, 2 * new_h))
        box = drafted[1] if drafted else (0, 0, width, height)
        resized = image.convert("RGB").resize((new_w, new_h), Image.BILINEAR, box=box)
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:] = PAD_COLOUR
    left, top = int(geometry[2]), int(geometry[3])
    canvas[top : top + new_h, left : left + new_w] = np.asarray(resized)
    return canvas, geometry, (width, height)


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from an image header, None when even the header is unreadable."""
    try:
        with open_image(path) as image:
            return image.size
    except InputError:
        return None


def _fill_chunk(
    images_path: Path, image_dir: Path, names: list[str], start: int, size: int
) -> tuple[int, np.ndarray, str | None, list[tuple[int, str]]]:
    """Decode names[...] into rows start.. of the memmap.

    A missing file stops the build (its path comes back); an undecodable, truncated or empty
    one is reported as (row, reason) and gets a padding-colour crop: the run leaves it out.
    """
    images = np.load(images_path, mmap_mode="r+")
    geometry = np.empty((len(names), 6), dtype=np.float64)
    bad: list[tuple[int, str]] = []
    for offset, name in enumerate(names):
        try:
            images[start + offset], geometry[offset, :4], geometry[offset, 4:] = load_image(
                image_dir / name, size
            )
        except InputError as error:
            if error.problem == IMAGE_NOT_FOUND:
                return start, geometry, error.path, []
            known = header_size(image_dir / name)
            geometry[offset, :4] = letterbox_geometry(*(known or (size, size)), size)[2]
            geometry[offset, 4:] = known or (np.nan, np.nan)  # unknown size: NaN
            images[start + offset] = PAD_COLOUR
            bad.append((start + offset, error.problem))
    images.flush()
    return start, geometry, None, bad


def build_cache(
    data_dir: str | Path,
    split: str,
    size: int,
    cache_root: str | Path | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> CachedSplit:
    """Build (or reuse, when its fingerprint matches) the cache of a split at crop `size`."""
    data_dir = Path(data_dir)
    names = split_file_names(data_dir, split)
    target = cache_dir_for(data_dir, split, size, cache_root)
    expected = fingerprint(data_dir, split, size, names)
    remove_stale(target.parent)  # what a killed build left
    if _read_fingerprint(target) == expected:
        return open_cache(target)
    with hold(target, "building the cache", wait=math.inf):
        if _read_fingerprint(target) != expected:  # else another process built it meanwhile
            _build(target, data_dir, split, size, names, expected, n_jobs, progress)
    return open_cache(target)


def _build(
    target: Path,
    data_dir: Path,
    split: str,
    size: int,
    names: np.ndarray,
    expected: dict,
    n_jobs: int | None,
    progress: bool,
) -> None:
    """Write the cache in a temp sibling of `target`, then move it into place."""
    tmp = temp_folder(target)
    try:
        with named_as_target(tmp, target):  # a full disk names the cache, not its temp folder
            _write_cache(
                tmp, DataFolder.at(data_dir).images(split), names, size, n_jobs, progress, split
            )
            (tmp / "fingerprint.json").write_text(json.dumps(expected, indent=1))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:  # an error or a signal: no temp stays (hold removes empty parents)
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_cache(
    folder: Path,
    image_dir: Path,
    names: np.ndarray,
    size: int,
    n_jobs: int | None,
    progress: bool,
    split: str,
) -> None:
    images_path = folder / "images.npy"
    np.lib.format.open_memmap(
        images_path, mode="w+", dtype=np.uint8, shape=(len(names), size, size, 3)
    ).flush()
    _preallocate(images_path)
    geometry = np.empty((len(names), 6), dtype=np.float64)
    valid = np.ones(len(names), dtype=bool)
    bad_images: list[dict] = []
    starts = range(0, len(names), _CHUNK)
    jobs = (
        delayed(_fill_chunk)(images_path, image_dir, list(names[s : s + _CHUNK]), s, size)
        for s in starts
    )
    runner = Parallel(
        n_jobs=n_jobs or os.cpu_count(), prefer="threads", return_as="generator_unordered"
    )
    with tqdm(
        total=len(names), desc=f"prepare {split} {size}px", unit="img", disable=not progress
    ) as bar:
        for start, rows, missing, bad in runner(jobs):
            if missing is not None:
                raise InputError(missing, IMAGE_NOT_FOUND)
            geometry[start : start + len(rows)] = rows
            for row, reason in bad:
                valid[row] = False
                bad_images.append({"file_name": str(names[row]), "reason": reason})
            bar.update(len(rows))
    if not valid.any():
        raise InputError(image_dir, f"no {split} image could be decoded")
    for item in sorted(bad_images, key=lambda b: b["file_name"]):
        warnings.warn(
            f"{image_dir / item['file_name']}: {item['reason']}; image left out", stacklevel=2
        )
    np.save(folder / "valid.npy", valid)
    (folder / "bad_images.json").write_text(
        json.dumps(sorted(bad_images, key=lambda b: b["file_name"]), indent=1)
    )
    np.save(folder / "geometry.npy", geometry[:, :4])
    np.save(folder / "sizes.npy", geometry[:, 4:])
    np.save(folder / "file_names.npy", np.asarray([str(n) for n in names]))


def _preallocate(path: Path) -> None:
    """Reserve the disk blocks of the memory-mapped `path` with real writes, so that a full disk
    is an error here, not a SIGBUS that kills the process when the map is written."""
    with open(path, "r+b") as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(handle.fileno(), 0, size)
            else:  # macOS, Windows: write every block back as it reads (header, then zeros)
                for offset in range(0, size, 1 << 24):
                    handle.seek(offset)
                    block = handle.read(1 << 24)
                    handle.seek(offset)
                    handle.write(block)
                handle.flush()
        except OSError as error:
            if full_disk(error):
                raise full_disk_error(path, error, needed=size) from None
            raise


def _read_fingerprint(folder: Path) -> dict | None:
    path = folder / "fingerprint.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def open_cache(folder: str | Path) -> CachedSplit:
    """Open a built cache folder (images memory-mapped read-only)."""
    folder = Path(folder)
    for name in ("images.npy", "geometry.npy", "file_names.npy", "sizes.npy", "valid.npy"):
        if not (folder / name).is_file():
            raise InputError(folder / name, "cache file missing (run `ens prepare` again)")
    return CachedSplit(
        path=folder,
        images=np.load(folder / "images.npy", mmap_mode="r"),
        geometry=np.load(folder / "geometry.npy"),
        file_names=np.load(folder / "file_names.npy").astype(object),
        sizes=np.load(folder / "sizes.npy"),
        valid=np.load(folder / "valid.npy"),
    )
